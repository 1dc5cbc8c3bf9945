//! Finding and ending every process a session started.
//!
//! Neither a hangup, nor the shell's process group (job control gives each job a group of
//! its own), nor the session id alone reaches everything: `setsid` and double-forked
//! daemons leave the session. A process belongs to a session when its session id is the
//! session leader's pid, or when its environment carries the session tag
//! ([`super::pty::SESSION_TAG_VAR`]), or, where per-session cgroups are active
//! ([`super::cgroup`]), when it is in the session's cgroup. Without cgroups, processes
//! that both call `setsid` and clear their environment (`setsid env -i prog`) escape.
//! The README documents this.
//!
//! Each signal goes through a pidfd opened after membership was checked, so a pid that
//! the kernel reused for an unrelated process in the meantime is never hit.

use std::time::Duration;

use tokio::time::Instant;

use super::cgroup::{cgroup_of, is_within};

/// Pause between scans while waiting for processes to exit.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How long to wait for processes to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// The facts about one process that membership depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub session_id: i32,
    pub process_group: i32,
    /// `Z` for a zombie: it has exited and only waits to be reaped.
    pub state: char,
    /// Start time in clock ticks since boot; with the pid it identifies one process.
    pub start_time: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and
/// parentheses, so the fields after it are counted from the last `)`.
pub fn parse_stat(pid: i32, stat: &str) -> Option<ProcessInfo> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let process_group = fields.next()?.parse().ok()?;
    let session_id = fields.next()?.parse().ok()?;
    // Field 22 of the file; `fields` has consumed fields 3 to 6.
    let start_time = fields.nth(15)?.parse().ok()?;
    Some(ProcessInfo {
        pid,
        session_id,
        process_group,
        state,
        start_time,
    })
}

/// Reports whether a NUL-separated environment block contains `NAME=value` exactly.
pub fn environ_has_tag(environ: &[u8], tag: &[u8]) -> bool {
    environ.split(|byte| *byte == 0).any(|entry| entry == tag)
}

/// How to recognise a session's processes.
#[derive(Debug, Clone)]
pub struct Membership {
    pub leader_pid: i32,
    /// The leader's start time as read right after it was spawned, if it could be read.
    pub leader_start_time: Option<u64>,
    /// `MTS_SESSION_TAG=<uuid>` as bytes.
    pub tag: Vec<u8>,
    /// When set, membership is descent from this pid instead of session id or tag.
    pub ancestor: Option<i32>,
    /// The session's cgroup path (as `/proc/<pid>/cgroup` shows it): processes in it or
    /// below it are members too.
    pub cgroup: Option<String>,
}

impl Membership {
    pub fn new(
        leader_pid: u32,
        leader_start_time: Option<u64>,
        tag_var: &str,
        session_id: &str,
    ) -> Self {
        Self {
            leader_pid: leader_pid as i32,
            leader_start_time,
            tag: format!("{tag_var}={session_id}").into_bytes(),
            ancestor: None,
            cgroup: None,
        }
    }

    /// Also counts the processes in cgroup `path` and below it as members.
    pub fn with_cgroup(mut self, path: Option<String>) -> Self {
        self.cgroup = path;
        self
    }

    /// Recognises processes by the tag alone: `NAME=value` in their environment.
    pub fn tag_only(tag_var: &str, value: &str) -> Self {
        Self {
            // No process has session id -1, so only the tag matches.
            leader_pid: -1,
            leader_start_time: None,
            tag: format!("{tag_var}={value}").into_bytes(),
            ancestor: None,
            cgroup: None,
        }
    }

    /// Recognises every descendant of `ancestor`: at shutdown, the server's own
    /// descendants include orphans it adopted as subreaper that match no session.
    pub fn descendants_of(ancestor: i32) -> Self {
        Self {
            leader_pid: -1,
            leader_start_time: None,
            tag: Vec::new(),
            ancestor: Some(ancestor),
            cgroup: None,
        }
    }

    /// Reports whether the session id still identifies this session. Once the leader has
    /// been reaped, its pid can be reused by a process that starts a session of its own
    /// with the same id. Then only the tag identifies members.
    fn session_id_is_ours(&self) -> bool {
        match read_process(self.leader_pid) {
            None => true,
            Some(leader) => self
                .leader_start_time
                .is_none_or(|start| start == leader.start_time),
        }
    }

    /// Checks one process now. Zombies count as gone.
    fn contains(&self, pid: i32, session_id_is_ours: bool) -> bool {
        let Some(info) = read_process(pid) else {
            return false;
        };
        if info.state == 'Z' {
            return false;
        }
        if let Some(ancestor) = self.ancestor {
            return is_descendant(pid, ancestor);
        }
        if session_id_is_ours && info.session_id == self.leader_pid {
            return true;
        }
        if let Some(cgroup) = &self.cgroup
            && cgroup_of(pid).is_some_and(|path| is_within(&path, cgroup))
        {
            return true;
        }
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|environ| environ_has_tag(&environ, &self.tag))
    }

    /// Lists the live processes of the session, leader included.
    pub fn scan(&self) -> Vec<i32> {
        let own_pid = std::process::id() as i32;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let session_id_is_ours = self.session_id_is_ours();
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != own_pid && self.contains(*pid, session_id_is_ours))
            .collect()
    }
}

/// Reports whether `ancestor` is on the parent chain of `pid`.
fn is_descendant(pid: i32, ancestor: i32) -> bool {
    let mut current = pid;
    // Bounded, in case the chain changes while it is read.
    for _ in 0..4096 {
        let Some(parent) = std::fs::read_to_string(format!("/proc/{current}/stat"))
            .ok()
            .and_then(|stat| {
                let rest = &stat[stat.rfind(')')? + 1..];
                rest.split_whitespace().nth(1)?.parse::<i32>().ok()
            })
        else {
            return false;
        };
        if parent == ancestor {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        current = parent;
    }
    false
}

/// Reads `/proc/<pid>/stat`, or `None` when the process is gone.
pub fn read_process(pid: i32) -> Option<ProcessInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

/// The outcome of ending a session's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KillReport {
    /// Distinct processes that received at least one signal.
    pub signalled: usize,
    /// The last signal that was needed (`HUP`, `TERM` or `KILL`), if any.
    pub last_signal: Option<&'static str>,
    /// Processes still alive when the ladder gave up (normally 0).
    pub survivors: usize,
}

/// Ends every process of the session: SIGHUP, then SIGTERM after `grace`, then SIGKILL
/// after another `grace`. Membership is scanned again before each step, because the tree
/// may fork while it is being ended. Stopped processes get SIGCONT so they can act on
/// the signal.
pub async fn kill_tree(members: &Membership, grace: Duration) -> KillReport {
    let mut report = KillReport::default();
    let mut signalled = std::collections::HashSet::new();
    let ladder = [
        (libc::SIGHUP, "HUP", grace),
        (libc::SIGTERM, "TERM", grace),
        (libc::SIGKILL, "KILL", KILL_WAIT),
    ];
    for (signal, name, wait) in ladder {
        let pids = members.scan();
        if pids.is_empty() {
            break;
        }
        for pid in &pids {
            if send_signal(members, *pid, signal) {
                signalled.insert(*pid);
                if signal != libc::SIGKILL {
                    send_signal(members, *pid, libc::SIGCONT);
                }
            }
        }
        report.last_signal = Some(name);
        tracing::debug!(
            pid = members.leader_pid,
            signal = name,
            processes = pids.len(),
            "signalled session processes"
        );
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && !members.scan().is_empty() {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    report.signalled = signalled.len();
    report.survivors = members.scan().len();
    report
}

/// Sends `signal` to `pid` if it still belongs to the session. Returns whether it was sent.
fn send_signal(members: &Membership, pid: i32, signal: i32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if pidfd < 0 {
        // Kernels before 5.3 lack pidfds: fall back to a checked kill, which leaves a
        // short window for pid reuse.
        if !members.contains(pid, members.session_id_is_ours()) {
            return false;
        }
        // SAFETY: kill has no memory effects.
        return unsafe { libc::kill(pid, signal) } == 0;
    }
    // The pidfd pins this exact process, so the check below cannot be fooled by reuse.
    let sent = members.contains(pid, members.session_id_is_ours())
        // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
        && unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, signal, std::ptr::null::<libc::siginfo_t>(), 0) } == 0;
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(pidfd) };
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_name() {
        let stat = "4242 (my (odd) prog) S 1 4242 4200 34816 4242 4194304 0 0 0 0 0 0 0 0 20 0 1 0 987 0 0";
        let info = parse_stat(4242, stat).unwrap();
        assert_eq!(info.state, 'S');
        assert_eq!(info.session_id, 4200);
    }

    #[test]
    fn stat_start_time_is_field_22() {
        let stat = "77 (sh) S 1 77 77 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 2000000 100";
        assert_eq!(
            parse_stat(77, stat).map(|info| info.start_time),
            Some(123456)
        );
    }

    #[test]
    fn reused_leader_pid_disables_session_id_match() {
        let own = std::process::id();
        let own_start = read_process(own as i32).map(|info| info.start_time);
        let ours = Membership::new(own, own_start, "MCP_TERMINAL_SESSION_ID", "x");
        assert!(ours.session_id_is_ours());
        let reused = Membership::new(
            own,
            own_start.map(|start| start + 1),
            "MCP_TERMINAL_SESSION_ID",
            "x",
        );
        assert!(
            !reused.session_id_is_ours(),
            "a different start time means the pid was reused"
        );
        let gone = Membership::new(999_999_999, Some(1), "MCP_TERMINAL_SESSION_ID", "x");
        assert!(
            gone.session_id_is_ours(),
            "orphans of a reaped leader still match by session id"
        );
    }

    #[test]
    fn stat_garbage_is_none() {
        assert_eq!(parse_stat(1, "garbage"), None);
        assert_eq!(parse_stat(1, "1 (x) R"), None);
    }

    #[test]
    fn tag_matches_whole_entries_only() {
        let environ = b"HOME=/root\0MCP_TERMINAL_SESSION_ID=abc\0PATH=/bin\0";
        assert!(environ_has_tag(environ, b"MCP_TERMINAL_SESSION_ID=abc"));
        assert!(!environ_has_tag(environ, b"MCP_TERMINAL_SESSION_ID=ab"));
        assert!(!environ_has_tag(
            b"XMCP_TERMINAL_SESSION_ID=abc\0",
            b"MCP_TERMINAL_SESSION_ID=abc"
        ));
    }

    #[tokio::test]
    async fn kill_tree_reaches_tagged_setsid_process() {
        let tag_var = "MCP_TERMINAL_SESSION_ID";
        let session_id = uuid::Uuid::new_v4().to_string();
        let ready = std::env::temp_dir().join(format!("kill-tree-ready-{session_id}"));
        // `setsid` puts the shell in a session of its own and it ignores HUP and TERM,
        // so only the tag finds it and only SIGKILL ends it. It creates `ready` once the
        // trap is set, so no signal arrives before that.
        let mut child = std::process::Command::new("setsid")
            .args([
                "sh",
                "-c",
                "trap '' HUP TERM; touch \"$READY\"; exec sleep 30",
            ])
            .env(tag_var, &session_id)
            .env("READY", &ready)
            .spawn()
            .expect("setsid and sh are available");
        let members = Membership::new(999_999_999, None, tag_var, &session_id);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !ready.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(&ready);
        assert_eq!(
            members.scan(),
            vec![child.id() as i32],
            "the tagged process was not found"
        );

        let report = kill_tree(&members, Duration::from_millis(100)).await;
        let status = child.wait().expect("the child is reaped");
        assert_eq!(report.last_signal, Some("KILL"));
        assert_eq!(report.signalled, 1);
        assert_eq!(report.survivors, 0);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }
}
