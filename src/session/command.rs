//! One command run to completion outside any session: `shell -c command` in a fresh
//! process group, without a terminal, with its output captured and bounded.
//!
//! The command gets the same clean environment as a session (with its own tag), no
//! standard input, only fds 0–2 (descriptors the server inherited included), and the
//! session resource limits and `oom_score_adj`, set between fork and exec. When it
//! exits, or when the timeout passes, every process left in its group, every process
//! carrying its tag and, where per-session cgroups are active, every process in its
//! cgroup is killed, so background jobs it started do not outlive it.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

use super::ExitInfo;
use super::cgroup::{
    ContainedCgroup, InstanceCgroups, cgroup_of, is_within, join_calling_process, log_fallback,
};
use super::containment::{INSTANCE_VAR, RegisteredChild, instance_tag, spawn_registered};
use super::limits::{SessionRlimits, child_oom_score_adj, write_own_oom_score_adj};
use super::process_tree::{Membership, read_process};
use super::pty::{SESSION_TAG_VAR, signal_name};

/// How long output may keep arriving after the command exits, from processes it left
/// behind, before they are killed.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// A validated one-shot command.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub command: String,
    pub shell: PathBuf,
    pub cwd: PathBuf,
    /// The complete environment.
    pub env: BTreeMap<String, String>,
    /// The tag value in the environment, which finds processes that left the group.
    pub tag: String,
    pub timeout: Duration,
    /// Send standard error to the same pipe as standard output.
    pub capture_stderr: bool,
    /// Bytes of output kept: the first half and the last half of this many.
    pub output_limit: usize,
    /// Resource limits set in the command's process (`--session-rlimit`).
    pub rlimits: SessionRlimits,
    /// The instance's parent cgroup, under which the command gets `command-<tag>`.
    pub cgroups: Option<Arc<InstanceCgroups>>,
}

/// The outcome of a command.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    /// Output as text; bytes that are not UTF-8 become U+FFFD.
    pub output: String,
    /// Output bytes left out of the middle to stay within the limit.
    pub omitted_bytes: u64,
    pub exit: Option<ExitInfo>,
    pub timed_out: bool,
    pub duration: Duration,
}

/// Error of [`run_command`].
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("could not start {shell:?}: {source}")]
    Spawn {
        shell: PathBuf,
        source: std::io::Error,
    },
    /// The spawn failed while limits were set. Only the errno comes back from the
    /// child, so either the shell or a `setrlimit` call may have failed.
    #[error("could not start {shell:?} with the session rlimits {rlimits}: {source}")]
    SpawnWithLimits {
        shell: PathBuf,
        rlimits: String,
        source: std::io::Error,
    },
    #[error("failed to read the command's output: {0}")]
    Io(#[from] std::io::Error),
    #[error("the request was cancelled; the command was killed")]
    Cancelled,
}

/// Output kept in bounded memory: the head, and a ring of the newest bytes.
struct BoundedOutput {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    half: usize,
    omitted: u64,
}

impl BoundedOutput {
    fn new(limit: usize) -> Self {
        Self {
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            half: limit / 2,
            omitted: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        let room = self.half.saturating_sub(self.head.len());
        let taken = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..taken]);
        bytes = &bytes[taken..];
        self.tail.extend(bytes);
        while self.tail.len() > self.half {
            let excess = self.tail.len() - self.half;
            self.tail.drain(..excess);
            self.omitted += excess as u64;
        }
    }

    fn into_text(self) -> (String, u64) {
        let mut bytes = self.head;
        if self.omitted > 0 {
            bytes.extend_from_slice(
                format!("\n[... {} bytes omitted ...]\n", self.omitted).as_bytes(),
            );
        }
        bytes.extend(self.tail);
        let text = String::from_utf8_lossy(&bytes);
        (strip_controls(&text), self.omitted)
    }
}

/// Removes escape sequences and control characters, so a program that colours its
/// output even without a terminal returns plain text. CSI, OSC, DCS, SOS, PM and APC
/// sequences go whole, in their 7-bit (ESC-prefixed) and 8-bit (C1) forms. Tab and line
/// feed stay. A carriage return before a line feed or at the end is dropped. Any other
/// carriage return starts its line again, so a progress bar leaves its last state.
fn strip_controls(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Other escape sequences: intermediates, then one final character.
                Some(first) => {
                    let mut next = Some(first);
                    while next.is_some_and(|c| (' '..='/').contains(&c)) {
                        next = chars.next();
                    }
                }
                None => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\r' => {
                if chars.peek().is_some_and(|next| *next != '\n') {
                    let line_start = clean.rfind('\n').map_or(0, |newline| newline + 1);
                    clean.truncate(line_start);
                }
            }
            '\t' | '\n' => clean.push(c),
            c if c.is_control() => {}
            c => clean.push(c),
        }
    }
    clean
}

/// Skips a CSI sequence after its introducer: parameters and intermediates up to a
/// final character in `@`..=`~`.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for next in chars.by_ref() {
        if ('@'..='~').contains(&next) {
            break;
        }
    }
}

/// Skips a control string (OSC, DCS, SOS, PM, APC) after its introducer, up to BEL or
/// the string terminator (ESC \\ or U+009C).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(next) = chars.next() {
        match next {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' if chars.peek() == Some(&'\\') => {
                chars.next();
                break;
            }
            _ => {}
        }
    }
}

/// Runs the command, killing its process group at the timeout or on cancellation, in a
/// cgroup of its own when cgroups are active.
pub async fn run_command(
    request: CommandRequest,
    cancel: &CancellationToken,
) -> Result<CommandOutcome, CommandError> {
    let cgroup = request.cgroups.as_ref().and_then(|cgroups| {
        cgroups
            .create_child("command", &request.tag)
            .map_err(|error| log_fallback("command", &request.tag, &error))
            .ok()
    });
    let outcome = run_in_cgroup(request, cancel, cgroup.as_ref()).await;
    if let Some(cgroup) = &cgroup {
        let killed = cgroup.kill_and_remove().await;
        if killed.survivors > 0 {
            tracing::warn!(
                survivors = killed.survivors,
                "processes in a command's cgroup survived cgroup.kill"
            );
        }
    }
    outcome
}

/// Does the work of [`run_command`], with the command joining `cgroup` if given.
async fn run_in_cgroup(
    request: CommandRequest,
    cancel: &CancellationToken,
    cgroup: Option<&ContainedCgroup>,
) -> Result<CommandOutcome, CommandError> {
    let started = Instant::now();
    let (read_end, write_end) = pipe()?;
    let stderr = if request.capture_stderr {
        Stdio::from(write_end.try_clone()?)
    } else {
        Stdio::null()
    };
    let mut command = tokio::process::Command::new(&request.shell);
    command
        .arg("-c")
        .arg(&request.command)
        .current_dir(&request.cwd)
        .env_clear()
        .envs(&request.env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(stderr)
        .env(INSTANCE_VAR, instance_tag())
        .process_group(0)
        .kill_on_drop(true);
    // Everything the child needs is prepared here, because after the fork it may not
    // allocate.
    let rlimits = request.rlimits.clone();
    let oom_score_adj = child_oom_score_adj().to_string().into_bytes();
    let cgroup_procs = cgroup.and_then(|cgroup| {
        std::ffi::CString::new(cgroup.procs_file().into_os_string().into_encoded_bytes()).ok()
    });
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe
    // calls (close_range, fcntl, getrlimit, setrlimit, open, write, close) on data
    // prepared before the fork. A failed cgroup join is left for the check after the
    // spawn, so the command still runs.
    unsafe {
        command.pre_exec(move || {
            close_inherited_on_exec();
            if let Some(procs) = &cgroup_procs {
                let _ = join_calling_process(procs);
            }
            rlimits.apply()?;
            write_own_oom_score_adj(&oom_score_adj);
            Ok(())
        });
    }
    // Registered, so the orphan reaper leaves the exit status to `child.wait()`.
    let mut child = spawn_registered(
        || command.spawn(),
        |spawned| spawned.as_ref().ok().and_then(|child| child.id()),
    )
    .map_err(|source| {
        let shell = request.shell.clone();
        if request.rlimits.is_empty() {
            CommandError::Spawn { shell, source }
        } else {
            let rlimits = request.rlimits.spec();
            CommandError::SpawnWithLimits {
                shell,
                rlimits,
                source,
            }
        }
    })?;
    let _registration = RegisteredChild(child.id().unwrap_or(0));
    // The parent's copies of the write end went into `command`; drop them so the
    // reader sees end of file once the command's processes are gone.
    drop(command);
    let pid = child.id().unwrap_or(0);
    // spawn() returned after the exec, so pre_exec has written to cgroup.procs by now.
    let joined = cgroup.filter(|cgroup| {
        let current = cgroup_of(pid as i32);
        let inside = current
            .as_deref()
            .is_none_or(|current| is_within(current, &cgroup.path));
        if !inside {
            let error = format!(
                "the command runs in cgroup {current:?}: writing to {} failed",
                cgroup.procs_file().display()
            );
            log_fallback("command", &request.tag, &error);
        }
        inside
    });
    let members = Membership::new(
        pid,
        read_process(pid as i32).map(|info| info.start_time),
        SESSION_TAG_VAR,
        &request.tag,
    )
    .with_cgroup(joined.map(|cgroup| cgroup.path.clone()));

    let mut output = BoundedOutput::new(request.output_limit);
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(read_end)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + request.timeout;
    let mut status = None;
    let mut timed_out = false;
    let mut eof = false;

    while status.is_none() {
        tokio::select! {
            _ = cancel.cancelled() => {
                kill_group(pid, &members);
                let _ = child.wait().await;
                return Err(CommandError::Cancelled);
            }
            _ = tokio::time::sleep_until(deadline) => {
                timed_out = true;
                kill_group(pid, &members);
                status = Some(child.wait().await?);
            }
            exited = child.wait() => status = Some(exited?),
            read = reader.read(&mut buffer), if !eof => match read? {
                0 => eof = true,
                count => output.push(&buffer[..count]),
            },
        }
    }

    // Output still in the pipe, or from processes the command left behind, for a moment.
    let drain_deadline = tokio::time::Instant::now() + DRAIN_AFTER_EXIT;
    while !eof {
        tokio::select! {
            _ = tokio::time::sleep_until(drain_deadline) => break,
            read = reader.read(&mut buffer) => match read? {
                0 => eof = true,
                count => output.push(&buffer[..count]),
            },
        }
    }
    kill_group(pid, &members);

    let (text, omitted_bytes) = output.into_text();
    Ok(CommandOutcome {
        output: text,
        omitted_bytes,
        exit: status.map(exit_info),
        timed_out,
        duration: started.elapsed(),
    })
}

/// Marks every descriptor above 2 close-on-exec, in the child between fork and exec.
/// The server's own descriptors already are, but descriptors it inherited, such as a
/// supervisor's pipe or a make jobserver, are not. They are marked rather than closed
/// because std reports a failed exec through a close-on-exec pipe of its own.
fn close_inherited_on_exec() {
    // SAFETY: close_range only changes descriptor flags.
    let marked = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if marked == 0 {
        return;
    }
    // close_range with CLOSE_RANGE_CLOEXEC needs Linux 5.11, so on older kernels each
    // descriptor is marked in turn.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, and fcntl on a descriptor that is
    // not open fails with EBADF and changes nothing.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let highest = limit.rlim_cur.min(1 << 20) as i32;
        for fd in 3..highest {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Kills every process of the command's group and every process with its tag.
fn kill_group(pid: u32, members: &Membership) {
    if pid == 0 {
        return;
    }
    // SAFETY: killpg and kill have no memory effects. The group id is the command's
    // pid, which stays reserved until the command is reaped by `child.wait()`.
    unsafe {
        libc::killpg(pid as i32, libc::SIGKILL);
    }
    for member in members.scan() {
        // SAFETY: as above; `scan` checked the tag just before.
        unsafe {
            libc::kill(member, libc::SIGKILL);
        }
    }
}

fn exit_info(status: std::process::ExitStatus) -> ExitInfo {
    use std::os::unix::process::ExitStatusExt as _;
    ExitInfo {
        code: status.code(),
        signal: status.signal().map(signal_name),
        at: std::time::SystemTime::now(),
    }
}

/// Creates a pipe whose ends close on exec.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and have no other owner.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    debug_assert!(ends.0.as_raw_fd() >= 0);
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_output_keeps_head_and_tail() {
        let mut output = BoundedOutput::new(8);
        output.push(b"abcdefghij");
        output.push(b"klmn");
        let (text, omitted) = output.into_text();
        assert_eq!(omitted, 6);
        assert_eq!(text, "abcd\n[... 6 bytes omitted ...]\nklmn");
    }

    #[test]
    fn controls_are_stripped() {
        assert_eq!(
            strip_controls("a\u{1b}[31mred\u{1b}[0m\u{7}\0z\n"),
            "aredz\n"
        );
        assert_eq!(
            strip_controls("\u{1b}]0;title\u{7}x\u{1b}]8;;u\u{1b}\\y"),
            "xy"
        );
        assert_eq!(
            strip_controls("\u{1b}(Bplain\u{1b}7\ttab\r\n"),
            "plain\ttab\n"
        );
    }

    #[test]
    fn eight_bit_sequences_go_whole() {
        assert_eq!(strip_controls("a\u{9b}31mb\u{9b}0m"), "ab");
        assert_eq!(strip_controls("a\u{9d}52;c;ZXZpbA==\u{7}b"), "ab");
        assert_eq!(strip_controls("a\u{90}q\u{9c}b\u{9f}x\u{1b}\\c"), "abc");
        assert_eq!(strip_controls("a\u{85}b\u{7f}c"), "abc");
    }

    #[test]
    fn carriage_returns_redraw_the_line() {
        assert_eq!(
            strip_controls("one\r\ntwo 50%\rtwo 100%\n"),
            "one\ntwo 100%\n"
        );
        assert_eq!(strip_controls("first\nbar 1\rbar 2\rbar 3"), "first\nbar 3");
        assert_eq!(strip_controls("done\r"), "done");
        assert_eq!(strip_controls("\r\rx"), "x");
    }

    #[test]
    fn bounded_output_small_is_whole() {
        let mut output = BoundedOutput::new(100);
        output.push(b"hello\n");
        assert_eq!(output.into_text(), ("hello\n".to_owned(), 0));
    }
}
