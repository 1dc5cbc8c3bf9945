//! Hostile tool inputs and program output: extreme terminal sizes, emulator crash
//! inputs, escape sequences that must not reach the model, oversized and stuck writes,
//! and the default HTTP bind address.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

/// Peak resident memory of `pid` since it started.
fn hwm_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

fn marker_argv(marker: &str) -> Value {
    json!(["bash", "-c", format!("exec -a {marker} sleep 1000")])
}

fn marker(name: &str) -> String {
    format!("rtest-{name}-{}", std::process::id())
}

fn panic_free(stderr: &str) {
    assert!(
        !stderr.contains("panicked"),
        "panic text on stderr: {stderr}"
    );
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "panic text on stderr: {stderr}"
    );
}

/// Every out-of-range or mistyped size is rejected with the valid range and starts
/// nothing. A storm of resizes between 24×80 and 2×2 over wide characters leaves a
/// working 24×80 session, and the server's peak memory stays bounded.
#[tokio::test]
async fn terminal_sizes_are_bounded() {
    let server = Server::start().await;
    let baseline_hwm = hwm_kib(server.pid);
    let children_before = children(server.pid).len();
    let id = server.open_bash(80, 24).await;
    let sizes = [
        json!([0, 0]),
        json!([1, 1]),
        json!([1, 80]),
        json!([65535, 65535]),
        json!([70000, 80]),
        json!([-1, 80]),
        json!([24, "80"]),
        json!([24.5, 80]),
    ];
    for size in &sizes {
        let (rows, cols) = (&size[0], &size[1]);
        let opened = server
            .call(
                "session_open",
                json!({"argv": ["true"], "rows": rows, "cols": cols}),
            )
            .await;
        let message = format!("{:?}", opened.content);
        assert_eq!(opened.is_error, Some(true), "open {size}: {message}");
        assert!(
            message.contains("from 2 to 500") || message.contains("from 2 to 1000"),
            "open {size}: {message}"
        );
        let resized = server
            .call(
                "session_resize",
                json!({"session_id": id, "rows": rows, "cols": cols}),
            )
            .await;
        let message = format!("{:?}", resized.content);
        assert_eq!(resized.is_error, Some(true), "resize {size}: {message}");
        assert!(message.contains("pass a"), "resize {size}: {message}");
    }
    assert_eq!(
        children(server.pid).len(),
        children_before + 1,
        "a refused session_open started a process"
    );

    // The program keeps the terminal through the whole storm: a shell prompt would
    // redraw itself on every SIGWINCH and overwrite the rows under test.
    let typed = server
        .ok(
            "session_write",
            json!({"session_id": id, "input": "printf '\\xe4\\xbd\\xa0%.0s' {1..2000}; sleep 300",
                   "submit": true, "wait_for": "你{40}", "timeout": 10}),
        )
        .await;
    assert_eq!(typed["reason"], "matched", "{typed}");
    for batch in 0..20 {
        let calls = (0..50).map(|index| {
            let (rows, cols) = if (batch * 50 + index) % 2 == 0 {
                (24, 80)
            } else {
                (2, 2)
            };
            server.call(
                "session_resize",
                json!({"session_id": id, "rows": rows, "cols": cols}),
            )
        });
        for result in futures::future::join_all(calls).await {
            assert_ne!(result.is_error, Some(true), "{:?}", result.content);
        }
    }
    server
        .ok(
            "session_resize",
            json!({"session_id": id, "rows": 24, "cols": 80}),
        )
        .await;
    let screen = server.screen(&id).await;
    assert_eq!(screen["rows"], 24);
    assert_eq!(screen["cols"], 80);
    assert!(
        text(&screen).contains(&"你".repeat(40)),
        "{}",
        text(&screen)
    );
    assert_eq!(
        screen["state"], "running",
        "the storm ended the program: {screen}"
    );
    let grown = hwm_kib(server.pid).saturating_sub(baseline_hwm);
    assert!(grown < 32 * 1024, "peak RSS grew by {grown} KiB");
    panic_free(&server.stderr());
    server.stop().await;
}

/// A 500×1000 terminal flooded with full-width lines keeps its history within the
/// emulator's cell budget, not the 10,000 rows × 1000 cells an unbudgeted history takes.
#[tokio::test]
async fn widest_terminal_history_is_budgeted() {
    let server = Server::start_with(&["--scrollback", "10000", "--kill-grace", "0.5"], &[]).await;
    let baseline = rss_kib(server.pid);
    let opened = server
        .ok(
            "session_open",
            json!({"argv": ["bash", "-c", "timeout 5 yes \"$(printf 'x%.0s' {1..999})\"; echo; echo YES-DONE; sleep 100"],
                   "rows": 500, "cols": 1000}),
        )
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let done = server
        .ok(
            "session_read",
            json!({"session_id": id, "view": "screen", "wait_for": "^YES-DONE$", "timeout": 30}),
        )
        .await;
    assert_eq!(done["reason"], "matched", "{}", done["reason"]);
    let grown = rss_kib(server.pid).saturating_sub(baseline);
    assert!(grown < 80 * 1024, "server RSS grew by {grown} KiB");
    server.stop().await;
}

/// Output that panics vt100 0.16 after a shrinking resize leaves the server and a third
/// session working, and both crafted sessions readable.
#[tokio::test]
async fn emulator_crash_inputs_are_contained() {
    let server = Server::start().await;
    let name = marker("R16");
    let keeper = server
        .ok("session_open", json!({"argv": marker_argv(&name)}))
        .await;
    let keeper = keeper["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let crafted = [
        (
            2,
            4,
            "printf 'a\\xe4\\xbd\\xa0'; sleep 2; printf '\\e[K'; sleep 100",
            (2, 2),
        ),
        (
            3,
            10,
            "printf 'aaaaaaaa\\xe3\\x81\\x82'; sleep 2; printf '\\e[1;9Hz'; sleep 100",
            (3, 9),
        ),
    ];
    let mut ids = Vec::new();
    for (rows, cols, script, _) in &crafted {
        let opened = server
            .ok(
                "session_open",
                json!({"argv": ["bash", "-c", script], "rows": rows, "cols": cols}),
            )
            .await;
        ids.push(
            opened["session_id"]
                .as_str()
                .expect("session_id")
                .to_owned(),
        );
    }
    for (id, (_, _, _, (rows, cols))) in ids.iter().zip(&crafted) {
        server
            .ok(
                "session_resize",
                json!({"session_id": id, "rows": rows, "cols": cols}),
            )
            .await;
    }
    // The second printf of each script runs 2 s after its start.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (id, (_, _, _, (rows, cols))) in ids.iter().zip(&crafted) {
        let screen = server.screen(id).await;
        assert_eq!(screen["rows"], *rows);
        assert_eq!(screen["cols"], *cols);
    }
    assert!(pid_alive(server.pid));
    assert_eq!(pids_matching(&name).len(), 1);
    let kept = server.screen(&keeper).await;
    assert_eq!(kept["state"], "running");
    panic_free(&server.stderr());
    server.stop().await;
}

/// Characters tool results may carry: no C0 control but newline and tab, no C1 control.
fn assert_clean(what: &str, value: &Value) {
    match value {
        Value::String(text) => {
            if let Some(bad) = text.chars().find(|&c| {
                (c < ' ' && c != '\n' && c != '\t') || ('\u{7f}'..='\u{9f}').contains(&c)
            }) {
                panic!("{what} contains U+{:04X}: {text:?}", u32::from(bad));
            }
        }
        Value::Array(items) => items.iter().for_each(|item| assert_clean(what, item)),
        Value::Object(fields) => fields.values().for_each(|item| assert_clean(what, item)),
        _ => {}
    }
}

/// Clipboard and title sequences, a screen clear, colours, a raw C1 CSI and invalid
/// UTF-8 come out as clean text in every view. The clipboard payload appears nowhere and
/// the title only in `title`, invalid bytes become U+FFFD, and the visible text keeps
/// its order.
#[tokio::test]
async fn output_is_sanitised_in_every_view() {
    let server = Server::start().await;
    let id = server.open_bash(80, 24).await;
    let before = server.screen(&id).await["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    // The quotes split the clipboard payload and the title, so the echoed command line
    // does not contain them.
    let command =
        r"printf 'A\e]52;c;ZXZp''bA==\aB\e]0;PW''NED\aC\e[2J\e[31mRED\e[0m\xc2\x9b31mD\xff\xfeE\n'";
    let typed = server.type_line(&id, command).await;
    let mut results = vec![("write", typed)];
    for view in ["output", "screen", "scrollback", "auto"] {
        let read = server
            .ok(
                "session_read",
                json!({"session_id": id, "view": view, "since": before}),
            )
            .await;
        results.push((view, read));
    }
    for (view, result) in &results {
        assert_clean(view, result);
        let serialized = result.to_string();
        assert!(
            !serialized.contains("ZXZpbA=="),
            "{view}: clipboard payload in {serialized}"
        );
        let text = text(result);
        assert!(!text.contains("PWNED"), "{view}: title in text {text:?}");
        let red = text
            .rfind("RED")
            .unwrap_or_else(|| panic!("{view}: no RED in {text:?}"));
        let after = &text[red..];
        let d = after
            .find('D')
            .unwrap_or_else(|| panic!("{view}: no D after RED in {text:?}"));
        assert!(
            after[d..].contains("\u{fffd}\u{fffd}E"),
            "{view}: invalid bytes are not U+FFFD before E in {text:?}"
        );
        // The text before the screen clear may be erased; when a view keeps it, it
        // comes before RED.
        if let Some(before_clear) = text.find("ABC") {
            assert!(before_clear < red, "{view}: ABC after RED in {text:?}");
        }
    }
    let title = results[1].1["title"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(title.is_empty() || title == "PWNED", "{title:?}");
    server.stop().await;
}

/// Checks every string of a tool result, structured and text, with [`assert_clean`],
/// and returns the structured content.
fn clean_result(what: &str, result: &rmcp::model::CallToolResult) -> Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "{what} failed: {:?}",
        result.content
    );
    for block in &result.content {
        if let Some(content) = block.as_text() {
            assert_clean(&format!("{what} text content"), &json!(content.text));
            assert!(
                !content.text.contains("ZXZpbA=="),
                "{what}: clipboard payload in {:?}",
                content.text
            );
            assert!(
                !content.text.contains("PWNED"),
                "{what}: title in {:?}",
                content.text
            );
        }
    }
    let structured = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{what} returned no structured content"));
    assert_clean(what, &structured);
    let serialized = structured.to_string();
    assert!(
        !serialized.contains("ZXZpbA=="),
        "{what}: clipboard payload in {serialized}"
    );
    assert!(
        !serialized.contains("PWNED"),
        "{what}: title in {serialized}"
    );
    structured
}

/// Asserts that `RED`, `D`, two U+FFFD and `E` appear in that order in `text`.
fn assert_visible_order(what: &str, text: &str) {
    let red = text
        .rfind("RED")
        .unwrap_or_else(|| panic!("{what}: no RED in {text:?}"));
    let after = &text[red..];
    let d = after
        .find('D')
        .unwrap_or_else(|| panic!("{what}: no D after RED in {text:?}"));
    assert!(
        after[d..].contains("\u{fffd}\u{fffd}E"),
        "{what}: invalid bytes are not U+FFFD before E in {text:?}"
    );
    if let Some(before_clear) = text.find("ABC") {
        assert!(before_clear < red, "{what}: ABC after RED in {text:?}");
    }
}

/// The hostile output of `output_is_sanitised_in_every_view` comes out clean from
/// session_exec and execute_command too, in every field of the result. A fake
/// end-of-command mark without the session's nonce does not change the exit code.
#[tokio::test]
async fn command_output_is_sanitised() {
    let server = Server::start().await;
    let home = TempDir::new("home");
    // The configured shell, opened without argv, so it has the shell integration
    // session_exec needs.
    let opened = server
        .ok(
            "session_open",
            json!({"env": {"HOME": home.path.display().to_string(), "LANG": "C.UTF-8"}}),
        )
        .await;
    let id = opened["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    // The quotes split the clipboard payload and the title, so a result that echoed
    // the command line would not contain them.
    let command =
        r"printf 'A\e]52;c;ZXZp''bA==\aB\e]0;PW''NED\aC\e[2J\e[31mRED\e[0m\xc2\x9b31mD\xff\xfeE\n'";

    let exec = server
        .call(
            "session_exec",
            json!({"session_id": id, "command": command}),
        )
        .await;
    let exec = clean_result("session_exec", &exec);
    assert_eq!(exec["exit_code"], 0, "{exec}");
    assert_visible_order("session_exec", exec["output"].as_str().unwrap_or_default());

    let executed = server
        .call("execute_command", json!({"command": command}))
        .await;
    let executed = clean_result("execute_command", &executed);
    assert_eq!(executed["exit_code"], 0, "{executed}");
    let output = executed["output"].as_str().unwrap_or_default();
    assert_visible_order("execute_command", output);
    // Without a terminal nothing is erased, and an 8-bit CSI is removed with its
    // parameters, as a 7-bit one is.
    assert_eq!(output, "ABCREDD\u{fffd}\u{fffd}E\n");

    // Eight-bit OSC strings, carriage-return redraws and CRLF line ends.
    let redraws = r"printf 'one\r\ntwo 50%%\rtwo 100%%\n\xc2\x9d52;c;ZXZp''bA==\x07gone\r'";
    let executed = server
        .call("execute_command", json!({"command": redraws}))
        .await;
    let executed = clean_result("execute_command redraws", &executed);
    assert_eq!(executed["output"], "one\ntwo 100%\ngone", "{executed}");

    let faked = server
        .call(
            "session_exec",
            json!({"session_id": id, "command": r"printf '\e]133;D;0\a'; false"}),
        )
        .await;
    let faked = clean_result("session_exec with a fake mark", &faked);
    assert_eq!(faked["exit_code"], 1, "{faked}");
    server.stop().await;
}

/// 3 MiB of input is rejected naming the 1 MiB limit and types nothing. Writes of a
/// million characters to four programs that never read return once their timeout
/// passes, with how much reached the terminal, while other sessions return reads.
/// Closing the four ends them.
#[tokio::test]
async fn oversized_and_stuck_writes_are_bounded() {
    let server = Server::start().await;
    let baseline = rss_kib(server.pid);
    let idle = server.open_bash(80, 24).await;
    let before = text(&server.screen(&idle).await).to_owned();
    let huge = "a".repeat(3 << 20);
    let error = server
        .err("session_write", json!({"session_id": idle, "input": huge}))
        .await;
    assert!(error.contains("1048576 bytes"), "{error}");
    assert_eq!(
        text(&server.screen(&idle).await),
        before,
        "rejected input was typed"
    );
    let grown = rss_kib(server.pid).saturating_sub(baseline);
    assert!(grown < 32 * 1024, "server RSS grew by {grown} KiB");

    let name = marker("R18");
    let mut stuck = Vec::new();
    for _ in 0..4 {
        let opened = server
            .ok("session_open", json!({"argv": marker_argv(&name)}))
            .await;
        stuck.push(
            opened["session_id"]
                .as_str()
                .expect("session_id")
                .to_owned(),
        );
    }
    let million = "b".repeat(1_000_000);
    let started = Instant::now();
    let writes = stuck.iter().map(|id| {
        server.call(
            "session_write",
            json!({"session_id": id, "input": million, "timeout": 3}),
        )
    });
    let other_reads = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let fifth = server.screen(&idle).await;
        let blocked = server.screen(&stuck[0]).await;
        (fifth, blocked)
    };
    let (results, (fifth, blocked)) = tokio::join!(futures::future::join_all(writes), other_reads);
    let elapsed = started.elapsed();
    assert_eq!(fifth["state"], "idle");
    assert_eq!(blocked["state"], "running");
    // Each write gives up at its 3 s timeout instead of the 10 s default.
    assert!(elapsed < Duration::from_secs(8), "writes took {elapsed:?}");
    // In canonical mode the line discipline discards input beyond its 4 KiB line
    // buffer instead of blocking, so a write can also succeed. The error of a write that
    // blocks gives how much reached the terminal.
    for result in results {
        if result.is_error == Some(true) {
            let message = format!("{:?}", result.content);
            assert!(
                message.contains("of 1000000 bytes were written"),
                "{message}"
            );
            assert!(message.contains("the rest was not"), "{message}");
        }
    }
    for id in &stuck {
        server
            .ok("session_close", json!({"session_id": id, "grace": 2}))
            .await;
    }
    let gone = wait_until(Duration::from_secs(10), || pids_matching(&name).is_empty()).await;
    assert!(
        gone,
        "stuck sessions survived close: {:?}",
        pids_matching(&name)
    );
    server.stop().await;
}

/// Local addresses of listening TCP sockets on `port`, read from /proc/net.
fn listening_addresses(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let contents = std::fs::read_to_string(table).unwrap_or_default();
        for line in contents.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((address, hex_port)) = local.split_once(':') else {
                continue;
            };
            if *state == "0A" && u16::from_str_radix(hex_port, 16) == Ok(port) {
                found.push(address.to_owned());
            }
        }
    }
    found
}

/// Without --host or MCP_HOST the server listens on 127.0.0.1 only, on the port it
/// logs.
#[tokio::test]
async fn default_bind_is_loopback_only() {
    let server = HttpServer::start(&[], &[]).await;
    let addresses = listening_addresses(server.port);
    // /proc/net/tcp writes 127.0.0.1 as little-endian hex.
    assert_eq!(addresses, ["0100007F"], "listening on {addresses:?}");
    assert_eq!(server.health().await["status"], "ok");
}

/// Session ids are distinct version-4 UUIDs that share no 12-character prefix, and a
/// guessed id gets the same message as a random one, apart from the value.
#[tokio::test]
async fn session_ids_are_random_uuids() {
    let server = Server::start().await;
    let mut ids = Vec::new();
    for _ in 0..60 {
        let opened = server.ok("session_open", json!({"argv": ["true"]})).await;
        let id = opened["session_id"]
            .as_str()
            .expect("session_id")
            .to_owned();
        server.ok("session_close", json!({"session_id": id})).await;
        ids.push(id);
    }
    for id in &ids {
        let parsed = uuid::Uuid::parse_str(id).unwrap_or_else(|error| panic!("{id}: {error}"));
        assert_eq!(parsed.get_version_num(), 4, "{id}");
    }
    let prefixes: std::collections::HashSet<&str> = ids.iter().map(|id| &id[..12]).collect();
    assert_eq!(
        prefixes.len(),
        ids.len(),
        "two ids share a 12-character prefix"
    );

    let random = uuid::Uuid::new_v4().to_string();
    let mut altered = ids[0].clone();
    let last = if altered.ends_with('0') { "1" } else { "0" };
    altered.replace_range(altered.len() - 1.., last);
    let reference = server
        .err("session_read", json!({"session_id": random}))
        .await
        .replace(&random, "ID");
    assert!(reference.contains("session_list"), "{reference}");
    let message = server
        .err("session_read", json!({"session_id": altered}))
        .await
        .replace(&altered, "ID");
    assert_eq!(message, reference, "guess {altered:?}");
    // Values that are not UUIDs get a message of their own, which tells nothing about
    // the sessions that exist.
    for guess in ["1", "0"] {
        let message = server
            .err("session_read", json!({"session_id": guess}))
            .await;
        assert!(message.contains(&format!("{guess:?}")), "{message}");
        assert!(message.contains("session_list"), "{message}");
    }
    let closed = server
        .err("session_read", json!({"session_id": ids[1]}))
        .await;
    assert!(closed.contains("closed"), "{closed}");
    server.stop().await;
}
