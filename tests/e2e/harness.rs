//! Starts the real server binary and drives it with rmcp's MCP client over stdio.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// Bound on any single tool call in tests; only stops hangs.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub const BINARY: &str = env!("CARGO_BIN_EXE_mcp-terminal-server");

/// A running server with an MCP client connected over its stdin and stdout.
pub struct Server {
    pub client: RunningService<RoleClient, ()>,
    pub pid: u32,
    pub stderr_path: PathBuf,
    _dir: TempDir,
}

impl Server {
    /// Starts the server with extra flags and environment variables.
    pub async fn start_with(args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_full(args, env, &[]).await
    }

    /// Starts the server with extra flags, variables set, and variables removed from the
    /// test's own environment.
    pub async fn start_full(args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Server {
        let dir = TempDir::new("server");
        let stderr_path = dir.path.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut command = tokio::process::Command::new(BINARY);
        command
            .args(args)
            .env("RUST_LOG", "mcp_terminal_server=debug,info");
        for (name, value) in env {
            command.env(name, value);
        }
        for name in remove {
            command.env_remove(name);
        }
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("server binary starts");
        let pid = transport.id().expect("server pid");
        let client = tokio::time::timeout(CALL_TIMEOUT, ().serve(transport))
            .await
            .expect("initialize timed out")
            .expect("initialize succeeds");
        Server {
            client,
            pid,
            stderr_path,
            _dir: dir,
        }
    }

    pub async fn start() -> Server {
        Self::start_with(&["--kill-grace", "0.5"], &[]).await
    }

    /// Calls a tool and returns the raw result.
    pub async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be a JSON object")
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        tokio::time::timeout(CALL_TIMEOUT, self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{tool} timed out"))
            .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"))
    }

    /// Calls a tool that must succeed and returns its structured content.
    pub async fn ok(&self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments).await;
        assert_ne!(
            result.is_error,
            Some(true),
            "{tool} returned an error: {:?}",
            result.content
        );
        result
            .structured_content
            .unwrap_or_else(|| panic!("{tool} returned no structured content"))
    }

    /// Calls a tool that must fail and returns the error text.
    pub async fn err(&self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool} should have failed: {:?}",
            result.structured_content
        );
        result
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|text| text.text.clone()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Opens `bash --norc --noprofile` with `PS1='$ '` and waits for the prompt.
    pub async fn open_bash(&self, cols: u16, rows: u16) -> String {
        let opened = self
            .ok(
                "session_open",
                json!({
                    "argv": ["bash", "--norc", "--noprofile"],
                    "env": {"PS1": "$ ", "LANG": "C.UTF-8"},
                    "cols": cols,
                    "rows": rows,
                }),
            )
            .await;
        let id = opened["session_id"]
            .as_str()
            .expect("session_id")
            .to_owned();
        self.wait_screen(&id, r"(?m)^\$$", 10.0).await;
        id
    }

    /// Types a line and waits for output to settle.
    pub async fn type_line(&self, id: &str, line: &str) -> Value {
        self.ok(
            "session_write",
            json!({"session_id": id, "input": line, "submit": true}),
        )
        .await
    }

    /// Reads the screen view.
    pub async fn screen(&self, id: &str) -> Value {
        self.ok("session_read", json!({"session_id": id, "view": "screen"}))
            .await
    }

    /// Waits until the screen view matches `pattern`, or panics after `timeout`.
    pub async fn wait_screen(&self, id: &str, pattern: &str, timeout: f64) -> Value {
        let result = self
            .ok("session_read", json!({"session_id": id, "view": "screen", "wait_for": pattern, "timeout": timeout}))
            .await;
        assert_eq!(
            result["reason"], "matched",
            "screen never matched {pattern:?}: {}",
            result["text"]
        );
        result
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Closes the client (end of stdin) and waits for the server to exit.
    pub async fn stop(self) {
        let _ = tokio::time::timeout(CALL_TIMEOUT, self.client.cancel()).await;
        wait_until(Duration::from_secs(20), || !pid_alive(self.pid)).await;
    }
}

/// Screen rows of a read result, one entry per row (trailing empty rows dropped by the
/// server).
pub fn rows(result: &Value) -> Vec<String> {
    result["text"]
        .as_str()
        .unwrap_or_default()
        .split('\n')
        .map(str::to_owned)
        .collect()
}

pub fn text(result: &Value) -> &str {
    result["text"].as_str().unwrap_or_default()
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
pub async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reports whether a process exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Pids of live processes whose command line contains `needle`.
pub fn pids_matching(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && pid_alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// Children of `pid` with their state letter.
pub fn children(pid: u32) -> Vec<(u32, char)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let parent: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if parent == pid {
            found.push((child, state));
        }
    }
    found
}

pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

pub fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// A directory removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("mcp-terminal-test-{prefix}-{}", uuid_like()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Skips the calling test with a message when `program` is not installed.
pub fn have(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        // Test output, not server output: the lint on stdout printing is for the server.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipping: {program} is not installed");
        }
    }
    found
}
