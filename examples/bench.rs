//! Side-by-side benchmarks: a raw PTY driven directly (the floor), this server over
//! stdio and over streamable HTTP through rmcp's MCP client, and tmux driven with
//! `send-keys` and `capture-pane` polling. Prints every figure and the ratios.
//!
//! Run with `cargo run --release --example bench` (`-- --help` for the flags). The
//! example builds and starts the server binary next to it, or the one named by
//! `MCP_TERMINAL_SERVER`. All traffic goes to 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{call, say, server_binary};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use rmcp::ServiceExt;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};

type Client = RunningService<rmcp::RoleClient, ()>;

const HELP: &str = "\
Usage: cargo run --release --example bench -- [OPTIONS]

  --sections LIST   comma-separated: roundtrip,throughput,parse,open,memory,scale
                    (default: all)
  --tries N         round trips per contender (default 200)
  --mb N            megabytes printed in the throughput test (default 100)
  --opens N         sessions opened and closed for the open/close latency (default 20)
  --mem-sessions N  sessions per memory measurement (default 50)
  --sessions N      live sessions in the scale test (default 1000)
  --clients N       concurrent HTTP clients in the scale test (default 16)
  --seconds S       seconds per calls-per-second measurement (default 3)
";

/// An idle session: it prints one line, so session_open returns once output is quiet
/// rather than after its one-second wait for a first output, then sleeps.
const IDLE_ARGV: [&str; 3] = ["sh", "-c", "echo ready; exec sleep 3600"];

/// History rows the server keeps per session by default (`--scrollback`).
const DEFAULT_HISTORY_ROWS: u64 = 10_000;

/// One line of output printed by the throughput child: 79 characters and a newline.
const LINE: &str =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg";

struct Options {
    sections: Vec<String>,
    tries: usize,
    megabytes: usize,
    opens: usize,
    mem_sessions: usize,
    sessions: usize,
    clients: usize,
    seconds: f64,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut options = Options {
            sections: [
                "roundtrip",
                "throughput",
                "parse",
                "open",
                "memory",
                "scale",
            ]
            .map(String::from)
            .to_vec(),
            tries: 200,
            megabytes: 100,
            opens: 20,
            mem_sessions: 50,
            sessions: 1000,
            clients: 16,
            seconds: 3.0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                say(HELP);
                std::process::exit(0);
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<usize>()
                    .with_context(|| format!("{flag}: not a number: {value}"))
            };
            match flag.as_str() {
                "--sections" => options.sections = value.split(',').map(String::from).collect(),
                "--tries" => options.tries = number()?,
                "--mb" => options.megabytes = number()?,
                "--opens" => options.opens = number()?,
                "--mem-sessions" => options.mem_sessions = number()?,
                "--sessions" => options.sessions = number()?,
                "--clients" => options.clients = number()?,
                "--seconds" => options.seconds = value.parse().context("--seconds")?,
                _ => bail!("unknown flag {flag}\n{HELP}"),
            }
        }
        Ok(options)
    }

    fn wants(&self, section: &str) -> bool {
        self.sections.iter().any(|s| s == section)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = Options::parse()?;
    let binary = server_binary()?;
    machine();
    if options.wants("roundtrip") {
        round_trip(&binary, options.tries).await?;
    }
    if options.wants("throughput") {
        throughput(&binary, options.megabytes * 1_000_000).await?;
    }
    if options.wants("parse") {
        parse(options.megabytes * 1_000_000);
    }
    if options.wants("open") {
        open_close(&binary, options.opens).await?;
    }
    if options.wants("memory") {
        memory(&binary, options.mem_sessions).await?;
    }
    if options.wants("scale") {
        scale(&binary, &options).await?;
    }
    Ok(())
}

fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    say(&format!(
        "machine: {cores} cores, {cpu}, Linux {}",
        kernel.trim()
    ));
}

// ---------------------------------------------------------------------------------
// Round trip

async fn round_trip(binary: &PathBuf, tries: usize) -> Result<()> {
    say(&format!(
        "\n== round trip: type `echo <n>`, wait until the line `<n>` shows ({tries} tries) =="
    ));
    let raw = tokio::task::spawn_blocking(move || raw_round_trips(tries)).await??;
    report("raw PTY", &raw);

    let (stdio, _) = start_stdio(binary, &[]).await?;
    let ours_stdio = server_round_trips(&stdio, tries, 1_000_000).await?;
    stdio
        .cancel()
        .await
        .context("failed to stop the stdio server")?;
    report("server over stdio", &ours_stdio);

    let http = HttpServer::start(binary, &[]).await?;
    let client = http.connect().await?;
    let ours_http = server_round_trips(&client, tries, 2_000_000).await?;
    client.cancel().await.ok();
    http.stop().await;
    report("server over HTTP", &ours_http);

    let tmux = tokio::task::spawn_blocking(move || tmux_round_trips(tries)).await??;
    report("tmux send-keys + capture-pane", &tmux);

    let (raw_m, stdio_m, http_m, tmux_m) = (
        median(&raw),
        median(&ours_stdio),
        median(&ours_http),
        median(&tmux),
    );
    say(&format!(
        "ratios (medians): stdio / raw PTY = {:.1}x, HTTP / raw PTY = {:.1}x, tmux / stdio = {:.1}x, tmux / HTTP = {:.1}x",
        stdio_m / raw_m,
        http_m / raw_m,
        tmux_m / stdio_m,
        tmux_m / http_m
    ));
    say(&format!(
        "ratios (p95): stdio / raw PTY = {:.1}x, tmux / stdio = {:.1}x",
        p95(&ours_stdio) / p95(&raw),
        p95(&tmux) / p95(&ours_stdio)
    ));
    Ok(())
}

/// A bash in a PTY of its own, read by a thread that forwards every chunk.
struct RawPty {
    writer: Box<dyn Write + Send>,
    chunks: mpsc::Receiver<Vec<u8>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl RawPty {
    fn spawn(argv: &[&str]) -> Result<RawPty> {
        let pair = native_pty_system().openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })?;
        let mut command = CommandBuilder::new(argv[0]);
        command.args(&argv[1..]);
        command.env("PS1", "$ ");
        command.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(command)?;
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader()?;
        let writer = pair.master.take_writer()?;
        let (sender, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(RawPty {
            writer,
            chunks,
            child,
            _master: pair.master,
        })
    }

    /// Reads until `needle` appears in what was read since the last call, and returns
    /// the number of bytes read.
    fn read_until(&mut self, needle: &[u8], seen: &mut Vec<u8>) -> Result<usize> {
        self.read_until_at(needle, seen, false)
    }

    /// Reads like `read_until`. With `line_start`, only an occurrence right after a
    /// carriage return or a line feed counts.
    fn read_until_at(
        &mut self,
        needle: &[u8],
        seen: &mut Vec<u8>,
        line_start: bool,
    ) -> Result<usize> {
        let mut total = 0;
        loop {
            if let Some(at) = find(seen, needle, line_start) {
                seen.drain(..at + needle.len());
                return Ok(total);
            }
            let chunk = self
                .chunks
                .recv_timeout(Duration::from_secs(60))
                .context("raw PTY: no output")?;
            total += chunk.len();
            // Keep only a tail long enough to hold a needle split across chunks.
            let keep = seen.len().min(needle.len() + 1);
            seen.drain(..seen.len() - keep);
            seen.extend_from_slice(&chunk);
        }
    }
}

impl Drop for RawPty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(haystack: &[u8], needle: &[u8], line_start: bool) -> Option<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .position(|(at, window)| {
            window == needle && (!line_start || at > 0 && matches!(haystack[at - 1], b'\r' | b'\n'))
        })
}

fn raw_round_trips(tries: usize) -> Result<Vec<Duration>> {
    let mut pty = RawPty::spawn(&["bash", "--norc", "--noprofile"])?;
    let mut seen = Vec::new();
    pty.read_until(b"$ ", &mut seen)?;
    let mut times = Vec::with_capacity(tries);
    for n in 0..tries + 5 {
        let value = 100_000 + n;
        let start = Instant::now();
        pty.writer.write_all(format!("echo {value}\r").as_bytes())?;
        pty.writer.flush()?;
        // The typed line echoes as `echo N`, and the output line is `N` alone. It follows
        // a line feed, or a carriage return when bash first turns bracketed paste off.
        pty.read_until_at(format!("{value}\r\n").as_bytes(), &mut seen, true)?;
        let elapsed = start.elapsed();
        pty.read_until(b"$ ", &mut seen)?;
        if n >= 5 {
            times.push(elapsed);
        }
    }
    Ok(times)
}

async fn server_round_trips(client: &Client, tries: usize, base: usize) -> Result<Vec<Duration>> {
    let id = open_bash(client).await?;
    let mut times = Vec::with_capacity(tries);
    for n in 0..tries + 5 {
        let value = base + n;
        let start = Instant::now();
        let result = call(
            client,
            "session_write",
            json!({"session_id": id, "input": format!("echo {value}"), "submit": true,
                   "wait_for": format!("(?m)^{value}$"), "view": "screen", "timeout": 10}),
        )
        .await?;
        let elapsed = start.elapsed();
        let text = result["text"].as_str().unwrap_or_default();
        if !text.lines().any(|line| line == value.to_string()) {
            bail!(
                "round trip {value}: the output line is missing (wait ended: {}): {text}",
                result["reason"]
            );
        }
        if n >= 5 {
            times.push(elapsed);
        }
    }
    call(client, "session_close", json!({"session_id": id})).await?;
    Ok(times)
}

/// tmux on a private socket, so no user's server is touched.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Result<String> {
        let output = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("tmux failed to start")?;
        if !output.status.success() {
            bail!("tmux {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn wait_line(&self, line: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.run(&["capture-pane", "-p", "-t", "bench"])?;
            if screen.lines().any(|l| l.trim_end() == line) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("tmux: `{line}` did not show within 10 s: {screen}");
            }
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_round_trips(tries: usize) -> Result<Vec<Duration>> {
    let tmux = Tmux {
        socket: format!("mcp-bench-{}", std::process::id()),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "bench",
        "-x",
        "80",
        "-y",
        "24",
        "env PS1='$ ' bash --norc --noprofile",
    ])?;
    tmux.wait_line("$")?;
    let mut times = Vec::with_capacity(tries);
    for n in 0..tries + 5 {
        let value = (3_000_000 + n).to_string();
        let start = Instant::now();
        tmux.run(&[
            "send-keys",
            "-t",
            "bench",
            &format!("echo {value}"),
            "Enter",
        ])?;
        tmux.wait_line(&value)?;
        if n >= 5 {
            times.push(start.elapsed());
        }
    }
    Ok(times)
}

// ---------------------------------------------------------------------------------
// Throughput

fn throughput_command(bytes: usize) -> String {
    format!("yes {LINE} | head -c {bytes}; echo; echo END''MARK")
}

async fn throughput(binary: &PathBuf, bytes: usize) -> Result<()> {
    say(&format!(
        "\n== throughput: a child prints {} MB of 80-column lines ==",
        bytes / 1_000_000
    ));
    let command = throughput_command(bytes);
    let raw_command = command.clone();
    let (raw_time, raw_bytes) =
        tokio::task::spawn_blocking(move || -> Result<(Duration, usize)> {
            let start = Instant::now();
            let mut pty = RawPty::spawn(&["sh", "-c", &raw_command])?;
            let mut seen = Vec::new();
            let read = pty.read_until(b"ENDMARK", &mut seen)?;
            Ok((start.elapsed(), read))
        })
        .await??;
    let raw_rate = raw_bytes as f64 / raw_time.as_secs_f64() / 1e6;
    say(&format!(
        "raw PTY read: {raw_bytes} bytes in {:.2} s = {raw_rate:.1} MB/s",
        raw_time.as_secs_f64()
    ));

    let (client, _) = start_stdio(binary, &[]).await?;
    let start = Instant::now();
    let opened = call(
        &client,
        "session_open",
        json!({"argv": ["sh", "-c", command]}),
    )
    .await?;
    let id = session_id(&opened)?;
    loop {
        let result = call(
            &client,
            "session_read",
            json!({"session_id": id, "view": "screen", "wait_for": "ENDMARK", "timeout": 30}),
        )
        .await?;
        if result["text"]
            .as_str()
            .unwrap_or_default()
            .contains("ENDMARK")
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("the server never rendered the end marker");
        }
    }
    let ours_time = start.elapsed();
    call(&client, "session_close", json!({"session_id": id})).await?;
    client.cancel().await.ok();
    let ours_rate = raw_bytes as f64 / ours_time.as_secs_f64() / 1e6;
    say(&format!(
        "server (stdio) rendered all of it in {:.2} s = {ours_rate:.1} MB/s",
        ours_time.as_secs_f64()
    ));
    say(&format!(
        "ratio: server / raw PTY read rate = {:.0} %",
        100.0 * ours_rate / raw_rate
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------
// Parse rate without a PTY

/// Bytes fed per call in the parse section: what one PTY read returns on Linux while a
/// program floods its terminal (the line discipline hands over at most 4095 bytes).
const PARSE_CHUNK_BYTES: usize = 4095;

/// Feeds the bytes the throughput child's terminal delivers (the 80-column lines with
/// `\r\n` line ends) straight to a bare vt100 parser and to the server's screen, in
/// one thread and without a PTY. The bare parser at the server's default history is the
/// ceiling for the server's throughput; the screen adds the byte filter and the
/// transcript.
fn parse(bytes: usize) {
    use mcp_terminal_server::session::screen::{Screen, ScreenLimits, TermSize};

    say(&format!(
        "\n== parse: {} MB of the same lines fed in {PARSE_CHUNK_BYTES}-byte chunks, no PTY ==",
        bytes / 1_000_000
    ));
    let mut data = Vec::with_capacity(bytes + bytes / 80 + 2);
    while data.len() < bytes + bytes / 80 {
        data.extend_from_slice(LINE.as_bytes());
        data.extend_from_slice(b"\r\n");
    }
    let rate = |elapsed: Duration| data.len() as f64 / elapsed.as_secs_f64() / 1e6;

    for scrollback in [0, 10_000] {
        let rows = std::num::NonZeroU16::new(24).expect("24 is not zero");
        let cols = std::num::NonZeroU16::new(80).expect("80 is not zero");
        let mut parser = vt100::Parser::new(rows, cols, scrollback);
        let start = Instant::now();
        for chunk in data.chunks(PARSE_CHUNK_BYTES) {
            parser.process(chunk);
        }
        let elapsed = start.elapsed();
        say(&format!(
            "bare vt100 0.18.1 parser, 80x24, {scrollback} history rows: {} bytes in {:.2} s = {:.1} MB/s",
            data.len(),
            elapsed.as_secs_f64(),
            rate(elapsed)
        ));
    }

    let limits = ScreenLimits {
        scrollback_rows: 10_000,
        transcript_bytes: 1_048_576,
    };
    let mut screen = Screen::new(TermSize { cols: 80, rows: 24 }, limits);
    let start = Instant::now();
    for chunk in data.chunks(PARSE_CHUNK_BYTES) {
        screen.process(chunk);
    }
    let elapsed = start.elapsed();
    say(&format!(
        "server screen (filter, vt100, transcript) at the default 10000 history rows: {:.2} s = {:.1} MB/s",
        elapsed.as_secs_f64(),
        rate(elapsed)
    ));
}

// ---------------------------------------------------------------------------------
// Open and close

async fn open_close(binary: &PathBuf, opens: usize) -> Result<()> {
    say(&format!(
        "\n== session open (until the prompt is readable) and close, {opens} times, stdio =="
    ));
    let (client, _) = start_stdio(binary, &[]).await?;
    let mut open_times = Vec::new();
    let mut close_times = Vec::new();
    for _ in 0..opens {
        let start = Instant::now();
        let id = open_bash(&client).await?;
        open_times.push(start.elapsed());
        let start = Instant::now();
        call(&client, "session_close", json!({"session_id": id})).await?;
        close_times.push(start.elapsed());
    }
    client.cancel().await.ok();
    report("open bash until `$ ` shows", &open_times);
    report("close (default kill grace)", &close_times);

    let raw_open = tokio::task::spawn_blocking(move || -> Result<Vec<Duration>> {
        let mut times = Vec::new();
        for _ in 0..opens {
            let start = Instant::now();
            let mut pty = RawPty::spawn(&["bash", "--norc", "--noprofile"])?;
            pty.read_until(b"$ ", &mut Vec::new())?;
            times.push(start.elapsed());
        }
        Ok(times)
    })
    .await??;
    report("raw PTY: spawn bash until `$ ` is read", &raw_open);
    say(&format!(
        "ratio (medians): open / raw PTY = {:.1}x",
        median(&open_times) / median(&raw_open)
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------
// Memory

async fn memory(binary: &PathBuf, count: usize) -> Result<()> {
    say(&format!(
        "\n== memory: server RSS per session at default settings, {count} sessions =="
    ));
    let max = (2 * count).to_string();
    let (client, pid) = start_stdio(binary, &["--max-sessions", &max]).await?;
    // One session opened and closed first, so one-time allocations are not counted.
    let id = session_id(&call(&client, "session_open", json!({"argv": ["true"]})).await?)?;
    call(&client, "session_close", json!({"session_id": id})).await?;
    let base = rss_kib(pid)?;
    let mut ids = Vec::new();
    let mut size = (0, 0);
    for _ in 0..count {
        let opened = call(&client, "session_open", json!({"argv": IDLE_ARGV})).await?;
        size = (
            opened["cols"].as_u64().unwrap_or(80),
            opened["rows"].as_u64().unwrap_or(24),
        );
        ids.push(session_id(&opened)?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid)?;
    let idle_each = (idle - base) as f64 / count as f64;
    say(&format!(
        "idle (`sh` that prints a line, then `sleep`, {}x{}): RSS {base} KiB -> {idle} KiB, {idle_each:.0} KiB per session",
        size.0, size.1
    ));

    // Each session prints 3 MB (37,000 rows), more than the emulator history (10,000 rows
    // at the default) and the transcript (1 MiB) keep together.
    let fill = format!("yes {LINE} | head -c 3000000; echo END''MARK; exec sleep 3600");
    let mut full_ids = Vec::new();
    for _ in 0..count {
        let opened = call(&client, "session_open", json!({"argv": ["sh", "-c", fill]})).await?;
        full_ids.push(session_id(&opened)?);
    }
    for id in &full_ids {
        let result = call(
            &client,
            "session_read",
            json!({"session_id": id, "view": "screen", "wait_for": "ENDMARK", "timeout": 30}),
        )
        .await?;
        if result["reason"] != "matched" {
            bail!("a filling session did not finish: {}", result["reason"]);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let full = rss_kib(pid)?;
    let full_each = (full - idle) as f64 / count as f64;
    say(&format!(
        "full history (3 MB printed each): RSS {idle} KiB -> {full} KiB, {full_each:.0} KiB per session"
    ));
    let cell = std::mem::size_of::<vt100::Cell>();
    let grid = |rows: u64| rows * size.0 * cell as u64 / 1024;
    say(&format!(
        "emulator size: vt100::Cell is {cell} B; a {}x{} screen is {} KiB, with {DEFAULT_HISTORY_ROWS} history rows {} KiB; the transcript keeps up to 1024 KiB",
        size.0,
        size.1,
        grid(size.1),
        grid(size.1 + DEFAULT_HISTORY_ROWS)
    ));
    say(&format!(
        "ratios: idle session / screen grid = {:.1}x, full session / (grid with history + transcript) = {:.2}x",
        idle_each / grid(size.1) as f64,
        full_each / (grid(size.1 + DEFAULT_HISTORY_ROWS) + 1024) as f64
    ));
    for id in ids.iter().chain(&full_ids) {
        call(
            &client,
            "session_close",
            json!({"session_id": id, "grace": 0.2}),
        )
        .await?;
    }
    client.cancel().await.ok();
    Ok(())
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS line")
}

// ---------------------------------------------------------------------------------
// Scale

async fn scale(binary: &PathBuf, options: &Options) -> Result<()> {
    let wanted = options.sessions;
    say(&format!(
        "\n== scale: up to {wanted} live sessions on one HTTP server, then {} clients calling tools ==",
        options.clients
    ));
    let max = wanted.to_string();
    let server = HttpServer::start(binary, &["--max-sessions", &max]).await?;
    let client = server.connect().await?;
    let base = rss_kib(server.pid)?;
    let start = Instant::now();
    // The clients open sessions side by side until the count is reached or one fails.
    let remaining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(wanted));
    let mut openers = Vec::new();
    for _ in 0..options.clients {
        let client = server.connect().await?;
        let remaining = remaining.clone();
        openers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut failure = None;
            while remaining
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                match call(&client, "session_open", json!({"argv": IDLE_ARGV})).await {
                    Ok(opened) => ids.push(session_id(&opened)?),
                    Err(error) => {
                        remaining.store(0, std::sync::atomic::Ordering::SeqCst);
                        failure = Some(error.to_string());
                        break;
                    }
                }
            }
            client.cancel().await.ok();
            anyhow::Ok((ids, failure))
        }));
    }
    let mut ids = Vec::new();
    let mut limit = None;
    for opener in openers {
        let (mut opened, failure) = opener.await??;
        ids.append(&mut opened);
        limit = limit.or(failure);
    }
    let opened_in = start.elapsed();
    let rss = rss_kib(server.pid)?;
    say(&format!(
        "live sessions: {} of {wanted}, opened by {} clients side by side in {:.1} s ({:.1} ms per session); server RSS {base} KiB -> {rss} KiB ({:.0} KiB per session)",
        ids.len(),
        options.clients,
        opened_in.as_secs_f64(),
        opened_in.as_secs_f64() * 1000.0 / ids.len().max(1) as f64,
        (rss - base) as f64 / ids.len().max(1) as f64
    ));
    if let Some(limit) = limit {
        say(&format!("stopped by: {limit}"));
    }

    let seconds = Duration::from_secs_f64(options.seconds);
    for tool in ["session_list", "session_read"] {
        let mut workers = Vec::new();
        for worker in 0..options.clients {
            let client = server.connect().await?;
            let id = ids
                .get(worker % ids.len().max(1))
                .cloned()
                .unwrap_or_default();
            workers.push(tokio::spawn(async move {
                let arguments = if tool == "session_list" {
                    json!({})
                } else {
                    json!({"session_id": id, "view": "screen"})
                };
                let mut calls = 0u64;
                let mut latencies = Vec::new();
                let start = Instant::now();
                while start.elapsed() < seconds {
                    let call_start = Instant::now();
                    call(&client, tool, arguments.clone()).await?;
                    latencies.push(call_start.elapsed());
                    calls += 1;
                }
                client.cancel().await.ok();
                anyhow::Ok((calls, start.elapsed(), latencies))
            }));
        }
        let mut total = 0.0;
        let mut latencies = Vec::new();
        for worker in workers {
            let (calls, elapsed, mut times) = worker.await??;
            total += calls as f64 / elapsed.as_secs_f64();
            latencies.append(&mut times);
        }
        say(&format!(
            "{tool} with {} sessions, {} clients: {total:.0} calls/s, median {:.2} ms, p95 {:.2} ms",
            ids.len(),
            options.clients,
            median(&latencies) * 1000.0,
            p95(&latencies) * 1000.0
        ));
    }

    let start = Instant::now();
    let mut closers = Vec::new();
    for chunk in ids.chunks(ids.len().div_ceil(options.clients.max(1)).max(1)) {
        let client = server.connect().await?;
        let chunk = chunk.to_vec();
        closers.push(tokio::spawn(async move {
            for id in chunk {
                call(
                    &client,
                    "session_close",
                    json!({"session_id": id, "grace": 0.2}),
                )
                .await?;
            }
            client.cancel().await.ok();
            anyhow::Ok(())
        }));
    }
    for closer in closers {
        closer.await??;
    }
    say(&format!(
        "closed {} sessions in {:.1} s",
        ids.len(),
        start.elapsed().as_secs_f64()
    ));
    client.cancel().await.ok();
    server.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Servers and calls

async fn start_stdio(binary: &PathBuf, args: &[&str]) -> Result<(Client, u32)> {
    let mut command = tokio::process::Command::new(binary);
    command.args(args);
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to start {}", binary.display()))?;
    let pid = transport.id().context("server pid")?;
    let client = ().serve(transport).await.context("MCP initialization failed")?;
    Ok((client, pid))
}

/// The server over streamable HTTP on a port of 127.0.0.1 it picks and logs.
struct HttpServer {
    child: tokio::process::Child,
    pid: u32,
    port: u16,
    log: PathBuf,
}

impl HttpServer {
    async fn start(binary: &PathBuf, args: &[&str]) -> Result<HttpServer> {
        let log = std::env::temp_dir().join(format!("mcp-bench-{}.log", std::process::id()));
        let stderr = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(binary)
            .args(["--http", "--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("MCP_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;
        let pid = child.id().context("server pid")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let port = text
                .lines()
                .filter(|line| line.contains("listening"))
                .find_map(|line| line.split(" port=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|port| port.parse().ok());
            if let Some(port) = port {
                return Ok(HttpServer {
                    child,
                    pid,
                    port,
                    log,
                });
            }
            if Instant::now() > deadline {
                bail!("the HTTP server logged no port: {text}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn connect(&self) -> Result<Client> {
        let config = StreamableHttpClientTransportConfig::with_uri(format!(
            "http://127.0.0.1:{}/mcp",
            self.port
        ));
        let client =
            ().serve(StreamableHttpClientTransport::from_config(config))
                .await
                .context("MCP initialization over HTTP failed")?;
        Ok(client)
    }

    /// Asks the server to shut down (SIGTERM ends its sessions), then waits for it.
    async fn stop(mut self) {
        // SAFETY: kill(2) on the pid of a child this program started and has not reaped.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn open_bash(client: &Client) -> Result<String> {
    let opened = call(
        client,
        "session_open",
        json!({"argv": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ "}}),
    )
    .await?;
    let id = session_id(&opened)?;
    let result = call(
        client,
        "session_read",
        json!({"session_id": id, "view": "screen", "wait_for": r"(?m)^\$ ?$", "timeout": 10}),
    )
    .await?;
    if result["reason"] != "matched" {
        bail!("the prompt never showed: {}", result["text"]);
    }
    Ok(id)
}

fn session_id(opened: &Value) -> Result<String> {
    Ok(opened["session_id"]
        .as_str()
        .context("session_open returned no session_id")?
        .to_owned())
}

fn sorted_secs(times: &[Duration]) -> Vec<f64> {
    let mut secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    secs
}

fn median(times: &[Duration]) -> f64 {
    let secs = sorted_secs(times);
    secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn p95(times: &[Duration]) -> f64 {
    let secs = sorted_secs(times);
    let index = (secs.len() * 95).div_ceil(100).saturating_sub(1);
    secs.get(index).copied().unwrap_or(f64::NAN)
}

fn report(what: &str, times: &[Duration]) {
    say(&format!(
        "{what}: median {:.3} ms, p95 {:.3} ms ({} tries)",
        median(times) * 1000.0,
        p95(times) * 1000.0,
        times.len()
    ));
}
