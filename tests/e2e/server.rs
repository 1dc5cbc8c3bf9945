//! The server process: stdout discipline, shutdown, waits, cancellation, concurrency.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use serde_json::{Value, json};

use crate::harness::{
    BINARY, Server, TempDir, children, fd_count, pid_alive, pids_matching, text, thread_count,
    wait_until,
};

/// Every stdout line is one JSON-RPC message, even at trace level; logs go to stderr
/// without colour codes.
#[test]
fn stdout_carries_only_json_rpc() {
    // Logs go to a file, because an undrained pipe would fill and stall the server.
    let dir = TempDir::new("stdout");
    let stderr_path = dir.path.join("stderr.log");
    let mut child = Command::new(BINARY)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("server starts");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines();
    let mut send = |message: Value| {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    };
    let mut next_response = |id: u64| -> Value {
        loop {
            let line = lines
                .next()
                .expect("a response line")
                .expect("readable stdout");
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line:?}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == id {
                return message;
            }
        }
    };
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}),
    );
    next_response(1);
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let tools = next_response(2);
    // What clients put in front of the model on every turn: names, descriptions and
    // input schemas.
    let size: usize = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| json!({"name": tool["name"], "description": tool["description"], "inputSchema": tool["inputSchema"]}).to_string().len())
        .sum();
    assert!(
        size < 6 * 1024,
        "tool names, descriptions and input schemas are {size} bytes of JSON"
    );
    send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "session_open", "arguments": {
        "command": "ls -la /; printf '\\033[31mred\\033[0m\\n'; sleep 0.5"}}}),
    );
    let opened = next_response(3);
    let id = opened["result"]["structuredContent"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    send(
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "session_read", "arguments": {
        "session_id": id, "view": "output", "wait_for": "^red$", "timeout": 10}}}),
    );
    let read = next_response(4);
    let text = read["result"]["structuredContent"]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("\nred\n") || text.ends_with("\nred"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "escape sequences leaked into text"
    );
    send(
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "session_close", "arguments": {"session_id": id}}}),
    );
    next_response(5);
    drop(stdin);
    for line in lines {
        let line = line.unwrap();
        serde_json::from_str::<Value>(&line)
            .unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line:?}"));
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace logging reached stderr"
    );
    assert!(!stderr.contains('\u{1b}'), "log lines contain colour codes");
}

/// End of stdin closes every session, including background jobs, and exits 0 quickly.
#[tokio::test]
async fn end_of_stdin_closes_sessions() {
    let server = Server::start().await;
    let mut shells = Vec::new();
    let marker = format!("{}", 7000 + std::process::id() % 1000);
    for _ in 0..3 {
        let id = server.open_bash(60, 10).await;
        let listed = server.ok("session_list", json!({})).await;
        let pid = listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["session_id"] == id.as_str())
            .unwrap()["pid"]
            .as_u64()
            .unwrap() as u32;
        shells.push((id, pid));
    }
    server
        .type_line(&shells[0].0, &format!("sleep 1{marker} &"))
        .await;
    let needle = format!("sleep 1{marker}");
    assert!(
        wait_until(Duration::from_secs(5), || !pids_matching(&needle)
            .is_empty())
        .await
    );
    let server_pid = server.pid;
    let cpu_before = cpu_ticks(server_pid);
    let started = Instant::now();
    let _ = server.client.cancel().await;
    // Sample CPU time until the process is gone; the last sample is the total.
    let mut cpu_after = cpu_before;
    while pid_alive(server_pid) && started.elapsed() < Duration::from_secs(10) {
        cpu_after = cpu_ticks(server_pid).max(cpu_after);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    assert!(!pid_alive(server_pid), "server still runs");
    assert!(elapsed < Duration::from_secs(5), "exit took {elapsed:?}");
    // Clock ticks are 10 ms: allow 5 % of the shutdown time plus three ticks of noise.
    let cpu = Duration::from_millis((cpu_after - cpu_before) * 10);
    assert!(
        cpu <= elapsed / 20 + Duration::from_millis(30),
        "shutdown used {cpu:?} of CPU in {elapsed:?}"
    );
    for (_, pid) in &shells {
        assert!(!pid_alive(*pid), "shell {pid} survived");
    }
    assert!(pids_matching(&needle).is_empty(), "background job survived");
}

/// The exit status after end of stdin is 0, and nothing but JSON reached stdout.
#[test]
fn end_of_stdin_exits_zero() {
    let mut child = Command::new(BINARY)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// SIGTERM and SIGINT close sessions and exit 0.
#[tokio::test]
async fn signals_shut_down_cleanly() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let server = Server::start().await;
        let id = server.open_bash(60, 10).await;
        let listed = server.ok("session_list", json!({})).await;
        assert_eq!(listed["sessions"][0]["session_id"], id.as_str());
        let shell = listed["sessions"][0]["pid"].as_u64().unwrap() as u32;
        // SAFETY: kill has no memory effects; the pid is the server this test started.
        unsafe { libc::kill(server.pid as i32, signal) };
        assert!(
            wait_until(Duration::from_secs(10), || !pid_alive(server.pid)).await,
            "server ignored signal {signal}"
        );
        assert!(!pid_alive(shell), "session shell survived signal {signal}");
        let stderr = server.stderr();
        assert!(stderr.contains("shutting down"), "{stderr}");
        assert!(stderr.contains("server stopped"), "{stderr}");
    }
}

/// Waits return early on output, end at their bound with state running, and stop when
/// cancelled.
#[tokio::test]
async fn waits_are_bounded_and_cancellable() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;

    // (a) A quick command returns long before its 30 s bound.
    let started = Instant::now();
    let result = server
        .ok("session_write", json!({"session_id": id, "input": "echo quick", "submit": true, "settle": 0.3, "timeout": 30}))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(text(&result).contains("\nquick\n"), "{}", text(&result));

    // (b) A long command returns at its 5 s bound, still running.
    let started = Instant::now();
    let result = server
        .ok("session_write", json!({"session_id": id, "input": "sleep 60", "submit": true, "wait_for": "^$never", "timeout": 5}))
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(6),
        "took {elapsed:?}"
    );
    assert_eq!(result["reason"], "timeout");
    assert_eq!(result["state"], "running");
    server
        .ok("session_write", json!({"session_id": id, "keys": ["C-c"]}))
        .await;

    // (c) A cancelled read stops waiting at once, and the session stays usable.
    let params = CallToolRequestParams::new("session_read").with_arguments(
        json!({"session_id": id, "wait_for": "^$never", "timeout": 60})
            .as_object()
            .unwrap()
            .clone(),
    );
    let handle = server
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cancelled_at = Instant::now();
    handle.cancel(Some("test".into())).await.unwrap();
    let stderr_path = server.stderr_path.clone();
    let stopped = wait_until(Duration::from_secs(2), || {
        std::fs::read_to_string(&stderr_path)
            .unwrap_or_default()
            .contains("the request was cancelled")
    })
    .await;
    assert!(stopped, "the server kept waiting after the cancellation");
    assert!(cancelled_at.elapsed() < Duration::from_secs(2));
    let result = server.type_line(&id, "echo still-usable").await;
    assert!(
        text(&result).contains("\nstill-usable\n"),
        "{}",
        text(&result)
    );

    // (d) No wait: the snapshot returns at once, output may be missing.
    let started = Instant::now();
    server.ok("session_read", json!({"session_id": id})).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    server.stop().await;
}

/// Calls on other sessions, a list and a resize do not wait for a pending long read.
#[tokio::test]
async fn overlapping_calls_do_not_block() {
    let server = Server::start().await;
    let a = server.open_bash(60, 10).await;
    server
        .ok(
            "session_write",
            json!({"session_id": a, "input": "sleep 100", "submit": true}),
        )
        .await;
    let long_read = server.call(
        "session_read",
        json!({"session_id": a, "wait_for": "^$never", "timeout": 20}),
    );
    let others = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let b = server.open_bash(60, 10).await;
        server
            .ok(
                "session_write",
                json!({"session_id": b, "input": "echo hi", "submit": true}),
            )
            .await;
        server.ok("session_read", json!({"session_id": b})).await;
        server
            .ok(
                "session_resize",
                json!({"session_id": a, "cols": 70, "rows": 12}),
            )
            .await;
        server.ok("session_list", json!({})).await;
        let same = server
            .ok("session_read", json!({"session_id": a, "view": "screen"}))
            .await;
        assert_eq!(same["cols"], 70);
        started.elapsed()
    };
    let (long, elapsed) = tokio::join!(long_read, others);
    // Five calls, each well under a second; open and write include their settle times.
    assert!(
        elapsed < Duration::from_secs(4),
        "calls took {elapsed:?} while a read was pending"
    );
    assert_ne!(long.is_error, Some(true));
    server.stop().await;
}

/// Fifty sessions at once see only their own output, and leave no descriptors, threads
/// or children behind, over five rounds.
#[tokio::test]
async fn fifty_sessions_leave_no_leaks() {
    let server = Server::start_with(&["--max-sessions", "64", "--kill-grace", "0.5"], &[]).await;
    // One round first, so lazily created runtime threads exist in the baseline.
    let baseline = |pid| (fd_count(pid), thread_count(pid), children(pid).len());
    let mut reference = None;
    for round in 0..5 {
        let opens = (0..50).map(|n| {
            let server = &server;
            async move {
                let command =
                    format!("echo start-{round}-{n}; sleep 0.5; echo done-{round}-{n}; sleep 30");
                let opened = server.ok("session_open", json!({"command": command})).await;
                (n, opened["session_id"].as_str().unwrap().to_owned())
            }
        });
        let sessions = futures::future::join_all(opens).await;
        for (n, id) in &sessions {
            let result = server
                .ok("session_read", json!({"session_id": id, "view": "output", "since": null, "wait_for": format!("done-{round}-{n}"), "timeout": 20}))
                .await;
            let body = text(&result);
            assert!(
                body.contains(&format!("start-{round}-{n}\ndone-{round}-{n}")),
                "{body}"
            );
            assert_eq!(
                body.matches("start-").count(),
                1,
                "other sessions' output leaked: {body}"
            );
        }
        let closes = sessions
            .iter()
            .map(|(_, id)| server.ok("session_close", json!({"session_id": id})));
        futures::future::join_all(closes).await;
        let counts = baseline(server.pid);
        match reference {
            None => reference = Some(counts),
            Some((fds, threads, kids)) => {
                // Each closed session's reader, parser and waiter threads end on their
                // own; the bound only stops a hang when other tests load the machine.
                let settled = wait_until(Duration::from_secs(15), || {
                    let (f, t, c) = baseline(server.pid);
                    f <= fds + 2 && t <= threads + 2 && c <= kids
                })
                .await;
                assert!(
                    settled,
                    "round {round}: {:?} vs baseline {:?}",
                    baseline(server.pid),
                    (fds, threads, kids)
                );
            }
        }
        assert!(children(server.pid).iter().all(|(_, state)| *state != 'Z'));
    }
    server.stop().await;
}

/// The session limit is enforced with an error that names it.
#[tokio::test]
async fn session_limit_names_the_limit() {
    let server = Server::start_with(&["--max-sessions", "2"], &[]).await;
    server.open_bash(40, 5).await;
    server.open_bash(40, 5).await;
    let error = server.err("session_open", json!({})).await;
    assert!(error.contains("2 sessions"), "{error}");
    assert!(error.contains("session_close"), "{error}");
    server.stop().await;
}

/// The idle reaper closes a quiet session and later calls report why.
#[tokio::test]
async fn idle_session_is_reaped() {
    let server = Server::start_with(&["--idle-timeout", "1"], &[]).await;
    let id = server.open_bash(40, 5).await;
    let busy = server
        .ok(
            "session_open",
            json!({"command": "while :; do echo tick; sleep 0.2; done"}),
        )
        .await;
    let busy_id = busy["session_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let error = server.err("session_read", json!({"session_id": id})).await;
    assert!(error.contains("closed by the idle timeout"), "{error}");
    let alive = server
        .ok("session_read", json!({"session_id": busy_id}))
        .await;
    assert_eq!(alive["state"], "running", "output counts as activity");
    server.stop().await;
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let system: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    user + system
}
