//! Logging: tracing to standard error, never standard output, which carries JSON-RPC.

use std::io::Write;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogLevel};

/// Installs the global subscriber. `RUST_LOG` wins over the flags when it is set, except
/// that rmcp is capped at info: at debug it logs whole requests, which would include
/// text typed at a password prompt. Its session manager is capped at warn. Colour codes are never written, because logs end
/// up in files, journald and supervisors. With [`LogFormat::Json`] each event is one JSON
/// object per line, with its fields flattened next to `timestamp`, `level` and `message`.
pub fn init(level: LogLevel, format: LogFormat) {
    let default = match level {
        LogLevel::Info => "info",
        LogLevel::Debug => "mcp_terminal_server=debug,info",
        LogLevel::Trace => "mcp_terminal_server=trace,info",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default))
        .add_directive("rmcp=info".parse().expect("a valid directive"))
        // Its session manager logs every full Mcp-Session-Id at info, and the id is all
        // a client needs to act in that MCP session.
        .add_directive(
            "rmcp::transport::streamable_http_server::session::local=warn"
                .parse()
                .expect("a valid directive"),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| StderrIgnoringErrors)
        .with_ansi(false)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Standard error that drops log lines it cannot write. A client that closes the
/// server's stderr must not crash it: stdout and the sessions still work.
struct StderrIgnoringErrors;

impl Write for StderrIgnoringErrors {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
