//! `mcp-terminal-server`: persistent terminal sessions for AI agents over the Model
//! Context Protocol.
//!
//! # Layout
//!
//! - [`config`]: command-line flags and environment variables, validated into
//!   [`config::Settings`] with units in the field names.
//! - [`app`]: start-up and the shutdown order.
//! - [`audit`]: the JSON-lines record of every tool call (`--audit-log`).
//! - [`transport`]: how MCP reaches the server: stdio, or streamable HTTP behind Host,
//!   Origin and token checks.
//! - [`mcp`]: the tools, their parameter and result types; no PTY code.
//! - [`session`]: the session engine, with no MCP types: the [`session::table`] of
//!   sessions, the PTY and its threads ([`session::pty`]), the emulator wrapper
//!   ([`session::screen`]), key encoding ([`session::keys`]), output capping
//!   ([`session::output`]), waits ([`session::wait`]), process-tree kills
//!   ([`session::process_tree`]) and the idle [`session::reaper`].
//! - [`telemetry`]: logging to standard error, as text or JSON lines.
//! - [`readiness`]: readiness and stop notices for systemd and s6.
//! - `fuzzing` (feature `fuzzing` only): the fuzz targets' property checks, which
//!   `cargo test` also replays on the committed fuzz inputs.
//!
//! # One tool call, end to end
//!
//! A client sends `tools/call session_write {session_id, input: "ls", submit: true}` on
//! stdin. rmcp decodes it and calls [`mcp::TerminalServer`], which validates every
//! parameter, so an unknown key name rejects the call before anything is written. The
//! handler clones the session's `Arc` out of the [`session::table::SessionTable`], notes
//! the output cursor, and writes `ls\r` to the PTY on a blocking thread. The session's
//! reader and parser threads feed what the shell prints into the
//! [`session::screen::Screen`] and wake waiters through a watch channel.
//! [`session::wait::wait`] returns once output has been quiet for the settle time. The
//! handler then renders the output since the cursor, caps it to `max_chars`, and
//! returns it as structured content plus a text rendering.

pub mod app;
pub mod audit;
pub mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod mcp;
pub mod readiness;
pub mod session;
pub mod telemetry;
pub mod transport;
