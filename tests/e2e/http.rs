//! The streamable HTTP transport: the real binary on a port it picks, rmcp's client for
//! the tools, and raw HTTP/1.1 requests for everything a client library would not send.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{
    HttpServer, INITIALIZE, TempDir, call_tool, ok_tool, pid_alive, pids_matching, post_mcp, text,
    wait_until,
};

/// Opens a session running `sleep` under a unique argv[0], so the test can find its
/// process by name.
fn marker_argv(marker: &str) -> Value {
    json!({"argv": ["bash", "-c", format!("exec -a {marker} sleep 1000")]})
}

fn marker(name: &str) -> String {
    format!("mcp-http-{name}-{}", std::process::id())
}

/// The tools work end to end over HTTP with the initialize handshake.
#[tokio::test]
async fn http_tools_work_end_to_end() {
    let server = HttpServer::start(&[], &[]).await;
    let client = server.connect(None).await;
    let opened = ok_tool(
        &client,
        "session_open",
        json!({"argv": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ "}, "cols": 60, "rows": 10}),
    )
    .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();

    // The quotes keep the marker out of the echoed command line.
    let written = ok_tool(
        &client,
        "session_write",
        json!({"session_id": id, "input": "echo hel''lo-over-http", "submit": true, "settle": 0.3}),
    )
    .await;
    assert!(
        text(&written).contains("hello-over-http"),
        "{}",
        text(&written)
    );
    let screen = ok_tool(
        &client,
        "session_read",
        json!({"session_id": id, "view": "screen"}),
    )
    .await;
    assert!(
        text(&screen).contains("hello-over-http"),
        "{}",
        text(&screen)
    );

    assert_eq!(server.health().await["sessions"], 1);
    ok_tool(&client, "session_close", json!({"session_id": id})).await;
    assert_eq!(server.health().await["sessions"], 0);
    client.cancel().await.expect("client closes");
}

/// A session opened by one client is listed, read and typed into by a second client after
/// the first disconnected. The second client uses the stateless 2026-07-28 revision.
#[tokio::test]
async fn http_session_outlives_the_client_that_opened_it() {
    let server = HttpServer::start(&[], &[]).await;
    let first = server.connect(None).await;
    let opened = ok_tool(
        &first,
        "session_open",
        json!({"argv": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ "}}),
    )
    .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    ok_tool(
        &first,
        "session_write",
        json!({"session_id": id, "input": "export LEFT_BY=first", "submit": true, "settle": 0.3}),
    )
    .await;
    first.cancel().await.expect("first client closes");

    let second = server.connect_stateless().await;
    let listed = ok_tool(&second, "session_list", json!({})).await;
    assert_eq!(listed["sessions"][0]["session_id"], id.as_str(), "{listed}");
    let written = ok_tool(
        &second,
        "session_write",
        json!({"session_id": id, "input": "echo seen-$LEFT_BY", "submit": true, "settle": 0.3}),
    )
    .await;
    assert!(text(&written).contains("seen-first"), "{}", text(&written));
    // The stateless client opened no MCP session on the server.
    assert_eq!(server.health().await["mcp_sessions"], 0);
    second.cancel().await.expect("second client closes");
}

/// When an idle MCP session expires, its client gets 404, the signal to initialize again.
/// The terminal session it opened keeps running for every other client.
#[tokio::test]
async fn http_session_outlives_mcp_session_expiry() {
    let server = HttpServer::start(&["--client-idle-timeout", "1"], &[]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let initialized = server.raw(&post_mcp(&host, &[], INITIALIZE)).await;
    let session = initialized
        .header("mcp-session-id")
        .expect("session id")
        .to_owned();
    let session_header = format!("Mcp-Session-Id: {session}");
    let notification = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    server
        .raw(&post_mcp(&host, &[&session_header], notification))
        .await;
    let open = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "session_open",
        "arguments": {"command": "while :; do date +tick-%s%N; sleep 0.2; done"}}})
    .to_string();
    let opened = server
        .raw(&post_mcp(&host, &[&session_header], &open))
        .await;
    assert_eq!(opened.status, 200, "{opened:?}");

    // The MCP session expires after one idle second; allow ten.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.health().await["mcp_sessions"] != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.health().await["mcp_sessions"], 0);
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let stale = server.raw(&post_mcp(&host, &[&session_header], list)).await;
    assert_eq!(stale.status, 404, "{stale:?}");

    let other = server.connect(None).await;
    let listed = ok_tool(&other, "session_list", json!({})).await;
    assert_eq!(listed["sessions"][0]["state"], "running", "{listed}");
    let id = listed["sessions"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = ok_tool(
        &other,
        "session_read",
        json!({"session_id": id, "view": "screen", "wait_for": "tick-", "timeout": 5}),
    )
    .await;
    assert_eq!(read["reason"], "matched", "{}", text(&read));
    other.cancel().await.expect("client closes");
}

/// A foreign Origin gets 403 on initialize and on a tool call with a valid MCP session
/// id, and neither creates anything. The server's own origin is accepted.
#[tokio::test]
async fn http_foreign_origin_is_rejected() {
    let server = HttpServer::start(&[], &[]).await;
    let host = format!("127.0.0.1:{}", server.port);
    for origin in [
        "http://evil.example".to_owned(),
        "null".to_owned(),
        format!("http://127.0.0.1:{}", server.port + 1),
        format!("https://127.0.0.1:{}", server.port),
    ] {
        let header = format!("Origin: {origin}");
        let response = server.raw(&post_mcp(&host, &[&header], INITIALIZE)).await;
        assert_eq!(response.status, 403, "{origin}: {response:?}");
        assert_eq!(response.header("mcp-session-id"), None, "{origin}");
        assert!(
            server
                .stderr()
                .contains(&format!("Origin {origin:?} is not accepted")),
            "{origin}: {}",
            server.stderr()
        );
    }
    assert_eq!(server.health().await["mcp_sessions"], 0);

    // A session id obtained without Origin does not let a foreign page open a session.
    let accepted = server.raw(&post_mcp(&host, &[], INITIALIZE)).await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    let session = accepted
        .header("mcp-session-id")
        .expect("session id")
        .to_owned();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let session_header = format!("Mcp-Session-Id: {session}");
    let response = server
        .raw(&post_mcp(&host, &[&session_header], initialized))
        .await;
    assert_eq!(response.status, 202, "{response:?}");
    let name = marker("origin");
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "session_open", "arguments": marker_argv(&name)}})
    .to_string();
    let response = server
        .raw(&post_mcp(
            &host,
            &[&session_header, "Origin: http://evil.example"],
            &call,
        ))
        .await;
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(server.health().await["sessions"], 0);
    assert!(pids_matching(&name).is_empty());

    let own = format!("Origin: http://localhost:{}", server.port);
    let response = server
        .raw(&post_mcp(&host, &[&session_header, &own], &call))
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response.body.contains(r#""session_id""#),
        "{}",
        response.body
    );
    assert_eq!(server.health().await["sessions"], 1);
}

/// A configured origin is accepted; others still get 403.
#[tokio::test]
async fn http_allowed_origin_is_added() {
    let server = HttpServer::start(&["--allowed-origin", "http://ide.example"], &[]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let response = server
        .raw(&post_mcp(
            &host,
            &["Origin: http://ide.example"],
            INITIALIZE,
        ))
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    let response = server
        .raw(&post_mcp(
            &host,
            &["Origin: http://evil.example"],
            INITIALIZE,
        ))
        .await;
    assert_eq!(response.status, 403, "{response:?}");
}

/// A foreign Host, as DNS rebinding sends it, gets 403 and creates no MCP session;
/// loopback names are accepted.
#[tokio::test]
async fn http_foreign_host_is_rejected() {
    let server = HttpServer::start(&[], &[]).await;
    let port = server.port;
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.rebind.example:{port}"),
        format!("evil@127.0.0.1:{port}"),
        format!("127.0.0.1:{port}.evil.example"),
        String::new(),
    ] {
        let response = server.raw(&post_mcp(&host, &[], INITIALIZE)).await;
        assert_eq!(response.status, 403, "{host:?}: {response:?}");
        assert_eq!(response.header("mcp-session-id"), None, "{host:?}");
    }
    assert_eq!(server.health().await["mcp_sessions"], 0);
    assert!(
        server
            .stderr()
            .contains(&format!("Host \"evil.example:{port}\" is not accepted")),
        "{}",
        server.stderr()
    );
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let response = server.raw(&post_mcp(&host, &[], INITIALIZE)).await;
        assert_eq!(response.status, 200, "{host}: {response:?}");
    }
    assert_eq!(server.health().await["mcp_sessions"], 2);
}

/// With a token, `/mcp` needs it: 401 without it, 429 after a burst of wrong ones.
/// `/healthz` does not need it. The token is not logged and not passed to sessions.
#[tokio::test]
async fn http_token_is_required_when_set() {
    let token = format!("tok-{}-{}", std::process::id(), uuid_like());
    let server = HttpServer::start(&[], &[("MCP_AUTH_TOKEN", &token)]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let wrong = format!("Authorization: Bearer {}", "x".repeat(token.len()));
    for headers in [
        vec![],
        vec![wrong.as_str()],
        vec!["Authorization: Basic dXNlcjpwYXNz"],
    ] {
        let response = server.raw(&post_mcp(&host, &headers, INITIALIZE)).await;
        assert_eq!(response.status, 401, "{headers:?}: {response:?}");
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert_eq!(response.header("mcp-session-id"), None);
    }
    assert_eq!(server.health().await["mcp_sessions"], 0);
    let right = format!("Authorization: Bearer {token}");
    let response = server.raw(&post_mcp(&host, &[&right], INITIALIZE)).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.header("mcp-session-id").is_some());

    let client = server.connect(Some(&token)).await;
    let opened = ok_tool(
        &client,
        "session_open",
        json!({"argv": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ "}}),
    )
    .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    let env = ok_tool(
        &client,
        "session_write",
        json!({"session_id": id, "input": "env | grep -c MCP_AUTH_TOKEN", "submit": true, "settle": 0.3}),
    )
    .await;
    assert!(
        text(&env).lines().any(|line| line.trim() == "0"),
        "{}",
        text(&env)
    );

    // A burst of wrong tokens is throttled; the right token still gets through.
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(
            server
                .raw(&post_mcp(&host, &[&wrong], INITIALIZE))
                .await
                .status,
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let response = server.raw(&post_mcp(&host, &[&right], INITIALIZE)).await;
    assert_eq!(response.status, 200, "{response:?}");

    client.cancel().await.expect("client closes");
    assert!(!server.stderr().contains(&token), "the token was logged");
}

/// The token file is read and trimmed, and one that other users can read gets a warning.
#[tokio::test]
async fn http_token_file_is_used() {
    let dir = TempDir::new("token");
    let path = dir.path.join("token");
    std::fs::write(&path, "file-token-value\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = HttpServer::start(&["--auth-token-file", path.to_str().unwrap()], &[]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let response = server
        .raw(&post_mcp(
            &host,
            &["Authorization: Bearer file-token-value"],
            INITIALIZE,
        ))
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    let response = server.raw(&post_mcp(&host, &[], INITIALIZE)).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert!(!server.stderr().contains("readable by other users"));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shared = HttpServer::start(&["--auth-token-file", path.to_str().unwrap()], &[]).await;
    let stderr = shared.stderr();
    assert!(stderr.contains("readable by other users"), "{stderr}");
    assert!(stderr.contains("mode=0644"), "{stderr}");
    assert!(!stderr.contains("file-token-value"), "{stderr}");
}

/// `/healthz` answers 200 with the version and counts.
#[tokio::test]
async fn http_healthz_reports_version_and_sessions() {
    let server = HttpServer::start(&[], &[]).await;
    let health = server.health().await;
    assert_eq!(
        health,
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "sessions": 0, "mcp_sessions": 0})
    );
}

/// Binding a non-loopback address without a token exits non-zero within 2 s, naming
/// the ways to set one.
#[tokio::test]
async fn http_wildcard_bind_without_token_is_rejected() {
    for host in ["0.0.0.0", "::"] {
        let started = Instant::now();
        let mut server = HttpServer::spawn(&["--host", host], &[]);
        let status = tokio::time::timeout(Duration::from_secs(2), server.child.wait())
            .await
            .unwrap_or_else(|_| panic!("--host {host} without a token was still running after 2 s"))
            .expect("wait for the server");
        assert!(!status.success(), "{host}: {status:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let stderr = server.stderr();
        assert!(stderr.contains("MCP_AUTH_TOKEN"), "{stderr}");
        assert!(stderr.contains("--auth-token-file"), "{stderr}");
        assert!(stderr.contains(host), "{stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
    }
}

/// SIGTERM stops the server with status 0 and ends every session's processes.
#[tokio::test]
async fn http_sigterm_exits_zero_and_ends_sessions() {
    let mut server = HttpServer::start(&[], &[]).await;
    let client = server.connect(None).await;
    let name = marker("sigterm");
    ok_tool(&client, "session_open", marker_argv(&name)).await;
    assert!(
        wait_until(Duration::from_secs(5), || !pids_matching(&name).is_empty()).await,
        "marker process never started"
    );
    let started = Instant::now();
    // SAFETY: kill has no memory effects; the pid is the server this test started.
    unsafe { libc::kill(server.pid as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("server exits after SIGTERM")
        .expect("wait for the server");
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!pid_alive(server.pid));
    assert!(
        pids_matching(&name).is_empty(),
        "a session process survived"
    );
    drop(client);
}

/// Unknown MCP session ids get 404 and a missing one on a non-initialize request 400.
#[tokio::test]
async fn http_unknown_and_missing_session_ids() {
    let server = HttpServer::start(&[], &[]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let response = server
        .raw(&post_mcp(&host, &["Mcp-Session-Id: does-not-exist"], list))
        .await;
    assert_eq!(response.status, 404, "{response:?}");
    let response = server.raw(&post_mcp(&host, &[], list)).await;
    assert_eq!(response.status, 400, "{response:?}");

    // DELETE ends an MCP session; its id is unknown afterwards.
    let response = server.raw(&post_mcp(&host, &[], INITIALIZE)).await;
    let session = response
        .header("mcp-session-id")
        .expect("session id")
        .to_owned();
    let delete = format!("DELETE /mcp HTTP/1.1\r\nHost: {host}\r\nMcp-Session-Id: {session}");
    assert_eq!(server.raw(&delete).await.status, 204);
    let header = format!("Mcp-Session-Id: {session}");
    let response = server.raw(&post_mcp(&host, &[&header], list)).await;
    assert_eq!(response.status, 404, "{response:?}");
    assert_eq!(server.health().await["mcp_sessions"], 0);
}

/// Bodies over 4 MiB get 413, whether declared up front or not.
#[tokio::test]
async fn http_oversized_bodies_are_rejected() {
    let server = HttpServer::start(&[], &[]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "A".repeat(5 << 20)
    );
    let response = server.raw(&post_mcp(&host, &[], &big)).await;
    assert_eq!(response.status, 413, "status {}", response.status);

    // Without a declared length the limit holds while the body is read.
    let chunked = format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let response = server.raw(&chunked).await;
    assert_eq!(response.status, 413, "status {}", response.status);
    assert_eq!(server.health().await["status"], "ok");

    // Only the headers arrive: the declared size alone is rejected at once.
    let started = Instant::now();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: 10000000000"
    );
    let response = server.raw(&head).await;
    assert_eq!(response.status, 413, "{response:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// Past `--max-clients`, a new initialize gets 503 with a message, not a hang, while
/// existing MCP sessions keep working.
#[tokio::test]
async fn http_mcp_session_bound_answers_503() {
    let server = HttpServer::start(&["--max-clients", "1"], &[]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let client = server.connect(None).await;
    let response = server.raw(&post_mcp(&host, &[], INITIALIZE)).await;
    assert_eq!(response.status, 503, "{response:?}");
    assert!(response.body.contains("--max-clients"), "{}", response.body);
    let result = call_tool(&client, "session_list", json!({})).await;
    assert_ne!(result.is_error, Some(true));
    client.cancel().await.expect("client closes");
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or(0)
}
