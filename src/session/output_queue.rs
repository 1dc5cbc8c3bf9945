//! The bounded hand-off between a session's PTY reader and its parser.
//!
//! The reader thread only reads the PTY and appends what it reads here. The parser
//! thread takes everything queued at once and feeds it to the screen. Reading and
//! parsing then overlap, and a parser that falls behind gets several reads in one
//! batch. The queue contains at most about [`OutputQueue::new`]'s `limit` bytes. A
//! reader that finds it full waits and stops draining the PTY, so the program writing
//! to the terminal blocks, as it would with one thread doing both.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The outcome of [`OutputQueue::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeOutcome {
    /// Bytes were moved into the caller's buffer.
    Bytes,
    /// The reader ended and every byte has been taken.
    End,
}

/// A byte queue with one producer (the reader) and one consumer (the parser).
pub struct OutputQueue {
    state: Mutex<QueueState>,
    /// Signalled when bytes arrive or the reader ends, if the parser waits.
    filled: Condvar,
    /// Signalled when the parser takes the bytes or stops, if the reader waits.
    drained: Condvar,
    limit: usize,
}

struct QueueState {
    bytes: Vec<u8>,
    /// The reader will append nothing more.
    ended: bool,
    /// The parser stopped, so appends are discarded instead of waiting for room.
    abandoned: bool,
    parser_waiting: bool,
    reader_waiting: bool,
}

impl OutputQueue {
    /// Creates a queue that makes the reader wait once it contains `limit` bytes. One
    /// append may take it past the limit by up to that append's length.
    pub fn new(limit: usize) -> OutputQueue {
        OutputQueue {
            state: Mutex::new(QueueState {
                bytes: Vec::new(),
                ended: false,
                abandoned: false,
                parser_waiting: false,
                reader_waiting: false,
            }),
            filled: Condvar::new(),
            drained: Condvar::new(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `bytes`, first waiting while the queue contains `limit` bytes or more.
    /// Returns false, without appending, once the parser has stopped.
    pub fn push(&self, bytes: &[u8]) -> bool {
        let mut state = self.lock();
        while state.bytes.len() >= self.limit && !state.abandoned {
            state.reader_waiting = true;
            state = self
                .drained
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.reader_waiting = false;
        if state.abandoned {
            return false;
        }
        state.bytes.extend_from_slice(bytes);
        if state.parser_waiting {
            self.filled.notify_one();
        }
        true
    }

    /// Marks the end of the reader's output. Bytes already queued are still taken.
    pub fn end(&self) {
        let mut state = self.lock();
        state.ended = true;
        self.filled.notify_one();
    }

    /// Marks the parser as stopped, so a reader waiting for room returns at once.
    pub fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        self.drained.notify_one();
    }

    /// Waits until bytes are queued or the reader has ended, then moves every queued
    /// byte into `buffer`, which must be empty. The queue keeps the allocation that
    /// `buffer` had for the next appends.
    pub fn take(&self, buffer: &mut Vec<u8>) -> TakeOutcome {
        debug_assert!(buffer.is_empty());
        let mut state = self.lock();
        loop {
            if !state.bytes.is_empty() {
                std::mem::swap(&mut state.bytes, buffer);
                if state.reader_waiting {
                    self.drained.notify_one();
                }
                return TakeOutcome::Bytes;
            }
            if state.ended {
                return TakeOutcome::End;
            }
            state.parser_waiting = true;
            state = self
                .filled
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state.parser_waiting = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn take_returns_bytes_in_order_then_end() {
        let queue = OutputQueue::new(16);
        assert!(queue.push(b"abc"));
        assert!(queue.push(b"def"));
        queue.end();
        let mut buffer = Vec::new();
        assert_eq!(queue.take(&mut buffer), TakeOutcome::Bytes);
        assert_eq!(buffer, b"abcdef");
        buffer.clear();
        assert_eq!(queue.take(&mut buffer), TakeOutcome::End);
        assert!(buffer.is_empty());
    }

    #[test]
    fn full_queue_blocks_reader_until_taken() {
        let queue = Arc::new(OutputQueue::new(4));
        let reader = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                for value in 0..100u8 {
                    assert!(queue.push(&[value; 3]));
                }
                queue.end();
            })
        };
        let mut received = Vec::new();
        let mut buffer = Vec::new();
        while queue.take(&mut buffer) == TakeOutcome::Bytes {
            // Each batch is at most the limit plus one append that started below it.
            assert!(buffer.len() <= 4 + 2, "batch of {} bytes", buffer.len());
            received.extend_from_slice(&buffer);
            buffer.clear();
        }
        reader.join().expect("reader thread");
        let expected: Vec<u8> = (0..100u8).flat_map(|value| [value; 3]).collect();
        assert_eq!(received, expected);
    }

    #[test]
    fn abandon_releases_waiting_reader() {
        let queue = Arc::new(OutputQueue::new(1));
        assert!(queue.push(b"x"));
        let reader = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.push(b"y"))
        };
        queue.abandon();
        assert!(!reader.join().expect("reader thread"));
    }
}
