//! Non-blocking reads and writes on the PTY master.
//!
//! portable-pty's reader and writer block, and a blocked write cannot be interrupted:
//! a program that never reads its input would hold the writing thread, and any lock it
//! holds, forever (writes to a master block even after the slave side has closed). The
//! session therefore does its own I/O on duplicates of the master descriptor, with
//! `O_NONBLOCK` set and `poll` for waiting, so every wait has a bound.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Duplicates `fd` and sets `O_NONBLOCK` on the open file description, which the
/// duplicate shares with `fd` and every other duplicate of it.
pub fn duplicate_nonblocking(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl with F_DUPFD_CLOEXEC only creates a descriptor; the result is
    // checked before it is wrapped, and nothing else owns the new descriptor.
    let duplicate = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if duplicate < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `duplicate` is a fresh descriptor with no other owner.
    let owned = unsafe { OwnedFd::from_raw_fd(duplicate) };
    // SAFETY: F_GETFL and F_SETFL read and set status flags of a valid descriptor.
    unsafe {
        let flags = libc::fcntl(duplicate, libc::F_GETFL);
        if flags < 0 || libc::fcntl(duplicate, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(owned)
}

/// Waits until `fd` is ready for `events` (`POLLIN` or `POLLOUT`), or `timeout` passes.
pub fn wait_ready(fd: &OwnedFd, events: libc::c_short, timeout: Duration) {
    let mut poll_fd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut poll_fd, 1, millis) };
}

/// The outcome of one read attempt.
pub enum ReadOutcome {
    Data(usize),
    /// Nothing to read right now.
    WouldBlock,
    /// End of file or EIO: every holder of the slave side has closed it.
    Closed,
}

/// Reads what is available without blocking.
pub fn read_available(fd: &OwnedFd, buffer: &mut [u8]) -> ReadOutcome {
    loop {
        // SAFETY: `buffer` is valid for writes of its length.
        let count = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if count > 0 {
            return ReadOutcome::Data(count as usize);
        }
        if count == 0 {
            return ReadOutcome::Closed;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return ReadOutcome::WouldBlock,
            _ => return ReadOutcome::Closed,
        }
    }
}

/// Writes as much of `bytes` as the terminal accepts now, without blocking; returns
/// the count written.
pub fn write_available(fd: &OwnedFd, bytes: &[u8]) -> std::io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        // SAFETY: `rest` is valid for reads of its length.
        let count = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
        if count >= 0 {
            written += count as usize;
            continue;
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => break,
            _ => return Err(error),
        }
    }
    Ok(written)
}

/// The reason a write did not complete.
#[derive(Debug)]
pub enum WriteError {
    /// The program did not read its input before the deadline.
    TimedOut { written: usize },
    /// The session is closing.
    Closed { written: usize },
    Io {
        written: usize,
        source: std::io::Error,
    },
}

/// Writes all of `bytes`, waiting for the terminal to accept them until `deadline` or
/// until `closing` returns true (checked every 50 ms).
pub fn write_all_until(
    fd: &OwnedFd,
    bytes: &[u8],
    deadline: Instant,
    closing: impl Fn() -> bool,
) -> Result<(), WriteError> {
    let mut written = 0;
    loop {
        written += write_available(fd, &bytes[written..])
            .map_err(|source| WriteError::Io { written, source })?;
        if written == bytes.len() {
            return Ok(());
        }
        if closing() {
            return Err(WriteError::Closed { written });
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WriteError::TimedOut { written });
        }
        wait_ready(
            fd,
            libc::POLLOUT,
            (deadline - now).min(Duration::from_millis(50)),
        );
    }
}
