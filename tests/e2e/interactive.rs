//! Full-screen programs, pagers and editors in real sessions.

use std::process::Command;

use serde_json::json;

use crate::harness::{Server, TempDir, have, rows, text};

/// `less` at 80x24, resized to 80x30, then quit.
#[tokio::test]
async fn pager_snapshot_resize_and_quit() {
    let server = Server::start().await;
    let id = server.open_bash(80, 24).await;
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "seq 1 200 | less", "submit": true}),
        )
        .await;
    // Wait for the whole first page: less draws it row by row.
    let first = server.wait_screen(&id, r"(?m)^23\n:$", 10.0).await;
    let first_rows = rows(&first);
    assert_eq!(first_rows.len(), 24);
    for (index, row) in first_rows[..23].iter().enumerate() {
        assert_eq!(row, &(index + 1).to_string());
    }
    assert_eq!(first_rows[23], ":");
    assert_eq!(
        (first["cursor_row"].clone(), first["cursor_col"].clone()),
        (json!(23), json!(1))
    );
    assert_eq!(first["alt_screen"], true);

    server
        .ok(
            "session_resize",
            json!({"session_id": id, "cols": 80, "rows": 30}),
        )
        .await;
    let resized = server.wait_screen(&id, r"(?m)^29\n:$", 10.0).await;
    assert_eq!(rows(&resized)[29], ":");
    assert_eq!(
        (resized["cursor_row"].clone(), resized["cursor_col"].clone()),
        (json!(29), json!(1))
    );

    let quit = server
        .ok("session_write", json!({"session_id": id, "input": "q"}))
        .await;
    assert_eq!(quit["alt_screen"], false);
    let screen = server.screen(&id).await;
    assert_eq!(rows(&screen), vec!["$ seq 1 200 | less", "$"]);
    assert_eq!(
        (screen["cursor_row"].clone(), screen["cursor_col"].clone()),
        (json!(1), json!(2))
    );
    server.stop().await;
}

/// `git log` pages on the main screen with `less -FRX` when the caller removes the
/// default `PAGER=cat`.
#[tokio::test]
async fn git_log_pager_on_main_screen() {
    if !have("git") || !have("less") {
        return;
    }
    let repo = TempDir::new("gitlog");
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(&repo.path)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .output()
            .expect("git runs");
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    for n in 0..40 {
        git(&[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            &format!("commit number {n}"),
        ]);
    }
    let server = Server::start().await;
    let opened = server
        .ok(
            "session_open",
            json!({"argv": ["bash", "--norc", "--noprofile"], "cwd": repo.path, "cols": 80, "rows": 24,
                   "env": {"PS1": "$ ", "PAGER": null, "GIT_PAGER": null, "LESS": null}}),
        )
        .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    server.wait_screen(&id, r"(?m)^\$$", 10.0).await;
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "git log", "submit": true}),
        )
        .await;
    let screen = server.wait_screen(&id, r"(?m)^:$", 10.0).await;
    let screen_rows = rows(&screen);
    assert!(
        regex_lite_commit(&screen_rows[0]),
        "row 0 should be `commit <hash> (HEAD -> main)`: {:?}",
        screen_rows[0]
    );
    assert!(
        screen_rows[1].starts_with("Author: Test"),
        "{screen_rows:?}"
    );
    assert!(screen_rows[2].starts_with("Date: "), "{screen_rows:?}");
    assert_eq!(screen_rows[3], "");
    assert_eq!(screen_rows[4], "    commit number 39");
    assert_eq!(screen_rows[23], ":");
    assert_eq!(
        screen["alt_screen"], false,
        "less -X stays on the main screen"
    );

    server
        .ok("session_write", json!({"session_id": id, "input": "q"}))
        .await;
    let after = server.screen(&id).await;
    let after_rows = rows(&after);
    assert_eq!(
        after_rows.last().map(String::as_str),
        Some("$"),
        "{after_rows:?}"
    );
    assert!(
        text(&after).contains("commit number 39"),
        "the paged text stays on the main screen"
    );
    server.stop().await;
}

fn regex_lite_commit(row: &str) -> bool {
    let Some(rest) = row.strip_prefix("commit ") else {
        return false;
    };
    let (hash, tail) = rest.split_at(40.min(rest.len()));
    hash.len() == 40 && hash.chars().all(|c| c.is_ascii_hexdigit()) && tail == " (HEAD -> main)"
}

/// `git commit` opens vim; the call returns with the editor's screen, and the session
/// stays usable after `:q!`.
#[tokio::test]
async fn git_commit_editor() {
    if !have("git") || !have("vim") {
        return;
    }
    let repo = TempDir::new("gitcommit");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(args)
            .current_dir(&repo.path)
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(repo.path.join("file.txt"), "content\n").unwrap();
    git(&["add", "file.txt"]);
    let server = Server::start().await;
    let opened = server
        .ok(
            "session_open",
            json!({"argv": ["bash", "--norc", "--noprofile"], "cwd": repo.path, "cols": 80, "rows": 24,
                   "env": {"PS1": "$ ", "EDITOR": "vim", "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
                           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}}),
        )
        .await;
    let id = opened["session_id"].as_str().unwrap().to_owned();
    server.wait_screen(&id, r"(?m)^\$$", 10.0).await;
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "git commit", "submit": true}),
        )
        .await;
    let editor = server.wait_screen(&id, r"COMMIT_EDITMSG", 10.0).await;
    let editor_rows = rows(&editor);
    assert_eq!(editor["alt_screen"], true);
    assert_eq!(
        (editor["cursor_row"].clone(), editor["cursor_col"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(editor_rows[0], "");
    assert!(
        editor_rows[1].starts_with("# Please enter the commit message"),
        "{editor_rows:?}"
    );
    assert!(
        editor_rows
            .iter()
            .any(|row| row.starts_with("#\tmodified:") || row.contains("new file:   file.txt")),
        "{editor_rows:?}"
    );
    assert!(
        editor_rows[..23].iter().filter(|row| *row == "~").count() >= 10,
        "{editor_rows:?}"
    );
    assert!(
        editor_rows[23].contains("COMMIT_EDITMSG"),
        "{editor_rows:?}"
    );

    server
        .ok(
            "session_write",
            json!({"session_id": id, "keys": ["Escape"], "input": ""}),
        )
        .await;
    server
        .ok(
            "session_write",
            json!({"session_id": id, "input": ":q!", "submit": true}),
        )
        .await;
    let screen = server.wait_screen(&id, r"(?m)^\$$", 10.0).await;
    assert_eq!(
        rows(&screen),
        vec![
            "$ git commit",
            "Aborting commit due to empty commit message.",
            "$"
        ]
    );
    assert_eq!(screen["alt_screen"], false);
    server.stop().await;
}

/// A character split across PTY reads renders whole, and capped text has no U+FFFD.
#[tokio::test]
async fn split_character_and_capped_text_stay_valid() {
    let server = Server::start().await;
    let id = server.open_bash(60, 10).await;
    let result = server
        .type_line(&id, r"printf '\344\275'; sleep 0.2; printf '\240X\n'")
        .await;
    let body = text(&result);
    assert!(body.contains("\n你X\n"), "{body}");
    assert!(!body.contains('\u{fffd}'));

    if have("python3") {
        server.type_line(&id, "clear").await;
        let cursor = server.screen(&id).await["cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        server
            .ok("session_write", json!({"session_id": id, "input": r#"python3 -c 'print("\u00e9" * 50000)'"#, "submit": true, "settle": 0.5}))
            .await;
        let capped = server
            .ok(
                "session_read",
                json!({"session_id": id, "view": "output", "since": cursor, "max_chars": 1000}),
            )
            .await;
        let body = text(&capped);
        assert!(
            body.chars().count() <= 1000,
            "{} chars",
            body.chars().count()
        );
        assert!(!body.contains('\u{fffd}'));
        assert!(body.contains("omitted"), "{body}");
        assert!(capped["truncated"]["omitted_chars"].as_u64().unwrap() > 40_000);
    }
    server.stop().await;
}
