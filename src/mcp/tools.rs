//! The tool handlers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use regex::{Regex, RegexBuilder};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;

use super::call::CallContext;
use super::params::{
    CloseParams, CommandParams, ExecParams, OpenParams, ReadOptions, ReadParams, ResizeParams,
    SignalParams, View, WriteParams,
};
use super::results::{
    CloseResult, CommandResult, ExecResult, ListResult, OpenResult, ReadResult, RunState,
    SessionSummary, Truncation,
};
use super::{MAX_INPUT_BYTES, MAX_MAX_CHARS, ToolSettings};
use crate::config::is_valid_env_name;
use crate::session::activity::Activity;
use crate::session::output::cap_text;
use crate::session::pty::{Program, SpawnRequest};
use crate::session::screen::{OutputCursor, TermSize};
use crate::session::table::{SessionError, SessionTable, format_time};
use crate::session::terminal_io::WriteError;
use crate::session::wait::{Cancelled, MatchTarget, ReadyRule, WaitReason, WaitSpec, wait};
use crate::session::{
    EndReason, MAX_COLS, MAX_ROWS, MIN_COLS, MIN_ROWS, Session, SessionRef, keys,
};

const DEFAULT_COLS: u16 = 80;
const DEFAULT_ROWS: u16 = 24;
/// Quiet time after the first output at which session_open returns, so the result shows
/// a shell's prompt. A program that prints nothing delays the result by `OPEN_TIMEOUT`.
const OPEN_SETTLE: Duration = Duration::from_millis(150);
const OPEN_TIMEOUT: Duration = Duration::from_secs(1);
/// Maximum wait of session_open for the first prompt of a shell with integration.
const OPEN_PROMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// session_resize waits this long for the program to redraw.
const RESIZE_SETTLE: Duration = Duration::from_millis(200);
const RESIZE_TIMEOUT: Duration = Duration::from_secs(1);
/// Maximum time a write waits for the program to read its input; a shorter `timeout` of
/// the call wins.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

const INSTRUCTIONS: &str = "Persistent terminal sessions. session_open starts a shell (or a command) on a \
pseudo-terminal and returns its id; session_exec runs one command line in it and returns its output and \
exit code; session_write types text and named keys (for prompts, REPLs and full-screen programs) and \
returns what changed; session_read returns the screen or the output since a cursor, optionally waiting; \
session_signal interrupts; session_close ends the session and every process it started. Every call \
waits until the command finishes, wants input or times out, so there is no need to poll. Sessions \
outlive client reconnects.";

/// Strips what models do not need from every input schema, because clients send the
/// schemas with every turn.
fn compact_router(mut router: ToolRouter<TerminalServer>) -> ToolRouter<TerminalServer> {
    for route in router.map.values_mut() {
        let mut schema = serde_json::Value::Object((*route.attr.input_schema).clone());
        compact_schema(&mut schema);
        if let serde_json::Value::Object(object) = schema {
            route.attr.input_schema = Arc::new(object);
        }
    }
    router
}

/// Removes the `$schema` URI, integer and float `format`s, the bounds that only restate
/// the Rust integer type, and the `null` alternative of optional fields (every
/// optional field is left out of `required`, which already makes it optional).
pub(super) fn compact_schema(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(object) => {
            object.remove("$schema");
            object.remove("format");
            let integer_bounds = [0.0, 65535.0, 4_294_967_295.0, 18_446_744_073_709_551_615.0];
            for bound in ["minimum", "maximum"] {
                if object
                    .get(bound)
                    .and_then(Value::as_f64)
                    .is_some_and(|limit| integer_bounds.contains(&limit))
                {
                    object.remove(bound);
                }
            }
            if let Some(Value::Array(types)) = object.get("type") {
                let non_null: Vec<Value> = types
                    .iter()
                    .filter(|kind| kind.as_str() != Some("null"))
                    .cloned()
                    .collect();
                if non_null.len() == 1 {
                    object.insert("type".into(), non_null[0].clone());
                }
            }
            if let Some(Value::Array(choices)) = object.get("anyOf") {
                let non_null: Vec<Value> = choices
                    .iter()
                    .filter(|choice| choice.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if non_null.len() == 1
                    && let Value::Object(only) = &non_null[0]
                {
                    let only = only.clone();
                    object.remove("anyOf");
                    object.extend(only);
                }
            }
            for child in object.values_mut() {
                compact_schema(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(compact_schema),
        _ => {}
    }
}

/// A tool-level failure: the model reads the message and decides what to do.
pub(super) struct ToolError(pub(super) String);

impl From<SessionError> for ToolError {
    fn from(error: SessionError) -> Self {
        Self(error.to_string())
    }
}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

pub(super) type ToolResult = Result<CallToolResult, ErrorData>;

pub(super) fn finish<T: Serialize>(
    outcome: Result<(T, String), ToolError>,
    tool: &'static str,
    started: Instant,
) -> ToolResult {
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok((value, text)) => {
            tracing::debug!(tool, elapsed_ms, "tool call succeeded");
            let structured = serde_json::to_value(&value).map_err(|error| {
                ErrorData::internal_error(
                    format!("failed to serialize the {tool} result: {error}"),
                    None,
                )
            })?;
            let mut result = CallToolResult::structured(structured);
            result.content = vec![ContentBlock::text(text)];
            Ok(result)
        }
        Err(ToolError(message)) => {
            tracing::debug!(tool, elapsed_ms, error = %message, "tool call failed");
            Ok(CallToolResult::error(vec![ContentBlock::text(message)]))
        }
    }
}

/// The MCP server: one value per MCP connection (or per stateless HTTP request), all
/// sharing one session table.
#[derive(Clone)]
pub struct TerminalServer {
    pub(super) table: Arc<SessionTable>,
    pub(super) settings: Arc<ToolSettings>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl TerminalServer {
    pub fn new(table: Arc<SessionTable>, settings: Arc<ToolSettings>) -> Self {
        // rmcp builds a server per MCP connection, and per request in stateless HTTP, so
        // the compacted routers are built once.
        static ROUTERS: OnceLock<[ToolRouter<TerminalServer>; 2]> = OnceLock::new();
        let routers = ROUTERS.get_or_init(|| {
            let base = compact_router(Self::tool_router());
            let legacy = compact_router(Self::tool_router() + Self::legacy_router());
            [base, legacy]
        });
        Self {
            table,
            settings: settings.clone(),
            tool_router: routers[usize::from(settings.legacy_tools)].clone(),
        }
    }

    #[tool(
        description = "Start a terminal session (an interactive shell unless command or argv is given). Returns its session_id and first screen.",
        output_schema = schema_for_output::<OpenResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn session_open(
        &self,
        Parameters(params): Parameters<OpenParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self.open(params, &CallContext::new(&context)).await;
        finish(outcome, "session_open", started)
    }

    #[tool(
        description = "Type into a session: input is literal text, keys are named keys (Enter, C-c, Up...), submit presses Enter. Waits until the prompt returns, input is wanted, wait_for matches, settle or timeout; returns what changed.",
        output_schema = schema_for_output::<ReadResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn session_write(
        &self,
        Parameters(params): Parameters<WriteParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self.write(params, &CallContext::new(&context)).await;
        finish(outcome, "session_write", started)
    }

    #[tool(
        description = "Read a session without typing: the screen, or output since a cursor. With wait_for, settle or timeout it waits as session_write does; reads never consume output.",
        output_schema = schema_for_output::<ReadResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn session_read(
        &self,
        Parameters(params): Parameters<ReadParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self.read(params, &CallContext::new(&context)).await;
        finish(outcome, "session_read", started)
    }

    #[tool(
        description = "End a session and every process it started (HUP, then TERM, then KILL).",
        output_schema = schema_for_output::<CloseResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn session_close(&self, Parameters(params): Parameters<CloseParams>) -> ToolResult {
        let started = Instant::now();
        let outcome = self.close(params).await;
        finish(outcome, "session_close", started)
    }

    #[tool(
        description = "List sessions with their state.",
        output_schema = schema_for_output::<ListResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn session_list(&self) -> ToolResult {
        let started = Instant::now();
        let result = self.list();
        let text = result.to_text();
        finish(Ok((result, text)), "session_list", started)
    }

    #[tool(
        description = "Run one command line in a shell session; returns its output and exit_code once it finishes. On timeout it keeps running.",
        output_schema = schema_for_output::<ExecResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn session_exec(
        &self,
        Parameters(params): Parameters<ExecParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self.exec(params, &CallContext::new(&context)).await;
        finish(outcome, "session_exec", started)
    }

    #[tool(
        description = "Send a signal to a session's foreground job (default) or all its processes; works in raw mode, unlike C-c.",
        output_schema = schema_for_output::<ReadResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn session_signal(
        &self,
        Parameters(params): Parameters<SignalParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self.signal(params, &CallContext::new(&context)).await;
        finish(outcome, "session_signal", started)
    }

    #[tool(
        description = "Run a command to completion outside any session, without a terminal; its process group is killed at timeout.",
        output_schema = schema_for_output::<CommandResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn execute_command(
        &self,
        Parameters(params): Parameters<CommandParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self.execute(params, &CallContext::new(&context)).await;
        finish(outcome, "execute_command", started)
    }

    #[tool(
        description = "Change a session's terminal size; running programs get SIGWINCH and redraw.",
        output_schema = schema_for_output::<ReadResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn session_resize(
        &self,
        Parameters(params): Parameters<ResizeParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = Instant::now();
        let outcome = self.resize(params, &CallContext::new(&context)).await;
        finish(outcome, "session_resize", started)
    }
}

impl TerminalServer {
    /// Starts a session and waits for its first prompt or screen. Returns the session
    /// and the cursor of its first output.
    pub(super) async fn start_session(
        &self,
        request: SpawnRequest,
        call: &CallContext,
    ) -> Result<(SessionRef, OutputCursor), ToolError> {
        let table = Arc::clone(&self.table);
        let session = tokio::task::spawn_blocking(move || table.open(request))
            .await
            .map_err(|error| ToolError(format!("session start failed: {error}")))??;
        let start = session.state().screen.current_cursor();
        // A shell with integration is ready at its first prompt mark, which startup
        // files can delay; other programs are shown once their first output settles.
        let spec = if session.shell_integration.is_some() {
            WaitSpec {
                timeout: OPEN_PROMPT_TIMEOUT,
                settle: None,
                pattern: None,
                settle_after_output: false,
                ready: ReadyRule::FirstPrompt,
                after_input: true,
                prompts_before: Some(0),
                bytes_before: None,
            }
        } else {
            WaitSpec {
                timeout: OPEN_TIMEOUT,
                settle: Some(OPEN_SETTLE),
                pattern: None,
                settle_after_output: true,
                ready: ReadyRule::Any,
                after_input: true,
                prompts_before: None,
                // Output since the spawn counts, also what arrived before the wait began.
                bytes_before: Some(0),
            }
        };
        let _ = wait(&session, &spec, start, MatchTarget::Auto, &call.cancel).await;
        Ok((session, start))
    }

    async fn open(
        &self,
        params: OpenParams,
        call: &CallContext,
    ) -> Result<(OpenResult, String), ToolError> {
        let request = spawn_request(params)?;
        let (session, start) = self.start_session(request, call).await?;
        let run_state = run_state(&session);
        let state = session.state();
        let size = state.screen.size();
        let result = OpenResult {
            session_id: session.id.to_string(),
            name: session.name.clone(),
            pid: session.pid,
            command: session.command.clone(),
            cols: size.cols,
            rows: size.rows,
            text: state.screen.screen_text(),
            cursor: start.to_string(),
            state: run_state,
            exit_code: state.exit.as_ref().and_then(|exit| exit.code),
        };
        drop(state);
        let text = format!(
            "{}\n[session {} started: {}]",
            result.text, result.session_id, result.command
        );
        Ok((result, text))
    }

    async fn write(
        &self,
        params: WriteParams,
        call: &CallContext,
    ) -> Result<(ReadResult, String), ToolError> {
        reject_unknown(&params.unknown, WRITE_PARAMETERS)?;
        let mut options = ReadPlan::from_options(&params.read, &self.settings, true)?;
        let session = self.table.get(&params.session_id)?;
        check_running(&session)?;
        check_since(&session, &options)?;
        let (bytes, start, at_prompt, prompts) = {
            let mut state = session.state();
            let bytes = input_bytes(
                &params,
                state.screen.application_cursor(),
                state.screen.bracketed_paste(),
            )?;
            let marks = state.screen.marks();
            let at_prompt = marks.active && marks.at_prompt;
            let prompts = marks.prompts;
            let submits = submits_line(&bytes);
            if at_prompt && submits {
                // sh prints no mark when a command starts; from here on the shell is
                // not at its prompt until it prints the next one.
                state.screen.submit_command();
            }
            (bytes, state.screen.current_cursor(), at_prompt, prompts)
        };
        if let Some(spec) = options.wait.as_mut() {
            spec.after_input = !bytes.is_empty();
            spec.prompts_before = Some(prompts);
            // A command line submitted at a prompt: the prompt that is on the screen now
            // must not end the wait, only the one printed after the command.
            if at_prompt && submits_line(&bytes) {
                spec.ready = ReadyRule::NewPromptOrInput;
            }
        }
        if !bytes.is_empty() {
            let writer = Arc::clone(&session);
            let length = bytes.len();
            // A write gives up at the call's timeout, so a program that never reads
            // cannot hold the call longer than the caller allowed.
            let write_timeout = options
                .wait
                .as_ref()
                .map_or(WRITE_TIMEOUT, |wait| wait.timeout.min(WRITE_TIMEOUT));
            let outcome =
                tokio::task::spawn_blocking(move || writer.write_input(&bytes, write_timeout))
                    .await
                    .map_err(|error| {
                        ToolError(format!("write to session {} failed: {error}", session.id))
                    })?;
            if let Err(error) = outcome {
                tracing::debug!(session_id = %session.id, ?error, "write failed");
                return Err(write_error(&session, error, length));
            }
            tracing::trace!(session_id = %session.id, bytes = length, "input written");
        }
        let result = self
            .wait_and_render(&session, &options, Some(start), call)
            .await?;
        let text = result.to_text();
        Ok((result, text))
    }

    async fn read(
        &self,
        params: ReadParams,
        call: &CallContext,
    ) -> Result<(ReadResult, String), ToolError> {
        reject_unknown(&params.unknown, READ_PARAMETERS)?;
        let options = ReadPlan::from_options(&params.read, &self.settings, false)?;
        let session = self.table.get(&params.session_id)?;
        check_since(&session, &options)?;
        let result = self.wait_and_render(&session, &options, None, call).await?;
        let text = result.to_text();
        Ok((result, text))
    }

    pub(super) async fn close(
        &self,
        params: CloseParams,
    ) -> Result<(CloseResult, String), ToolError> {
        let grace = match params.grace {
            Some(grace) => Some(seconds("grace", grace, Duration::from_secs(60))?),
            None => None,
        };
        let report = self
            .table
            .close(&params.session_id, grace, EndReason::Closed)
            .await?;
        let result = CloseResult {
            session_id: params.session_id.trim().to_owned(),
            closed: true,
            exit_code: report.exit.as_ref().and_then(|exit| exit.code),
            signal: report.exit.as_ref().and_then(|exit| exit.signal.clone()),
            processes_signalled: report.kill.signalled,
            last_signal: report.kill.last_signal.map(str::to_owned),
            seconds: report.elapsed.as_secs_f64(),
        };
        let text = format!(
            "session {} closed; {} process(es) signalled{}",
            result.session_id,
            result.processes_signalled,
            result
                .last_signal
                .as_ref()
                .map(|signal| format!(", last signal SIG{signal}"))
                .unwrap_or_default()
        );
        Ok((result, text))
    }

    pub(super) fn list(&self) -> ListResult {
        let now = Instant::now();
        let sessions = self
            .table
            .list()
            .iter()
            .map(|session| {
                let run_state = run_state(session);
                let state = session.state();
                let size = state.screen.size();
                SessionSummary {
                    session_id: session.id.to_string(),
                    name: session.name.clone(),
                    pid: session.pid,
                    command: session.command.clone(),
                    state: run_state,
                    exit_code: state.exit.as_ref().and_then(|exit| exit.code),
                    signal: state.exit.as_ref().and_then(|exit| exit.signal.clone()),
                    cols: size.cols,
                    rows: size.rows,
                    alt_screen: state.screen.alternate_screen(),
                    title: state.screen.title().to_owned(),
                    started_at: format_time(session.started_at),
                    idle_seconds: now
                        .saturating_duration_since(state.last_activity)
                        .as_secs_f64(),
                }
            })
            .collect();
        ListResult { sessions }
    }

    async fn resize(
        &self,
        params: ResizeParams,
        call: &CallContext,
    ) -> Result<(ReadResult, String), ToolError> {
        let size = term_size(Some(params.cols), Some(params.rows))?;
        let session = self.table.get(&params.session_id)?;
        check_running(&session)?;
        session.resize(size).map_err(|error| {
            ToolError(format!("resize of session {} failed: {error}", session.id))
        })?;
        let options = ReadPlan {
            view: View::Screen,
            since: None,
            wait: Some(WaitSpec {
                timeout: RESIZE_TIMEOUT,
                settle: Some(RESIZE_SETTLE),
                pattern: None,
                settle_after_output: false,
                ready: ReadyRule::Off,
                after_input: true,
                prompts_before: None,
                bytes_before: None,
            }),
            max_chars: self.settings.default_max_chars,
        };
        let result = self.wait_and_render(&session, &options, None, call).await?;
        let text = result.to_text();
        Ok((result, text))
    }

    /// Waits as the plan specifies, then renders. `write_start` is where output began for a
    /// write, used when the caller gave no `since`.
    pub(super) async fn wait_and_render(
        &self,
        session: &SessionRef,
        plan: &ReadPlan,
        write_start: Option<OutputCursor>,
        call: &CallContext,
    ) -> Result<ReadResult, ToolError> {
        let since = plan.since.or(write_start);
        let reason = match &plan.wait {
            Some(spec) => {
                let start = since.unwrap_or_else(|| session.state().screen.current_cursor());
                let target = match plan.view {
                    View::Screen => MatchTarget::Screen,
                    View::Output | View::Scrollback => MatchTarget::Output,
                    View::Auto => MatchTarget::Auto,
                };
                let waiting = wait(session, spec, start, target, &call.cancel);
                let what = format!("session {}", session.id);
                match call.with_progress(waiting, &what, spec.timeout).await {
                    Ok(reason) => Some(reason),
                    Err(Cancelled) => return Err(ToolError("the request was cancelled".into())),
                }
            }
            None => None,
        };
        // Rendering a large output takes the session's state lock for as long as it
        // runs, so it stays off the async workers that serve the other sessions.
        let session = Arc::clone(session);
        let (view, max_chars) = (plan.view, plan.max_chars);
        tokio::task::spawn_blocking(move || render(&session, view, since, max_chars, reason))
            .await
            .map_err(|error| ToolError(format!("rendering session output failed: {error}")))
    }
}

/// Rejects a call that needs a live process when the session's process has exited.
pub(super) fn check_running(session: &Session) -> Result<(), ToolError> {
    match session.exit_info() {
        Some(exit) => Err(SessionError::Exited {
            id: session.id,
            exit,
        }
        .into()),
        None => Ok(()),
    }
}

/// Validates `max_chars`: 0 is rejected, larger values are capped at `MAX_MAX_CHARS`.
pub(super) fn max_chars(requested: Option<u64>, default: usize) -> Result<usize, ToolError> {
    match requested {
        Some(0) => Err(ToolError(
            "invalid max_chars 0: pass a number of characters from 1 to 1000000".into(),
        )),
        Some(max) => Ok((max as usize).min(MAX_MAX_CHARS)),
        None => Ok(default),
    }
}

/// Rejects a `since` cursor that another session issued.
pub(super) fn check_since(session: &Session, plan: &ReadPlan) -> Result<(), ToolError> {
    match plan.since {
        Some(cursor) if !session.state().screen.is_own_cursor(cursor) => Err(ToolError(format!(
            "invalid since {cursor}: the cursor belongs to another session; pass a cursor that session {} returned",
            session.id
        ))),
        _ => Ok(()),
    }
}

/// Describes a failed write for the model, with how much of the input was written.
pub(super) fn write_error(session: &Session, error: WriteError, total: usize) -> ToolError {
    let id = session.id;
    ToolError(match error {
        WriteError::TimedOut { written } => format!(
            "session {id} did not read its input: {written} of {total} bytes were written before \
             the write timed out, and the rest was not; the program is not reading its terminal, \
             so check the screen with session_read, or interrupt it with keys such as C-c"
        ),
        WriteError::Closed { written } => {
            format!("session {id} closed while writing: {written} of {total} bytes were written")
        }
        WriteError::Io { written, source } => {
            format!("write to session {id} failed after {written} of {total} bytes: {source}")
        }
    })
}

/// A validated read: what to wait for and how to render.
pub(super) struct ReadPlan {
    pub(super) view: View,
    pub(super) since: Option<OutputCursor>,
    pub(super) wait: Option<WaitSpec>,
    pub(super) max_chars: usize,
}

impl ReadPlan {
    pub(super) fn from_options(
        options: &ReadOptions,
        settings: &ToolSettings,
        for_write: bool,
    ) -> Result<Self, ToolError> {
        let since = match &options.since {
            Some(text) => Some(
                text.parse::<OutputCursor>()
                    .map_err(|error| ToolError(format!("invalid since: {error}")))?,
            ),
            None => None,
        };
        let pattern = match &options.wait_for {
            Some(pattern) => Some(compile_pattern(pattern)?),
            None => None,
        };
        let settle = match options.settle {
            Some(settle) => Some(seconds("settle", settle, settings.command_timeout)?),
            None => None,
        };
        let timeout = match options.timeout {
            Some(timeout) => Some(seconds("timeout", timeout, settings.command_timeout)?),
            None => None,
        };
        // A write always waits; a read waits only when asked to. Either ends when the
        // shell is back at its prompt or the program wants input. A read with a pattern
        // ends there only once the session was busy during the wait, so it can wait at
        // an idle prompt for a background job's output.
        let wait = match (pattern, settle, timeout) {
            (None, None, None) if !for_write => None,
            (pattern, settle, timeout) => Some(WaitSpec {
                timeout: timeout.unwrap_or(settings.command_timeout),
                settle,
                ready: if pattern.is_some() && !for_write {
                    ReadyRule::Reached
                } else {
                    ReadyRule::Any
                },
                pattern,
                settle_after_output: false,
                after_input: false,
                prompts_before: None,
                bytes_before: None,
            }),
        };
        let max_chars = max_chars(options.max_chars, settings.default_max_chars)?;
        Ok(Self {
            view: options.view.unwrap_or_default(),
            since,
            wait,
            max_chars,
        })
    }
}

pub(super) fn compile_pattern(pattern: &str) -> Result<Regex, ToolError> {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|error| ToolError(format!("invalid wait_for regex {pattern:?}: {error}")))
}

/// Converts a duration parameter in seconds, rejecting negative, non-finite and values
/// over `max`.
pub(super) fn seconds(name: &str, value: f64, max: Duration) -> Result<Duration, ToolError> {
    if !value.is_finite() || value < 0.0 {
        return Err(ToolError(format!(
            "invalid {name} {value}: pass a number of seconds from 0 to {}",
            max.as_secs_f64()
        )));
    }
    // Values above the cap are clamped, because the cap is the server's promise to the
    // client. Clamp before converting: a huge float does not fit a Duration.
    if value >= max.as_secs_f64() {
        return Ok(max);
    }
    Ok(Duration::from_secs_f64(value))
}

pub(super) const READ_PARAMETERS: &str =
    "session_id, view, since, wait_for, settle, timeout, max_chars";
pub(super) const WRITE_PARAMETERS: &str =
    "session_id, input, keys, submit, paste, view, since, wait_for, settle, timeout, max_chars";

pub(super) fn reject_unknown(
    unknown: &BTreeMap<String, serde_json::Value>,
    valid: &str,
) -> Result<(), ToolError> {
    match unknown.keys().next() {
        None => Ok(()),
        Some(name) => Err(ToolError(format!(
            "unknown parameter {name:?}; valid ones are {valid}"
        ))),
    }
}

pub(super) fn term_size(cols: Option<u16>, rows: Option<u16>) -> Result<TermSize, ToolError> {
    let cols = cols.unwrap_or(DEFAULT_COLS);
    let rows = rows.unwrap_or(DEFAULT_ROWS);
    if !(MIN_COLS..=MAX_COLS).contains(&cols) {
        return Err(ToolError(format!(
            "invalid cols {cols}: pass a width from {MIN_COLS} to {MAX_COLS}"
        )));
    }
    if !(MIN_ROWS..=MAX_ROWS).contains(&rows) {
        return Err(ToolError(format!(
            "invalid rows {rows}: pass a height from {MIN_ROWS} to {MAX_ROWS}"
        )));
    }
    Ok(TermSize { cols, rows })
}

/// Rejects variable names a shell cannot use and values with NUL bytes.
pub(super) fn check_env(env: &BTreeMap<String, Option<String>>) -> Result<(), ToolError> {
    for (name, value) in env {
        if !is_valid_env_name(name) {
            return Err(ToolError(format!(
                "invalid env name {name:?}: names contain only letters, digits and '_' and do not start with a digit"
            )));
        }
        if value.as_deref().is_some_and(|value| value.contains('\0')) {
            return Err(ToolError(format!(
                "invalid env value for {name:?}: values cannot contain NUL bytes"
            )));
        }
    }
    Ok(())
}

/// Validates session_open parameters into a spawn request.
pub(super) fn spawn_request(params: OpenParams) -> Result<SpawnRequest, ToolError> {
    let program = match (params.command, params.argv) {
        (Some(_), Some(_)) => {
            return Err(ToolError("pass either command or argv, not both".into()));
        }
        (Some(command), None) if command.trim().is_empty() => {
            return Err(ToolError("invalid command \"\": pass a shell command line, or omit it for an interactive shell".into()));
        }
        (Some(command), None) => Program::ShellCommand(command),
        (None, Some(argv)) if argv.first().is_none_or(|program| program.is_empty()) => {
            return Err(ToolError(
                "invalid argv: the first element must name the program to run".into(),
            ));
        }
        (None, Some(argv)) => Program::Argv(argv),
        (None, None) => Program::Shell(None),
    };
    let env = params.env.unwrap_or_default();
    check_env(&env)?;
    if let Some(name) = &params.name
        && name.chars().count() > 200
    {
        return Err(ToolError("invalid name: at most 200 characters".into()));
    }
    Ok(SpawnRequest {
        program,
        cwd: params.cwd.map(PathBuf::from),
        env,
        size: term_size(params.cols, params.rows)?,
        name: params.name,
    })
}

/// Builds the bytes of a session_write: input (or a paste), then keys, then Enter.
/// Validates everything first, so an error writes nothing.
pub(super) fn input_bytes(
    params: &WriteParams,
    application_cursor: bool,
    bracketed_paste: bool,
) -> Result<Vec<u8>, ToolError> {
    let mut bytes = Vec::new();
    if let Some(input) = &params.input {
        if params.paste.unwrap_or(false) {
            bytes.extend(paste_bytes(input, bracketed_paste));
        } else {
            bytes.extend_from_slice(input.as_bytes());
        }
    }
    if let Some(names) = &params.keys {
        let encoded = keys::encode_keys(names, application_cursor)
            .map_err(|error| ToolError(format!("{error}; nothing was written")))?;
        bytes.extend(encoded);
    }
    if params.submit.unwrap_or(false) {
        bytes.push(b'\r');
    }
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(ToolError(format!(
            "input of {} bytes is too large: send at most {MAX_INPUT_BYTES} bytes per call",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Reports whether input submits a line: a carriage return or line feed outside a
/// bracketed paste, whose line breaks stay in the program's edit buffer.
fn submits_line(bytes: &[u8]) -> bool {
    let rest = match bytes.strip_prefix(b"\x1b[200~") {
        Some(pasted) => pasted
            .windows(6)
            .position(|window| window == b"\x1b[201~")
            .map_or(&[][..], |end| &pasted[end + 6..]),
        None => bytes,
    };
    rest.iter().any(|byte| matches!(byte, b'\r' | b'\n'))
}

/// Prepares pasted text: removes ESC and the other C0 controls except tab, newline and
/// carriage return, so nothing inside can end the paste or send a control key, then wraps
/// it in bracketed-paste markers when the program enabled that mode.
pub fn paste_bytes(text: &str, bracketed_paste: bool) -> Vec<u8> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect();
    if bracketed_paste {
        let mut bytes = b"\x1b[200~".to_vec();
        bytes.extend_from_slice(clean.as_bytes());
        bytes.extend_from_slice(b"\x1b[201~");
        bytes
    } else {
        clean.into_bytes()
    }
}

/// Returns the session's run state, from its exit and the kernel's view of its
/// foreground.
pub(super) fn run_state(session: &Session) -> RunState {
    match session.activity() {
        None => RunState::Exited,
        Some(Activity::Idle) => RunState::Idle,
        Some(Activity::WaitingForInput) => RunState::WaitingForInput,
        Some(Activity::Running | Activity::Unknown) => RunState::Running,
    }
}

/// Renders a session in the requested view.
pub(super) fn render(
    session: &Session,
    view: View,
    since: Option<OutputCursor>,
    max_chars: usize,
    reason: Option<WaitReason>,
) -> ReadResult {
    let echo = !session.input_hidden().unwrap_or(false);
    let run_state = run_state(session);
    let state = session.state();
    let screen = &state.screen;
    let alt_screen = screen.alternate_screen();
    let view = match view {
        View::Auto if alt_screen => View::Screen,
        View::Auto => View::Output,
        other => other,
    };
    let mut note = None;
    let mut dropped_chars = None;
    let (text, cursor) = match view {
        View::Screen | View::Auto => (screen.screen_text(), screen.current_cursor()),
        View::Output => {
            let slice = screen.output_since(since);
            if slice.dropped_chars > 0 {
                dropped_chars = Some(slice.dropped_chars);
            }
            (slice.text, slice.cursor)
        }
        View::Scrollback => {
            if alt_screen {
                note = Some(
                    "note: a full-screen program holds the alternate screen, which has no scrollback; this is the main screen's history"
                        .to_owned(),
                );
            }
            (screen.scrollback_text(), screen.current_cursor())
        }
    };
    let capped = cap_text(&text, max_chars);
    let (cursor_row, cursor_col) = screen.cursor_position();
    let size = screen.size();
    ReadResult {
        session_id: session.id.to_string(),
        view,
        truncated: (capped.omitted_chars > 0).then_some(Truncation {
            omitted_chars: capped.omitted_chars,
            omitted_lines: capped.omitted_lines,
        }),
        text: capped.text,
        cursor: cursor.to_string(),
        dropped_chars,
        state: run_state,
        exit_code: state.exit.as_ref().and_then(|exit| exit.code),
        signal: state.exit.as_ref().and_then(|exit| exit.signal.clone()),
        echo,
        alt_screen,
        cursor_row,
        cursor_col,
        cols: size.cols,
        rows: size.rows,
        title: screen.title().to_owned(),
        reason,
        note,
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TerminalServer {
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        let audit = self.settings.audit.as_deref();
        let record = audit.map(|log| log.begin(&request, &self.table));
        let context = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        let response = self.tool_router.call(context).await;
        if let (Some(log), Some(record)) = (audit, record) {
            log.finish(record, &response);
        }
        response
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_schema_keeps_meaning() {
        let mut schema = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "properties": {
                "cols": {"format": "uint16", "maximum": 65535, "minimum": 0, "type": ["integer", "null"]},
                "grace": {"minimum": 0.5, "type": "number"},
                "view": {"anyOf": [{"$ref": "#/$defs/View"}, {"type": "null"}], "description": "d"},
                "either": {"type": ["string", "integer", "null"]},
            },
            "required": ["cols"],
        });
        compact_schema(&mut schema);
        assert_eq!(
            schema,
            serde_json::json!({
                "properties": {
                    "cols": {"type": "integer"},
                    "grace": {"minimum": 0.5, "type": "number"},
                    "view": {"$ref": "#/$defs/View", "description": "d"},
                    "either": {"type": ["string", "integer", "null"]},
                },
                "required": ["cols"],
            })
        );
    }

    #[test]
    fn line_breaks_in_a_paste_do_not_submit() {
        assert!(submits_line(b"ls\r"));
        assert!(!submits_line(b"ls"));
        assert!(!submits_line(&paste_bytes("a\nb", true)));
        let mut pasted_then_enter = paste_bytes("a\nb", true);
        pasted_then_enter.push(b'\r');
        assert!(submits_line(&pasted_then_enter));
        assert!(submits_line(&paste_bytes("a\nb", false)));
    }

    #[test]
    fn paste_strips_controls_and_wraps() {
        let bytes = paste_bytes("echo safe\x1b[201~echo INJECTED\n", true);
        assert_eq!(
            bytes,
            b"\x1b[200~echo safe[201~echo INJECTED\n\x1b[201~".to_vec()
        );
        assert_eq!(paste_bytes("a\x03b\x04c\td", false), b"abc\td".to_vec());
    }

    #[test]
    fn spawn_request_rejects_command_and_argv() {
        let params = OpenParams {
            command: Some("ls".into()),
            argv: Some(vec!["ls".into()]),
            ..Default::default()
        };
        assert!(spawn_request(params).is_err());
    }

    #[test]
    fn term_size_bounds() {
        assert!(term_size(Some(0), Some(24)).is_err());
        assert!(term_size(Some(80), Some(0)).is_err());
        assert!(term_size(Some(1), Some(24)).is_err());
        assert!(term_size(Some(80), Some(1)).is_err());
        assert_eq!(
            term_size(None, None).ok(),
            Some(TermSize { cols: 80, rows: 24 })
        );
    }

    #[test]
    fn unknown_key_writes_nothing() {
        let params = WriteParams {
            session_id: "x".into(),
            input: Some("abc".into()),
            keys: Some(vec!["Enter".into(), "Ctrl+C".into()]),
            ..Default::default()
        };
        let error = input_bytes(&params, false, false)
            .err()
            .map(|ToolError(message)| message)
            .unwrap_or_default();
        assert!(error.contains("Ctrl+C"), "{error}");
        assert!(error.contains("nothing was written"), "{error}");
    }

    #[test]
    fn seconds_rejects_negative_and_clamps() {
        assert!(seconds("timeout", -1.0, Duration::from_secs(30)).is_err());
        assert!(seconds("timeout", f64::NAN, Duration::from_secs(30)).is_err());
        assert_eq!(
            seconds("timeout", 100.0, Duration::from_secs(30)).ok(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            seconds("timeout", 1e20, Duration::from_secs(30)).ok(),
            Some(Duration::from_secs(30))
        );
    }
}
