//! The audit log (`--audit-log`): one JSON line per tool call, with hidden input and the
//! token kept out.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn audit_records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

/// Over HTTP with a token, every call is one record naming the token's fingerprint.
/// Text typed at a password prompt, the token and env values never reach the file, and
/// stderr at debug level contains neither the typed secrets nor the token.
#[tokio::test]
async fn audit_log_records_calls_and_redacts_hidden_input() {
    let dir = TempDir::new("audit");
    let audit_path = dir.path.join("audit.jsonl");
    let nonce = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let token = format!("tok-{nonce}");
    let visible = format!("SECRET-{nonce}");
    let password = format!("PW-{nonce}");
    let env_secret = format!("ENV-{nonce}");
    let audit_flag = audit_path.to_str().expect("UTF-8 path");
    let server =
        HttpServer::start(&["--audit-log", audit_flag], &[("MCP_AUTH_TOKEN", &token)]).await;
    let client = server.connect(Some(&token)).await;

    let opened = ok_tool(
        &client,
        "session_open",
        json!({"argv": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ ", "API_KEY": env_secret}}),
    )
    .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let write =
        |input: String| json!({"session_id": id, "input": input, "submit": true, "settle": 0.3});
    ok_tool(&client, "session_write", write(format!("echo {visible}"))).await;
    let prompt = ok_tool(
        &client,
        "session_write",
        write("read -s -p 'Password: ' pw".into()),
    )
    .await;
    assert_eq!(prompt["echo"], false, "read -s hides input: {prompt}");
    ok_tool(&client, "session_write", write(password.clone())).await;
    let failed = call_tool(
        &client,
        "session_read",
        json!({"session_id": "not-a-session"}),
    )
    .await;
    assert_eq!(failed.is_error, Some(true));
    ok_tool(&client, "session_close", json!({"session_id": id})).await;
    client.cancel().await.expect("client closes");

    let records = audit_records(&audit_path);
    let tools: Vec<&str> = records.iter().filter_map(|r| r["tool"].as_str()).collect();
    assert_eq!(
        tools,
        [
            "session_open",
            "session_write",
            "session_write",
            "session_write",
            "session_read",
            "session_close"
        ]
    );
    for record in &records {
        let time = record["time"].as_str().unwrap_or_default();
        assert!(
            time.ends_with('Z') && time.len() == "2026-01-01T00:00:00.000Z".len(),
            "{time}"
        );
        assert!(
            record["principal"]
                .as_str()
                .unwrap_or_default()
                .starts_with("token:sha256:"),
            "{record}"
        );
        assert!(record["input_bytes"].as_u64().unwrap_or(0) > 0, "{record}");
        assert!(record["output_bytes"].as_u64().unwrap_or(0) > 0, "{record}");
    }
    assert_eq!(
        records[0]["session_id"],
        id.as_str(),
        "session_open names the new id"
    );
    assert_eq!(
        records[0]["arguments"]["env"]["API_KEY"],
        json!(format!("[redacted: {} bytes]", env_secret.len()))
    );
    assert_eq!(
        records[1]["arguments"]["input"],
        json!(format!("echo {visible}"))
    );
    assert_eq!(records[1]["outcome"], "ok");
    assert_eq!(
        records[3]["arguments"]["input"],
        json!(format!("[redacted: {} bytes]", password.len()))
    );
    assert_eq!(records[4]["outcome"], "error");
    assert!(
        records[4]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not-a-session"),
        "{}",
        records[4]
    );
    assert_eq!(records[5]["session_id"], id.as_str());

    let log = std::fs::read_to_string(&audit_path).unwrap_or_default();
    for secret in [&token, &password, &env_secret] {
        assert!(!log.contains(secret.as_str()), "audit log holds {secret}");
    }
    let stderr = server.stderr();
    for secret in [&token, &password, &visible, &env_secret] {
        assert!(!stderr.contains(secret.as_str()), "stderr holds {secret}");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&audit_path)
            .expect("audit log exists")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

/// Over stdio the principal is `stdio`, records append to an existing file, and the
/// variable `MCP_AUDIT_LOG` works like the flag.
#[tokio::test]
async fn audit_log_over_stdio_appends() {
    let dir = TempDir::new("audit-stdio");
    let audit_path = dir.path.join("audit.jsonl");
    std::fs::write(&audit_path, "{\"earlier\":true}\n").expect("seed line");
    let path = audit_path.to_str().expect("UTF-8 path");
    let server = Server::start_with(&["--kill-grace", "0.5"], &[("MCP_AUDIT_LOG", path)]).await;
    server.ok("session_list", json!({})).await;
    let id = server.open_bash(40, 5).await;
    server.ok("session_close", json!({"session_id": id})).await;
    server.stop().await;

    let records = audit_records(&audit_path);
    assert_eq!(records[0], json!({"earlier": true}));
    let tools: Vec<&str> = records[1..]
        .iter()
        .filter_map(|r| r["tool"].as_str())
        .collect();
    assert_eq!(tools[0], "session_list");
    assert_eq!(tools[1], "session_open");
    assert_eq!(tools.last(), Some(&"session_close"));
    for record in &records[1..] {
        assert_eq!(record["principal"], "stdio");
        assert_eq!(record["outcome"], "ok", "{record}");
    }
    assert!(
        records[1].get("session_id").is_none(),
        "session_list names no session"
    );
}

/// An audit log that cannot be opened stops the server at start with the path named.
#[tokio::test]
async fn audit_log_unwritable_path_fails_start() {
    let missing = "/nonexistent-directory/audit.jsonl";
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(BINARY)
            .args(["--audit-log", missing])
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("server exits")
    .expect("server runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(missing), "{stderr}");
    assert!(output.stdout.is_empty());
}
