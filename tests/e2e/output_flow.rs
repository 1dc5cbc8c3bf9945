//! Output on its way from the PTY to the screen: floods far larger than the terminal's
//! buffer and the reader's queue, end of file right after a burst, closing mid-flood,
//! and replies to terminal queries.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Server, pid_alive, text, wait_until};

/// Lines printed by the floods: about 590 KB, many times the PTY buffer.
const FLOOD_LINES: u32 = 100_000;

/// Starts a server whose transcript keeps every line of a flood.
async fn start_roomy_server() -> Server {
    Server::start_with(&["--transcript-bytes", "33554432"], &[]).await
}

/// Reads the whole retained output of a session.
async fn whole_output(server: &Server, id: &str) -> String {
    let result = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "output", "max_chars": 1_000_000}),
        )
        .await;
    assert!(
        result.get("truncated").is_none(),
        "output was cut: {}",
        result["truncated"]
    );
    text(&result).to_owned()
}

/// Opens a session running `yes flooding` and returns its id and pid.
async fn open_flood(server: &Server) -> (String, u32) {
    let opened = server
        .ok("session_open", json!({"argv": ["yes", "flooding"]}))
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let pid = opened["pid"].as_u64().expect("pid") as u32;
    (id, pid)
}

/// Asserts that `lines` contains the numbers 1 to `count`, each once and in order.
fn assert_numbered(lines: &[&str], count: u32) {
    assert_eq!(
        lines.len(),
        count as usize,
        "first: {:?}, last: {:?}",
        lines.first(),
        lines.last()
    );
    for (expected, line) in (1..=count).zip(lines) {
        assert_eq!(*line, expected.to_string(), "line {expected}");
    }
}

#[tokio::test]
async fn flood_arrives_complete_and_in_order() {
    let server = start_roomy_server().await;
    let id = server.open_bash(80, 24).await;
    let result = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": format!("seq 1 {FLOOD_LINES}; echo FLOOD''-DONE"), "submit": true,
                   "wait_for": "(?m)^FLOOD-DONE$", "timeout": 30}),
        )
        .await;
    assert_eq!(result["reason"], "matched");
    let output = whole_output(&server, &id).await;
    let lines: Vec<&str> = output.lines().collect();
    let start = lines
        .iter()
        .position(|line| *line == "1")
        .expect("the flood's first line");
    let end = lines
        .iter()
        .position(|line| *line == "FLOOD-DONE")
        .expect("the end marker");
    assert_numbered(&lines[start..end], FLOOD_LINES);
    server.stop().await;
}

#[tokio::test]
async fn output_before_exit_is_complete() {
    let server = start_roomy_server().await;
    let opened = server
        .ok(
            "session_open",
            json!({"argv": ["seq", "1", FLOOD_LINES.to_string()]}),
        )
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let exited = server
        .ok(
            "session_read",
            json!({"session_id": id, "wait_for": "^never$", "timeout": 30}),
        )
        .await;
    assert_eq!(exited["reason"], "exited");
    assert_eq!(exited["exit_code"], 0);
    let output = whole_output(&server, &id).await;
    let lines: Vec<&str> = output.lines().collect();
    assert_numbered(&lines, FLOOD_LINES);
    server.stop().await;
}

#[tokio::test]
async fn close_during_flood_is_prompt() {
    let server = Server::start().await;
    let (id, pid) = open_flood(&server).await;
    server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "screen", "wait_for": "flooding", "timeout": 10}),
        )
        .await;
    let started = Instant::now();
    server.ok("session_close", json!({"session_id": id})).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "close took {elapsed:?}");
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid)).await,
        "yes (pid {pid}) still runs after close"
    );
    server.stop().await;
}

#[tokio::test]
async fn query_after_flood_gets_reply() {
    let server = Server::start().await;
    let id = server.open_bash(80, 24).await;
    // bash reads the reply in cbreak mode, up to the report's final `R`.
    let line = format!(
        "seq 1 {FLOOD_LINES} >/dev/tty; printf '\\033[6n'; IFS= read -rs -d R reply; echo \"REPLY=${{reply#*[}}\""
    );
    let result = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": line, "submit": true,
                   "wait_for": "REPLY=\\d+;\\d+", "timeout": 30}),
        )
        .await;
    assert_eq!(result["reason"], "matched", "{}", text(&result));
    let screen = server.screen(&id).await;
    // The report comes after the flood scrolled the screen, so the cursor is on the last
    // row, in the first column.
    assert!(text(&screen).contains("REPLY=24;1"), "{}", text(&screen));
    server.stop().await;
}

/// Reads of a session return while its program floods the terminal. The parser takes
/// the session's state lock for every batch. Without a hand-off between batches, one
/// read waited up to 39 s for the lock on a 2-core machine.
#[tokio::test]
async fn flood_leaves_reads_responsive() {
    let server = Server::start().await;
    let (id, _) = open_flood(&server).await;
    for _ in 0..20 {
        let started = Instant::now();
        let read = server
            .ok("session_read", json!({"session_id": id, "view": "screen"}))
            .await;
        assert!(text(&read).contains("flooding"), "{}", text(&read));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a read during the flood took {:?}",
            started.elapsed()
        );
    }
    server
        .ok("session_close", json!({"session_id": id, "grace": 1}))
        .await;
    server.stop().await;
}
