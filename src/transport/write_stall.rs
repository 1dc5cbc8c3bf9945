//! A bound on how long an HTTP connection may refuse to take the server's output.
//!
//! A client that stops reading its socket leaves its response unsent, and hyper would
//! keep that connection, and the response it buffers, for as long as the client stays
//! connected. Every accepted stream is wrapped so that a write or flush that makes no
//! progress for [`WRITE_STALL_LIMIT`] fails with `TimedOut`, which ends the connection.
//! Its send buffer is set to [`SEND_BUFFER_BYTES`], because on loopback the kernel
//! grows it to megabytes, which would take a whole large response without a stall.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// Time a connection may accept no output before the server closes it.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(30);

/// Send buffer of each accepted connection, as passed to `SO_SNDBUF` (Linux doubles it).
pub const SEND_BUFFER_BYTES: libc::c_int = 64 * 1024;

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
        if let Err(error) = limit_send_buffer(&stream) {
            tracing::debug!(transport = "http", %error, "could not set the send buffer size");
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        (
            StallLimited::new(stream, self.limit).reset_on_stall(fd),
            address,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

fn limit_send_buffer(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let size = SEND_BUFFER_BYTES;
    // SAFETY: the descriptor belongs to `stream`, which outlives the call, and the option
    // value is a c_int read for the length given.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the coming close of socket `fd` send RST and drop unsent data (`SO_LINGER`
/// on with a zero timeout).
fn reset_at_close(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is the socket of the stream that owns it and is still open, and the
    // option value is a `linger` read for the length given.
    let result = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if result != 0 {
        tracing::debug!(transport = "http", error = %io::Error::last_os_error(),
            "could not make a stalled connection reset at close");
    }
}

/// A stream whose writes and flushes fail after `limit` without progress.
pub struct StallLimited<S> {
    inner: S,
    limit: Duration,
    /// Running while the peer takes no output; `None` while writes make progress.
    stalled: Option<Pin<Box<Sleep>>>,
    /// Socket of `inner` to reset when a write stalls. A plain close would queue its FIN
    /// behind the unsent data, so a client that reads nothing would never see it.
    reset_socket: Option<RawFd>,
}

impl<S> StallLimited<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
            reset_socket: None,
        }
    }

    /// Resets the connection (sends RST) when it is closed after a stall. `fd` must be
    /// the socket of the wrapped stream.
    pub fn reset_on_stall(mut self, fd: RawFd) -> Self {
        self.reset_socket = Some(fd);
        self
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
                        if let Some(fd) = self.reset_socket {
                            reset_at_close(fd);
                        }
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
