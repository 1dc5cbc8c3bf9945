//! The terminal emulator layer: turns bytes read from a PTY into screen text.
//!
//! [`Screen`] wraps the `vt100` crate (0.18.1) and fixes what it gets wrong:
//!
//! - `filter` rewrites the byte stream before vt100 parses it (UTF-8 split across
//!   reads, line drawing, insert mode, autowrap off, tab stops, DECALN, titles);
//! - `emulator` replies to terminal queries from vt100's callbacks, contains panics
//!   and keeps resizes from inventing or losing history rows;
//! - `transcript` keeps the rows that leave vt100's scrollback as plain text.
//!
//! Every main-screen row gets an absolute index: the rows ever passed to the
//! transcript, plus its position in vt100's scrollback and visible screen. Indexes
//! stay put while rows move from the screen to the scrollback to the transcript, and
//! across resizes, so an [`OutputCursor`] handed to a client stays valid.
//!
//! What is not kept: an erase of the display (`CSI 2 J`) blanks the visible rows
//! without saving them to history, as vt100 and xterm do, and rows that scroll out of
//! a scroll region that does not start at the top row are lost, as in xterm.

mod emulator;
mod filter;
pub mod marks;
mod transcript;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::hash::{BuildHasher as _, Hasher as _};

use emulator::Emulator;
use filter::Filter;
use marks::{MarkPosition, ShellMarks};
use unicode_width::UnicodeWidthChar as _;

/// Terminal size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermSize {
    pub cols: u16,
    pub rows: u16,
}

/// How much history a screen keeps.
#[derive(Clone, Copy, Debug)]
pub struct ScreenLimits {
    /// Rows kept in vt100's own scrollback (about 32 bytes per cell).
    pub scrollback_rows: usize,
    /// Bytes of plain-text rows kept after they leave that scrollback.
    pub transcript_bytes: usize,
}

/// A position in a session's output: an absolute main-screen row and the tag of the
/// screen that numbered it. Clients get it as a string such as `1234.56789` and pass
/// it back as `since`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputCursor {
    row: u64,
    tag: u32,
}

impl OutputCursor {
    /// Returns the absolute main-screen row.
    pub fn row(self) -> u64 {
        self.row
    }
}

impl std::fmt::Display for OutputCursor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}.{}", self.row, self.tag)
    }
}

/// Error for a cursor string that is not of the form `ROW.TAG`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid output cursor {value:?}: expected the form ROW.TAG (two decimal numbers, e.g. \"1234.56789\") as returned in an earlier result"
)]
pub struct InvalidCursor {
    pub value: String,
}

impl std::str::FromStr for OutputCursor {
    type Err = InvalidCursor;

    fn from_str(value: &str) -> Result<OutputCursor, InvalidCursor> {
        let invalid = || InvalidCursor {
            value: value.to_owned(),
        };
        let (row, tag) = value.split_once('.').ok_or_else(invalid)?;
        let digits =
            |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
        if !digits(row) || !digits(tag) {
            return Err(invalid());
        }
        Ok(OutputCursor {
            row: row.parse().map_err(|_| invalid())?,
            tag: tag.parse().map_err(|_| invalid())?,
        })
    }
}

/// Output text from a cursor on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSlice {
    pub text: String,
    /// The start of the next read: the row the terminal cursor is on.
    pub cursor: OutputCursor,
    /// Estimated characters between the requested cursor and the oldest retained row,
    /// which are no longer retained; 0 when nothing requested was lost.
    pub dropped_chars: u64,
}

/// One session's terminal screen and history.
pub struct Screen {
    /// vt100 and the transcript. Reading history moves vt100's scrollback view and may
    /// leave the alternate screen for a moment, so reads borrow it mutably too.
    emulator: RefCell<Emulator>,
    filter: Filter,
    /// Random per screen, so a cursor from another screen's numbering is recognised.
    tag: u32,
}

impl Screen {
    pub fn new(size: TermSize, limits: ScreenLimits) -> Screen {
        let size = clamp_size(size);
        let tag = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish() as u32;
        Screen {
            emulator: RefCell::new(Emulator::new(
                size,
                limits.scrollback_rows,
                limits.transcript_bytes,
            )),
            filter: Filter::new(),
            tag,
        }
    }

    /// Feeds bytes read from the PTY. Returns bytes that must be written back to the
    /// PTY input (replies to terminal queries), usually empty.
    pub fn process(&mut self, bytes: &[u8]) -> Vec<u8> {
        let emulator = self.emulator.get_mut();
        self.filter.process(bytes, emulator);
        emulator.take_replies()
    }

    /// Feeds a held-back partial UTF-8 sequence as it is, at end of file.
    pub fn finish(&mut self) -> Vec<u8> {
        let emulator = self.emulator.get_mut();
        self.filter.finish(emulator);
        emulator.take_replies()
    }

    /// Resizes the screen. Sizes below 1×1 are raised to 1.
    pub fn resize(&mut self, size: TermSize) {
        self.emulator.get_mut().resize(clamp_size(size));
        self.filter.cursor_moved();
    }

    pub fn size(&self) -> TermSize {
        self.emulator.borrow().size()
    }

    /// Returns the visible rows of the active screen: exactly `rows` entries, trailing
    /// spaces trimmed, wide characters once.
    pub fn visible_rows(&self) -> Vec<String> {
        let emulator = self.emulator.borrow();
        emulator
            .screen()
            .rows(0, u16::MAX)
            .map(|row| restore_replacements(trim_end(&row)))
            .collect()
    }

    /// Returns the visible rows joined by newlines, without trailing empty rows.
    pub fn screen_text(&self) -> String {
        let mut rows = self.visible_rows();
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows.join("\n")
    }

    /// Returns the cursor as (row, col), 0-based. The column equals the width in the
    /// pending-wrap state after the last column is written.
    pub fn cursor_position(&self) -> (u16, u16) {
        self.emulator.borrow().screen().cursor_position()
    }

    pub fn alternate_screen(&self) -> bool {
        self.emulator.borrow().screen().alternate_screen()
    }

    pub fn application_cursor(&self) -> bool {
        self.emulator.borrow().screen().application_cursor()
    }

    pub fn bracketed_paste(&self) -> bool {
        self.emulator.borrow().screen().bracketed_paste()
    }

    /// Returns the window title last set with OSC 0 or OSC 2.
    pub fn title(&self) -> &str {
        &self.filter.title
    }

    /// Returns the rows retained above the main screen (transcript and vt100 scrollback).
    pub fn history_len(&self) -> usize {
        let mut emulator = self.emulator.borrow_mut();
        let scrollback = emulator.with_main(|emulator| emulator.screen().scrollback_len());
        emulator.hooks().transcript.len() + scrollback
    }

    /// Returns every retained history row, then the main screen's visible rows, one row
    /// per line, without blank rows at the end.
    pub fn scrollback_text(&self) -> String {
        let mut emulator = self.emulator.borrow_mut();
        let mut lines: Vec<String> = Vec::new();
        emulator
            .hooks()
            .transcript
            .for_each_from(0, |text, _| lines.push(trim_end(text).to_owned()));
        emulator.with_main(|emulator| {
            emulator.visit_main_rows(0, |text, _| lines.push(trim_end(text).to_owned()))
        });
        // History is the configured number of rows above the screen; the transcript
        // behind it serves `since` cursors of the output view, not this view.
        let visible = usize::from(emulator.size().rows);
        let history = lines.len().saturating_sub(visible);
        let excess = history.saturating_sub(emulator.scrollback_rows());
        lines.drain(..excess);
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        restore_replacements(&lines.join("\n"))
    }

    /// Reports whether `cursor` was issued by this screen (not by another session, and
    /// not before a restart of the emulator).
    pub fn is_own_cursor(&self, cursor: OutputCursor) -> bool {
        cursor.tag == self.tag
    }

    /// Returns where output produced from now on starts: the main screen's cursor row.
    pub fn current_cursor(&self) -> OutputCursor {
        let mut emulator = self.emulator.borrow_mut();
        let layout = MainLayout::read(&mut emulator);
        OutputCursor {
            row: layout.cursor_row(),
            tag: self.tag,
        }
    }

    /// Returns the main screen's text from `since` (or the oldest retained row) to the
    /// last non-blank row or the cursor row, whichever is later, as lines: soft-wrapped
    /// rows are joined and trailing spaces trimmed. The text is the current state of
    /// those rows, so a line redrawn in place appears once, in its final form.
    ///
    /// A cursor older than the retained history reads from the oldest retained row and
    /// reports the lost characters. A cursor beyond the end or from another screen
    /// reads from the current cursor row.
    pub fn output_since(&self, since: Option<OutputCursor>) -> OutputSlice {
        self.output_range(since, None)
    }

    /// Returns the text from the row of `start` up to `end`: the rows before `end.row`
    /// and the first `end.col` columns of that row. Used to cut one command's output
    /// out of the history between two shell integration marks.
    pub fn output_between(&self, start: u64, end: MarkPosition) -> OutputSlice {
        let start = OutputCursor {
            row: start.min(end.row),
            tag: self.tag,
        };
        self.output_range(Some(start), Some(end))
    }

    fn output_range(&self, since: Option<OutputCursor>, end: Option<MarkPosition>) -> OutputSlice {
        let mut emulator = self.emulator.borrow_mut();
        let layout = MainLayout::read(&mut emulator);
        let first = emulator.hooks().transcript.first();
        let last = match end {
            Some(end) => end.row.min(layout.last_row()),
            None => layout.last_row(),
        };
        // Columns of the last row to keep; `None` keeps the whole row.
        let last_cols = end.filter(|end| end.row == last).map(|end| end.col);
        let (start, dropped_chars) = match since {
            None => (first, 0),
            Some(cursor) if cursor.tag != self.tag || cursor.row > last => (layout.cursor_row(), 0),
            Some(cursor) if cursor.row < first => (
                first,
                emulator.hooks().transcript.dropped_chars_since(cursor.row),
            ),
            Some(cursor) => (cursor.row, 0),
        };

        let mut text = String::new();
        let mut row = start;
        let mut append = |line: &str, wrapped: bool, row: &mut u64| {
            if *row > last {
                return;
            }
            if *row == last {
                match last_cols {
                    Some(cols) => text.push_str(trim_end(take_columns(line, cols))),
                    None => text.push_str(trim_end(line)),
                }
            } else if !wrapped {
                text.push_str(trim_end(line));
                text.push('\n');
            } else {
                text.push_str(line);
            }
            *row += 1;
        };
        emulator
            .hooks()
            .transcript
            .for_each_from(start, |line, wrapped| append(line, wrapped, &mut row));
        let from = usize::try_from(row - layout.scrollback_start).unwrap_or(usize::MAX);
        emulator.with_main(|emulator| {
            emulator.visit_main_rows(from, |line, wrapped| append(line, wrapped, &mut row))
        });

        OutputSlice {
            text: restore_replacements(&text),
            cursor: OutputCursor {
                row: layout.cursor_row(),
                tag: self.tag,
            },
            dropped_chars,
        }
    }

    /// Returns the cursor of an absolute main-screen row, as marks report them.
    pub fn cursor_at_row(&self, row: u64) -> OutputCursor {
        OutputCursor { row, tag: self.tag }
    }

    /// Sets the nonce that shell integration marks must carry to be recorded.
    pub fn set_mark_nonce(&mut self, nonce: String) {
        self.filter.mark_nonce = Some(nonce);
    }

    /// Returns the shell's state as the integration marks seen so far report it.
    pub fn marks(&self) -> &ShellMarks {
        &self.filter.marks
    }

    /// Records that a command line was submitted at the shell's prompt.
    pub fn submit_command(&mut self) {
        self.filter.marks.submit();
    }

    /// Returns the text typed after the shell's prompt and not yet submitted, if any.
    pub fn typed_at_prompt(&self) -> Option<String> {
        let marks = &self.filter.marks;
        let prompt_end = marks.prompt_end.filter(|_| marks.at_prompt)?;
        let slice = self.output_range(Some(self.cursor_at_row(prompt_end.row)), None);
        let line = slice.text.lines().next().unwrap_or("");
        let typed = drop_columns(line, prompt_end.col).trim();
        (!typed.is_empty()).then(|| typed.to_owned())
    }

    /// Returns how many times vt100 panicked and was rebuilt with an empty screen.
    pub fn resets(&self) -> u32 {
        self.emulator.borrow().resets()
    }
}

/// Absolute indexes of the main screen's parts.
struct MainLayout {
    /// Absolute index of vt100's oldest scrollback row.
    scrollback_start: u64,
    scrollback_len: u64,
    cursor_row: u16,
    cursor_col: u16,
    /// Last visible row that is not blank, if any.
    last_text_row: Option<u16>,
}

impl MainLayout {
    fn read(emulator: &mut Emulator) -> MainLayout {
        let scrollback_start = emulator.hooks().transcript.end();
        emulator.with_main(|emulator| {
            let screen = emulator.screen();
            let last_text_row = screen
                .rows(0, u16::MAX)
                .enumerate()
                .filter(|(_, row)| !trim_end(row).is_empty())
                .map(|(index, _)| index as u16)
                .last();
            MainLayout {
                scrollback_start,
                scrollback_len: screen.scrollback_len() as u64,
                cursor_row: screen.cursor_position().0,
                cursor_col: screen.cursor_position().1,
                last_text_row,
            }
        })
    }

    fn cursor_row(&self) -> u64 {
        self.scrollback_start + self.scrollback_len + u64::from(self.cursor_row)
    }

    fn last_row(&self) -> u64 {
        let last_visible = self
            .last_text_row
            .map_or(self.cursor_row, |row| row.max(self.cursor_row));
        self.scrollback_start + self.scrollback_len + u64::from(last_visible)
    }
}

/// Returns the start of `line` that fills at most `cols` terminal columns.
fn take_columns(line: &str, cols: u16) -> &str {
    let mut width = 0usize;
    for (index, c) in line.char_indices() {
        width += c.width().unwrap_or(0);
        if width > usize::from(cols) {
            return &line[..index];
        }
    }
    line
}

/// Returns `line` without the characters that fill its first `cols` terminal columns.
fn drop_columns(line: &str, cols: u16) -> &str {
    &line[take_columns(line, cols).len()..]
}

/// Turns the stand-in the filter feeds vt100 back into U+FFFD.
fn restore_replacements(text: &str) -> String {
    text.replace(filter::REPLACEMENT_STAND_IN, "\u{FFFD}")
}

fn trim_end(text: &str) -> &str {
    text.trim_end_matches(' ')
}

fn clamp_size(size: TermSize) -> TermSize {
    TermSize {
        cols: size.cols.max(1),
        rows: size.rows.max(1),
    }
}
