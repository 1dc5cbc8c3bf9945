//! The stdio transport under hostile input and a vanishing client: stdout carries one
//! JSON-RPC message per line whatever arrives, and losing the client ends every process
//! the server started.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

/// The server on raw pipes, with every stdout line kept for inspection.
struct RawStdio {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: TempDir,
}

impl RawStdio {
    fn start() -> RawStdio {
        let dir = TempDir::new("stdio-wire");
        let stderr = std::fs::File::create(dir.path.join("stderr.log")).expect("stderr file");
        let mut child = Command::new(BINARY)
            .args(["--kill-grace", "0.5"])
            .env("RUST_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("server starts");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut server = RawStdio {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            _dir: dir,
        };
        server.send_line(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}).to_string());
        server.response(0);
        server.send_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        server
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("server reads stdin");
        stdin.flush().expect("flush");
    }

    /// Waits for the response with `id`; every line read on the way must be JSON-RPC.
    fn response(&mut self, id: u64) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(CALL_TIMEOUT)
                .unwrap_or_else(|_| panic!("no response {id}"));
            self.seen.push(line.clone());
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line:?}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == id {
                return message;
            }
        }
    }

    fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        self.send_line(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments}})
            .to_string(),
        );
        self.response(id)
    }

    /// Closes stdin and waits (bounded) for the exit status.
    fn close_stdin_and_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }
}

fn session_id(response: &Value) -> String {
    response["result"]["structuredContent"]["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session id in {response}"))
        .to_owned()
}

/// Garbage lines, unknown methods, mistyped arguments, 10 MB of output and emulator
/// crash inputs: each request gets exactly one response with its id and the right
/// error code, stdout contains nothing but JSON-RPC, and the exit status is 0.
#[test]
fn stdio_hostile_requests_keep_the_wire_clean() {
    let mut server = RawStdio::start();
    let first = session_id(&server.call(
        1,
        "session_open",
        json!({"argv": ["bash", "--norc"], "env": {"PS1": "$ "}}),
    ));
    let second = session_id(&server.call(2, "session_open", json!({})));
    let flood = server.call(
        3,
        "session_write",
        json!({"session_id": first, "input": "yes | head -c 10M; echo FLOOD-DONE", "submit": true,
               "wait_for": "^FLOOD-DONE$", "timeout": 30, "max_chars": 1000000}),
    );
    assert_eq!(
        flood["result"]["structuredContent"]["reason"], "matched",
        "{flood}"
    );
    for (id, session) in [(4, &first), (5, &second)] {
        let read = server.call(id, "session_read", json!({"session_id": session}));
        assert_ne!(read["result"]["isError"], true, "{read}");
    }
    server.send_line("this is not json");
    let parse_error = server.response_matching(|message| message["error"]["code"] == -32700);
    assert!(parse_error["id"].is_null(), "{parse_error}");
    server.send_line(r#"{"jsonrpc":"2.0","id":7,"method":"no/such"}"#);
    assert_eq!(server.response(7)["error"]["code"], -32601);
    let mistyped = server.call(
        8,
        "session_resize",
        json!({"session_id": 42, "cols": "wide"}),
    );
    let code = &mistyped["error"]["code"];
    assert!(
        *code == -32602 || mistyped["result"]["isError"] == true,
        "{mistyped}"
    );
    let crafted = session_id(&server.call(
        9,
        "session_open",
        json!({"argv": ["bash", "-c", "printf 'a\\xe4\\xbd\\xa0'; sleep 1; printf '\\e[K'; sleep 100"], "rows": 2, "cols": 4}),
    ));
    server.call(
        10,
        "session_resize",
        json!({"session_id": crafted, "rows": 2, "cols": 2}),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let read = server.call(
        11,
        "session_read",
        json!({"session_id": crafted, "view": "screen"}),
    );
    assert_eq!(read["result"]["structuredContent"]["cols"], 2, "{read}");
    for (id, session) in [(12, &first), (13, &second), (14, &crafted)] {
        server.call(id, "session_close", json!({"session_id": session}));
    }
    let status = server.close_stdin_and_wait().expect("server exits");
    for line in server.lines.try_iter() {
        serde_json::from_str::<Value>(&line)
            .unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line:?}"));
        server.seen.push(line);
    }
    assert!(status.success(), "{status}");
    for id in 1..=14u64 {
        let responses = server
            .seen
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| {
                message["id"] == id
                    && (message.get("result").is_some() || message.get("error").is_some())
            })
            .count();
        let expected = usize::from(id != 6);
        assert_eq!(responses, expected, "responses with id {id}");
    }
}

impl RawStdio {
    fn response_matching(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self.lines.recv_timeout(CALL_TIMEOUT).expect("a response");
            self.seen.push(line.clone());
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line:?}"));
            if wanted(&message) {
                return message;
            }
        }
    }
}

/// The stdio client goes away, also while a wait is in flight: the server exits with
/// status 0 and takes `nohup`, hangup-ignoring and `setsid` jobs with it.
#[test]
fn stdio_client_gone_ends_every_job() {
    for in_flight in [false, true] {
        let mut server = RawStdio::start();
        let tag = format!("rtest-R14-{}-{in_flight}", std::process::id());
        let shell = session_id(&server.call(
            1,
            "session_open",
            json!({"argv": ["bash", "--norc"], "env": {"PS1": "$ "}}),
        ));
        let jobs = [
            format!("nohup bash -c 'exec -a {tag}a sleep 1000' >/dev/null 2>&1 &"),
            format!("bash -c 'trap \"\" HUP; exec -a {tag}b sleep 1000' &"),
            format!("setsid -f bash -c 'exec -a {tag}c sleep 1000'"),
        ];
        for (index, job) in jobs.iter().enumerate() {
            server.call(
                2 + index as u64,
                "session_write",
                json!({"session_id": shell, "input": job, "submit": true, "settle": 0.3}),
            );
        }
        let started = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            pids_matching(&tag).len() == 3
        });
        assert!(started, "markers: {:?}", pids_matching(&tag));
        if in_flight {
            server.send_line(
                &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "session_read",
                        "arguments": {"session_id": shell, "wait_for": "NEVER-MATCHES", "timeout": 30}}})
                .to_string(),
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        let closed_at = Instant::now();
        let status = server.close_stdin_and_wait().expect("server exits");
        assert!(status.success(), "{status}");
        let elapsed = closed_at.elapsed();
        assert!(elapsed < Duration::from_secs(10), "exit took {elapsed:?}");
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            pids_matching(&tag).is_empty()
        });
        assert!(gone, "survivors: {:?}", pids_matching(&tag));
    }
}
