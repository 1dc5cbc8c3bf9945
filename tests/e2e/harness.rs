//! Starts the real server binary and drives it with rmcp's MCP client, over stdio or
//! over streamable HTTP on a port the server picks.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
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
        let mut command = tokio::process::Command::new(BINARY);
        command.args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        for name in remove {
            command.env_remove(name);
        }
        Self::start_command(command).await
    }

    /// Starts `command`, which must run the server binary in the same process (as
    /// `setpriv ... BINARY` does), and connects over its stdin and stdout.
    pub async fn start_command(mut command: tokio::process::Command) -> Server {
        let dir = TempDir::new("server");
        let stderr_path = dir.path.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let log_level_set = command
            .as_std()
            .get_envs()
            .any(|(name, _)| name == "RUST_LOG");
        if !log_level_set {
            command.env("RUST_LOG", "mcp_terminal_server=debug,info");
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
        call_tool(&self.client, tool, arguments).await
    }

    /// Calls a tool that must succeed and returns its structured content.
    pub async fn ok(&self, tool: &str, arguments: Value) -> Value {
        ok_tool(&self.client, tool, arguments).await
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

/// Calls a tool on `client` and returns the raw result.
pub async fn call_tool(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be a JSON object")
    };
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    tokio::time::timeout(CALL_TIMEOUT, client.call_tool(params))
        .await
        .unwrap_or_else(|_| panic!("{tool} timed out"))
        .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"))
}

/// Calls a tool on `client` that must succeed and returns its structured content.
pub async fn ok_tool(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> Value {
    let result = call_tool(client, tool, arguments).await;
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

/// A server started with `--http --port 0`, and the port it logged. The process is
/// killed when this value is dropped.
pub struct HttpServer {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub port: u16,
    pub stderr_path: PathBuf,
    _dir: TempDir,
}

impl HttpServer {
    /// Starts the server over HTTP on a free port of 127.0.0.1 (the default host) with extra flags and
    /// variables, and waits for the line that logs the port.
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> HttpServer {
        let mut server = Self::spawn(args, env);
        let found = wait_until(Duration::from_secs(20), || {
            server.port = logged_port(&server.stderr());
            server.port != 0
        })
        .await;
        assert!(found, "server logged no port: {}", server.stderr());
        server
    }

    /// Starts the server process without waiting for it to listen.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> HttpServer {
        let dir = TempDir::new("http");
        let stderr_path = dir.path.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut command = tokio::process::Command::new(BINARY);
        command
            .args(["--http", "--port", "0", "--kill-grace", "0.5"])
            .args(args)
            .env("RUST_LOG", "mcp_terminal_server=debug,info")
            .env_remove("MCP_AUTH_TOKEN")
            .env_remove("MCP_HOST")
            .env_remove("MCP_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("server binary starts");
        let pid = child.id().expect("server pid");
        HttpServer {
            child,
            pid,
            port: 0,
            stderr_path,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// Connects rmcp's client with the initialize handshake (an `Mcp-Session-Id` session).
    pub async fn connect(&self, token: Option<&str>) -> RunningService<RoleClient, ()> {
        let transport = StreamableHttpClientTransport::from_config(self.transport_config(token));
        tokio::time::timeout(CALL_TIMEOUT, ().serve(transport))
            .await
            .expect("initialize timed out")
            .expect("initialize succeeds")
    }

    /// Connects rmcp's client with the stateless 2026-07-28 revision (`server/discover`,
    /// no MCP session).
    pub async fn connect_stateless(&self) -> RunningService<RoleClient, ()> {
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        tokio::time::timeout(
            CALL_TIMEOUT,
            ().serve_with_lifecycle(
                StreamableHttpClientTransport::from_config(self.transport_config(None)),
                lifecycle,
            ),
        )
        .await
        .expect("discover timed out")
        .expect("discover succeeds")
    }

    fn transport_config(&self, token: Option<&str>) -> StreamableHttpClientTransportConfig {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url());
        match token {
            Some(token) => config.auth_header(token),
            None => config,
        }
    }

    /// Sends one raw HTTP/1.1 request (`Connection: close` is added) and returns the
    /// response read until the server closes the connection.
    pub async fn raw(&self, request: &str) -> RawResponse {
        raw_http(self.port, request).await
    }

    /// `GET /healthz` as JSON.
    pub async fn health(&self) -> Value {
        let response = self
            .raw(&format!(
                "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
                self.port
            ))
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
        serde_json::from_str(&response.body).expect("health JSON")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// The port of the server's "listening" line, or 0 before it is written.
fn logged_port(stderr: &str) -> u16 {
    stderr
        .lines()
        .filter(|line| line.contains("listening"))
        .find_map(|line| line.split(" port=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or(0)
}

/// A JSON-RPC `initialize` request body of the 2025-06-18 revision.
pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}"#;

/// A raw `POST /mcp` with the MCP content headers, `host`, extra header lines and `body`.
pub fn post_mcp(host: &str, extra_headers: &[&str], body: &str) -> String {
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    for line in extra_headers {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    request
}

/// An HTTP response as the raw client read it.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends `request` (its head without the final blank line when it has no body, or a
/// complete request from [`post_mcp`]) to 127.0.0.1:`port` over a fresh connection.
pub async fn raw_http(port: u16, request: &str) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = request.to_owned();
    let (head, body) = match request.split_once("\r\n\r\n") {
        Some((head, body)) => (head.to_owned(), body.to_owned()),
        None => (request.trim_end().to_owned(), String::new()),
    };
    request = format!("{head}\r\nConnection: close\r\n\r\n{body}");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the server");
    // The server may answer and close before the whole body is sent (413): keep reading.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut raw = Vec::new();
    // A streaming response may stay open; what arrived within the bound is enough.
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
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

/// A `kB` field of `/proc/<pid>/status`, such as `VmRSS:`; 0 when it cannot be read.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Terminal descriptors open in `pid`: masters (`/dev/ptmx`) and slaves
/// (`/dev/pts/N`).
pub fn pty_fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .filter(|target| target == Path::new("/dev/ptmx") || target.starts_with("/dev/pts/"))
        .count()
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
