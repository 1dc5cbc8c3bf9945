//! The tools of the Go server this one replaces, offered with `--legacy-tools` so that
//! prompts written for it keep working: `persistent_shell` runs a command in a shell
//! session chosen by name, `session_manager` lists and closes sessions. Both map onto
//! the same session table as the other tools.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Serialize;

use super::call::CallContext;
use super::exec::check_command_line;
use super::params::{
    CloseParams, ManagerAction, OpenParams, PersistentShellParams, SessionManagerParams,
};
use super::results::{CloseResult, ExecResult, SessionSummary};
use super::tools::{TerminalServer, ToolError, ToolResult, finish, seconds, spawn_request};
use crate::session::pty::Program;
use crate::session::table::SessionError;
use crate::session::{EndReason, SessionRef};

/// Name of the session persistent_shell uses when the caller names none.
const DEFAULT_SESSION_NAME: &str = "default";

/// Result of session_manager: the list, or the session it closed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ManagerResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<SessionSummary>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<CloseResult>,
}

#[tool_router(router = legacy_router, vis = "pub(super)")]
impl TerminalServer {
    #[tool(
        description = "Run a command in a persistent shell named session_id (created on first use) and return its output and exit code.",
        output_schema = schema_for_output::<ExecResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn persistent_shell(
        &self,
        Parameters(params): Parameters<PersistentShellParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self
            .persistent_shell_call(params, &CallContext::new(&context))
            .await;
        finish(outcome, "persistent_shell", started)
    }

    #[tool(
        description = "List shell sessions (action list), or close one by name or id (action close).",
        output_schema = schema_for_output::<ManagerResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn session_manager(
        &self,
        Parameters(params): Parameters<SessionManagerParams>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self.session_manager_call(params).await;
        finish(outcome, "session_manager", started)
    }
}

impl TerminalServer {
    async fn persistent_shell_call(
        &self,
        params: PersistentShellParams,
        call: &CallContext,
    ) -> Result<(ExecResult, String), ToolError> {
        let command = check_command_line(&params.command)?;
        let name = params
            .session_id
            .as_deref()
            .map(str::trim)
            .unwrap_or(DEFAULT_SESSION_NAME);
        if name.is_empty() {
            return Err(ToolError(
                "invalid session_id \"\": pass a name such as \"build\", or omit it for the default shell".into(),
            ));
        }
        let timeout = match params.timeout {
            Some(timeout) => seconds("timeout", timeout, self.settings.command_timeout)?,
            None => self.settings.command_timeout,
        };
        let session = match self.find_session(name) {
            Some(session) if session.exit_info().is_none() => session,
            found => {
                if let Some(ended) = found {
                    // A shell of that name has exited: replace it with a new one.
                    self.table
                        .close(
                            &ended.id.to_string(),
                            Some(Duration::ZERO),
                            EndReason::Closed,
                        )
                        .await?;
                }
                let mut request = spawn_request(OpenParams {
                    name: Some(name.to_owned()),
                    ..OpenParams::default()
                })?;
                request.program = Program::Shell(params.shell.as_deref().map(PathBuf::from));
                self.start_session(request, call).await?.0
            }
        };
        let result = self
            .run_in_shell(
                &session,
                command,
                timeout,
                self.settings.default_max_chars,
                call,
            )
            .await?;
        let text = result.to_text();
        Ok((result, text))
    }

    async fn session_manager_call(
        &self,
        params: SessionManagerParams,
    ) -> Result<(ManagerResult, String), ToolError> {
        match params.action {
            ManagerAction::List => {
                let list = self.list();
                let text = list.to_text();
                Ok((
                    ManagerResult {
                        sessions: Some(list.sessions),
                        closed: None,
                    },
                    text,
                ))
            }
            ManagerAction::Close => {
                let Some(name) = params.session_id.as_deref().map(str::trim) else {
                    return Err(ToolError(
                        "missing session_id: pass the name or id of the session to close".into(),
                    ));
                };
                let id = match self.find_session(name) {
                    Some(session) => session.id.to_string(),
                    None => name.to_owned(),
                };
                let (closed, text) = self
                    .close(CloseParams {
                        session_id: id,
                        grace: None,
                    })
                    .await?;
                Ok((
                    ManagerResult {
                        sessions: None,
                        closed: Some(closed),
                    },
                    text,
                ))
            }
        }
    }

    /// Finds a session by name, preferring one that still runs, or by id.
    fn find_session(&self, name_or_id: &str) -> Option<SessionRef> {
        let sessions = self.table.list();
        let named = |live: bool| {
            sessions.iter().find(|session| {
                session.name.as_deref() == Some(name_or_id) && session.exit_info().is_none() == live
            })
        };
        if let Some(session) = named(true).or_else(|| named(false)) {
            return Some(session.clone());
        }
        match self.table.get(name_or_id) {
            Ok(session) => Some(session),
            Err(SessionError::InvalidId { .. } | SessionError::NotFound { .. }) => None,
            Err(_) => None,
        }
    }
}
