//! Odd and hostile input: clears, huge numbers, programs that never read, closed pipes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{BINARY, Server, have, pid_alive, text, wait_until};

/// Output printed after `clear` is part of the write's result, and `wait_for` matches it.
#[tokio::test]
async fn output_after_clear_is_returned() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    server.type_line(&id, "echo before").await;
    for command in [
        "clear; echo after-clear",
        "tput clear; echo after-clear",
        "printf '\\033[H\\033[J'; echo after-clear",
    ] {
        let result = server.type_line(&id, command).await;
        assert!(
            text(&result).contains("\nafter-clear\n") || text(&result).starts_with("after-clear\n"),
            "{command}: {:?}",
            text(&result)
        );
    }
    let waited = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "clear; sleep 0.3; echo BUILD-OK", "submit": true, "wait_for": "^BUILD-OK$", "timeout": 10}),
        )
        .await;
    assert_eq!(waited["reason"], "matched", "{}", text(&waited));
    server.stop().await;
}

/// Durations far beyond the cap are clamped, not a crash.
#[tokio::test]
async fn huge_durations_are_clamped() {
    let server = Server::start_with(&["--command-timeout", "2"], &[]).await;
    let id = server.open_bash(60, 10).await;
    let started = Instant::now();
    let result = server
        .ok(
            "session_read",
            json!({"session_id": id, "wait_for": "^never$", "timeout": 1e20, "settle": 1e20}),
        )
        .await;
    assert_eq!(result["reason"], "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let closed = server
        .ok("session_close", json!({"session_id": id, "grace": 1e20}))
        .await;
    assert_eq!(closed["closed"], true);
    server.stop().await;
}

/// A write to a program that never reads is cut short by close, and close returns.
#[tokio::test]
async fn close_ends_a_stuck_write() {
    if !have("python3") {
        return;
    }
    let server = Server::start().await;
    let opened = server
        .ok("session_open", json!({"argv": ["python3", "-c", "import tty,time; tty.setraw(0); print('raw', flush=True); time.sleep(1000)"]}))
        .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    server
        .ok(
            "session_read",
            json!({"session_id": id, "wait_for": "raw", "timeout": 10}),
        )
        .await;
    let write = server.call(
        "session_write",
        json!({"session_id": id, "input": "x".repeat(200_000)}),
    );
    let close = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let closed = server.ok("session_close", json!({"session_id": id})).await;
        (closed, started.elapsed())
    };
    let (written, (closed, elapsed)) = tokio::join!(write, close);
    assert_eq!(
        written.is_error,
        Some(true),
        "the write cannot have completed"
    );
    let message = format!("{:?}", written.content);
    assert!(message.contains("closed while writing"), "{message}");
    assert_eq!(closed["closed"], true);
    assert!(elapsed < Duration::from_secs(5), "close took {elapsed:?}");
    server.stop().await;
}

/// A program that floods terminal queries and never reads the replies keeps its
/// output flowing.
#[tokio::test]
async fn query_flood_does_not_stall_output() {
    if !have("python3") {
        return;
    }
    let server = Server::start().await;
    let script = "import os,tty; tty.setraw(0); os.write(1, b'\\x1b[6n' * 20000); os.write(1, b'WROTE-ALL\\r\\n'); import time; time.sleep(100)";
    let opened = server
        .ok("session_open", json!({"argv": ["python3", "-c", script]}))
        .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    let result = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "screen", "wait_for": "WROTE-ALL", "timeout": 20}),
        )
        .await;
    assert_eq!(result["reason"], "matched");
    let started = Instant::now();
    server.ok("session_close", json!({"session_id": id})).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}

/// `echo` is false only at a hidden-input prompt, not at a readline prompt.
#[tokio::test]
async fn echo_is_false_only_for_hidden_input() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    let prompt = server.type_line(&id, "ls /").await;
    assert_eq!(prompt["echo"], true, "a readline prompt echoes");
    let hidden = server.type_line(&id, "read -s -p 'Password: ' pw").await;
    assert_eq!(hidden["echo"], false, "read -s hides input");
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "hunter2", "submit": true}),
        )
        .await;
    let screen = server.screen(&id).await;
    assert!(!text(&screen).contains("hunter2"));
    assert_eq!(screen["echo"], true);
    server.stop().await;
}

/// A write that names only a timeout returns once the shell is back at its prompt.
#[tokio::test]
async fn write_with_timeout_only_returns_at_prompt() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    let started = Instant::now();
    let result = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "echo quick", "submit": true, "timeout": 10}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(result["reason"], "prompt");
    assert_eq!(result["state"], "idle");
    server.stop().await;
}

/// A cursor from another session is rejected before anything is typed.
#[tokio::test]
async fn foreign_cursor_is_rejected() {
    let server = Server::start().await;
    let first = server.open_bash(60, 10).await;
    let second = server.open_bash(60, 10).await;
    let cursor = server.screen(&first).await["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let error = server
        .err(
            "session_write",
            json!({"session_id": second, "input": "echo typed", "since": cursor}),
        )
        .await;
    assert!(error.contains("belongs to another session"), "{error}");
    let screen = server.screen(&second).await;
    assert_eq!(text(&screen), "$");
    server.stop().await;
}

/// Starts the server with raw pipes and completes the handshake.
fn start_raw(
    stderr: Stdio,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = Command::new(BINARY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    writeln!(stdin, "{initialize}").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    (child, stdin, stdout)
}

fn open_session(
    stdin: &mut std::process::ChildStdin,
    stdout: &mut BufReader<std::process::ChildStdout>,
) -> u32 {
    let open = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "session_open", "arguments": {"argv": ["sleep", "600"]}}});
    writeln!(stdin, "{open}").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let response: Value = serde_json::from_str(&line).unwrap();
    response["result"]["structuredContent"]["pid"]
        .as_u64()
        .expect("session pid") as u32
}

fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A client that stops reading stdout ends the server like end of stdin does.
#[tokio::test]
async fn closed_stdout_shuts_down() {
    let (mut child, stdin, mut stdout) = start_raw(Stdio::null());
    let mut stdin = stdin;
    let session = open_session(&mut stdin, &mut stdout);
    drop(stdout);
    assert_eq!(wait_exit(&mut child), Some(0));
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(session)).await,
        "session survived"
    );
    drop(stdin);
}

/// A client that closed stderr still gets a working server.
#[tokio::test]
async fn closed_stderr_is_harmless() {
    let (read_end, write_end) = std::io::pipe().unwrap();
    drop(read_end);
    let (mut child, mut stdin, mut stdout) = start_raw(Stdio::from(write_end));
    let session = open_session(&mut stdin, &mut stdout);
    assert!(pid_alive(session));
    drop(stdin);
    assert_eq!(wait_exit(&mut child), Some(0));
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(session)).await,
        "session survived"
    );
}
