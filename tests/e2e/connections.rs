//! PTY sessions belong to the server, not to an MCP connection.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use mcp_terminal_server::mcp::{TerminalServer, ToolSettings};
use mcp_terminal_server::session::EndReason;
use mcp_terminal_server::session::pty::SpawnConfig;
use mcp_terminal_server::session::screen::ScreenLimits;
use mcp_terminal_server::session::table::{SessionTable, TableConfig};
use rmcp::model::CallToolRequestParams;
use rmcp::{RoleClient, ServiceExt, service::RunningService};
use serde_json::{Value, json};

fn table() -> std::sync::Arc<SessionTable> {
    SessionTable::new(TableConfig {
        spawn: SpawnConfig {
            shell: PathBuf::from("/bin/sh"),
            pass_env: BTreeSet::new(),
            limits: ScreenLimits {
                scrollback_rows: 100,
                transcript_bytes: 65536,
            },
            rlimits: Default::default(),
            cgroups: None,
        },
        max_sessions: 8,
        kill_grace: Duration::from_millis(200),
    })
}

/// Connects one MCP client to its own handler over an in-memory pipe; every handler
/// shares `table`, as every connection of one server does.
async fn connect(table: &std::sync::Arc<SessionTable>) -> RunningService<RoleClient, ()> {
    let handler = TerminalServer::new(
        table.clone(),
        ToolSettings::new(Duration::from_secs(10), Duration::from_millis(200), false),
    );
    let (server_side, client_side) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(service) = handler.serve(server_side).await {
            let _ = service.waiting().await;
        }
    });
    ().serve(client_side).await.expect("client connects")
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, arguments: Value) -> Value {
    let params = CallToolRequestParams::new(tool.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone());
    let result = tokio::time::timeout(Duration::from_secs(30), client.call_tool(params))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{tool}: {:?}", result.content);
    result.structured_content.unwrap()
}

#[tokio::test]
async fn session_outlives_its_connection() {
    let table = table();
    let first = connect(&table).await;
    let opened = call(
        &first,
        "session_open",
        json!({"command": "while :; do date +tick-%s%N; sleep 0.2; done"}),
    )
    .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    first.cancel().await.unwrap();

    let second = connect(&table).await;
    let listed = call(&second, "session_list", json!({})).await;
    let entry = &listed["sessions"][0];
    assert_eq!(entry["session_id"], id.as_str());
    assert_eq!(entry["state"], "running");
    let before = call(
        &second,
        "session_read",
        json!({"session_id": id, "view": "screen"}),
    )
    .await;
    let after = call(
        &second,
        "session_read",
        json!({"session_id": id, "view": "output", "since": before["cursor"], "wait_for": "tick-", "timeout": 5}),
    )
    .await;
    assert_eq!(
        after["reason"], "matched",
        "fresh output keeps arriving: {after}"
    );
    assert_eq!(after["state"], "running");
    table.close_all(EndReason::Shutdown).await;
}
