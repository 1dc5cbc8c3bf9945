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

use std::path::Path;

use super::process_tree::{ProcessInfo, read_process};

/// The activity of a live session's foreground.
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
    /// Whether the system call the process sleeps in reads the session's terminal:
    /// `Some(false)` for a read of another file (a socket, say, which also waits in
    /// `wait_woken`), `None` when `/proc/<pid>/syscall` does not tell.
    pub reads_terminal: Option<bool>,
}

/// The facts [`classify`] decides from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityFacts {
    /// The shell integration marks report the shell at its prompt.
    pub at_prompt: bool,
    /// The session's shell prints integration marks, so a shell that reads its
    /// terminal without having printed a prompt is reading input for a command (`read
    /// -e`, the rest of an unclosed quote), not sitting at its prompt.
    pub marks_active: bool,
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
    let reads_terminal = live.iter().any(|process| {
        TERMINAL_READ_CHANNELS.contains(&process.wchan.as_str())
            && process.reads_terminal != Some(false)
    });
    if reads_terminal {
        return Activity::WaitingForInput;
    }
    if waits_in(POLL_CHANNELS) && facts.canonical == Some(false) {
        if facts.shell_in_foreground && !facts.marks_active {
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

/// Reads the state and wait channel of every process in group `group`, which is found
/// among the descendants of `root` (the session leader); `terminal` is the session's
/// terminal device, such as `/dev/pts/3`.
pub fn foreground_processes(
    group: i32,
    root: i32,
    terminal: Option<&Path>,
) -> Vec<ForegroundProcess> {
    let describe = |info: &ProcessInfo| {
        let wchan = read_wchan(info.pid);
        let reads_terminal = if TERMINAL_READ_CHANNELS.contains(&wchan.as_str()) {
            terminal.and_then(|terminal| reads_file(info.pid, terminal))
        } else {
            None
        };
        ForegroundProcess {
            state: info.state,
            wchan,
            reads_terminal,
        }
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
                group_members(group, root)
                    .iter()
                    .filter(|info| info.pid != group)
                    .map(describe),
            );
        }
        return processes;
    }
    group_members(group, root).iter().map(describe).collect()
}

/// Reads a process's wait channel without the suffix the compiler may add to the
/// kernel symbol (`poll_schedule_timeout.constprop.0` is `poll_schedule_timeout`).
fn read_wchan(pid: i32) -> String {
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    base_symbol(&wchan).to_owned()
}

/// Reports whether the process sleeps in a read of `file`, from the system call and
/// its first argument in `/proc/<pid>/syscall` (readable by the process's owner and by
/// its ancestors). Any other system call is `Some(false)`: a program blocked writing to
/// a full terminal sleeps in the same `wait_woken` channel as one reading it. `None`
/// when the file does not tell: a running process, or no permission.
fn reads_file(pid: i32, file: &Path) -> Option<bool> {
    let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let (number, fd) = parse_syscall(&syscall)?;
    const READS: [i64; 5] = [
        libc::SYS_read,
        libc::SYS_readv,
        libc::SYS_pread64,
        libc::SYS_recvfrom,
        libc::SYS_recvmsg,
    ];
    if !READS.contains(&number) {
        return Some(false);
    }
    let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    // `/dev/tty` is the process's controlling terminal, which getpass opens.
    Some(target == file || target == Path::new("/dev/tty"))
}

/// Parses the system call number and first argument of a `/proc/<pid>/syscall` line
/// such as `0 0x3 0x7f99... ...`.
fn parse_syscall(line: &str) -> Option<(i64, u64)> {
    let mut fields = line.split_whitespace();
    let number = fields.next()?.parse().ok()?;
    let first = fields.next()?.strip_prefix("0x")?;
    Some((number, u64::from_str_radix(first, 16).ok()?))
}

fn base_symbol(symbol: &str) -> &str {
    symbol.split('.').next().unwrap_or(symbol).trim()
}

/// Most processes visited when the descendants of a session leader are searched.
const MAX_DESCENDANTS: usize = 4096;

/// Lists the processes of `group` among `root` and its descendants, read from
/// `/proc/<pid>/task/<tid>/children`, so the cost follows the size of the session's
/// tree and not the number of processes on the machine. Children of a thread other
/// than the main one are not seen.
fn group_members(group: i32, root: i32) -> Vec<ProcessInfo> {
    let mut members = Vec::new();
    let mut pending = vec![root];
    let mut visited = 0;
    while let Some(pid) = pending.pop() {
        visited += 1;
        if visited > MAX_DESCENDANTS {
            break;
        }
        if let Some(info) = read_process(pid)
            && info.process_group == group
        {
            members.push(info);
        }
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        pending.extend(
            children
                .split_whitespace()
                .filter_map(|child| child.parse::<i32>().ok()),
        );
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::fd::{FromRawFd as _, OwnedFd};
    use std::process::{Command, Stdio};

    /// Opens a pseudo-terminal pair and returns the master, the slave and the slave's path.
    fn open_pty() -> (OwnedFd, OwnedFd, std::path::PathBuf) {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two new descriptors into the integers it is given; the
        // name, termios and window size arguments may be null.
        let status = unsafe {
            libc::openpty(
                &raw mut master,
                &raw mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(
            status,
            0,
            "openpty failed: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: both descriptors were just opened and nothing else owns them.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let path = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&slave)
        ))
        .expect("slave path");
        (master, slave, path)
    }

    /// Waits up to 10 s for `pid` to sleep in `wait_woken` or `n_tty_*` and returns its
    /// wait channel.
    fn sleeping_channel(pid: i32) -> String {
        for _ in 0..1000 {
            let channel = read_wchan(pid);
            if TERMINAL_READ_CHANNELS.contains(&channel.as_str()) || channel.starts_with("n_tty") {
                return channel;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "process {pid} never blocked on the terminal (wait channel {:?})",
            read_wchan(pid)
        );
    }

    /// A writer blocked on a full terminal sleeps where a reader does, and only the
    /// system call tells them apart.
    #[test]
    fn terminal_writer_is_not_reading() {
        let (_master, slave, path) = open_pty();
        let mut writer = Command::new("yes")
            .stdin(Stdio::null())
            .stdout(Stdio::from(slave.try_clone().expect("dup slave")))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn yes");
        let mut reader = Command::new("cat")
            .stdin(Stdio::from(slave.try_clone().expect("dup slave")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cat");
        let writer_pid = i32::try_from(writer.id()).expect("pid");
        let reader_pid = i32::try_from(reader.id()).expect("pid");

        let writer_channel = sleeping_channel(writer_pid);
        let reader_channel = sleeping_channel(reader_pid);
        let writer_reads = reads_file(writer_pid, &path);
        let reader_reads = reads_file(reader_pid, &path);
        for child in [&mut writer, &mut reader] {
            child.kill().expect("kill");
            child.wait().expect("reap");
        }

        assert_eq!(writer_reads, Some(false), "yes blocked in {writer_channel}");
        assert_eq!(reader_reads, Some(true), "cat blocked in {reader_channel}");
    }

    fn process(state: char, wchan: &str) -> ForegroundProcess {
        ForegroundProcess {
            state,
            wchan: wchan.to_owned(),
            reads_terminal: None,
        }
    }

    fn facts(
        shell_in_foreground: bool,
        canonical: bool,
        processes: Vec<ForegroundProcess>,
    ) -> ActivityFacts {
        ActivityFacts {
            at_prompt: false,
            marks_active: false,
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
    fn socket_read_is_busy() {
        let mut socket = process('S', "wait_woken");
        socket.reads_terminal = Some(false);
        assert_eq!(
            classify(&facts(false, true, vec![socket])),
            Activity::Running
        );
        let mut terminal = process('S', "wait_woken");
        terminal.reads_terminal = Some(true);
        assert_eq!(
            classify(&facts(false, true, vec![terminal])),
            Activity::WaitingForInput
        );
    }

    #[test]
    fn syscall_line_parses() {
        assert_eq!(parse_syscall("0 0x3 0x7f9949afb000 0x20000"), Some((0, 3)));
        assert_eq!(parse_syscall("running"), None);
        assert_eq!(parse_syscall("230 0x0 0x0"), Some((230, 0)));
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
    fn shell_reading_without_prompt_mark_wants_input() {
        let mut continuation = facts(true, false, vec![process('S', "poll_schedule_timeout")]);
        continuation.marks_active = true;
        assert_eq!(classify(&continuation), Activity::WaitingForInput);
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
            seen = foreground_processes(group, group, None);
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
