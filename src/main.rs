use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use mcp_terminal_server::config::{Cli, Settings};
use mcp_terminal_server::session::{containment, limits};
use mcp_terminal_server::{app, telemetry};

fn main() -> ExitCode {
    // Started as a session program's launcher: set the limits and exec the program.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = limits::run_exec_with_limits(&args) {
        return ExitCode::from(status);
    }
    // Before anything is read (the token among it), so a session cannot read the
    // server's memory or environment through /proc.
    let protected = containment::protect_server();
    let cli = Cli::parse();
    let settings = match Settings::from_cli(&cli) {
        Ok(settings) => settings,
        Err(error) => {
            // Logging is not set up yet, so a configuration error goes straight to stderr.
            let _ = writeln!(std::io::stderr(), "mcp-terminal-server: {error}");
            return ExitCode::from(app::EXIT_CONFIG);
        }
    };
    telemetry::init(settings.log_level, settings.log_format);
    if !protected {
        tracing::warn!(
            "could not make the server non-dumpable; same-user processes can read its memory"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "failed to start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(app::run(settings));
    // The stdio transport reads stdin in a blocking read that only the client can end,
    // so after a signal the runtime must not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}
