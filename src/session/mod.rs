//! Terminal sessions: a PTY, the process tree behind it, and the emulator that renders it.
//!
//! Nothing here depends on MCP. Every session has the same anatomy:
//!
//! - a **reader** thread that drains the PTY master until end of file, also after the
//!   child has exited, so output written just before an exit is rendered, and a
//!   **parser** thread that feeds what it read to the [`screen::Screen`], through a
//!   bounded [`output_queue`];
//! - a **writer**: a non-blocking descriptor of the PTY input held for the session's
//!   whole life, with a bound on every write ([`terminal_io`]);
//! - a **waiter** thread that reaps the child as soon as it exits and records its status;
//! - a **kill** that reaches the whole process tree ([`process_tree`]).
//!
//! The [`table::SessionTable`] owns every session; tool handlers clone an `Arc<Session>`
//! out of it and never hold a table guard across an `.await`.

pub mod activity;
pub mod cgroup;
pub mod command;
pub mod containment;
pub mod keys;
pub mod limits;
pub mod output;
pub mod output_queue;
pub mod process_tree;
pub mod pty;
pub mod reaper;
pub mod screen;
pub mod shell_integration;
pub mod table;
pub mod terminal_io;
pub mod wait;

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use portable_pty::{MasterPty, PtySize};
use tokio::sync::watch;
use uuid::Uuid;

use activity::{Activity, ActivityFacts, classify, foreground_processes};
use screen::{Screen, TermSize};
use shell_integration::ShellKind;
use terminal_io::{WriteError, write_all_until, write_available};

/// Maximum time the parser waits between two batches for other threads to take the state.
const STATE_HANDOFF_LIMIT: Duration = Duration::from_millis(5);

/// Smallest accepted terminal size; vt100 cannot represent 0, a 1-column terminal
/// cannot show a wide character, and full-screen programs need a status row besides
/// their first line.
pub const MIN_COLS: u16 = 2;
pub const MIN_ROWS: u16 = 2;
/// Largest accepted terminal size. The emulator allocates every cell, so this bounds
/// the memory one resize can ask for.
pub const MAX_COLS: u16 = 1000;
pub const MAX_ROWS: u16 = 500;

/// The exit of a session's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit status when the process called `exit`.
    pub code: Option<i32>,
    /// Signal name (`KILL`, `HUP`, ...) when a signal ended the process.
    pub signal: Option<String>,
    pub at: SystemTime,
}

impl ExitInfo {
    /// Describes the exit for messages, e.g. "exited with status 3".
    pub fn describe(&self) -> String {
        match (&self.signal, self.code) {
            (Some(signal), _) => format!("was killed by SIG{signal}"),
            (None, Some(code)) => format!("exited with status {code}"),
            (None, None) => "exited".to_owned(),
        }
    }
}

/// The reason a session left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// A client called `session_close`.
    Closed,
    /// The idle reaper closed it.
    IdleTimeout,
    /// The server shut down.
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed by session_close",
            Self::IdleTimeout => "closed by the idle timeout",
            Self::Shutdown => "closed at server shutdown",
        }
    }
}

/// The part of a session that the reader, the waiter and tool calls share.
pub struct SessionState {
    pub screen: Screen,
    pub exit: Option<ExitInfo>,
    /// Child output or a tool call; the idle reaper compares it with the timeout.
    pub last_activity: Instant,
    /// When the parser last fed output to the screen; waits with `settle` use it.
    pub last_output: Instant,
    /// Output bytes fed to the screen so far.
    pub bytes_read: u64,
    /// The reader reached end of file and the parser fed everything before it: no more
    /// output will arrive.
    pub output_closed: bool,
}

/// One terminal session.
pub struct Session {
    pub id: Uuid,
    pub name: Option<String>,
    /// The command line or argv the session runs, for listings.
    pub command: String,
    /// Process id of the session leader (the shell or program started on the PTY).
    pub pid: u32,
    /// The leader's start time in clock ticks since boot (field 22 of its `/proc` stat),
    /// which distinguishes the leader from a later process that reuses its pid.
    pub leader_start_time: Option<u64>,
    pub started_at: SystemTime,
    /// The shell whose integration hook the session was started with, if any.
    pub shell_integration: Option<ShellKind>,
    /// The session leader is an interactive shell (a session opened without `command`
    /// or `argv`).
    pub runs_shell: bool,
    /// The session's own cgroup, when per-session cgroups are active and the program
    /// joined it; closing kills what is left in it and removes it.
    pub cgroup: Option<cgroup::ContainedCgroup>,
    state: Mutex<SessionState>,
    /// Threads waiting to take `state`. The parser lets them in between two batches,
    /// since during a flood it would otherwise take the lock again before they wake.
    state_waiters: AtomicUsize,
    /// Non-blocking duplicate of the PTY master for input. Writers hold the lock for one
    /// whole write so its bytes stay together; close takes it out.
    input: Mutex<Option<OwnedFd>>,
    /// Query replies the parser could not send because a write held `input`; the writer
    /// sends them after its own bytes.
    pending_replies: Mutex<Vec<u8>>,
    /// Set when the session starts closing; stops pending writes and the reader.
    closing: AtomicBool,
    /// PTY master, used for resizes and foreground-group lookups. Dropped at close,
    /// after the process tree is gone.
    master: Mutex<Option<Box<dyn MasterPty + Send>>>,
    /// The latest [`Progress`], sent by the parser on new output, by the waiter on exit
    /// and by a resize; waits subscribe. Waits decide from it without taking `state`,
    /// which the parser keeps locked while it parses.
    changed: watch::Sender<Progress>,
}

/// The facts a wait decides on, copied out of [`SessionState`] at each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bytes_read: u64,
    pub last_output: Instant,
    pub exited: bool,
    /// Prompt marks completed so far.
    pub prompts: u64,
    /// The shell is at its prompt, as the integration marks report it.
    pub at_prompt: bool,
}

impl SessionState {
    /// Copies the facts waits need.
    pub fn progress(&self) -> Progress {
        let marks = self.screen.marks();
        Progress {
            bytes_read: self.bytes_read,
            last_output: self.last_output,
            exited: self.exit.is_some(),
            prompts: marks.prompts,
            at_prompt: marks.at_prompt,
        }
    }
}

impl Session {
    /// Locks the shared state. A poisoned lock is recovered, because every writer of the
    /// state leaves it consistent between statements.
    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state_waiters.fetch_add(1, Ordering::SeqCst);
        let guard = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.state_waiters.fetch_sub(1, Ordering::SeqCst);
        guard
    }

    /// Gives threads waiting for the state lock a chance to take it, for at most
    /// [`STATE_HANDOFF_LIMIT`]. The parser calls it between batches without the lock:
    /// a mutex does not queue its waiters, so a thread that releases and takes it again
    /// at once can keep it from a read for seconds.
    fn let_state_waiters_in(&self) {
        let started = Instant::now();
        while self.state_waiters.load(Ordering::SeqCst) > 0
            && started.elapsed() < STATE_HANDOFF_LIMIT
        {
            std::thread::yield_now();
        }
    }

    /// Subscribes to output and exit events.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.changed.subscribe()
    }

    /// Wakes every wait with `progress`, which the caller copied under the state lock.
    /// Sent after the lock is released, so a woken wait does not block on it.
    fn publish(&self, progress: Progress) {
        self.changed.send_replace(progress);
    }

    /// Reports whether a tool call is waiting on this session: every wait subscribes to
    /// its output and exit events for as long as it lasts.
    pub fn has_waiters(&self) -> bool {
        self.changed.receiver_count() > 0
    }

    /// Records a tool call as activity for the idle reaper.
    pub fn touch(&self) {
        self.state().last_activity = Instant::now();
    }

    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.state().exit.clone()
    }

    /// Writes bytes to the PTY input, waiting at most `timeout` for the program to read
    /// them. Blocks the calling thread, so callers run it off the async runtime.
    pub fn write_input(&self, bytes: &[u8], timeout: Duration) -> Result<(), WriteError> {
        let input = self
            .input
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(fd) = input.as_ref() else {
            return Err(WriteError::Closed { written: 0 });
        };
        let deadline = Instant::now() + timeout;
        let closing = || self.closing.load(Ordering::Relaxed);
        write_all_until(fd, bytes, deadline, closing)?;
        let pending = std::mem::take(
            &mut *self
                .pending_replies
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if !pending.is_empty() {
            write_all_until(fd, &pending, deadline, closing)?;
        }
        Ok(())
    }

    /// Sends replies to terminal queries without ever blocking the parser: if a write
    /// holds the input, they are queued behind it, and what the terminal does not
    /// accept at once is dropped.
    fn send_replies(&self, replies: &[u8]) {
        /// Queued replies beyond this are dropped; a program that floods queries and
        /// never reads the replies gets no more of them.
        const MAX_PENDING_REPLY_BYTES: usize = 4096;
        match self.input.try_lock() {
            Ok(input) => {
                let Some(fd) = input.as_ref() else { return };
                match write_available(fd, replies) {
                    Ok(written) if written < replies.len() => {
                        tracing::debug!(session_id = %self.id, dropped = replies.len() - written, "terminal input full; query reply dropped");
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(session_id = %self.id, %error, "query reply not written")
                    }
                }
            }
            Err(_) => {
                let mut pending = self
                    .pending_replies
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if pending.len() + replies.len() <= MAX_PENDING_REPLY_BYTES {
                    pending.extend_from_slice(replies);
                }
            }
        }
    }

    /// Sets the PTY window size (the kernel sends SIGWINCH to the foreground job) and
    /// resizes the emulator, both before returning.
    pub fn resize(&self, size: TermSize) -> std::io::Result<()> {
        {
            let master = self
                .master
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let Some(master) = master.as_ref() else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "session terminal is closed",
                ));
            };
            master
                .resize(PtySize {
                    rows: size.rows,
                    cols: size.cols,
                    pixel_width: 0,
                    pixel_height: 0,
                })
                .map_err(std::io::Error::other)?;
        }
        let progress = {
            let mut state = self.state();
            state.screen.resize(size);
            state.progress()
        };
        self.publish(progress);
        Ok(())
    }

    /// Returns the process group that owns the terminal, as `tcgetpgrp` reports it.
    pub fn foreground_process_group(&self) -> Option<i32> {
        self.terminal_modes()
            .and_then(|modes| modes.foreground_group)
    }

    /// Reports whether the terminal hides typed input: echo off while the line
    /// discipline collects a line (ICANON), as at a password prompt. A readline prompt
    /// turns both off and echoes by itself, so it does not count.
    pub fn input_hidden(&self) -> Option<bool> {
        self.terminal_modes()
            .map(|modes| modes.canonical && !modes.echo)
    }

    /// Reads the terminal's line-discipline flags and foreground process group.
    pub fn terminal_modes(&self) -> Option<TerminalModes> {
        let master = self
            .master
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let master = master.as_ref()?;
        let fd = master.as_raw_fd()?;
        // SAFETY: `termios` is plain data that tcgetattr fills in completely on success,
        // and `fd` stays open while the master lock is held.
        let flags = unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(fd, &mut termios) == 0).then_some(termios.c_lflag)
        }?;
        Some(TerminalModes {
            canonical: flags & libc::ICANON != 0,
            echo: flags & libc::ECHO != 0,
            foreground_group: master.process_group_leader(),
        })
    }

    /// Returns what the session's foreground is doing, or `None` once it has exited.
    /// Reads a few files under `/proc`; cheap, but not free.
    pub fn activity(&self) -> Option<Activity> {
        let (at_prompt, marks_active) = {
            let state = self.state();
            if state.exit.is_some() {
                return None;
            }
            let marks = state.screen.marks();
            (marks.at_prompt, marks.active)
        };
        if at_prompt {
            return Some(Activity::Idle);
        }
        let modes = self.terminal_modes();
        let group = modes.as_ref().and_then(|modes| modes.foreground_group);
        let terminal = self
            .master
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .and_then(|master| master.tty_name());
        let facts = ActivityFacts {
            at_prompt,
            marks_active,
            shell_in_foreground: self.runs_shell && group == Some(self.pid as i32),
            canonical: modes.as_ref().map(|modes| modes.canonical),
            processes: group
                .map(|group| foreground_processes(group, self.pid as i32, terminal.as_deref()))
                .unwrap_or_default(),
        };
        Some(classify(&facts))
    }

    /// Marks the session as closing, which ends pending writes within 50 ms and stops
    /// the reader once no output is pending.
    fn start_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Drops the PTY input and master. Called once the process tree is gone.
    fn release_terminal(&self) {
        self.start_closing();
        self.input
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        self.master
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }
}

/// The terminal's modes and owner at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalModes {
    /// ICANON: the line discipline collects whole lines.
    pub canonical: bool,
    /// ECHO: the line discipline echoes typed input.
    pub echo: bool,
    pub foreground_group: Option<i32>,
}

/// Shared handle to a session.
pub type SessionRef = Arc<Session>;
