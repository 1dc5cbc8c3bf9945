//! One command run to completion outside any session: `shell -c command` in a fresh
//! process group, without a terminal, with its output captured and bounded.
//!
//! The command gets the same clean environment as a session (with its own tag), no
//! standard input, and only fds 0–2. When it exits, or when the timeout passes, every
//! process left in its group, every process carrying its tag and, where per-session
//! cgroups are active, every process in its cgroup is killed, so background jobs it
//! started do not outlive it.

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

/// Removes escape sequences (CSI, OSC and other ESC sequences) and control
/// characters other than tab, line feed and carriage return, so a program that colours
/// its output even without a terminal returns plain text.
fn strip_controls(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for next in chars.by_ref() {
                        if ('@'..='~').contains(&next) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(next) = chars.next() {
                        if next == '\u{7}' {
                            break;
                        }
                        if next == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Other escape sequences: intermediates, then one final character.
                Some(first) => {
                    let mut next = Some(first);
                    while next.is_some_and(|c| (' '..='/').contains(&c)) {
                        next = chars.next();
                    }
                }
                None => {}
            },
            '\t' | '\n' | '\r' => clean.push(c),
            c if c.is_control() => {}
            c => clean.push(c),
        }
    }
    clean
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
    if let Some(procs) = cgroup.and_then(|cgroup| {
        std::ffi::CString::new(cgroup.procs_file().into_os_string().into_encoded_bytes()).ok()
    }) {
        // SAFETY: the closure only calls open, write and close, which are
        // async-signal-safe, on a path built before the fork. A failed join is left
        // for the check after the spawn, so the command still runs.
        unsafe {
            command.pre_exec(move || {
                let _ = join_calling_process(&procs);
                Ok(())
            });
        }
    }
    // Registered, so the orphan reaper leaves the exit status to `child.wait()`.
    let mut child = spawn_registered(
        || command.spawn(),
        |spawned| spawned.as_ref().ok().and_then(|child| child.id()),
    )
    .map_err(|source| CommandError::Spawn {
        shell: request.shell.clone(),
        source,
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
            "plain\ttab\r\n"
        );
    }

    #[test]
    fn bounded_output_small_is_whole() {
        let mut output = BoundedOutput::new(100);
        output.push(b"hello\n");
        assert_eq!(output.into_text(), ("hello\n".to_owned(), 0));
    }
}
