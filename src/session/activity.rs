//! What a live session is doing, read from the kernel: running, blocked reading the
//! terminal, or idle at a shell prompt.
//!
//! The signals (Linux):
//!
//! - the terminal's foreground process group (`tcgetpgrp` on the master);
//! - each of its processes' state and kernel wait channel (`/proc/<pid>/stat` and
//!   `/proc/<pid>/wchan`): a process blocked in the terminal's line discipline waits in
//!   `wait_woken` (older kernels: `n_tty_read`); one in `poll` or `select` waits in
//!   `poll_schedule_timeout` or `do_select`;
//! - the terminal's modes: ICANON off means a program reads single keys (readline,
//!   an editor, a pager).
//!
//! Together they separate a shell at its prompt (the shell, polling, ICANON off), a
//! `read` or `input()` prompt (blocked in the line discipline), a pager or editor
//! (ICANON off, blocked or polling), and a busy program (running, or sleeping on
//! anything else). The shell integration marks, when present, say "at the prompt"
//! directly. The wait channel is a hint: where the kernel hides it (`0`), the activity
//! is unknown and waits fall back to quiet output.

use super::process_tree::{ProcessInfo, parse_stat, read_process};

/// What a live session's foreground is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Busy: running, or sleeping on something other than terminal input.
    Running,
    /// Blocked reading the terminal: a prompt of a program, a pager, an editor.
    WaitingForInput,
    /// The session's shell is at its prompt.
    Idle,
    /// Sleeping, but the kernel hides where (a wait channel of `0`, as for a setuid
    /// program such as sudo).
    Unknown,
}

/// Wait channels of a process blocked reading a terminal in canonical or raw mode.
const TERMINAL_READ_CHANNELS: &[&str] = &["wait_woken", "n_tty_read"];
/// Wait channels of a process waiting in `poll`, `select` or `epoll`.
const POLL_CHANNELS: &[&str] = &[
    "poll_schedule_timeout",
    "do_select",
    "do_sys_poll",
    "core_sys_select",
    "ep_poll",
    "do_epoll_wait",
];

/// One process of the foreground group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForegroundProcess {
    /// Process state from `/proc/<pid>/stat`: `R`, `S`, `D`, `T`, `Z`, ...
    pub state: char,
    /// Kernel wait channel, `0` or empty when unknown.
    pub wchan: String,
}

/// The facts [`classify`] decides from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityFacts {
    /// The shell integration marks say the shell is at its prompt.
    pub at_prompt: bool,
    /// The foreground group is the session leader's, and the leader is a shell.
    pub shell_in_foreground: bool,
    /// The terminal's ICANON flag, `None` when the modes could not be read.
    pub canonical: Option<bool>,
    pub processes: Vec<ForegroundProcess>,
}

/// Decides what the session is doing.
pub fn classify(facts: &ActivityFacts) -> Activity {
    if facts.at_prompt {
        return Activity::Idle;
    }
    let live: Vec<&ForegroundProcess> = facts
        .processes
        .iter()
        .filter(|process| !matches!(process.state, 'Z' | 'X' | 'x'))
        .collect();
    if live.is_empty() || live.iter().any(|process| process.state != 'S') {
        return Activity::Running;
    }
    let waits_in = |channels: &[&str]| {
        live.iter()
            .any(|process| channels.contains(&process.wchan.as_str()))
    };
    if waits_in(TERMINAL_READ_CHANNELS) {
        return Activity::WaitingForInput;
    }
    if waits_in(POLL_CHANNELS) && facts.canonical == Some(false) {
        if facts.shell_in_foreground {
            return Activity::Idle;
        }
        return Activity::WaitingForInput;
    }
    if live
        .iter()
        .any(|process| process.wchan.is_empty() || process.wchan == "0")
    {
        return Activity::Unknown;
    }
    Activity::Running
}

/// Reads the state and wait channel of every process in group `group`.
pub fn foreground_processes(group: i32) -> Vec<ForegroundProcess> {
    let describe = |info: &ProcessInfo| ForegroundProcess {
        state: info.state,
        wchan: read_wchan(info.pid),
    };
    // The group's leader usually still runs; scan /proc only when it does not, as in
    // a pipeline whose first command has exited.
    if let Some(leader) = read_process(group)
        && leader.process_group == group
        && leader.state != 'Z'
    {
        let mut processes = vec![describe(&leader)];
        if leader.state == 'S' {
            // Other members matter only when the leader alone would not decide.
            processes.extend(
                group_members(group)
                    .iter()
                    .filter(|info| info.pid != group)
                    .map(describe),
            );
        }
        return processes;
    }
    group_members(group).iter().map(describe).collect()
}

/// Reads a process's wait channel without the suffix the compiler may add to the
/// kernel symbol (`poll_schedule_timeout.constprop.0` is `poll_schedule_timeout`).
fn read_wchan(pid: i32) -> String {
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    base_symbol(&wchan).to_owned()
}

fn base_symbol(symbol: &str) -> &str {
    symbol.split('.').next().unwrap_or(symbol).trim()
}

fn group_members(group: i32) -> Vec<ProcessInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .filter(|info| info.process_group == group)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(state: char, wchan: &str) -> ForegroundProcess {
        ForegroundProcess {
            state,
            wchan: wchan.to_owned(),
        }
    }

    fn facts(
        shell_in_foreground: bool,
        canonical: bool,
        processes: Vec<ForegroundProcess>,
    ) -> ActivityFacts {
        ActivityFacts {
            at_prompt: false,
            shell_in_foreground,
            canonical: Some(canonical),
            processes,
        }
    }

    /// The rows of the table of observed signals: foreground, wait channel, ICANON.
    #[test]
    fn classify_observed_states() {
        let cases = [
            (
                "idle bash prompt",
                true,
                false,
                "poll_schedule_timeout",
                Activity::Idle,
            ),
            (
                "read -p builtin",
                true,
                true,
                "wait_woken",
                Activity::WaitingForInput,
            ),
            ("cat", false, true, "wait_woken", Activity::WaitingForInput),
            (
                "less",
                false,
                false,
                "wait_woken",
                Activity::WaitingForInput,
            ),
            (
                "read -s builtin",
                true,
                true,
                "wait_woken",
                Activity::WaitingForInput,
            ),
            (
                "python input()",
                false,
                true,
                "wait_woken",
                Activity::WaitingForInput,
            ),
            (
                "python REPL",
                false,
                false,
                "poll_schedule_timeout",
                Activity::WaitingForInput,
            ),
            (
                "sleep 5",
                false,
                true,
                "hrtimer_nanosleep",
                Activity::Running,
            ),
            (
                "python time.sleep",
                false,
                true,
                "hrtimer_nanosleep",
                Activity::Running,
            ),
            (
                "server in select",
                false,
                true,
                "do_select",
                Activity::Running,
            ),
            ("hidden wait channel", false, true, "0", Activity::Unknown),
        ];
        for (name, shell, canonical, wchan, expected) in cases {
            let facts = facts(shell, canonical, vec![process('S', wchan)]);
            assert_eq!(classify(&facts), expected, "{name}");
        }
    }

    #[test]
    fn wait_channel_suffixes_are_dropped() {
        assert_eq!(
            base_symbol("poll_schedule_timeout.constprop.0"),
            "poll_schedule_timeout"
        );
        assert_eq!(base_symbol("do_select.isra.0"), "do_select");
        assert_eq!(base_symbol("wait_woken"), "wait_woken");
        assert_eq!(base_symbol("0"), "0");
    }

    #[test]
    fn classify_running_and_zombies() {
        let busy = facts(
            false,
            true,
            vec![process('R', "0"), process('S', "wait_woken")],
        );
        assert_eq!(classify(&busy), Activity::Running);

        let pipeline = facts(
            false,
            false,
            vec![process('Z', "0"), process('S', "wait_woken")],
        );
        assert_eq!(classify(&pipeline), Activity::WaitingForInput);

        let gone = facts(false, true, Vec::new());
        assert_eq!(classify(&gone), Activity::Running);
    }

    #[test]
    fn classify_marks_win() {
        let mut at_prompt = facts(false, true, vec![process('R', "0")]);
        at_prompt.at_prompt = true;
        assert_eq!(classify(&at_prompt), Activity::Idle);
    }

    #[test]
    fn foreground_processes_of_a_sleeper() {
        use std::os::unix::process::CommandExt as _;

        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("sleep starts");
        let group = child.id() as i32;
        // The child may still be starting; poll until it sleeps, bounded.
        let mut seen = Vec::new();
        for _ in 0..200 {
            seen = foreground_processes(group);
            if seen
                .first()
                .is_some_and(|process| process.wchan == "hrtimer_nanosleep")
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].state, 'S');
        assert_eq!(seen[0].wchan, "hrtimer_nanosleep");
    }
}
