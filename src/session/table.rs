//! The server-wide table of sessions, and the tombstones of sessions that left it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use dashmap::DashMap;
use uuid::Uuid;

use super::process_tree::{KillReport, Membership, kill_tree};
use super::pty::{SESSION_TAG_VAR, SpawnConfig, SpawnRequest, spawn_session};
use super::{EndReason, ExitInfo, SessionRef};

/// Tombstones kept for sessions that were closed, oldest dropped first.
const MAX_TOMBSTONES: usize = 4096;

/// Errors of session operations. Models read the messages, so each names the value and
/// the next step.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "invalid session_id {id:?}: expected a session id as returned by session_open (a UUID); call session_list to see open sessions"
    )]
    InvalidId { id: String },
    #[error(
        "session {id} not found; call session_list to see open sessions, or session_open to start one"
    )]
    NotFound { id: Uuid },
    #[error("session {id} was {reason} at {at}{exit}; open a new session to continue", reason = reason.as_str(), at = format_time(*at), exit = exit.as_ref().map(|exit| format!(" (its process {})", exit.describe())).unwrap_or_default())]
    Ended {
        id: Uuid,
        reason: EndReason,
        at: SystemTime,
        exit: Option<ExitInfo>,
    },
    #[error("session {id} has ended: its process {} at {}; session_read still shows its last screen, session_close removes it; open a new session to continue", exit.describe(), format_time(exit.at))]
    Exited { id: Uuid, exit: ExitInfo },
    #[error(
        "the server already has {max} sessions open, the limit set by --max-sessions (MCP_MAX_SESSIONS); close sessions you no longer need with session_close (session_list shows them)"
    )]
    LimitReached { max: usize },
    #[error("invalid cwd {path:?}: {reason}; pass an existing directory")]
    InvalidCwd { path: PathBuf, reason: String },
    #[error("could not start {program:?}: {message}")]
    Spawn { program: String, message: String },
    #[error("failed to {operation}: {source}")]
    Io {
        operation: &'static str,
        source: std::io::Error,
    },
}

/// Formats a wall-clock time as RFC 3339 in UTC, to the second.
pub fn format_time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The record of why and when a session left the table.
#[derive(Debug, Clone)]
struct Tombstone {
    reason: EndReason,
    at: SystemTime,
    exit: Option<ExitInfo>,
}

#[derive(Default)]
struct Tombstones {
    by_id: HashMap<Uuid, Tombstone>,
    order: VecDeque<Uuid>,
}

/// Limits and settings the table applies to every session.
#[derive(Debug, Clone)]
pub struct TableConfig {
    pub spawn: SpawnConfig,
    pub max_sessions: usize,
    pub kill_grace: Duration,
}

/// The outcome of closing a session.
#[derive(Debug, Clone)]
pub struct CloseReport {
    pub exit: Option<ExitInfo>,
    pub kill: KillReport,
    pub elapsed: Duration,
}

/// Every session of the server, shared by all transports and MCP connections.
pub struct SessionTable {
    sessions: DashMap<Uuid, SessionRef>,
    tombstones: Mutex<Tombstones>,
    /// Serialises the limit check with the insert, so concurrent opens cannot overshoot.
    open_lock: Mutex<()>,
    config: TableConfig,
}

impl SessionTable {
    pub fn new(config: TableConfig) -> Arc<Self> {
        Arc::new(Self {
            sessions: DashMap::new(),
            tombstones: Mutex::new(Tombstones::default()),
            open_lock: Mutex::new(()),
            config,
        })
    }

    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    /// Starts a session and adds it to the table. Blocking (fork and exec).
    pub fn open(&self, request: SpawnRequest) -> Result<SessionRef, SessionError> {
        let _guard = self
            .open_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.sessions.len() >= self.config.max_sessions {
            return Err(SessionError::LimitReached {
                max: self.config.max_sessions,
            });
        }
        let id = Uuid::new_v4();
        let session = spawn_session(id, request, &self.config.spawn)?;
        self.sessions.insert(id, Arc::clone(&session));
        Ok(session)
    }

    /// Looks a session up by the id a client sent, and counts the call as activity.
    pub fn get(&self, id: &str) -> Result<SessionRef, SessionError> {
        let uuid = Uuid::parse_str(id.trim())
            .map_err(|_| SessionError::InvalidId { id: id.to_owned() })?;
        let found = self
            .sessions
            .get(&uuid)
            .map(|entry| Arc::clone(entry.value()));
        match found {
            Some(session) => {
                session.touch();
                Ok(session)
            }
            None => Err(self.missing(uuid)),
        }
    }

    fn missing(&self, id: Uuid) -> SessionError {
        let tombstones = self
            .tombstones
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match tombstones.by_id.get(&id) {
            Some(stone) => SessionError::Ended {
                id,
                reason: stone.reason,
                at: stone.at,
                exit: stone.exit.clone(),
            },
            None => SessionError::NotFound { id },
        }
    }

    /// Returns every session in the table, oldest first.
    pub fn list(&self) -> Vec<SessionRef> {
        let mut sessions: Vec<SessionRef> = self
            .sessions
            .iter()
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        sessions.sort_by_key(|session| session.started_at);
        sessions
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Removes a session and ends its whole process tree. Later calls with its id get
    /// [`SessionError::Ended`].
    pub async fn close(
        &self,
        id: &str,
        grace: Option<Duration>,
        reason: EndReason,
    ) -> Result<CloseReport, SessionError> {
        let uuid = Uuid::parse_str(id.trim())
            .map_err(|_| SessionError::InvalidId { id: id.to_owned() })?;
        let Some((_, session)) = self.sessions.remove(&uuid) else {
            return Err(self.missing(uuid));
        };
        Ok(self
            .end(session, grace.unwrap_or(self.config.kill_grace), reason)
            .await)
    }

    async fn end(&self, session: SessionRef, grace: Duration, reason: EndReason) -> CloseReport {
        let started = Instant::now();
        session.start_closing();
        self.bury(session.id, reason, None);
        let members = Membership::new(
            session.pid,
            session.leader_start_time,
            SESSION_TAG_VAR,
            &session.id.to_string(),
        )
        .with_cgroup(session.cgroup.as_ref().map(|cgroup| cgroup.path.clone()));
        let kill = kill_tree(&members, grace).await;
        // The ladder gave every process it found HUP and TERM first; cgroup.kill ends
        // what it missed, such as a process forked after its last scan.
        if let Some(cgroup) = &session.cgroup {
            let outcome = cgroup.kill_and_remove().await;
            if outcome.killed > 0 {
                tracing::info!(session_id = %session.id, processes = outcome.killed, "cgroup.kill ended processes the signal ladder missed");
            }
            if outcome.survivors > 0 {
                tracing::warn!(session_id = %session.id, survivors = outcome.survivors, "processes in the session's cgroup survived cgroup.kill");
            }
        }
        session.release_terminal();
        let exit = wait_for_exit_record(&session).await;
        self.bury(session.id, reason, exit.clone());
        let elapsed = started.elapsed();
        if kill.survivors > 0 {
            tracing::warn!(session_id = %session.id, survivors = kill.survivors, "session processes survived SIGKILL");
        }
        tracing::info!(
            session_id = %session.id,
            reason = reason.as_str(),
            signalled = kill.signalled,
            signal = kill.last_signal,
            elapsed_ms = elapsed.as_millis() as u64,
            "session closed"
        );
        release_memory_after_drop(session);
        CloseReport {
            exit,
            kill,
            elapsed,
        }
    }

    fn bury(&self, id: Uuid, reason: EndReason, exit: Option<ExitInfo>) {
        let mut tombstones = self
            .tombstones
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stone = Tombstone {
            reason,
            at: SystemTime::now(),
            exit,
        };
        if tombstones.by_id.insert(id, stone).is_none() {
            tombstones.order.push_back(id);
        }
        while tombstones.order.len() > MAX_TOMBSTONES {
            if let Some(oldest) = tombstones.order.pop_front() {
                tombstones.by_id.remove(&oldest);
            }
        }
    }

    /// Closes every session concurrently (shutdown and end of stdin).
    pub async fn close_all(&self, reason: EndReason) {
        let ids: Vec<Uuid> = self.sessions.iter().map(|entry| *entry.key()).collect();
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((_, session)) = self.sessions.remove(&id) {
                tasks.push(self.end(session, self.config.kill_grace, reason));
            }
        }
        futures::future::join_all(tasks).await;
    }

    /// Closes the sessions the reaper picked.
    pub async fn reap(&self, ids: &[Uuid]) {
        for id in ids {
            if let Some((_, session)) = self.sessions.remove(id) {
                tracing::info!(session_id = %id, "closing idle session");
                self.end(session, self.config.kill_grace, EndReason::IdleTimeout)
                    .await;
            }
        }
    }
}

/// Returns a closed session's memory to the system once the last holder (its parser
/// thread, usually) has dropped it. The emulator's rows are small allocations that the
/// allocator would otherwise keep, so a session that printed a lot would leave the
/// server's resident size high after it closed.
fn release_memory_after_drop(session: SessionRef) {
    tokio::spawn(async move {
        for _ in 0..100 {
            if Arc::strong_count(&session) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(session);
        // One trim at a time is enough: closing many sessions at once then costs one or
        // a few trims, not one blocking thread per session.
        static TRIMMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !TRIMMING.swap(true, std::sync::atomic::Ordering::AcqRel) {
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only returns free heap memory to the kernel. It takes a
            // few milliseconds, short enough to run on the async worker.
            unsafe {
                libc::malloc_trim(0);
            }
            TRIMMING.store(false, std::sync::atomic::Ordering::Release);
        }
    });
}

/// Waits briefly for the waiter thread to record the exit of a killed leader.
async fn wait_for_exit_record(session: &SessionRef) -> Option<ExitInfo> {
    let mut changes = session.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(exit) = session.exit_info() {
            return Some(exit);
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            return None;
        }
    }
}
