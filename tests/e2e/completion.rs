//! Knowing when a command is done: shell integration, run states, session_exec,
//! session_signal, execute_command and the legacy tools, through a real MCP client and
//! real shells.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, ClientRequest, ProgressNotificationParam, ProgressToken, Request,
    RequestMetaObject, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{Value, json};

use crate::harness::{
    BINARY, Server, TempDir, have, pid_alive, pids_matching, rows, text, wait_until,
};

/// Opens the configured shell (with its integration) in an empty home, sets the prompt
/// to `$ ` (Debian's /etc/bash.bashrc sets its own) and clears the screen.
async fn open_shell(server: &Server, home: &TempDir, cols: u16, rows: u16) -> String {
    let opened = server
        .ok(
            "session_open",
            json!({
                "env": {"HOME": home.path.display().to_string(), "LANG": "C.UTF-8"},
                "cols": cols,
                "rows": rows,
            }),
        )
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let reset = server
        .ok(
            "session_exec",
            exec_args(&id, r"PS1='$ '; printf '\033[H\033[2J'", 10.0),
        )
        .await;
    assert_eq!(reset["exit_code"], 0, "{reset}");
    server.wait_screen(&id, r"^\$$", 10.0).await;
    id
}

fn exec_args(id: &str, command: &str, timeout: f64) -> Value {
    json!({"session_id": id, "command": command, "timeout": timeout})
}

#[tokio::test]
async fn exec_returns_output_and_status() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 80, 24).await;

    let echoed = server
        .ok("session_exec", exec_args(&id, "echo hello", 10.0))
        .await;
    assert_eq!(echoed["output"], "hello\n");
    assert_eq!(echoed["exit_code"], 0);
    assert_eq!(echoed["state"], "idle");
    assert_eq!(echoed["reason"], "prompt");

    let failed = server
        .ok("session_exec", exec_args(&id, "(exit 3)", 10.0))
        .await;
    assert_eq!(failed["exit_code"], 3);
    assert_eq!(failed["output"], "");

    let many = server
        .ok("session_exec", exec_args(&id, "seq 1 30; false", 10.0))
        .await;
    let expected: String = (1..=30).map(|n| format!("{n}\n")).collect();
    assert_eq!(many["output"], expected.as_str());
    assert_eq!(many["exit_code"], 1);

    let no_newline = server
        .ok("session_exec", exec_args(&id, "printf abc", 10.0))
        .await;
    assert_eq!(no_newline["output"], "abc");

    // The marks never reach any returned text.
    let scrollback = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "scrollback"}),
        )
        .await;
    assert!(!text(&scrollback).contains("133;"), "{}", text(&scrollback));
    assert!(!text(&scrollback).contains('\u{7}'));
    let read = server.ok("session_read", json!({"session_id": id})).await;
    assert_eq!(read["state"], "idle");
    server.stop().await;
}

#[tokio::test]
async fn exec_timeout_leaves_command_running() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 80, 24).await;

    let started = Instant::now();
    let result = server
        .ok(
            "session_exec",
            exec_args(&id, "echo early; sleep 3; echo late-line", 1.0),
        )
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert_eq!(result["state"], "running");
    assert_eq!(result["reason"], "timeout");
    assert!(result.get("exit_code").is_none(), "{result}");
    assert_eq!(result["output"], "early\n");
    let note = result["note"].as_str().unwrap_or_default();
    assert!(note.contains("still runs"), "{note}");
    assert!(note.contains("session_signal"), "{note}");

    // A second exec while it runs is rejected with the reason.
    let busy = server
        .err("session_exec", exec_args(&id, "echo no", 5.0))
        .await;
    assert!(busy.contains("not at its bash prompt"), "{busy}");

    let rest = server
        .ok(
            "session_read",
            json!({"session_id": id, "since": result["cursor"], "timeout": 20, "view": "output"}),
        )
        .await;
    assert_eq!(rest["reason"], "prompt");
    assert_eq!(rest["state"], "idle");
    assert!(text(&rest).contains("late-line"), "{}", text(&rest));
    server.stop().await;
}

/// C47 (a) and C67 (d): a hidden prompt is waiting for input with echo off, and the
/// secret reaches neither the screen, nor any output, nor the log.
#[tokio::test]
async fn hidden_prompt_reports_echo_off() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 60, 10).await;

    let prompt = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "read -s -p 'Password: ' pw; echo; echo \"len=${#pw}\"", "submit": true, "timeout": 10}),
        )
        .await;
    assert_eq!(prompt["state"], "waiting_for_input");
    assert_eq!(prompt["reason"], "input_wanted");
    assert_eq!(prompt["echo"], false);
    assert!(text(&prompt).ends_with("Password:"), "{}", text(&prompt));

    let done = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "hunter2", "submit": true, "timeout": 10}),
        )
        .await;
    assert_eq!(done["reason"], "prompt");
    assert_eq!(done["echo"], true);
    let screen = server.screen(&id).await;
    assert_eq!(
        rows(&screen)[..4],
        [
            "$ read -s -p 'Password: ' pw; echo; echo \"len=${#pw}\"",
            "Password:",
            "len=7",
            "$",
        ]
    );
    let scrollback = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "scrollback"}),
        )
        .await;
    assert!(!text(&scrollback).contains("hunter2"));
    assert!(!text(&done).contains("hunter2"));
    let log = server.stderr();
    server.stop().await;
    assert!(!log.contains("hunter2"), "the secret is in the log");
}

/// C67: every kind of input wait is reported, and busy commands are not.
#[tokio::test]
async fn waiting_for_input_is_reported() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let cases = [
        ("read -p 'Continue? [y/N] ' a", "Continue? [y/N]"),
        ("cat", "$ cat"),
        ("seq 1 200 | less", ":"),
        ("python3 -c 'input(\"name? \")'", "name?"),
    ];
    let mut sessions = Vec::new();
    for _ in cases {
        sessions.push(open_shell(&server, &home, 60, 10).await);
    }
    for ((command, expected), id) in cases.iter().zip(&sessions) {
        let started = Instant::now();
        let result = server
            .ok(
                "session_write",
                json!({"session_id": id, "input": command, "submit": true, "timeout": 10}),
            )
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{command}: took {:?}",
            started.elapsed()
        );
        assert_eq!(result["state"], "waiting_for_input", "{command}");
        assert_eq!(result["reason"], "input_wanted", "{command}");
        let screen = server.screen(id).await;
        assert!(
            rows(&screen).iter().any(|row| row == expected),
            "{command}: {:?}",
            rows(&screen)
        );
    }

    // Sleeping commands are busy: with a 10 s bound they end the wait when they
    // finish, at the prompt; with a 2 s bound they end it at the bound, still running.
    for command in ["sleep 5", "python3 -c 'import time; time.sleep(5)'"] {
        let sleeper = open_shell(&server, &home, 60, 10).await;
        let started = Instant::now();
        let finished = server
            .ok(
                "session_write",
                json!({"session_id": sleeper, "input": command, "submit": true, "timeout": 10}),
            )
            .await;
        assert!(started.elapsed() >= Duration::from_secs(5), "{command}");
        assert_eq!(finished["reason"], "prompt", "{command}");
        assert_eq!(finished["state"], "idle", "{command}");
        let bounded = server
            .ok(
                "session_write",
                json!({"session_id": sleeper, "input": command, "submit": true, "timeout": 2}),
            )
            .await;
        assert_eq!(bounded["reason"], "timeout", "{command}");
        assert_eq!(bounded["state"], "running", "{command}");
    }
    server.stop().await;
}

/// C47 (b): Python's getpass hides the secret and is reported as hidden input.
#[tokio::test]
async fn getpass_prompt_hides_secret() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 80, 10).await;
    let command = "python3 -c 'import getpass,time; s=getpass.getpass(\"Secret: \"); print(\"got\", len(s)); time.sleep(5)'";
    let prompt = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": command, "submit": true, "timeout": 10}),
        )
        .await;
    assert_eq!(prompt["state"], "waiting_for_input");
    assert_eq!(prompt["echo"], false);
    // The command line wraps at 80 columns; the prompt is on the line after it.
    let screen_rows = rows(&server.screen(&id).await);
    let command_end = screen_rows
        .iter()
        .position(|row| row.ends_with("time.sleep(5)'"))
        .expect("the command line is on the screen");
    assert_eq!(screen_rows[command_end + 1], "Secret:");

    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "s3cr3t", "submit": true, "wait_for": "(?m)^got 6$", "timeout": 10}),
        )
        .await;
    let screen = server.screen(&id).await;
    assert_eq!(rows(&screen)[command_end + 2], "got 6");
    assert!(!text(&screen).contains("s3cr3t"));
    let scrollback = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "scrollback"}),
        )
        .await;
    assert!(!text(&scrollback).contains("s3cr3t"));
    let log = server.stderr();
    server.stop().await;
    assert!(!log.contains("s3cr3t"), "the secret is in the log");
}

/// A program blocked on a socket read sleeps in the same kernel wait channel as a
/// terminal read, but is busy, not waiting for the terminal.
#[tokio::test]
async fn socket_read_is_not_input_wanted() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 100, 10).await;
    let command = "python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); \
                   c=socket.create_connection(s.getsockname()); a,_=s.accept(); a.recv(1)\"";
    let result = server
        .ok("session_exec", exec_args(&id, command, 2.0))
        .await;
    assert_eq!(result["state"], "running", "{result}");
    assert_eq!(result["reason"], "timeout", "{result}");
    server
        .ok("session_signal", json!({"session_id": id, "signal": "INT"}))
        .await;
    server.stop().await;
}

/// Text left typed at the prompt does not run in front of an exec's command.
#[tokio::test]
async fn exec_clears_typed_text() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 80, 24).await;
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "echo PARTIAL #", "timeout": 1}),
        )
        .await;
    let result = server
        .ok("session_exec", exec_args(&id, "echo clean", 10.0))
        .await;
    assert_eq!(result["output"], "clean\n");
    assert_eq!(result["exit_code"], 0);
    let note = result["note"].as_str().unwrap_or_default();
    assert!(note.contains("echo PARTIAL #"), "{note}");
    server.stop().await;
}

/// An unclosed quote leaves bash waiting for the rest of the line: reported as input
/// wanted, and the next exec is not typed into it.
#[tokio::test]
async fn exec_of_incomplete_line() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 80, 24).await;
    let result = server
        .ok("session_exec", exec_args(&id, "echo \"abc", 10.0))
        .await;
    assert_eq!(result["state"], "waiting_for_input", "{result}");
    assert_eq!(result["reason"], "input_wanted", "{result}");
    let note = result["note"].as_str().unwrap_or_default();
    assert!(note.contains("rest of the command line"), "{note}");
    let refused = server
        .err("session_exec", exec_args(&id, "echo ok", 5.0))
        .await;
    assert!(refused.contains("not at its bash prompt"), "{refused}");
    server.stop().await;
}

/// In sh, which prints no mark when a command starts, a running command is not
/// reported idle and the next exec is refused rather than typed into it.
#[tokio::test]
async fn sh_command_is_not_idle() {
    let server = Server::start_with(&["--kill-grace", "0.5", "--shell", "/bin/sh"], &[]).await;
    let home = TempDir::new("home");
    let opened = server
        .ok(
            "session_open",
            json!({"env": {"HOME": home.path.display().to_string()}}),
        )
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let head = server
        .ok("session_exec", exec_args(&id, "head -n1", 2.0))
        .await;
    assert_eq!(head["state"], "waiting_for_input", "{head}");
    let refused = server
        .err("session_exec", exec_args(&id, "echo MARKER", 5.0))
        .await;
    assert!(refused.contains("not at its sh prompt"), "{refused}");

    let answered = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "x", "submit": true, "timeout": 10}),
        )
        .await;
    assert_eq!(answered["reason"], "prompt", "{answered}");
    let sleeper = server
        .ok("session_exec", exec_args(&id, "sleep 3", 1.0))
        .await;
    assert_eq!(sleeper["state"], "running", "{sleeper}");
    server.stop().await;
}

/// Output beyond the session's history keeps its tail, and the result reports how
/// much of the head was lost.
#[tokio::test]
async fn exec_reports_lost_output_head() {
    let server = Server::start_with(
        &[
            "--kill-grace",
            "0.5",
            "--scrollback",
            "10",
            "--transcript-bytes",
            "1000",
        ],
        &[],
    )
    .await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 80, 24).await;
    let result = server
        .ok("session_exec", exec_args(&id, "seq 1 2000", 10.0))
        .await;
    assert_eq!(result["exit_code"], 0);
    let output = result["output"].as_str().unwrap_or_default();
    assert!(output.ends_with("1999\n2000\n"), "{output}");
    assert!(!output.starts_with("1\n"), "{output}");
    assert!(
        result["dropped_chars"].as_u64().unwrap_or(0) > 0,
        "{result}"
    );
    let note = result["note"].as_str().unwrap_or_default();
    assert!(note.contains("no longer retained"), "{note}");
    server.stop().await;
}

/// C54: waiting on `head -n1` never types into its input.
#[tokio::test]
async fn exec_never_types_into_the_program() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 80, 24).await;
    let result = server
        .ok("session_exec", exec_args(&id, "head -n1", 3.0))
        .await;
    assert_eq!(result["state"], "waiting_for_input");
    assert!(result.get("exit_code").is_none(), "{result}");

    let answered = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "x", "submit": true, "timeout": 10}),
        )
        .await;
    assert_eq!(answered["reason"], "prompt");
    assert_eq!(text(&answered).lines().next(), Some("x"));
    let after = server
        .ok("session_exec", exec_args(&id, "echo $?", 5.0))
        .await;
    assert_eq!(after["output"], "0\n");
    server.stop().await;
}

/// C53: a shell that exits under strict options ends the wait with its status.
#[tokio::test]
async fn strict_shell_exit_ends_the_wait() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 60, 10).await;
    let strict = server
        .ok("session_exec", exec_args(&id, "set -euo pipefail", 10.0))
        .await;
    assert_eq!(strict["exit_code"], 0);
    let survived = server
        .ok("session_exec", exec_args(&id, "! true; echo alive", 10.0))
        .await;
    assert_eq!(survived["output"], "alive\n");

    let started = Instant::now();
    let result = server
        .ok("session_exec", exec_args(&id, "false", 10.0))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(result["reason"], "exited");
    assert_eq!(result["state"], "exited");
    assert_eq!(result["exit_code"], 1);
    server.stop().await;
}

/// The integration survives `exec bash` and works in a nested bash.
#[tokio::test]
async fn integration_survives_exec_and_nesting() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 80, 24).await;
    server
        .ok("session_exec", exec_args(&id, "exec bash", 10.0))
        .await;
    let after_exec = server
        .ok(
            "session_exec",
            exec_args(&id, "echo replaced; (exit 4)", 10.0),
        )
        .await;
    assert_eq!(after_exec["output"], "replaced\n");
    assert_eq!(after_exec["exit_code"], 4);

    server
        .ok("session_exec", exec_args(&id, "bash", 10.0))
        .await;
    let nested = server
        .ok(
            "session_exec",
            exec_args(&id, "echo nested; (exit 5)", 10.0),
        )
        .await;
    assert_eq!(nested["output"], "nested\n");
    assert_eq!(nested["exit_code"], 5);
    server.stop().await;
}

/// A PROMPT_COMMAND set by the user's startup file keeps running, with the status of
/// the last command, and is not exported to nested shells that do not define it.
#[tokio::test]
async fn startup_prompt_command_is_kept() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    std::fs::write(
        home.path.join(".bashrc"),
        "myhook() { echo \"status $?\" >> \"$HOME/hook.log\"; }\nPROMPT_COMMAND=myhook\n",
    )
    .expect("write .bashrc");
    let id = open_shell(&server, &home, 80, 24).await;
    let failed = server
        .ok("session_exec", exec_args(&id, "(exit 9)", 10.0))
        .await;
    assert_eq!(failed["exit_code"], 9);
    let log = std::fs::read_to_string(home.path.join("hook.log")).unwrap_or_default();
    assert!(log.lines().any(|line| line == "status 9"), "{log}");

    server
        .ok("session_exec", exec_args(&id, "bash --norc", 10.0))
        .await;
    let nested = server
        .ok("session_exec", exec_args(&id, "echo nested", 10.0))
        .await;
    assert_eq!(nested["output"], "nested\n", "{nested}");
    assert_eq!(nested["exit_code"], 0);
    server.stop().await;
}

/// sh (dash) has no hook before a command; the prompt carries the marks.
#[tokio::test]
async fn exec_in_posix_sh() {
    let server = Server::start_with(&["--kill-grace", "0.5", "--shell", "/bin/sh"], &[]).await;
    let home = TempDir::new("home");
    // The marks live in PS1 here, so the prompt is left as it is.
    let opened = server
        .ok(
            "session_open",
            json!({"env": {"HOME": home.path.display().to_string()}}),
        )
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let result = server
        .ok(
            "session_exec",
            exec_args(&id, "echo from-sh; (exit 6)", 10.0),
        )
        .await;
    assert_eq!(result["output"], "from-sh\n");
    assert_eq!(result["exit_code"], 6);
    server.stop().await;
}

#[tokio::test]
async fn exec_in_zsh() {
    if !have("zsh") {
        return;
    }
    let server = Server::start_with(&["--kill-grace", "0.5", "--shell", "/usr/bin/zsh"], &[]).await;
    let home = TempDir::new("home");
    let opened = server
        .ok(
            "session_open",
            json!({"env": {"HOME": home.path.display().to_string()}}),
        )
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let result = server
        .ok(
            "session_exec",
            exec_args(&id, "echo from-zsh; (exit 7)", 10.0),
        )
        .await;
    assert_eq!(result["output"], "from-zsh\n");
    assert_eq!(result["exit_code"], 7);
    server.stop().await;
}

#[tokio::test]
async fn exec_needs_a_shell_session() {
    let server = Server::start().await;
    let opened = server
        .ok("session_open", json!({"argv": ["python3", "-q"]}))
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let error = server.err("session_exec", exec_args(&id, "1+1", 5.0)).await;
    assert!(error.contains("not a shell with integration"), "{error}");
    assert!(error.contains("session_write"), "{error}");

    let home = TempDir::new("home");
    let shell = open_shell(&server, &home, 80, 24).await;
    let error = server
        .err("session_exec", exec_args(&shell, "echo a\necho b", 5.0))
        .await;
    assert!(error.contains("several lines"), "{error}");
    server.stop().await;
}

/// Interrupting `sleep 100` with session_signal, then running the next command.
#[tokio::test]
async fn signal_interrupts_foreground_job() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 60, 10).await;
    let running = server
        .ok("session_exec", exec_args(&id, "sleep 100", 0.5))
        .await;
    assert_eq!(running["state"], "running");

    let signalled = server
        .ok("session_signal", json!({"session_id": id, "signal": "INT"}))
        .await;
    assert_eq!(signalled["state"], "idle");
    assert!(
        signalled["note"]
            .as_str()
            .unwrap_or_default()
            .contains("SIGINT"),
        "{signalled}"
    );
    let next = server
        .ok("session_exec", exec_args(&id, "echo next", 5.0))
        .await;
    assert_eq!(next["output"], "next\n");
    assert_eq!(next["exit_code"], 0);

    let error = server
        .err(
            "session_signal",
            json!({"session_id": id, "signal": "SEGV"}),
        )
        .await;
    assert!(error.contains("INT, TERM"), "{error}");
    server.stop().await;
}

/// C40: a program in raw mode ignores the byte 0x03 but not session_signal.
#[tokio::test]
async fn signal_reaches_raw_mode_program() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 100, 10).await;
    let command =
        "python3 -c 'import tty,time; tty.setraw(0); time.sleep(8); print(\"finished-naturally\")'";
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": command, "submit": true, "timeout": 0.8}),
        )
        .await;
    let signalled = server
        .ok(
            "session_signal",
            json!({"session_id": id, "signal": "INT", "target": "foreground"}),
        )
        .await;
    assert_eq!(signalled["state"], "idle", "{signalled}");
    let later = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "scrollback", "wait_for": "(?m)^finished-naturally$", "timeout": 9}),
        )
        .await;
    assert_ne!(later["reason"], "matched");
    assert!(!rows(&later).iter().any(|row| row == "finished-naturally"));
    server.stop().await;
}

/// C38: Ctrl-C as a key ends the command list; the text "C-c" is typed, not run.
#[tokio::test]
async fn control_key_versus_text() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    let id = open_shell(&server, &home, 60, 10).await;
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "sleep 30; echo after-sleep", "submit": true, "timeout": 0.5}),
        )
        .await;
    let interrupted = server
        .ok(
            "session_write",
            json!({"session_id": id, "keys": ["C-c"], "timeout": 5}),
        )
        .await;
    assert_eq!(interrupted["reason"], "prompt");
    assert_eq!(
        rows(&server.screen(&id).await)[..3],
        ["$ sleep 30; echo after-sleep", "^C", "$"]
    );
    server
        .ok("session_write", json!({"session_id": id, "input": "C-c"}))
        .await;
    let screen = server.screen(&id).await;
    assert_eq!(rows(&screen)[2], "$ C-c");
    assert!(!rows(&screen).iter().any(|row| row == "after-sleep"));
    for key in ["C-]", "C-\\", "C-z", "C-d", "Escape"] {
        let encoded = server
            .call(
                "session_write",
                json!({"session_id": id, "keys": [key], "timeout": 0.2}),
            )
            .await;
        assert_ne!(encoded.is_error, Some(true), "{key} was rejected");
    }
    server.stop().await;
}

/// C49 and C50: bracketed paste at the bash prompt, plain text under `cat`, and no
/// way out of the paste.
#[tokio::test]
async fn paste_wraps_only_when_enabled() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "echo one\necho two", "paste": true, "settle": 0.3}),
        )
        .await;
    let screen = server.screen(&id).await;
    assert_eq!(rows(&screen)[..2], ["$ echo one", "echo two"]);
    assert_eq!(screen["cursor_row"], 1);
    assert_eq!(screen["cursor_col"], 8);
    server
        .ok(
            "session_write",
            json!({"session_id": id, "keys": ["Enter"], "settle": 0.3}),
        )
        .await;
    let screen = server.wait_screen(&id, r"(?m)^two\n\$$", 10.0).await;
    assert_eq!(
        rows(&screen)[..5],
        ["$ echo one", "echo two", "one", "two", "$"]
    );

    let cat = server.open_bash(60, 10).await;
    server
        .ok(
            "session_write",
            json!({"session_id": cat, "input": "cat", "submit": true, "timeout": 5}),
        )
        .await;
    server
        .ok(
            "session_write",
            json!({"session_id": cat, "input": "echo one\necho two", "paste": true, "settle": 0.3}),
        )
        .await;
    let screen = server.screen(&cat).await;
    assert!(!text(&screen).contains("[200~"), "{}", text(&screen));
    assert!(!text(&screen).contains("[201~"), "{}", text(&screen));

    let injected = server.open_bash(60, 10).await;
    server
        .ok(
            "session_write",
            json!({"session_id": injected, "input": "echo safe\u{1b}[201~echo INJECTED\n", "paste": true, "settle": 0.3}),
        )
        .await;
    let screen = server.screen(&injected).await;
    assert_eq!(rows(&screen)[0], "$ echo safe[201~echo INJECTED");
    assert_eq!(screen["cursor_row"], 1);
    assert_eq!(screen["cursor_col"], 0);
    server
        .ok(
            "session_write",
            json!({"session_id": injected, "keys": ["Enter"], "settle": 0.3}),
        )
        .await;
    let screen = server
        .wait_screen(&injected, r"(?m)^safe\[201~echo INJECTED$", 10.0)
        .await;
    assert!(!rows(&screen).iter().any(|row| row == "INJECTED"));
    server.stop().await;
}

/// C51: a REPL block left open is reported as waiting for input, and the write tool
/// does not change its input.
#[tokio::test]
async fn repl_block_is_left_as_typed() {
    let server = Server::start().await;
    let opened = server
        .ok(
            "session_open",
            json!({"argv": ["python3", "-q"], "env": {"PYTHON_BASIC_REPL": "1"}, "cols": 60, "rows": 10}),
        )
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    server.wait_screen(&id, r"(?m)^>>>", 10.0).await;
    let block = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "for i in range(3):\r    print(i)\r", "timeout": 10}),
        )
        .await;
    assert_eq!(block["state"], "waiting_for_input");
    let screen = server.screen(&id).await;
    assert_eq!(
        rows(&screen)[..3],
        [">>> for i in range(3):", "...     print(i)", "..."]
    );
    let finished = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "\r", "timeout": 10}),
        )
        .await;
    assert_eq!(finished["state"], "waiting_for_input");
    let screen = server.screen(&id).await;
    assert_eq!(rows(&screen)[3..7], ["0", "1", "2", ">>>"]);
    server.stop().await;
}

/// A client that counts progress notifications.
#[derive(Clone, Default)]
struct ProgressCounter(Arc<AtomicUsize>);

impl ClientHandler for ProgressCounter {
    async fn on_progress(
        &self,
        _params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A long wait sends progress notifications to a client that asked for them.
#[tokio::test]
async fn long_wait_sends_progress() {
    let dir = TempDir::new("progress");
    let mut command = tokio::process::Command::new(BINARY);
    command.args(["--kill-grace", "0.5"]);
    let stderr = std::fs::File::create(dir.path.join("stderr.log")).expect("log file");
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::from(stderr))
        .spawn()
        .expect("server starts");
    let counter = ProgressCounter::default();
    let client = counter.clone().serve(transport).await.expect("initialize");

    let opened = client
        .call_tool(CallToolRequestParams::new("session_open"))
        .await
        .expect("session_open");
    let id = opened.structured_content.expect("structured content")["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let params = CallToolRequestParams::new("session_read").with_arguments(
        json!({"session_id": id, "wait_for": "^never-printed$", "timeout": 8})
            .as_object()
            .expect("object")
            .clone(),
    );
    let mut options = PeerRequestOptions::no_options();
    options.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        rmcp::model::NumberOrString::Number(7),
    )));
    let handle = client
        .send_request_with_option(
            ClientRequest::CallToolRequest(Request::new(params)),
            options,
        )
        .await
        .expect("request sent");
    let response = tokio::time::timeout(Duration::from_secs(30), handle.await_response())
        .await
        .expect("no hang")
        .expect("response");
    let ServerResult::CallToolResult(result) = response else {
        panic!("unexpected response {response:?}");
    };
    let structured = result.structured_content.expect("structured content");
    assert_eq!(structured["reason"], "timeout");
    assert!(
        counter.0.load(Ordering::SeqCst) >= 1,
        "no progress notification arrived"
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn execute_command_returns_output_and_status() {
    let server = Server::start().await;
    let dir = TempDir::new("work");
    let result = server
        .ok(
            "execute_command",
            json!({"command": "echo out; echo err >&2; pwd; echo \"$GREETING\"; exit 4",
                   "cwd": dir.path.display().to_string(), "env": {"GREETING": "hi"}}),
        )
        .await;
    assert_eq!(result["exit_code"], 4);
    assert_eq!(result["timed_out"], false);
    let output = result["output"].as_str().unwrap_or_default();
    assert!(output.contains("out\n"), "{output}");
    assert!(output.contains("err\n"), "{output}");
    assert!(output.contains(&dir.path.display().to_string()), "{output}");
    assert!(output.contains("hi\n"), "{output}");

    let quiet = server
        .ok(
            "execute_command",
            json!({"command": "echo kept; echo dropped >&2", "capture_stderr": false}),
        )
        .await;
    assert_eq!(quiet["output"], "kept\n");

    let error = server
        .err(
            "execute_command",
            json!({"command": "true", "cwd": "/no/such/dir"}),
        )
        .await;
    assert!(error.contains("/no/such/dir"), "{error}");
    server.stop().await;
}

/// On timeout the whole process group, and processes that left it, are killed.
#[tokio::test]
async fn execute_command_timeout_kills_group() {
    let server = Server::start().await;
    let dir = TempDir::new("pids");
    let pids = dir.path.join("pids");
    let command = format!(
        "sleep 300 & echo $! > {p}; setsid sleep 301 & echo $! >> {p}; sleep 302",
        p = pids.display()
    );
    let started = Instant::now();
    let result = server
        .ok("execute_command", json!({"command": command, "timeout": 1}))
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(result["timed_out"], true);
    let recorded: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let gone = wait_until(Duration::from_secs(5), || {
        recorded.iter().all(|pid| !pid_alive(*pid))
    })
    .await;
    assert!(gone, "left running: {recorded:?}");
    assert!(pids_matching("sleep 302").is_empty());

    // A command that exits leaves no background job behind either.
    let marker = "sleep 303";
    server
        .ok(
            "execute_command",
            json!({"command": format!("{marker} & echo started")}),
        )
        .await;
    let cleaned = wait_until(Duration::from_secs(5), || pids_matching(marker).is_empty()).await;
    assert!(cleaned, "background job survived");
    server.stop().await;
}

#[tokio::test]
async fn legacy_tools_map_onto_sessions() {
    let plain = Server::start().await;
    let tools = plain.client.list_all_tools().await.expect("tools/list");
    assert!(!tools.iter().any(|tool| tool.name == "persistent_shell"));
    plain.stop().await;

    let server = Server::start_with(&["--kill-grace", "0.5", "--legacy-tools"], &[]).await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    for name in ["persistent_shell", "session_manager", "session_exec"] {
        assert!(tools.iter().any(|tool| tool.name == name), "{name} missing");
    }
    let first = server
        .ok(
            "persistent_shell",
            json!({"command": "cd /tmp && export KEPT=yes", "session_id": "build"}),
        )
        .await;
    assert_eq!(first["exit_code"], 0);
    let second = server
        .ok(
            "persistent_shell",
            json!({"command": "echo \"$PWD $KEPT\"; (exit 2)", "session_id": "build"}),
        )
        .await;
    assert_eq!(second["output"], "/tmp yes\n");
    assert_eq!(second["exit_code"], 2);

    let listed = server
        .ok("session_manager", json!({"action": "list"}))
        .await;
    let sessions = listed["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["name"], "build");
    let closed = server
        .ok(
            "session_manager",
            json!({"action": "close", "session_id": "build"}),
        )
        .await;
    assert_eq!(closed["closed"]["closed"], true);
    let listed = server
        .ok("session_manager", json!({"action": "list"}))
        .await;
    assert_eq!(listed["sessions"].as_array().map(Vec::len), Some(0));
    server.stop().await;
}
