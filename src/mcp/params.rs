//! Tool parameters as clients send them. Field docs become the input schema that models
//! read on every turn, so they stay short.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::session::{MAX_COLS, MAX_ROWS, MIN_COLS, MIN_ROWS};

// The rendering of the terminal that a read returns. Plain comments, not doc comments: the
// variants' docs would be copied into every input schema that models read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    // `screen` while a full-screen program is on the alternate screen, else `output`.
    #[default]
    Auto,
    // The visible grid.
    Screen,
    // Text produced since `since`, with redraws applied.
    Output,
    // History plus the screen.
    Scrollback,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenParams {
    /// Shell command line to run instead of an interactive shell.
    pub command: Option<String>,
    /// Exact program and arguments, no shell.
    pub argv: Option<Vec<String>>,
    /// Working directory; must exist.
    pub cwd: Option<String>,
    /// Environment changes; null removes a variable.
    pub env: Option<BTreeMap<String, Option<String>>>,
    /// Columns, 2-1000 (default 80).
    #[serde(default, deserialize_with = "optional_cols")]
    pub cols: Option<u16>,
    /// Rows, 2-500 (default 24).
    #[serde(default, deserialize_with = "optional_rows")]
    pub rows: Option<u16>,
    /// Label shown by session_list.
    pub name: Option<String>,
}

/// Wait and render options shared by session_write and session_read.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ReadOptions {
    /// auto (default: screen while a full-screen program runs, else output), screen, output (since `since`, redraws applied) or scrollback.
    pub view: Option<View>,
    /// Cursor from an earlier result: output after it.
    pub since: Option<String>,
    /// Regex (multi-line): return once it matches. The echoed command line is output too, so anchor it: ^DONE$.
    pub wait_for: Option<String>,
    /// Seconds: return after this long without new output.
    pub settle: Option<f64>,
    /// Seconds: maximum wait (default and cap: the server's command timeout).
    pub timeout: Option<f64>,
    /// Maximum characters of text; the middle is cut.
    pub max_chars: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct WriteParams {
    pub session_id: String,
    /// Literal text to type.
    pub input: Option<String>,
    /// Named keys sent after input: Enter, Tab, Escape, Up, F5, C-c, M-x...
    pub keys: Option<Vec<String>>,
    /// Press Enter after input and keys.
    pub submit: Option<bool>,
    /// Send input as a bracketed paste when the program enabled it; control characters are removed.
    pub paste: Option<bool>,
    #[serde(flatten)]
    #[schemars(flatten)]
    pub read: ReadOptions,
    /// Fields that no tool accepts. serde cannot combine `flatten` with `deny_unknown_fields`,
    /// so they are collected here and rejected by the handler.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ReadParams {
    pub session_id: String,
    #[serde(flatten)]
    #[schemars(flatten)]
    pub read: ReadOptions,
    /// Fields that no tool accepts. serde cannot combine `flatten` with `deny_unknown_fields`,
    /// so they are collected here and rejected by the handler.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseParams {
    pub session_id: String,
    /// Seconds between the HUP, TERM and KILL steps.
    pub grace: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeParams {
    pub session_id: String,
    /// 2-1000.
    #[serde(deserialize_with = "cols")]
    pub cols: u16,
    /// 2-500.
    #[serde(deserialize_with = "rows")]
    pub rows: u16,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    pub session_id: String,
    /// One command line, typed at the shell's prompt.
    pub command: String,
    /// Seconds to wait for it to finish.
    pub timeout: Option<f64>,
    pub max_chars: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalTarget {
    // The terminal's foreground process group.
    #[default]
    Foreground,
    // Every process of the session.
    Session,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalParams {
    pub session_id: String,
    /// INT, TERM, KILL, HUP, QUIT, TSTP, CONT, USR1 or USR2.
    pub signal: String,
    pub target: Option<SignalTarget>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandParams {
    /// Shell command line.
    pub command: String,
    /// Seconds.
    pub timeout: Option<f64>,
    pub cwd: Option<String>,
    /// Variables to set (null removes one).
    pub env: Option<BTreeMap<String, Option<String>>>,
    /// Default: the server's shell.
    pub shell: Option<String>,
    /// Include stderr (default true).
    pub capture_stderr: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersistentShellParams {
    /// Command line to run in the shell.
    pub command: String,
    /// Name of the shell session, created on first use (default "default").
    pub session_id: Option<String>,
    /// Seconds to wait for the command.
    pub timeout: Option<f64>,
    /// Shell program for a new session.
    pub shell: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManagerAction {
    List,
    Close,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionManagerParams {
    pub action: ManagerAction,
    /// Session name or id, for close.
    pub session_id: Option<String>,
}

// Terminal sizes are read through these so that a value of the wrong type or outside
// u16 gets the same message, naming the valid range, as one outside the range.
fn cols<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    size_in_range(deserializer, "cols", MIN_COLS, MAX_COLS)
}

fn rows<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    size_in_range(deserializer, "rows", MIN_ROWS, MAX_ROWS)
}

fn optional_cols<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    cols(deserializer).map(Some)
}

fn optional_rows<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    rows(deserializer).map(Some)
}

fn size_in_range<'de, D: Deserializer<'de>>(
    deserializer: D,
    name: &str,
    min: u16,
    max: u16,
) -> Result<u16, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    value
        .as_u64()
        .and_then(|size| u16::try_from(size).ok())
        .filter(|size| (min..=max).contains(size))
        .ok_or_else(|| {
            D::Error::custom(format!(
                "invalid {name} {value}: pass a whole number from {min} to {max}"
            ))
        })
}
