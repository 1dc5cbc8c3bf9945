//! A tour of the main job with a real MCP client: start the server, open a bash
//! session, run `ls`, open `less` on a file and print its screen, then close.
//!
//! Run with `cargo run --example quickstart`. The example builds and starts the server
//! binary next to it (`target/debug/mcp-terminal-server`), or starts the one named by
//! `MCP_TERMINAL_SERVER`.

mod common;

use anyhow::{Context, Result};
use common::{call, say, server_binary};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

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
