//! Helpers shared by the example clients: finding the server binary, calling a tool,
//! and printing.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use serde_json::Value;

/// Calls a tool and returns its structured content, or the tool's error message.
pub async fn call(
    client: &RunningService<rmcp::RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> Result<Value> {
    let Value::Object(arguments) = arguments else {
        bail!("arguments must be an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await?;
    if result.is_error == Some(true) {
        let message: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        bail!("{tool} failed: {}", message.join("\n"));
    }
    result
        .structured_content
        .with_context(|| format!("{tool} returned no structured content"))
}

// ---------------------------------------------------------------------------------
// Figures

/// Finds the server binary: `MCP_TERMINAL_SERVER`, else the one Cargo builds beside this
/// example. Under `cargo run` it builds that binary first, in the same profile.
pub fn server_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("MCP_TERMINAL_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let example = std::env::current_exe()?;
    let profile_dir = example
        .parent()
        .and_then(|dir| dir.parent())
        .context("unexpected example location")?;
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "--quiet", "--bin", "mcp-terminal-server"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().context("failed to run cargo build")?;
        if !status.success() {
            bail!("cargo build --bin mcp-terminal-server failed: {status}");
        }
    }
    let binary = profile_dir.join("mcp-terminal-server");
    if !binary.is_file() {
        bail!(
            "{} not found: run `cargo build --release` first, or set MCP_TERMINAL_SERVER",
            binary.display()
        );
    }
    Ok(binary)
}

/// Prints one line of output; the examples are command-line programs.
#[allow(clippy::print_stdout)]
pub fn say(text: &str) {
    println!("{text}");
}
