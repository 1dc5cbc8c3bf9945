//! Plain-text rows that have left the emulator's own scrollback.

use std::collections::VecDeque;

/// One stored row: its text and whether the text continues on the next row (soft wrap).
struct TranscriptRow {
    text: String,
    wrapped: bool,
}

/// Memory charged for a row besides its text.
const ROW_OVERHEAD_BYTES: usize = std::mem::size_of::<TranscriptRow>();

/// Maximum entries kept in the drop log before it is coarsened.
const DROP_LOG_MAX: usize = 256;

/// Rows discarded from the top of the emulator's scrollback, oldest first, capped in
/// bytes by dropping the oldest rows.
///
/// Every main-screen row ever shown has an absolute index. The transcript holds the
/// rows `end - len .. end`; the emulator's scrollback starts at `end`.
pub(super) struct Transcript {
    rows: VecDeque<TranscriptRow>,
    /// Allocated text bytes plus `ROW_OVERHEAD_BYTES` per row.
    bytes: usize,
    limit_bytes: usize,
    /// Absolute index one past the newest row: the rows ever passed on from the emulator.
    end: u64,
    /// Characters of every row dropped so far, by the byte cap or by an erase.
    dropped_chars: u64,
    /// `(first retained row, dropped_chars)` recorded after drops, in increasing order.
    /// All rows below the recorded row were dropped and held exactly that many
    /// characters, which bounds the characters lost after any older row.
    drop_log: VecDeque<(u64, u64)>,
}

impl Transcript {
    pub(super) fn new(limit_bytes: usize) -> Transcript {
        Transcript {
            rows: VecDeque::new(),
            bytes: 0,
            limit_bytes,
            end: 0,
            dropped_chars: 0,
            drop_log: VecDeque::new(),
        }
    }

    /// Absolute index of the oldest retained row.
    pub(super) fn first(&self) -> u64 {
        self.end - self.rows.len() as u64
    }

    /// Absolute index one past the newest row, which is the index of the emulator's
    /// oldest scrollback row.
    pub(super) fn end(&self) -> u64 {
        self.end
    }

    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Appends the next row, then drops the oldest rows while over the byte cap.
    pub(super) fn push(&mut self, text: String, wrapped: bool) {
        self.bytes += text.capacity() + ROW_OVERHEAD_BYTES;
        self.rows.push_back(TranscriptRow { text, wrapped });
        self.end += 1;
        if self.bytes > self.limit_bytes {
            while self.bytes > self.limit_bytes {
                let Some(row) = self.rows.pop_front() else {
                    break;
                };
                self.bytes -= row.text.capacity() + ROW_OVERHEAD_BYTES;
                self.dropped_chars += row.text.chars().count() as u64;
            }
            self.log_drop();
        }
    }

    /// Drops every retained row and also counts `erased_rows` rows that never reach
    /// the transcript (the emulator's scrollback when it is erased), which hold
    /// `erased_chars` characters.
    pub(super) fn erase(&mut self, erased_rows: u64, erased_chars: u64) {
        let retained_chars: u64 = self
            .rows
            .iter()
            .map(|row| row.text.chars().count() as u64)
            .sum();
        self.rows.clear();
        self.bytes = 0;
        self.end += erased_rows;
        self.dropped_chars += retained_chars + erased_chars;
        self.log_drop();
    }

    fn log_drop(&mut self) {
        let entry = (self.first(), self.dropped_chars);
        if self.drop_log.back().is_some_and(|last| last.0 == entry.0) {
            self.drop_log.pop_back();
        }
        self.drop_log.push_back(entry);
        if self.drop_log.len() > DROP_LOG_MAX {
            // Keeps every other entry: later estimates get coarser, never too low.
            let kept: VecDeque<(u64, u64)> =
                self.drop_log.iter().copied().skip(1).step_by(2).collect();
            self.drop_log = kept;
        }
    }

    /// Estimates the characters lost from `row` on, for a row older than the oldest
    /// retained one. Exact when a drop ended at `row`, otherwise an overestimate.
    pub(super) fn dropped_chars_since(&self, row: u64) -> u64 {
        if row >= self.first() {
            return 0;
        }
        let below = self
            .drop_log
            .iter()
            .rev()
            .find(|(first, _)| *first <= row)
            .map_or(0, |entry| entry.1);
        self.dropped_chars - below
    }

    /// Visits the retained rows from absolute index `from` on, as `(text, wrapped)`.
    pub(super) fn for_each_from(&self, from: u64, mut visit: impl FnMut(&str, bool)) {
        let skip = from.saturating_sub(self.first()) as usize;
        for row in self.rows.iter().skip(skip) {
            visit(&row.text, row.wrapped);
        }
    }
}
