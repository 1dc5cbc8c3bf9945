//! MCP over standard input and output, one client per server process.

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::mcp::TerminalServer;

/// The reason the stdio transport stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The client closed standard input (or died).
    EndOfInput,
    /// A shutdown signal arrived.
    Shutdown,
}

/// Resolves when the reading end of standard output is closed (the client stopped
/// reading), which rmcp only notices as failed writes. Polls, because a pipe reports
/// POLLERR on its write end once the reader is gone; stops polling at `shutdown`.
async fn watch_stdout_closed(shutdown: tokio_util::sync::CancellationToken) {
    let check = tokio::task::spawn_blocking(move || {
        while !shutdown.is_cancelled() {
            let mut poll_fd = libc::pollfd {
                fd: libc::STDOUT_FILENO,
                events: 0,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut poll_fd, 1, 500) };
            if ready > 0 && poll_fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
            {
                return true;
            }
        }
        false
    });
    match check.await {
        Ok(true) => {}
        // Shutdown began first, or the check could not run: never resolve.
        _ => std::future::pending::<()>().await,
    }
}

/// Bytes buffered between the forwarding tasks and rmcp in each direction.
const PIPE_BYTES: usize = 64 * 1024;

/// Standard input and output as rmcp's transport, with one check in between: rmcp
/// 3.11 drops a line that is not JSON without a reply, so the forwarding task replies
/// with a JSON-RPC parse error (-32700), as JSON-RPC 2.0 requires. Whole lines are
/// forwarded, so the error never splits a message of rmcp's.
fn checked_stdio() -> (
    tokio::io::ReadHalf<tokio::io::SimplexStream>,
    tokio::io::WriteHalf<tokio::io::SimplexStream>,
) {
    let (rmcp_input, input_writer) = tokio::io::simplex(PIPE_BYTES);
    let (output_reader, rmcp_output) = tokio::io::simplex(PIPE_BYTES);
    let (errors, error_lines) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(forward_input(input_writer, errors));
    tokio::spawn(forward_output(output_reader, error_lines));
    (rmcp_input, rmcp_output)
}

/// Copies JSON lines from stdin to rmcp and turns the others into parse errors. At end
/// of input it closes rmcp's input, so rmcp ends as it would on stdin.
async fn forward_input(
    mut to_rmcp: tokio::io::WriteHalf<tokio::io::SimplexStream>,
    errors: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(transport = "stdio", %error, "reading standard input failed");
                break;
            }
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(text) {
            tracing::debug!(transport = "stdio", bytes = text.len(), %error, "line is not JSON");
            let reply = serde_json::json!({"jsonrpc": "2.0", "id": null,
                "error": {"code": -32700, "message": format!("parse error: {error}")}});
            let _ = errors.send(format!("{reply}\n").into_bytes());
            continue;
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        if to_rmcp.write_all(&line).await.is_err() {
            break;
        }
    }
    let _ = to_rmcp.shutdown().await;
}

/// Copies rmcp's output lines and the parse errors to stdout, one whole line at a time.
async fn forward_output(
    from_rmcp: tokio::io::ReadHalf<tokio::io::SimplexStream>,
    mut errors: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut from_rmcp = tokio::io::BufReader::new(from_rmcp);
    let mut stdout = tokio::io::stdout();
    // read_until keeps what it has read when the other branch wins, so a partial line
    // stays in `pending` until its newline arrives.
    let mut pending = Vec::new();
    loop {
        let line = tokio::select! {
            read = from_rmcp.read_until(b'\n', &mut pending) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) if pending.ends_with(b"\n") => std::mem::take(&mut pending),
                Ok(_) => continue,
            },
            Some(reply) = errors.recv() => reply,
        };
        if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
            return;
        }
    }
    if !pending.is_empty() {
        let _ = stdout.write_all(&pending).await;
        let _ = stdout.flush().await;
    }
}

/// Serves `server` on stdin and stdout until the client disconnects or `shutdown` fires.
pub async fn serve(
    server: TerminalServer,
    shutdown: CancellationToken,
) -> Result<StopReason, std::io::Error> {
    let service = tokio::select! {
        service = server.serve(checked_stdio()) => match service {
            Ok(service) => service,
            Err(error) => {
                // The usual cause is a client that closed stdin before initializing.
                tracing::info!(transport = "stdio", %error, "client left before initialization completed");
                return Ok(StopReason::EndOfInput);
            }
        },
        _ = shutdown.cancelled() => return Ok(StopReason::Shutdown),
    };
    tracing::info!(transport = "stdio", "client connected");
    let cancel = service.cancellation_token();
    let stdout_closed = watch_stdout_closed(shutdown.clone());
    tokio::select! {
        _ = stdout_closed => {
            tracing::info!(transport = "stdio", "client closed standard output");
            cancel.cancel();
            Ok(StopReason::EndOfInput)
        }
        result = service.waiting() => {
            if let Err(error) = result {
                tracing::warn!(transport = "stdio", %error, "MCP service task failed");
            }
            tracing::info!(transport = "stdio", "client closed standard input");
            Ok(StopReason::EndOfInput)
        }
        _ = shutdown.cancelled() => {
            cancel.cancel();
            Ok(StopReason::Shutdown)
        }
    }
}
