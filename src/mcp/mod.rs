//! MCP tools over the session engine.
//!
//! This module turns tool calls into session operations and session state into tool
//! results. It never touches a PTY or the emulator directly: everything goes through
//! [`crate::session`]. Errors the model can act on come back as tool results with
//! `isError: true`; malformed requests are JSON-RPC errors raised by rmcp.

mod call;
pub mod check;
mod exec;
mod legacy;
pub mod params;
pub mod results;
mod tools;

use std::sync::Arc;
use std::time::Duration;

pub use tools::TerminalServer;

use crate::audit::AuditLog;

/// Settings the tool layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    /// Default and maximum wait.
    pub command_timeout: Duration,
    /// Default `max_chars` of a read.
    pub default_max_chars: usize,
    /// Default pause between kill steps at close.
    pub kill_grace: Duration,
    /// Also offer `persistent_shell` and `session_manager`.
    pub legacy_tools: bool,
    /// Record of every tool call, when `--audit-log` is set.
    pub audit: Option<Arc<AuditLog>>,
}

impl ToolSettings {
    pub fn new(command_timeout: Duration, kill_grace: Duration, legacy_tools: bool) -> Arc<Self> {
        Arc::new(Self {
            command_timeout,
            default_max_chars: DEFAULT_MAX_CHARS,
            kill_grace,
            legacy_tools,
            audit: None,
        })
    }

    /// Adds the audit log that records every tool call.
    pub fn with_audit(self: Arc<Self>, audit: Option<Arc<AuditLog>>) -> Arc<Self> {
        let mut settings = Arc::unwrap_or_clone(self);
        settings.audit = audit;
        Arc::new(settings)
    }
}

/// Characters a read returns when the caller sets no `max_chars`: about 5,000 tokens.
pub const DEFAULT_MAX_CHARS: usize = 20_000;
/// Upper bound of `max_chars`.
pub const MAX_MAX_CHARS: usize = 1_000_000;
/// Upper bound of the text one session_write sends.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
