//! Start-up and the shutdown order.
//!
//! Start: logging, the session table, the idle reaper, then the transport (stdio, or
//! HTTP with `--http`). Stop, on end of standard input (stdio), SIGTERM or SIGINT: stop
//! serving, stop the reaper, end every session's process tree (HUP, TERM, KILL), then
//! return so `main` exits with status 0.
//!
//! Exit status, for supervisors: 0 after a clean shutdown, [`EXIT_CONFIG`] when the
//! configuration is invalid (restarting does not help), 1 for a runtime failure such as
//! a port in use (restarting may help).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::audit::{AuditLog, AuditOpenError, Principal};
use crate::config::Settings;
use crate::mcp::{TerminalServer, ToolSettings};
use crate::session::cgroup::{Hierarchy, InstanceCgroups, Unavailable};
use crate::session::process_tree::{Membership, kill_tree};
use crate::session::screen::ScreenLimits;
use crate::session::table::{SessionTable, TableConfig};
use crate::session::{EndReason, containment, pty, pty::SpawnConfig, reaper};
use crate::transport::http::HttpError;
use crate::transport::{http, stdio};

/// Exit status for a configuration error. systemd units list it in
/// `RestartPreventExitStatus`, so a service whose settings are wrong is not restarted.
pub const EXIT_CONFIG: u8 = 2;

/// Upper bound on closing every session at shutdown: two grace periods for the HUP and
/// TERM steps plus the wait after SIGKILL, with a margin.
fn shutdown_bound(kill_grace: Duration) -> Duration {
    kill_grace * 2 + Duration::from_secs(5)
}

/// Runs the server until its client leaves or a signal arrives.
pub async fn run(settings: Settings) -> ExitCode {
    let cgroup_setup = set_up_cgroups();
    let cgroups = cgroup_setup
        .as_ref()
        .ok()
        .map(|(_, cgroups)| cgroups.clone());
    let table = SessionTable::new(TableConfig {
        spawn: SpawnConfig {
            shell: settings.shell.clone(),
            pass_env: settings.pass_env.clone(),
            limits: ScreenLimits {
                scrollback_rows: settings.scrollback_rows,
                transcript_bytes: settings.transcript_bytes,
            },
            rlimits: settings.session_rlimits.clone(),
            cgroups: cgroups.clone(),
        },
        max_sessions: settings.max_sessions,
        kill_grace: settings.kill_grace,
    });
    let shutdown = CancellationToken::new();
    warn_if_root();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        transport = if settings.http.is_some() { "http" } else { "stdio" },
        shell = %settings.shell.display(),
        max_sessions = settings.max_sessions,
        "server starting"
    );

    let orphans_task = start_containment(&settings, &cgroup_setup, shutdown.clone()).await;
    let reaper_task = settings
        .idle_timeout
        .map(|idle| tokio::spawn(reaper::run(table.clone(), idle, shutdown.clone())));
    let signals = tokio::spawn(watch_signals(shutdown.clone()));

    let audit = match open_audit_log(&settings) {
        Ok(audit) => audit,
        Err(error) => {
            tracing::error!(%error, "server failed");
            return ExitCode::FAILURE;
        }
    };
    let tools = ToolSettings::new(
        settings.command_timeout,
        settings.kill_grace,
        settings.legacy_tools,
    )
    .with_audit(audit);
    let outcome = match &settings.http {
        None => stdio::serve(TerminalServer::new(table.clone(), tools), shutdown.clone())
            .await
            .map(|_| ())
            .map_err(|error| (error.to_string(), 1)),
        Some(http_settings) => http::serve(http_settings, table.clone(), tools, shutdown.clone())
            .await
            .map_err(|error| {
                let code = if is_configuration_error(&error) {
                    EXIT_CONFIG
                } else {
                    1
                };
                (error.to_string(), code)
            }),
    };

    crate::readiness::notify_stopping();
    shutdown.cancel();
    signals.abort();
    if let Some(task) = reaper_task {
        let _ = task.await;
    }
    let count = table.len();
    // Orphans the server adopted as subreaper match no session when they cleared their
    // environment; ending every descendant alongside the sessions catches them too.
    let descendants = Membership::descendants_of(std::process::id() as i32);
    let close_everything = async {
        let (_, leftover) = tokio::join!(
            table.close_all(EndReason::Shutdown),
            kill_tree(&descendants, settings.kill_grace)
        );
        if leftover.signalled > 0 {
            tracing::info!(
                processes = leftover.signalled,
                "ended processes the sessions left outside their sessions"
            );
        }
    };
    if tokio::time::timeout(shutdown_bound(settings.kill_grace), close_everything)
        .await
        .is_err()
    {
        tracing::warn!(
            sessions = table.len(),
            "closing sessions took too long; exiting anyway"
        );
    }
    if let Some(cgroups) = &cgroups {
        let outcome = cgroups.remove().await;
        if !outcome.removed {
            tracing::warn!(cgroup = %cgroups.parent().dir.display(), survivors = outcome.survivors, "could not remove the server's cgroups");
        }
    }
    // Reap what the ladder just ended before the last log line.
    containment::reap_exited_orphans();
    orphans_task.abort();
    tracing::info!(sessions_closed = count, "server stopped");
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err((error, code)) => {
            tracing::error!(%error, exit_code = code, "server failed");
            ExitCode::from(code)
        }
    }
}

/// The server's cgroup and this instance's parent cgroup, or why cgroups are not used.
type CgroupSetup = Result<(Hierarchy, Arc<InstanceCgroups>), Unavailable>;

/// Detects whether the server may create cgroups below its own and, if so, creates this
/// instance's parent cgroup.
fn set_up_cgroups() -> CgroupSetup {
    let hierarchy = Hierarchy::detect()?;
    let cgroups = hierarchy.create_instance(containment::instance_tag())?;
    Ok((hierarchy, Arc::new(cgroups)))
}

/// Makes the server the subreaper of its sessions, starts reaping orphans, ends what
/// an earlier instance killed with SIGKILL left behind, and logs which containment
/// mechanisms are active.
async fn start_containment(
    settings: &Settings,
    cgroup_setup: &CgroupSetup,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let subreaper = containment::become_subreaper();
    let orphans = tokio::spawn(containment::reap_orphans(shutdown));
    let hierarchy = cgroup_setup
        .as_ref()
        .ok()
        .map(|(hierarchy, _)| hierarchy.clone());
    let leftovers = containment::sweep_leftovers(settings.kill_grace, hierarchy).await;
    // SAFETY: prctl with PR_GET_DUMPABLE takes no pointers.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } != 0;
    let (cgroup, cgroups_unavailable) = match cgroup_setup {
        Ok((_, cgroups)) => (Some(cgroups.parent().dir.display().to_string()), None),
        Err(reason) => (None, Some(reason.to_string())),
    };
    tracing::info!(
        subreaper,
        dumpable,
        tag = pty::SESSION_TAG_VAR,
        instance = containment::instance_tag(),
        leftovers_ended = leftovers,
        cgroups = cgroup.is_some(),
        cgroup,
        cgroups_unavailable,
        session_rlimits = settings.session_rlimits.limits().len(),
        "containment: processes are found by session id, environment tag and per-session cgroup (when cgroups are active), and signalled through pidfds"
    );
    if !subreaper {
        tracing::warn!("could not become a child subreaper; orphaned session processes go to init");
    }
    orphans
}

/// Checks whether an HTTP start-up error comes from the settings alone, so that
/// restarting the server with the same settings would fail the same way.
fn is_configuration_error(error: &HttpError) -> bool {
    match error {
        HttpError::TokenRequired { .. }
        | HttpError::InvalidAllowedHost { .. }
        | HttpError::InvalidAllowedOrigin { .. } => true,
        // A port the user may not bind, or an address the host does not have, fails
        // the same way on every restart; a port in use may come free.
        HttpError::Bind { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::AddrNotAvailable
        ),
        _ => false,
    }
}

/// Warns when the server runs as root: every session would then run as root too.
fn warn_if_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        tracing::warn!(
            "running as root: every session and command runs with root rights; run the server as an unprivileged user (see deploy/README.md)"
        );
    }
}

/// Opens the audit log when one is configured, naming the principal the transport serves.
fn open_audit_log(settings: &Settings) -> Result<Option<Arc<AuditLog>>, AuditOpenError> {
    let Some(path) = &settings.audit_log else {
        return Ok(None);
    };
    let principal = match &settings.http {
        None => Principal::Stdio,
        Some(http) => match &http.auth_token {
            Some(token) => Principal::from_token(token.as_bytes()),
            None => Principal::Unauthenticated,
        },
    };
    let log = AuditLog::open(path, principal)?;
    tracing::info!(path = %path.display(), "recording tool calls in the audit log");
    Ok(Some(Arc::new(log)))
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!(
            "could not install signal handlers; SIGTERM and SIGINT will not shut down cleanly"
        );
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutting down");
    shutdown.cancel();
}
