//! A tour of the main job with a real MCP client: start the server, open a bash
//! session, run `ls`, open `less` on a file and print its screen, then close.
//!
//! Run with `cargo run --example quickstart`. The example builds and starts the server
//! binary next to it (`target/debug/mcp-terminal-server`), or starts the one named by
//! `MCP_TERMINAL_SERVER`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<()> {
    let binary = server_binary()?;
    let transport = TokioChildProcess::new(tokio::process::Command::new(&binary))
        .with_context(|| format!("failed to start {}", binary.display()))?;
    let client = ().serve(transport).await.context("MCP initialization failed")?;

    let opened = call(&client, "session_open", json!({"cols": 80, "rows": 24})).await?;
    let id = opened["session_id"]
        .as_str()
        .context("session_open returned no session_id")?
        .to_owned();
    say(&format!(
        "opened session {id} running {}",
        opened["command"]
    ));

    let listing = call(
        &client,
        "session_write",
        json!({"session_id": id, "input": "ls -l", "submit": true}),
    )
    .await?;
    say("--- output of `ls -l` ---");
    say(listing["text"].as_str().unwrap_or_default());

    let file = std::env::temp_dir().join("mcp-terminal-quickstart.txt");
    let lines: Vec<String> = (1..=200)
        .map(|n| format!("line {n} of a file shown in less"))
        .collect();
    std::fs::write(&file, lines.join("\n")).context("failed to write the sample file")?;
    call(
        &client,
        "session_write",
        json!({"session_id": id, "input": format!("less {}", file.display()), "submit": true}),
    )
    .await?;
    let screen = call(
        &client,
        "session_read",
        json!({"session_id": id, "view": "screen", "settle": 0.5}),
    )
    .await?;
    say(&format!(
        "--- the screen while less runs (alternate screen: {}) ---",
        screen["alt_screen"]
    ));
    say(screen["text"].as_str().unwrap_or_default());

    call(
        &client,
        "session_write",
        json!({"session_id": id, "input": "q"}),
    )
    .await?;
    let closed = call(&client, "session_close", json!({"session_id": id})).await?;
    say(&format!(
        "closed: {} process(es) signalled",
        closed["processes_signalled"]
    ));
    let _ = std::fs::remove_file(&file);
    client.cancel().await.context("failed to stop the server")?;
    Ok(())
}

/// Calls a tool and returns its structured content, or the tool's error message.
async fn call(
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

/// Finds the server binary: `MCP_TERMINAL_SERVER`, else the one Cargo builds beside this
/// example. Under `cargo run` it builds that binary first, so one command is enough.
fn server_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("MCP_TERMINAL_SERVER") {
        return Ok(PathBuf::from(path));
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--bin", "mcp-terminal-server"])
            .status()
            .context("failed to run cargo build")?;
        if !status.success() {
            bail!("cargo build --bin mcp-terminal-server failed: {status}");
        }
    }
    let example = std::env::current_exe()?;
    let profile_dir = example
        .parent()
        .and_then(|dir| dir.parent())
        .context("unexpected example location")?;
    let binary = profile_dir.join("mcp-terminal-server");
    if !binary.is_file() {
        bail!(
            "{} not found: run `cargo build` first, or set MCP_TERMINAL_SERVER",
            binary.display()
        );
    }
    Ok(binary)
}

/// Prints one line of the tour; this example is a command-line program.
#[allow(clippy::print_stdout)]
fn say(text: &str) {
    println!("{text}");
}
