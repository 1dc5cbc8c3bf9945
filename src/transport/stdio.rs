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
    tokio::select! {
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
