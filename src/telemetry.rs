//! Logging: tracing to standard error, never standard output, which carries JSON-RPC.

use tracing_subscriber::EnvFilter;

use crate::config::LogLevel;

/// Installs the global subscriber. `RUST_LOG` wins over the flags when it is set.
/// Colour codes are never written: logs end up in files, journald and supervisors.
pub fn init(level: LogLevel) {
    let default = match level {
        LogLevel::Info => "info",
        LogLevel::Debug => "mcp_terminal_server=debug,info",
        LogLevel::Trace => "mcp_terminal_server=trace,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
