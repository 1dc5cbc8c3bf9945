//! The audit log: one JSON line per tool call, appended to the file named by
//! `--audit-log` (`MCP_AUDIT_LOG`).
//!
//! A record contains the time (RFC 3339, UTC, milliseconds), the tool, the session id, the
//! principal, the arguments, the byte counts of the arguments and of the result, and the
//! outcome:
//!
//! ```json
//! {"time":"2026-12-05T00:12:03.512Z","principal":"stdio","tool":"session_write",
//!  "session_id":"3f2a…","arguments":{"session_id":"3f2a…","input":"ls","submit":true},
//!  "input_bytes":61,"output_bytes":734,"outcome":"ok"}
//! ```
//!
//! What is left out or shortened:
//!
//! - Text typed into a session whose terminal hides input (echo off, as at a password
//!   prompt) is replaced by `"[redacted: N bytes]"`, checked when the call arrives.
//! - Values of `env` are replaced the same way, because callers pass credentials there.
//! - Strings longer than [`MAX_LOGGED_CHARS`] keep their head and the count of the rest.
//! - The HTTP bearer token never appears: the principal is a SHA-256 fingerprint of it.
//!
//! The file is opened for appending with mode 0600 and close-on-exec, so sessions do not
//! inherit it. A failed write is logged once as a warning and does not fail the call.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use rmcp::ErrorData;
use rmcp::model::{CallToolRequestParams, CallToolResponse, ContentBlock};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::session::table::SessionTable;

/// Maximum characters of a string value in a record; longer strings keep this many.
pub const MAX_LOGGED_CHARS: usize = 1000;

/// Arguments that carry text typed into a session's terminal.
const TYPED_ARGUMENTS: [&str; 3] = ["input", "keys", "command"];

/// An audit log that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path:?}: {source}")]
pub struct AuditOpenError {
    path: PathBuf,
    source: std::io::Error,
}

/// The principal behind every call a server receives. Every client of one server is
/// the same principal, so it is fixed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The client that started the server on standard input and output.
    Stdio,
    /// An HTTP client holding the bearer token; the field is its fingerprint.
    Token(String),
    /// An HTTP client of a server without a token: any local process.
    Unauthenticated,
}

impl Principal {
    /// Names the holder of `token` by the first 12 hex digits of its SHA-256 digest, which
    /// distinguishes tokens without revealing them.
    pub fn from_token(token: &[u8]) -> Self {
        let digest = Sha256::digest(token);
        let hex: String = digest[..6]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Self::Token(hex)
    }

    fn label(&self) -> String {
        match self {
            Self::Stdio => "stdio".to_owned(),
            Self::Token(fingerprint) => format!("token:sha256:{fingerprint}"),
            Self::Unauthenticated => "http:no-token".to_owned(),
        }
    }
}

/// The audit log file and the principal its records name.
pub struct AuditLog {
    path: PathBuf,
    principal: String,
    /// The log file. Each record is written with one `write_all` under this lock, so
    /// records from concurrent calls never interleave.
    file: Mutex<File>,
    /// Set after the first failed write, so a full disk logs one warning, not one per call.
    write_failed: AtomicBool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (or creates, with mode 0600) `path` for appending.
    pub fn open(path: &Path, principal: Principal) -> Result<Self, AuditOpenError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| AuditOpenError {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            principal: principal.label(),
            file: Mutex::new(file),
            write_failed: AtomicBool::new(false),
        })
    }

    /// Starts the record of a call before the tool runs, while the terminal state that
    /// decides redaction is still the one the input is typed into.
    pub fn begin(&self, request: &CallToolRequestParams, table: &SessionTable) -> PendingRecord {
        let arguments = request.arguments.clone().unwrap_or_default();
        let input_bytes = serde_json::to_vec(&arguments).map_or(0, |bytes| bytes.len());
        let session_id = arguments
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let hidden = session_id
            .as_deref()
            .and_then(|id| table.get(id).ok())
            .and_then(|session| session.input_hidden())
            .unwrap_or(false);
        PendingRecord {
            tool: request.name.to_string(),
            session_id,
            arguments: Value::Object(redact_arguments(arguments, hidden)),
            input_bytes,
        }
    }

    /// Completes the record with the call's outcome and appends it as one line.
    pub fn finish(&self, pending: PendingRecord, response: &Result<CallToolResponse, ErrorData>) {
        let outcome = Outcome::of(response);
        let record = Record {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            principal: &self.principal,
            tool: &pending.tool,
            session_id: pending.session_id.or(outcome.session_id),
            arguments: &pending.arguments,
            input_bytes: pending.input_bytes,
            output_bytes: outcome.bytes,
            outcome: outcome.label,
            error: outcome.error,
        };
        let mut line = match serde_json::to_vec(&record) {
            Ok(line) => line,
            Err(error) => {
                tracing::warn!(%error, tool = %pending.tool, "could not encode an audit record");
                return;
            }
        };
        line.push(b'\n');
        let written = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .write_all(&line);
        if let Err(error) = written
            && !self.write_failed.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(path = %self.path.display(), %error,
                "could not write to the audit log; further failures are not logged");
        }
    }
}

/// The part of a record known before the tool runs.
pub struct PendingRecord {
    tool: String,
    session_id: Option<String>,
    arguments: Value,
    input_bytes: usize,
}

#[derive(Serialize)]
struct Record<'a> {
    time: String,
    principal: &'a str,
    tool: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    arguments: &'a Value,
    input_bytes: usize,
    output_bytes: usize,
    /// `ok` or `error`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The outcome fields of a record for a finished call.
struct Outcome {
    label: &'static str,
    error: Option<String>,
    bytes: usize,
    /// The id a session_open result carries.
    session_id: Option<String>,
}

impl Outcome {
    fn of(response: &Result<CallToolResponse, ErrorData>) -> Self {
        match response {
            Ok(CallToolResponse::Complete(result)) => {
                let bytes = serde_json::to_vec(result).map_or(0, |bytes| bytes.len());
                let session_id = result
                    .structured_content
                    .as_ref()
                    .and_then(|content| content.get("session_id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if result.is_error == Some(true) {
                    let message: Vec<&str> = result
                        .content
                        .iter()
                        .filter_map(ContentBlock::as_text)
                        .map(|text| text.text.as_str())
                        .collect();
                    Self {
                        label: "error",
                        error: Some(shorten(&message.join("\n"))),
                        bytes,
                        session_id,
                    }
                } else {
                    Self {
                        label: "ok",
                        error: None,
                        bytes,
                        session_id,
                    }
                }
            }
            Ok(_) => Self {
                label: "ok",
                error: None,
                bytes: 0,
                session_id: None,
            },
            Err(error) => Self {
                label: "error",
                error: Some(shorten(&error.message)),
                bytes: serde_json::to_vec(error).map_or(0, |bytes| bytes.len()),
                session_id: None,
            },
        }
    }
}

/// Replaces typed text with its length when the terminal hides input, replaces every
/// `env` value with its length, and shortens long strings.
fn redact_arguments(arguments: Map<String, Value>, input_hidden: bool) -> Map<String, Value> {
    arguments
        .into_iter()
        .map(|(name, value)| {
            let value = if input_hidden && TYPED_ARGUMENTS.contains(&name.as_str()) {
                redacted(&value)
            } else if name == "env" {
                match value {
                    Value::Object(entries) => Value::Object(
                        entries
                            .into_iter()
                            .map(|(key, value)| (key, redacted(&value)))
                            .collect(),
                    ),
                    other => redacted(&other),
                }
            } else {
                shorten_strings(value)
            };
            (name, value)
        })
        .collect()
}

fn redacted(value: &Value) -> Value {
    let bytes = match value {
        Value::String(text) => text.len(),
        Value::Null => return Value::Null,
        other => serde_json::to_vec(other).map_or(0, |bytes| bytes.len()),
    };
    Value::String(format!("[redacted: {bytes} bytes]"))
}

fn shorten_strings(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(shorten(&text)),
        Value::Array(items) => Value::Array(items.into_iter().map(shorten_strings).collect()),
        Value::Object(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key, shorten_strings(value)))
                .collect(),
        ),
        other => other,
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_LOGGED_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}[... {} more bytes]", &text[..cut], text.len() - cut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn hidden_input_is_redacted_with_length() {
        let arguments = object(json!({"session_id": "abc", "input": "hunter2", "submit": true}));
        let redacted = redact_arguments(arguments, true);
        assert_eq!(redacted["input"], json!("[redacted: 7 bytes]"));
        assert_eq!(redacted["session_id"], json!("abc"));
        assert_eq!(redacted["submit"], json!(true));
    }

    #[test]
    fn visible_input_is_kept() {
        let arguments = object(json!({"input": "echo hi", "keys": ["Enter"]}));
        let kept = redact_arguments(arguments, false);
        assert_eq!(kept["input"], json!("echo hi"));
        assert_eq!(kept["keys"], json!(["Enter"]));
    }

    #[test]
    fn env_values_are_always_redacted() {
        let arguments = object(json!({"env": {"API_KEY": "s3cret", "GONE": null}}));
        let redacted = redact_arguments(arguments, false);
        assert_eq!(
            redacted["env"],
            json!({"API_KEY": "[redacted: 6 bytes]", "GONE": null})
        );
    }

    #[test]
    fn long_strings_are_shortened() {
        let long = "é".repeat(MAX_LOGGED_CHARS + 10);
        let arguments = object(json!({"input": long}));
        let shortened = redact_arguments(arguments, false);
        let text = shortened["input"].as_str().unwrap_or_default();
        assert!(text.starts_with(&"é".repeat(MAX_LOGGED_CHARS)), "{text}");
        assert!(text.ends_with("[... 20 more bytes]"), "{text}");
    }

    #[test]
    fn token_principal_hides_the_token() {
        let principal = Principal::from_token(b"s3cret-token");
        let label = principal.label();
        assert!(label.starts_with("token:sha256:"), "{label}");
        assert_eq!(label.len(), "token:sha256:".len() + 12);
        assert!(!label.contains("s3cret"));
        assert_eq!(Principal::from_token(b"s3cret-token"), principal);
        assert_ne!(Principal::from_token(b"other-token"), principal);
    }
}
