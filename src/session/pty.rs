//! Starting a session: the child's environment, the PTY, and the reader, parser and
//! waiter threads.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio::sync::watch;
use uuid::Uuid;

use super::cgroup::{ContainedCgroup, InstanceCgroups, log_fallback};
use super::containment::{INSTANCE_VAR, instance_tag, spawn_registered, unregister_child};
use super::limits::{SessionRlimits, child_oom_score_adj, wrap_program};
use super::output_queue::{OutputQueue, TakeOutcome};
use super::process_tree::read_process;
use super::screen::{Screen, ScreenLimits, TermSize};
use super::shell_integration::{self, ShellKind};
use super::table::SessionError;
use super::terminal_io::{ReadOutcome, duplicate_nonblocking, read_available, wait_ready};
use super::{ExitInfo, Session, SessionRef, SessionState};

/// Environment variable that tags every process of a session with the session id, so the
/// process-tree sweep finds processes that left the session's process session
/// (`setsid`, double forks).
pub const SESSION_TAG_VAR: &str = "MTS_SESSION_TAG";

/// Variables of the server's environment that sessions inherit; everything else is
/// dropped unless named with `--pass-env`.
const INHERITED_VARS: &[&str] = &[
    "HOME", "USER", "LOGNAME", "PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR",
];

/// Variables set for every session, whatever the server's own environment contains. `TERM`
/// names what the emulator implements; the pagers print instead of waiting for keys.
const FIXED_VARS: &[(&str, &str)] = &[
    ("TERM", "xterm-256color"),
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("MANPAGER", "cat"),
    ("SYSTEMD_PAGER", "cat"),
];

/// Stack size of the reader, parser and waiter threads, which keep their buffers on the
/// heap.
const THREAD_STACK_BYTES: usize = 256 * 1024;
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Output the reader queues for the parser before it stops reading the PTY.
const QUEUED_OUTPUT_BYTES: usize = 64 * 1024;
/// How often an idle reader checks whether its session is closing.
const READER_POLL: Duration = Duration::from_millis(250);

/// The program a session runs.
#[derive(Debug, Clone)]
pub enum Program {
    /// An interactive shell: the given one, or the configured one.
    Shell(Option<PathBuf>),
    /// A command line run by the configured shell with `-c`.
    ShellCommand(String),
    /// An exact program and arguments, with no shell in between.
    Argv(Vec<String>),
}

/// A validated request to start a session.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    pub program: Program,
    pub cwd: Option<PathBuf>,
    /// Variables to set (`Some`) or remove (`None`) on top of the base environment.
    pub env: BTreeMap<String, Option<String>>,
    pub size: TermSize,
    pub name: Option<String>,
}

/// Server-wide settings that shape every spawned session.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    pub shell: PathBuf,
    pub pass_env: BTreeSet<String>,
    pub limits: ScreenLimits,
    /// Resource limits set in every session program (`--session-rlimit`).
    pub rlimits: SessionRlimits,
    /// This instance's parent cgroup when per-session cgroups are active; `None` falls
    /// back to the tag and session id. The app creates it at start and removes it at
    /// shutdown; sessions and `execute_command` create their cgroups below it.
    pub cgroups: Option<Arc<InstanceCgroups>>,
}

/// Builds a session's environment: a short allowlist of the server's variables plus
/// `--pass-env` names, then the fixed variables, the session tag, and the request's own
/// changes, which win over everything but the tag.
pub fn build_environment(
    server_env: impl IntoIterator<Item = (String, String)>,
    pass_env: &BTreeSet<String>,
    shell: &Path,
    session_id: Uuid,
    overrides: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = server_env
        .into_iter()
        .filter(|(name, _)| {
            INHERITED_VARS.contains(&name.as_str())
                || name.starts_with("LC_")
                || pass_env.contains(name)
        })
        .collect();
    env.entry("PATH".into())
        .or_insert_with(|| "/usr/local/bin:/usr/bin:/bin".into());
    if !["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .any(|name| env.contains_key(*name))
    {
        env.insert("LANG".into(), "C.UTF-8".into());
    }
    for (name, value) in FIXED_VARS {
        env.insert((*name).into(), (*value).into());
    }
    env.insert("SHELL".into(), shell.display().to_string());
    for (name, value) in overrides {
        match value {
            Some(value) => env.insert(name.clone(), value.clone()),
            None => env.remove(name),
        };
    }
    env.insert(SESSION_TAG_VAR.into(), session_id.to_string());
    env
}

/// Describes the program for listings and logs.
pub fn describe_program(program: &Program, shell: &Path) -> String {
    match program {
        Program::Shell(Some(path)) => path.display().to_string(),
        Program::Shell(None) => shell.display().to_string(),
        Program::ShellCommand(command) => command.clone(),
        Program::Argv(argv) => argv.join(" "),
    }
}

/// Starts a session: opens the PTY at the requested size, spawns the program on it in a
/// cgroup of its own when cgroups are active, and starts the reader and waiter threads.
/// Blocking (fork and exec); run it off the async runtime.
pub fn spawn_session(
    id: Uuid,
    request: SpawnRequest,
    config: &SpawnConfig,
) -> Result<SessionRef, SessionError> {
    let cgroup = config.cgroups.as_ref().and_then(|cgroups| {
        cgroups
            .create_child("session", &id.to_string())
            .map_err(|error| log_fallback("session", &id.to_string(), &error))
            .ok()
    });
    let spawned = spawn_in_cgroup(id, request, config, cgroup.as_ref());
    if spawned.is_err()
        && let Some(cgroup) = &cgroup
    {
        cgroup.remove_if_empty();
    }
    spawned
}

/// Does the work of [`spawn_session`], with the program joining `cgroup` if given.
fn spawn_in_cgroup(
    id: Uuid,
    request: SpawnRequest,
    config: &SpawnConfig,
    cgroup: Option<&ContainedCgroup>,
) -> Result<SessionRef, SessionError> {
    let cwd = match &request.cwd {
        Some(cwd) => {
            check_cwd(cwd)?;
            cwd.clone()
        }
        None => std::env::current_dir().map_err(|source| SessionError::Io {
            operation: "read the server's working directory",
            source,
        })?,
    };

    let shell = match &request.program {
        Program::Shell(Some(path)) => path,
        _ => &config.shell,
    };
    // An interactive shell gets the prompt hook that reports finished commands.
    let integration = match &request.program {
        Program::Shell(_) => ShellKind::detect(shell).and_then(|kind| {
            let nonce = shell_integration::new_nonce();
            shell_integration::launch(kind, &nonce).map(|launch| (kind, nonce, launch))
        }),
        _ => None,
    };
    let (program_path, args): (String, Vec<String>) = match &request.program {
        Program::Shell(_) => (
            shell.display().to_string(),
            integration
                .as_ref()
                .map(|(_, _, launch)| launch.args.clone())
                .unwrap_or_default(),
        ),
        Program::ShellCommand(command) => (
            config.shell.display().to_string(),
            vec!["-c".into(), command.clone()],
        ),
        Program::Argv(argv) => (argv[0].clone(), argv[1..].to_vec()),
    };
    let mut env = build_environment(
        std::env::vars(),
        &config.pass_env,
        &config.shell,
        id,
        &request.env,
    );
    env.insert(INSTANCE_VAR.into(), instance_tag().to_owned());
    let (spawn_path, spawn_args) = if config.rlimits.is_empty() && cgroup.is_none() {
        (program_path.clone(), args)
    } else {
        // The server's own binary joins the cgroup and sets the limits after the fork
        // and then execs the program. Checking the program first makes a missing one
        // an error here, not a message on the terminal.
        check_program(&program_path, env.get("PATH").map(String::as_str))?;
        // The child runs this path after the fork, where it names the server's binary
        // even if that file was replaced since the server started.
        wrap_program(
            Path::new("/proc/self/exe"),
            &config.rlimits,
            cgroup.map(|cgroup| cgroup.dir.as_path()),
            program_path.clone(),
            args,
        )
    };
    let mut builder = CommandBuilder::new(&spawn_path);
    builder.args(&spawn_args);
    builder.cwd(&cwd);
    builder.env_clear();
    for (name, value) in &env {
        builder.env(name, value);
    }
    if let Some((_, _, launch)) = &integration {
        for (name, value) in &launch.env {
            builder.env(name, value);
        }
    }

    // The PTY is created at the requested size, so the program's first frame is drawn
    // for it.
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: request.size.rows,
            cols: request.size.cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|error| SessionError::Spawn {
            program: program_path.clone(),
            message: format!("{error:#}"),
        })?;
    let child = spawn_registered(
        || pair.slave.spawn_command(builder),
        |spawned| spawned.as_ref().ok().and_then(|child| child.process_id()),
    )
    .map_err(|error| SessionError::Spawn {
        program: program_path.clone(),
        message: format!("{error:#}"),
    })?;
    // Our copy of the slave side must close, or the reader never sees end of file.
    drop(pair.slave);

    let pid = child.process_id().unwrap_or(0);
    raise_oom_score_adj(pid);
    let cgroup = cgroup.and_then(|cgroup| match cgroup.confirm_joined(pid as i32) {
        Ok(()) => Some(cgroup.clone()),
        Err(error) => {
            log_fallback("session", &id.to_string(), &error);
            cgroup.remove_if_empty();
            None
        }
    });
    // Own non-blocking descriptors for reading and writing; portable-pty's writer is never
    // taken, so nothing sends end-of-file to the terminal behind the session's back.
    let descriptors = pair
        .master
        .as_raw_fd()
        .ok_or_else(|| std::io::Error::other("the PTY master has no file descriptor"))
        .and_then(|fd| Ok((duplicate_nonblocking(fd)?, duplicate_nonblocking(fd)?)));
    let (reader, input) = match descriptors {
        Ok(descriptors) => descriptors,
        Err(error) => {
            // SAFETY: kill has no memory effects; the pid is our own unreaped child,
            // which the waiter is not watching yet, so reap it here.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
                libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
            }
            return Err(SessionError::Spawn {
                program: program_path,
                message: error.to_string(),
            });
        }
    };

    let now = Instant::now();
    let mut screen = Screen::new(request.size, config.limits);
    if let Some((_, nonce, _)) = &integration {
        screen.set_mark_nonce(nonce.clone());
    }
    let state = SessionState {
        screen,
        exit: None,
        last_activity: now,
        last_output: now,
        bytes_read: 0,
        output_closed: false,
    };
    let (changed, _) = watch::channel(state.progress());
    let session = Arc::new(Session {
        id,
        name: request.name.clone(),
        command: describe_program(&request.program, &config.shell),
        pid,
        leader_start_time: read_process(pid as i32).map(|info| info.start_time),
        started_at: SystemTime::now(),
        shell_integration: integration.as_ref().map(|(kind, _, _)| *kind),
        runs_shell: runs_interactive_shell(&request.program),
        cgroup,
        state: Mutex::new(state),
        state_waiters: AtomicUsize::new(0),
        input: Mutex::new(Some(input)),
        pending_replies: Mutex::new(Vec::new()),
        closing: AtomicBool::new(false),
        master: Mutex::new(Some(pair.master)),
        changed,
    });

    start_output_threads(&session, reader)?;
    start_waiter(&session, child)?;
    // The command line goes to the debug level only: it may carry a secret, and service
    // logs are often readable by other users.
    tracing::info!(session_id = %id, pid, cwd = %cwd.display(), "session started");
    tracing::debug!(session_id = %id, command = %session.command, "session command");
    Ok(session)
}

/// Sets a session leader's `oom_score_adj` to [`child_oom_score_adj`]; its descendants
/// inherit it. A program that forks within the first moments after exec may leave a
/// child with the server's value.
fn raise_oom_score_adj(pid: u32) {
    let value = child_oom_score_adj();
    if let Err(error) = std::fs::write(format!("/proc/{pid}/oom_score_adj"), value.to_string()) {
        tracing::debug!(pid, %error, "could not raise the session's oom_score_adj");
    }
}

/// Checks that `program` names an executable file, directly or through `path` (the
/// session's `PATH`), as `execvp` will look it up.
fn check_program(program: &str, path: Option<&str>) -> Result<(), SessionError> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |candidate: &Path| {
        std::fs::metadata(candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        executable(Path::new(program))
    } else {
        path.unwrap_or_default()
            .split(':')
            .filter(|dir| !dir.is_empty())
            .any(|dir| executable(&Path::new(dir).join(program)))
    };
    if found {
        Ok(())
    } else {
        Err(SessionError::Spawn {
            program: program.to_owned(),
            message: "no executable file of that name in the session's PATH".to_owned(),
        })
    }
}

/// Reports whether a program is an interactive shell: the configured one, or a known
/// shell started by argv without `-c`, such as `bash --norc`.
fn runs_interactive_shell(program: &Program) -> bool {
    const SHELLS: &[&str] = &[
        "bash", "zsh", "sh", "dash", "ash", "ksh", "mksh", "fish", "tcsh",
    ];
    match program {
        Program::Shell(_) => true,
        Program::ShellCommand(_) => false,
        Program::Argv(argv) => {
            let name = Path::new(&argv[0])
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            SHELLS.contains(&name) && !argv[1..].iter().any(|arg| arg == "-c")
        }
    }
}

fn check_cwd(cwd: &Path) -> Result<(), SessionError> {
    match std::fs::metadata(cwd) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(SessionError::InvalidCwd {
            path: cwd.to_path_buf(),
            reason: "not a directory".into(),
        }),
        Err(error) => Err(SessionError::InvalidCwd {
            path: cwd.to_path_buf(),
            reason: error.to_string(),
        }),
    }
}

/// Starts the threads that drain the PTY into the screen until end of file, including
/// after the child exits: bytes written just before an exit are still in the PTY
/// buffer. The reader stops early only when the session is closing and no output is
/// pending. The parser then feeds everything the reader queued to the screen.
fn start_output_threads(session: &SessionRef, reader: OwnedFd) -> Result<(), SessionError> {
    let queue = Arc::new(OutputQueue::new(QUEUED_OUTPUT_BYTES));
    start_parser(session, Arc::clone(&queue))?;
    start_reader(session, reader, Arc::clone(&queue)).inspect_err(|_| queue.end())
}

/// Reads the PTY into `queue` until end of file, or until the session is closing and
/// nothing is left to read. Waits while the queue is full, which leaves the output in
/// the PTY and blocks the writing program.
fn start_reader(
    session: &SessionRef,
    reader: OwnedFd,
    queue: Arc<OutputQueue>,
) -> Result<(), SessionError> {
    let session = Arc::clone(session);
    std::thread::Builder::new()
        .name(format!("pty-reader-{}", session.pid))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let mut buffer = vec![0u8; READ_BUFFER_BYTES];
            loop {
                let count = match read_available(&reader, &mut buffer) {
                    ReadOutcome::Data(count) => count,
                    ReadOutcome::Closed => break,
                    ReadOutcome::WouldBlock if session.closing.load(Ordering::Relaxed) => break,
                    ReadOutcome::WouldBlock => {
                        wait_ready(&reader, libc::POLLIN, READER_POLL);
                        continue;
                    }
                };
                tracing::trace!(session_id = %session.id, bytes = count, "pty output");
                if !queue.push(&buffer[..count]) {
                    break;
                }
            }
            queue.end();
            tracing::trace!(session_id = %session.id, "pty reader stopped");
        })
        .map(drop)
        .map_err(|source| SessionError::Io {
            operation: "start the PTY reader thread",
            source,
        })
}

/// Feeds the bytes the reader queues to the screen, in order, and publishes the
/// progress after each batch. At the reader's end it marks the output closed.
fn start_parser(session: &SessionRef, queue: Arc<OutputQueue>) -> Result<(), SessionError> {
    let session = Arc::clone(session);
    std::thread::Builder::new()
        .name(format!("pty-parser-{}", session.pid))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            // Releases a reader waiting for room if parsing panics.
            let _abandon = AbandonOnDrop(&queue);
            let mut batch = Vec::new();
            while queue.take(&mut batch) == TakeOutcome::Bytes {
                let (replies, progress) = {
                    let mut state = session.state();
                    let now = Instant::now();
                    state.last_output = now;
                    state.last_activity = now;
                    state.bytes_read += batch.len() as u64;
                    let replies = state.screen.process(&batch);
                    (replies, state.progress())
                };
                batch.clear();
                if !replies.is_empty() {
                    session.send_replies(&replies);
                }
                session.publish(progress);
                session.let_state_waiters_in();
            }
            let progress = {
                let mut state = session.state();
                // At end of file no program reads replies any more.
                let _ = state.screen.finish();
                state.output_closed = true;
                state.progress()
            };
            tracing::trace!(session_id = %session.id, "pty parser stopped");
            session.publish(progress);
        })
        .map(drop)
        .map_err(|source| SessionError::Io {
            operation: "start the PTY parser thread",
            source,
        })
}

/// Abandons the queue when the parser thread ends, normally or by a panic.
struct AbandonOnDrop<'a>(&'a OutputQueue);

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// Reaps the child as soon as it exits, so it never lingers as a zombie, and records how
/// it ended once the parser has fed what it wrote to the screen.
fn start_waiter(
    session: &SessionRef,
    child: Box<dyn portable_pty::Child + Send + Sync>,
) -> Result<(), SessionError> {
    let session = Arc::clone(session);
    std::thread::Builder::new()
        .name(format!("pty-waiter-{}", session.pid))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let exit = wait_for_exit(session.pid as i32);
            unregister_child(session.pid);
            drop(child);
            wait_for_drain(&session);
            tracing::info!(
                session_id = %session.id,
                pid = session.pid,
                exit_code = exit.code,
                signal = exit.signal.as_deref(),
                "session process exited"
            );
            let progress = {
                let mut state = session.state();
                state.exit = Some(exit);
                state.progress()
            };
            session.publish(progress);
        })
        .map(drop)
        .map_err(|source| SessionError::Io {
            operation: "start the PTY waiter thread",
            source,
        })
}

/// Blocks until `pid` exits and returns its status.
fn wait_for_exit(pid: i32) -> ExitInfo {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only to `status`; `pid` is this server's own child and
        // nothing else waits for it.
        let result = unsafe { libc::waitpid(pid, &mut status, 0) };
        if result == pid {
            break;
        }
        if result == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        }
        // ECHILD: the status is gone; report an exit without a code.
        return ExitInfo {
            code: None,
            signal: None,
            at: SystemTime::now(),
        };
    }
    let (code, signal) = if libc::WIFSIGNALED(status) {
        (None, Some(signal_name(libc::WTERMSIG(status))))
    } else {
        (Some(libc::WEXITSTATUS(status)), None)
    };
    ExitInfo {
        code,
        signal,
        at: SystemTime::now(),
    }
}

/// Waits until the parser has fed everything up to end of file, or until output has
/// been quiet for a short while (a background job can keep the terminal open after the
/// leader exits).
fn wait_for_drain(session: &Session) {
    const QUIET: Duration = Duration::from_millis(100);
    const LIMIT: Duration = Duration::from_secs(1);
    let started = Instant::now();
    let mut last_bytes = u64::MAX;
    let mut last_change = started;
    while started.elapsed() < LIMIT {
        let (closed, bytes) = {
            let state = session.state();
            (state.output_closed, state.bytes_read)
        };
        if closed {
            return;
        }
        if bytes != last_bytes {
            last_bytes = bytes;
            last_change = Instant::now();
        } else if last_change.elapsed() >= QUIET {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Returns the conventional short name of a signal (`HUP`, `KILL`, ...).
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "HUP",
        libc::SIGINT => "INT",
        libc::SIGQUIT => "QUIT",
        libc::SIGILL => "ILL",
        libc::SIGTRAP => "TRAP",
        libc::SIGABRT => "ABRT",
        libc::SIGBUS => "BUS",
        libc::SIGFPE => "FPE",
        libc::SIGKILL => "KILL",
        libc::SIGUSR1 => "USR1",
        libc::SIGSEGV => "SEGV",
        libc::SIGUSR2 => "USR2",
        libc::SIGPIPE => "PIPE",
        libc::SIGALRM => "ALRM",
        libc::SIGTERM => "TERM",
        libc::SIGXCPU => "XCPU",
        libc::SIGXFSZ => "XFSZ",
        libc::SIGSYS => "SYS",
        other => return other.to_string(),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_env() -> Vec<(String, String)> {
        [
            ("HOME", "/home/agent"),
            ("PATH", "/usr/bin"),
            ("TERM", "dumb"),
            ("MCP_AUTH_TOKEN", "secret"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("LC_TIME", "C"),
            ("EDITOR", "vim"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    #[test]
    fn environment_is_an_allowlist() {
        let id = Uuid::new_v4();
        let env = build_environment(
            server_env(),
            &BTreeSet::new(),
            Path::new("/bin/bash"),
            id,
            &BTreeMap::new(),
        );
        assert_eq!(env.get("TERM").map(String::as_str), Some("xterm-256color"));
        assert_eq!(env.get("HOME").map(String::as_str), Some("/home/agent"));
        assert_eq!(env.get("LC_TIME").map(String::as_str), Some("C"));
        assert_eq!(env.get("LANG").map(String::as_str), Some("C.UTF-8"));
        assert_eq!(env.get("PAGER").map(String::as_str), Some("cat"));
        assert_eq!(env.get(SESSION_TAG_VAR), Some(&id.to_string()));
        assert!(!env.contains_key("MCP_AUTH_TOKEN"));
        assert!(!env.contains_key("AWS_SECRET_ACCESS_KEY"));
        assert!(!env.contains_key("EDITOR"));
    }

    #[test]
    fn pass_env_and_overrides_apply() {
        let id = Uuid::new_v4();
        let pass_env = BTreeSet::from(["EDITOR".to_owned()]);
        let overrides = BTreeMap::from([
            ("PAGER".to_owned(), None),
            ("FOO".to_owned(), Some("bar".to_owned())),
            (SESSION_TAG_VAR.to_owned(), Some("forged".to_owned())),
        ]);
        let env = build_environment(
            server_env(),
            &pass_env,
            Path::new("/bin/sh"),
            id,
            &overrides,
        );
        assert_eq!(env.get("EDITOR").map(String::as_str), Some("vim"));
        assert_eq!(env.get("FOO").map(String::as_str), Some("bar"));
        assert!(!env.contains_key("PAGER"));
        assert_eq!(env.get(SESSION_TAG_VAR), Some(&id.to_string()));
        assert_eq!(env.get("SHELL").map(String::as_str), Some("/bin/sh"));
    }

    #[test]
    fn missing_path_gets_a_default() {
        let env = build_environment(
            Vec::new(),
            &BTreeSet::new(),
            Path::new("/bin/sh"),
            Uuid::new_v4(),
            &BTreeMap::new(),
        );
        assert_eq!(
            env.get("PATH").map(String::as_str),
            Some("/usr/local/bin:/usr/bin:/bin")
        );
    }

    #[test]
    fn signal_names_are_short() {
        assert_eq!(signal_name(libc::SIGKILL), "KILL");
        assert_eq!(signal_name(libc::SIGHUP), "HUP");
        assert_eq!(signal_name(64), "64");
    }
}
