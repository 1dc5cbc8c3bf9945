//! Readiness and stop notices for process managers: systemd's `sd_notify` datagrams on
//! the socket named by `NOTIFY_SOCKET`, and s6's notification descriptor (`--ready-fd`).
//!
//! Both are sent once the HTTP listener is bound, so a manager that waits for readiness
//! starts dependent services only when `/mcp` and `/healthz` accept connections. A failed
//! notice is logged and otherwise ignored: the server works without its manager knowing.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};

/// The variable systemd sets for services of `Type=notify`.
const NOTIFY_SOCKET_VAR: &str = "NOTIFY_SOCKET";

/// Set once the `--ready-fd` descriptor has been taken, so a second call cannot close it
/// again (by then the number may belong to another file).
static READY_FD_TAKEN: AtomicBool = AtomicBool::new(false);

/// Tells the process manager that the server is listening: sends `READY=1` with a status
/// line to `NOTIFY_SOCKET` when it is set, then writes a newline to `ready_fd` and closes it.
///
/// `ready_fd` must be the descriptor validated at start-up (see `--ready-fd`). Only the
/// first call writes to it and closes it; later calls send only the systemd message.
pub fn notify_ready(ready_fd: Option<i32>, status: &str) {
    send_to_systemd(&format!("READY=1\nSTATUS={status}\n"));
    if let Some(fd) = ready_fd
        && !READY_FD_TAKEN.swap(true, Ordering::SeqCst)
    {
        // SAFETY: the descriptor was checked open at start-up and nothing else in the
        // server uses it. READY_FD_TAKEN lets only one call take ownership, so closing it
        // after the write cannot close a descriptor that another part of the server holds.
        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        match file.write_all(b"\n") {
            Ok(()) => tracing::info!(fd, "readiness written to the notification descriptor"),
            Err(error) => tracing::warn!(fd, %error, "failed to write readiness to --ready-fd"),
        }
    }
}

/// Tells systemd, when it supervises the server, that shutdown has begun.
pub fn notify_stopping() {
    send_to_systemd("STOPPING=1\n");
}

/// Sends one `sd_notify` message when `NOTIFY_SOCKET` is set. A value that starts with
/// `@` names a socket in the abstract namespace; any other value is a filesystem path.
fn send_to_systemd(message: &str) {
    let Some(target) = std::env::var_os(NOTIFY_SOCKET_VAR) else {
        return;
    };
    let target = target.as_encoded_bytes();
    let result = (|| {
        let address = match target.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(OsStr::from_bytes(target))?,
        };
        UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &address)
    })();
    if let Err(error) = result {
        tracing::warn!(
            socket = %String::from_utf8_lossy(target),
            %error,
            "failed to notify systemd through NOTIFY_SOCKET"
        );
    }
}
