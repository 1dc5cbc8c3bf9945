//! Tool results: the structured content each tool returns and its short text rendering.

use schemars::JsonSchema;
use serde::Serialize;

use super::params::View;
use crate::session::wait::WaitReason;

/// The run state of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Busy: a command or program runs.
    Running,
    /// The foreground program is blocked reading the terminal.
    WaitingForInput,
    /// The shell is at its prompt.
    Idle,
    Exited,
}

/// How much of the text `max_chars` cut from the middle.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Truncation {
    pub omitted_chars: u64,
    pub omitted_lines: u64,
}

/// Result of session_read, session_write and session_resize.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReadResult {
    pub session_id: String,
    /// The view the text is in (auto resolves to screen or output).
    pub view: View,
    pub text: String,
    /// Pass back as `since` to read only what comes after.
    pub cursor: String,
    /// Characters between `since` and the oldest retained text that were discarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_chars: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
    pub state: RunState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// False while the terminal hides typed input (a password prompt).
    pub echo: bool,
    pub alt_screen: bool,
    pub cursor_row: u16,
    pub cursor_col: u16,
    pub cols: u16,
    pub rows: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// The reason the wait ended, absent when the call did not wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<WaitReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ReadResult {
    /// Renders the result for clients that show only text: the terminal text, then one
    /// status line.
    pub fn to_text(&self) -> String {
        let mut status = format!(
            "[session {} {}",
            self.session_id,
            state_label(self.state, self.exit_code, self.signal.as_deref())
        );
        if let Some(reason) = self.reason {
            status.push_str(&format!(", wait ended: {}", reason_label(reason)));
        }
        if self.alt_screen {
            status.push_str(", full-screen program");
        }
        if !self.echo {
            status.push_str(", input hidden");
        }
        status.push_str(&format!(", cursor {}]", self.cursor));
        let mut text = String::with_capacity(self.text.len() + status.len() + 64);
        if let Some(dropped) = self.dropped_chars {
            text.push_str(&format!("[{dropped} earlier characters were discarded]\n"));
        }
        text.push_str(&self.text);
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if let Some(note) = &self.note {
            text.push_str(note);
            text.push('\n');
        }
        text.push_str(&status);
        text
    }
}

pub(super) fn state_label(state: RunState, exit_code: Option<i32>, signal: Option<&str>) -> String {
    match (state, exit_code, signal) {
        (RunState::Running, _, _) => "running".into(),
        (RunState::WaitingForInput, _, _) => "waiting for input".into(),
        (RunState::Idle, _, _) => "idle at the prompt".into(),
        (RunState::Exited, _, Some(signal)) => format!("exited by SIG{signal}"),
        (RunState::Exited, Some(code), None) => format!("exited with status {code}"),
        (RunState::Exited, None, None) => "exited".into(),
    }
}

pub(super) fn reason_label(reason: WaitReason) -> &'static str {
    match reason {
        WaitReason::Matched => "matched",
        WaitReason::Settled => "settled",
        WaitReason::Prompt => "prompt",
        WaitReason::InputWanted => "input wanted",
        WaitReason::Exited => "exited",
        WaitReason::Timeout => "timeout",
    }
}

/// Result of session_open.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OpenResult {
    pub session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub pid: u32,
    pub command: String,
    pub cols: u16,
    pub rows: u16,
    /// The screen shortly after start (the prompt, for a shell).
    pub text: String,
    /// Pass as `since` to read output from here on.
    pub cursor: String,
    pub state: RunState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// One row of session_list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionSummary {
    pub session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub pid: u32,
    pub command: String,
    pub state: RunState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    pub cols: u16,
    pub rows: u16,
    pub alt_screen: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Seconds since the last tool call or output.
    pub idle_seconds: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListResult {
    pub sessions: Vec<SessionSummary>,
}

impl ListResult {
    pub fn to_text(&self) -> String {
        if self.sessions.is_empty() {
            return "no sessions".into();
        }
        self.sessions
            .iter()
            .map(|s| {
                format!(
                    "{} {}{} pid {} {}x{} idle {:.0}s: {}",
                    s.session_id,
                    state_label(s.state, s.exit_code, s.signal.as_deref()),
                    s.name
                        .as_ref()
                        .map(|name| format!(" ({name})"))
                        .unwrap_or_default(),
                    s.pid,
                    s.cols,
                    s.rows,
                    s.idle_seconds,
                    s.command
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Result of session_close.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CloseResult {
    pub session_id: String,
    pub closed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Processes of the session that were signalled.
    pub processes_signalled: usize,
    /// The strongest signal that was needed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_signal: Option<String>,
    pub seconds: f64,
}

/// Result of session_exec.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExecResult {
    pub session_id: String,
    /// The command's output, without the echoed command line and the prompt.
    pub output: String,
    /// Characters at the start of the output that the session no longer retains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_chars: Option<u64>,
    /// Exit status, once the command finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `idle` once the command finished; `running` or `waiting_for_input` when the
    /// wait ended first; `exited` when the shell itself ended.
    pub state: RunState,
    /// Seconds from typing the command to the end of the wait.
    pub duration: f64,
    /// The reason the wait ended.
    pub reason: WaitReason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
    /// Pass as `since` to session_read to read what comes after.
    pub cursor: String,
    /// The next step to take, when the command has not finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ExecResult {
    pub fn to_text(&self) -> String {
        let mut text = self.output.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if let Some(note) = &self.note {
            text.push_str(note);
            text.push('\n');
        }
        let outcome = match (self.state, self.exit_code) {
            (RunState::Idle, Some(code)) => format!("exit code {code}"),
            (state, code) => state_label(state, code, None),
        };
        text.push_str(&format!(
            "[session {}: {outcome}, {:.2} s]",
            self.session_id, self.duration
        ));
        text
    }
}

/// Result of execute_command.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CommandResult {
    /// Standard output, and standard error unless `capture_stderr` is false.
    pub output: String,
    /// Exit status, when the command exited normally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal name, when a signal ended the command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// True when the timeout passed and the command's process group was killed.
    pub timed_out: bool,
    pub duration: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
}

impl CommandResult {
    pub fn to_text(&self) -> String {
        let mut text = self.output.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let outcome = match (&self.signal, self.exit_code) {
            _ if self.timed_out => "timed out; its process group was killed".to_owned(),
            (Some(signal), _) => format!("killed by SIG{signal}"),
            (None, Some(code)) => format!("exit code {code}"),
            (None, None) => "ended".to_owned(),
        };
        text.push_str(&format!("[{outcome}, {:.2} s]", self.duration));
        text
    }
}
