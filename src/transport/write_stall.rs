//! A bound on how long an HTTP connection may refuse to take the server's output.
//!
//! A client that stops reading its socket leaves its response unsent, and hyper would
//! keep that connection, and the response it buffers, for as long as the client stays
//! connected. Every accepted stream is wrapped so that a write or flush that makes no
//! progress for [`WRITE_STALL_LIMIT`] fails with `TimedOut`, which ends the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// Time a connection may accept no output before the server closes it.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(30);

/// A TCP listener whose connections fail writes that stall for longer than a limit.
pub struct StallLimitedListener {
    listener: TcpListener,
    limit: Duration,
}

impl StallLimitedListener {
    pub fn new(listener: TcpListener, limit: Duration) -> Self {
        Self { listener, limit }
    }
}

impl axum::serve::Listener for StallLimitedListener {
    type Io = StallLimited<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = axum::serve::Listener::accept(&mut self.listener).await;
        (StallLimited::new(stream, self.limit), address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A stream whose writes and flushes fail after `limit` without progress.
pub struct StallLimited<S> {
    inner: S,
    limit: Duration,
    /// Running while the peer takes no output; `None` while writes make progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallLimited<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes a ready result through and restarts the clock; on `Pending`, starts the
    /// clock or fails once it has run out.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        tracing::debug!(
                            transport = "http",
                            limit_s = limit.as_secs_f64(),
                            "closing a connection whose client stopped reading"
                        );
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client took no output within the write stall limit",
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallLimited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallLimited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn stalled_write_fails_after_limit() {
        // A duplex pipe whose other end is never read fills after 64 bytes.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut stream = StallLimited::new(writer, Duration::from_millis(200));
        let error = stream
            .write_all(&[b'x'; 1024])
            .await
            .err()
            .map(|error| error.kind());
        assert_eq!(error, Some(io::ErrorKind::TimedOut));
    }

    #[tokio::test]
    async fn progressing_write_succeeds() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut stream = StallLimited::new(writer, Duration::from_millis(200));
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut sink)
                .await
                .map(|_| sink.len())
        });
        stream
            .write_all(&[b'x'; 1024])
            .await
            .expect("write completes");
        stream.shutdown().await.expect("shutdown");
        drop(stream);
        assert_eq!(drain.await.ok().and_then(Result::ok), Some(1024));
    }
}
