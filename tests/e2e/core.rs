//! The main job: open, type, read, resize, close, and the errors around it.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Server, pid_alive, rows, text, wait_until};

#[tokio::test]
async fn echo_reads_back() {
    let server = Server::start().await;
    let id = server.open_bash(80, 24).await;
    let result = server.type_line(&id, "echo hello-$((6*7))").await;
    assert_eq!(result["state"], "idle");
    assert_eq!(result["reason"], "prompt");
    assert_eq!(result["view"], "output");
    assert!(
        text(&result).contains("$ echo hello-$((6*7))\nhello-42\n$"),
        "{}",
        text(&result)
    );
    server.stop().await;
}

#[tokio::test]
async fn less_uses_alternate_screen_and_quit_restores() {
    let server = Server::start().await;
    let id = server.open_bash(80, 24).await;
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "seq 1 300 | less", "submit": true}),
        )
        .await;
    let page = server.wait_screen(&id, r"(?m)^:$", 10.0).await;
    assert_eq!(page["alt_screen"], true);
    let page_rows = rows(&page);
    assert_eq!(page_rows.len(), 24, "{page_rows:?}");
    for (index, row) in page_rows[..23].iter().enumerate() {
        assert_eq!(row, &(index + 1).to_string());
    }
    assert_eq!(page_rows[23], ":");

    let auto = server.ok("session_read", json!({"session_id": id})).await;
    assert_eq!(
        auto["view"], "screen",
        "auto shows the screen while a full-screen program runs"
    );

    let quit = server
        .ok("session_write", json!({"session_id": id, "input": "q"}))
        .await;
    assert_eq!(quit["alt_screen"], false);
    let screen = server.screen(&id).await;
    assert_eq!(rows(&screen), vec!["$ seq 1 300 | less", "$"]);
    server.stop().await;
}

#[tokio::test]
async fn resize_reaches_stty_size() {
    let server = Server::start().await;
    let id = server.open_bash(80, 24).await;
    let resized = server
        .ok(
            "session_resize",
            json!({"session_id": id, "cols": 132, "rows": 40}),
        )
        .await;
    assert_eq!(resized["cols"], 132);
    assert_eq!(resized["rows"], 40);
    let result = server.type_line(&id, "stty size").await;
    assert!(text(&result).contains("\n40 132\n"), "{}", text(&result));
    server.stop().await;
}

#[tokio::test]
async fn close_ends_shell_and_read_says_closed() {
    let server = Server::start().await;
    let opened = server
        .ok(
            "session_open",
            json!({"argv": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ "}}),
        )
        .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    let pid = opened["pid"].as_u64().unwrap() as u32;
    assert!(pid_alive(pid));

    let closed = server.ok("session_close", json!({"session_id": id})).await;
    assert_eq!(closed["closed"], true);
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid)).await,
        "shell {pid} still runs"
    );

    let error = server.err("session_read", json!({"session_id": id})).await;
    assert!(error.contains("closed by session_close at 20"), "{error}");
    assert!(error.contains("open a new session"), "{error}");
    let listed = server.ok("session_list", json!({})).await;
    assert_eq!(listed["sessions"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn missing_cwd_is_an_error() {
    let server = Server::start().await;
    let error = server
        .err(
            "session_open",
            json!({"command": "echo should-not-run", "cwd": "/nonexistent/dir/for/test"}),
        )
        .await;
    assert!(
        error.contains("invalid cwd \"/nonexistent/dir/for/test\""),
        "{error}"
    );
    let listed = server.ok("session_list", json!({})).await;
    assert_eq!(listed["sessions"], json!([]), "no session was created");
    server.stop().await;
}

#[tokio::test]
async fn unknown_key_writes_nothing() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    let error = server
        .err(
            "session_write",
            json!({"session_id": id, "input": "echo typed", "keys": ["Enter", "Ctrl+C"]}),
        )
        .await;
    assert!(error.contains("\"Ctrl+C\""), "{error}");
    let screen = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "screen", "settle": 0.3}),
        )
        .await;
    assert_eq!(
        rows(&screen),
        vec!["$"],
        "the input must not have been typed"
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_arguments_name_the_value() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    let cases = [
        (
            "session_read",
            json!({"session_id": id, "wait_for": "(unclosed"}),
            "invalid wait_for regex \"(unclosed\"",
        ),
        (
            "session_read",
            json!({"session_id": id, "since": "not-a-cursor"}),
            "invalid since: invalid output cursor \"not-a-cursor\"",
        ),
        (
            "session_read",
            json!({"session_id": id, "timeout": -1}),
            "invalid timeout -1",
        ),
        (
            "session_read",
            json!({"session_id": "nope"}),
            "invalid session_id \"nope\"",
        ),
        (
            "session_read",
            json!({"session_id": "3f2a1b4c-0000-4000-8000-000000000000"}),
            "not found",
        ),
        (
            "session_resize",
            json!({"session_id": id, "cols": 0, "rows": 10}),
            "invalid cols 0",
        ),
        (
            "session_open",
            json!({"command": "ls", "argv": ["ls"]}),
            "either command or argv",
        ),
        (
            "session_open",
            json!({"env": {"1BAD": "x"}}),
            "invalid env name \"1BAD\"",
        ),
        (
            "session_write",
            json!({"session_id": id, "input": "x", "wait-for": "y"}),
            "unknown parameter \"wait-for\"",
        ),
    ];
    for (tool, arguments, expected) in cases {
        let error = server.err(tool, arguments).await;
        assert!(
            error.contains(expected),
            "{tool}: {error:?} should contain {expected:?}"
        );
    }
    let screen = server.screen(&id).await;
    assert_eq!(rows(&screen), vec!["$"], "no failed call typed anything");
    server.stop().await;
}

#[tokio::test]
async fn output_cursor_reads_only_new_text() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    let first = server.type_line(&id, "echo one").await;
    let cursor = first["cursor"].as_str().unwrap().to_owned();
    server.type_line(&id, "echo two").await;
    let since = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "output", "since": cursor}),
        )
        .await;
    assert_eq!(text(&since), "$ echo two\ntwo\n$");
    let again = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "output", "since": cursor}),
        )
        .await;
    assert_eq!(text(&again), text(&since), "reads never consume output");
    server.stop().await;
}

#[tokio::test]
async fn scrollback_view_has_history() {
    let server = Server::start().await;
    let id = server.open_bash(40, 10).await;
    server.type_line(&id, "seq 1 50").await;
    let result = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "scrollback"}),
        )
        .await;
    let lines = rows(&result);
    let numbers: Vec<&String> = lines
        .iter()
        .filter(|line| line.parse::<u32>().is_ok())
        .collect();
    assert_eq!(numbers.len(), 50, "{lines:?}");
    assert_eq!(numbers[0], "1");
    assert_eq!(numbers[49], "50");
    server.stop().await;
}

#[tokio::test]
async fn flood_keeps_memory_bounded() {
    let server = Server::start_with(
        &["--scrollback", "1000", "--transcript-bytes", "1048576"],
        &[],
    )
    .await;
    let baseline = rss_kib(server.pid);
    let id = server.open_bash(80, 24).await;
    let start = server.screen(&id).await["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // About 21 MB of short lines, far more than the history keeps.
    server
        .ok("session_write", json!({"session_id": id, "input": "seq 1 3000000; echo FLOOD-DONE", "submit": true, "wait_for": "^FLOOD-DONE$", "timeout": 30}))
        .await;
    let done = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "screen", "wait_for": "^FLOOD-DONE$", "timeout": 30}),
        )
        .await;
    assert_eq!(done["reason"], "matched");
    let grown = rss_kib(server.pid).saturating_sub(baseline);
    // 1000 rows of 80 cells plus 1 MiB of transcript is a few MiB; 64 MiB is the case's bound.
    assert!(grown < 64 * 1024, "server RSS grew by {grown} KiB");
    let whole = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "output", "since": start}),
        )
        .await;
    assert!(
        whole["dropped_chars"].as_u64().unwrap_or(0) > 0,
        "old output is reported as dropped"
    );
    server.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
