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

/// Serves `server` on stdin and stdout until the client disconnects or `shutdown` fires.
pub async fn serve(
    server: TerminalServer,
    shutdown: CancellationToken,
) -> Result<StopReason, std::io::Error> {
    let service = tokio::select! {
        service = server.serve(rmcp::transport::stdio()) => match service {
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
