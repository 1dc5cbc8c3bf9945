//! The process behind a session: exit, zombies, orphans, the writer, size and TERM.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Server, children, pids_matching, rows, text, wait_until};

/// Output of a process that exits at once is not lost, over 50 runs.
#[tokio::test]
async fn exit_at_once_keeps_output() {
    let server = Server::start().await;
    for run in 0..50 {
        let opened = server
            .ok(
                "session_open",
                json!({"argv": ["sh", "-c", "printf 'hello-fast\\n'; printf 'no-newline-at-end'"]}),
            )
            .await;
        let id = opened["session_id"].as_str().unwrap().to_owned();
        let result = server
            .ok(
                "session_read",
                json!({"session_id": id, "view": "screen", "wait_for": "^$never", "timeout": 10}),
            )
            .await;
        assert_eq!(result["state"], "exited", "run {run}");
        assert_eq!(result["exit_code"], 0, "run {run}");
        assert_eq!(
            rows(&result),
            vec!["hello-fast", "no-newline-at-end"],
            "run {run}"
        );
        server.ok("session_close", json!({"session_id": id})).await;
    }
    server.stop().await;
}

/// Twenty different commands that print and exit at once, each read after the exit.
#[tokio::test]
async fn twenty_quick_commands_keep_output() {
    let server = Server::start().await;
    let commands: Vec<(String, String)> = (0..20)
        .map(|n| match n % 5 {
            0 => (format!("echo quick-{n}"), format!("quick-{n}")),
            1 => (
                format!("printf 'no-newline-{n}'"),
                format!("no-newline-{n}"),
            ),
            2 => (
                format!("seq {n} {}; echo end-{n}", n + 3),
                format!("end-{n}"),
            ),
            3 => (
                format!("printf 'caf\\303\\251-{n}\\n'"),
                format!("café-{n}"),
            ),
            _ => (format!("echo err-{n} >&2; exit {n}"), format!("err-{n}")),
        })
        .collect();
    for (command, expected) in &commands {
        let opened = server.ok("session_open", json!({"command": command})).await;
        let id = opened["session_id"].as_str().unwrap().to_owned();
        let result = server
            .ok(
                "session_read",
                json!({"session_id": id, "view": "output", "wait_for": "^$never", "timeout": 10}),
            )
            .await;
        assert_eq!(result["state"], "exited", "{command}");
        assert!(
            text(&result).contains(expected.as_str()),
            "{command}: {:?}",
            text(&result)
        );
        server.ok("session_close", json!({"session_id": id})).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn exited_session_reports_status() {
    let server = Server::start().await;

    // (a) `true` exits: the read returns at once with the exit code, never "not found".
    let opened = server.ok("session_open", json!({"argv": ["true"]})).await;
    let quick = opened["session_id"].as_str().unwrap().to_owned();
    let result = server
        .ok(
            "session_read",
            json!({"session_id": quick, "timeout": 10, "wait_for": "^$never"}),
        )
        .await;
    assert_eq!(result["state"], "exited");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["reason"], "exited");

    // (b) `exit 3` ends the wait as soon as the shell exits, well before the 10 s bound.
    let id = server.open_bash(80, 24).await;
    let started = Instant::now();
    let result = server
        .ok("session_write", json!({"session_id": id, "input": "exit 3", "submit": true, "wait_for": "^$never", "timeout": 10}))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(result["state"], "exited");
    assert_eq!(result["exit_code"], 3);
    assert_eq!(result["reason"], "exited");
    let screen = server.screen(&id).await;
    assert_eq!(rows(&screen), vec!["$ exit 3", "exit"]);

    // (c) Writing and resizing an exited session are clear errors; it stays listed.
    let error = server
        .err("session_write", json!({"session_id": id, "keys": ["C-c"]}))
        .await;
    assert!(error.contains("exited with status 3"), "{error}");
    let error = server
        .err(
            "session_resize",
            json!({"session_id": id, "cols": 100, "rows": 30}),
        )
        .await;
    assert!(error.contains("exited with status 3"), "{error}");
    let listed = server.ok("session_list", json!({})).await;
    let entry = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == id.as_str())
        .cloned();
    assert_eq!(
        entry.as_ref().map(|e| e["exit_code"].clone()),
        Some(json!(3))
    );
    server.stop().await;
}

/// Every child is reaped as soon as it exits, whether or not anyone reads the session.
#[tokio::test]
async fn exited_children_leave_no_zombies() {
    let server = Server::start().await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let id = server.open_bash(60, 10).await;
        server.ok("session_write", json!({"session_id": id, "input": "exit", "submit": true, "wait_for": "^$never", "timeout": 5})).await;
        ids.push(id);
    }
    for _ in 0..10 {
        let opened = server
            .ok("session_open", json!({"argv": ["sleep", "0.1"]}))
            .await;
        ids.push(opened["session_id"].as_str().unwrap().to_owned());
    }
    let no_zombies = wait_until(Duration::from_secs(3), || {
        children(server.pid).iter().all(|(_, state)| *state != 'Z')
    })
    .await;
    assert!(no_zombies, "zombies: {:?}", children(server.pid));
    let listed = server.ok("session_list", json!({})).await;
    for session in listed["sessions"].as_array().unwrap() {
        assert_eq!(session["state"], "exited", "{session}");
        assert!(session["exit_code"].is_number(), "{session}");
    }
    server.stop().await;
}

/// Closing a session ends background, nohup, setsid and HUP-ignoring jobs.
#[tokio::test]
async fn close_ends_every_job() {
    let server = Server::start().await;
    let id = server.open_bash(80, 24).await;
    let marker = format!("{}", std::process::id() % 1000);
    let lines = [
        format!("sleep 1{marker}0 &"),
        format!("nohup sleep 1{marker}1 >/dev/null 2>&1 &"),
        format!("setsid sleep 1{marker}2 &"),
        format!("(trap '' HUP; exec sleep 1{marker}3) &"),
        format!("(trap '' HUP TERM; sleep 1{marker}5 & wait) &"),
        format!("sleep 1{marker}4"),
    ];
    for line in &lines {
        server
            .ok(
                "session_write",
                json!({"session_id": id, "input": line, "submit": true, "settle": 0.2}),
            )
            .await;
    }
    let needle = format!("sleep 1{marker}");
    assert!(
        wait_until(Duration::from_secs(5), || pids_matching(&needle).len() >= 6).await,
        "jobs did not start: {:?}",
        pids_matching(&needle)
    );
    let closed = server.ok("session_close", json!({"session_id": id})).await;
    assert!(
        closed["processes_signalled"].as_u64().unwrap() >= 6,
        "{closed}"
    );
    let gone = wait_until(Duration::from_secs(5), || pids_matching(&needle).is_empty()).await;
    assert!(gone, "survivors: {:?}", pids_matching(&needle));
    server.stop().await;
}

/// Three separate writes keep the shell alive: the writer is never dropped between calls.
#[tokio::test]
async fn repeated_writes_keep_shell_alive() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    for line in ["echo a", "echo b", "echo c"] {
        server.type_line(&id, line).await;
    }
    let screen = server.screen(&id).await;
    assert_eq!(
        rows(&screen),
        vec!["$ echo a", "a", "$ echo b", "b", "$ echo c", "c", "$"]
    );
    assert_eq!(screen["state"], "idle");
    assert!(!text(&screen).contains("exit"));
    server.stop().await;
}

/// The PTY has the requested size before the program starts.
#[tokio::test]
async fn requested_size_applies_from_first_byte() {
    let server = Server::start().await;
    let opened = server
        .ok("session_open", json!({"argv": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ "}, "cols": 100, "rows": 30}))
        .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "stty size; tput cols; tput lines", "submit": true}),
        )
        .await;
    let screen = server.wait_screen(&id, r"(?m)^30\n\$$", 10.0).await;
    assert_eq!(
        rows(&screen),
        vec![
            "$ stty size; tput cols; tput lines",
            "30 100",
            "100",
            "30",
            "$"
        ]
    );
    let long_line = server
        .type_line(&id, "printf 'x%.0s' $(seq 1 100); echo")
        .await;
    assert!(
        text(&long_line).contains(&format!("\n{}\n", "x".repeat(100))),
        "{}",
        text(&long_line)
    );
    server.stop().await;
}

/// A resize is visible to the very next command and to running programs.
#[tokio::test]
async fn resize_is_visible_at_once() {
    let server = Server::start().await;
    let id = server.open_bash(100, 30).await;
    server
        .ok(
            "session_resize",
            json!({"session_id": id, "cols": 120, "rows": 40}),
        )
        .await;
    let result = server.type_line(&id, "stty size; tput cols").await;
    assert!(
        text(&result).contains("\n40 120\n120\n"),
        "{}",
        text(&result)
    );

    let pager = server.open_bash(80, 24).await;
    server
        .ok(
            "session_write",
            json!({"session_id": pager, "input": "seq 1 200 | less", "submit": true}),
        )
        .await;
    server.wait_screen(&pager, r"(?m)^:$", 10.0).await;
    server
        .ok(
            "session_resize",
            json!({"session_id": pager, "cols": 80, "rows": 30}),
        )
        .await;
    let screen = server.wait_screen(&pager, r"(?m)^29\n:$", 10.0).await;
    let screen_rows = rows(&screen);
    for (index, row) in screen_rows[..29].iter().enumerate() {
        assert_eq!(row, &(index + 1).to_string());
    }
    assert_eq!(screen_rows[29], ":");
    server.stop().await;
}

/// Sessions get TERM=xterm-256color whatever the server's own TERM is.
#[tokio::test]
async fn term_is_always_xterm() {
    for server_term in [Some("dumb"), None] {
        let server = match server_term {
            Some(term) => Server::start_with(&[], &[("TERM", term)]).await,
            None => Server::start_full(&[], &[], &["TERM"]).await,
        };
        let id = server.open_bash(80, 24).await;
        server
            .ok("session_write", json!({"session_id": id, "input": "echo \"TERM=[$TERM]\"; seq 1 200 | less", "submit": true}))
            .await;
        let screen = server.wait_screen(&id, r"(?m)^:$", 10.0).await;
        assert!(
            !text(&screen).contains("not fully functional"),
            "{}",
            text(&screen)
        );
        assert_eq!(rows(&screen)[0], "1");
        server
            .ok("session_write", json!({"session_id": id, "input": "q"}))
            .await;
        let screen = server.screen(&id).await;
        assert_eq!(
            rows(&screen),
            vec![
                "$ echo \"TERM=[$TERM]\"; seq 1 200 | less",
                "TERM=[xterm-256color]",
                "$"
            ]
        );
        server.stop().await;
    }
}
