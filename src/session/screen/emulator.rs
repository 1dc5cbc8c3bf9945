//! The vt100 parser behind [`super::Screen`], with the callbacks that reply to terminal
//! queries, keep tab stops and pass discarded history rows to the transcript.

use std::fmt::Write as _;
use std::num::NonZeroU16;
use std::panic::{AssertUnwindSafe, catch_unwind};

use vt100::capture::{BasicFormattedCaptureState, RowContents};

use super::TermSize;
use super::transcript::Transcript;

/// Primary device attributes: a VT220-class terminal with ANSI colour (xterm's default
/// reply).
const DA1_REPLY: &[u8] = b"\x1b[?62;22c";
/// Secondary device attributes: terminal type 0, firmware version 276 (xterm's patch
/// level in its default reply).
const DA2_REPLY: &[u8] = b"\x1b[>0;276;0c";

/// Tab stops, one flag per column. The default stops are every 8 columns.
pub(super) struct TabStops {
    stops: Vec<bool>,
}

impl TabStops {
    fn new(cols: u16) -> TabStops {
        TabStops {
            stops: (0..cols).map(is_default_stop).collect(),
        }
    }

    fn resize(&mut self, cols: u16) {
        let cols = usize::from(cols);
        let old = self.stops.len();
        self.stops.truncate(cols);
        self.stops
            .extend((old..cols).map(|col| is_default_stop(col as u16)));
    }

    fn cols(&self) -> u16 {
        self.stops.len() as u16
    }

    pub(super) fn is_default(&self) -> bool {
        self.stops
            .iter()
            .enumerate()
            .all(|(col, stop)| *stop == is_default_stop(col as u16))
    }

    /// Returns the column of the `count`th stop after `col`, or the last column.
    pub(super) fn forward(&self, col: u16, count: u16) -> u16 {
        let last = self.stops.len().saturating_sub(1);
        let mut col = usize::from(col).min(last);
        for _ in 0..count.max(1) {
            col = (col + 1..=last)
                .find(|next| self.stops[*next])
                .unwrap_or(last);
        }
        col as u16
    }

    /// Returns the column of the `count`th stop before `col`, or column 0.
    pub(super) fn backward(&self, col: u16, count: u16) -> u16 {
        let mut col = usize::from(col).min(self.stops.len().saturating_sub(1));
        for _ in 0..count.max(1) {
            col = (0..col).rev().find(|prev| self.stops[*prev]).unwrap_or(0);
        }
        col as u16
    }

    fn set(&mut self, col: u16) {
        if let Some(stop) = self.stops.get_mut(usize::from(col)) {
            *stop = true;
        }
    }

    fn clear(&mut self, col: u16) {
        if let Some(stop) = self.stops.get_mut(usize::from(col)) {
            *stop = false;
        }
    }

    fn clear_all(&mut self) {
        self.stops.fill(false);
    }

    pub(super) fn reset(&mut self) {
        let cols = self.stops.len();
        self.stops.clear();
        self.stops
            .extend((0..cols).map(|col| is_default_stop(col as u16)));
    }
}

fn is_default_stop(col: u16) -> bool {
    col > 0 && col.is_multiple_of(8)
}

/// State that vt100 calls back into while it parses, in stream order.
pub(super) struct Hooks {
    /// Replies to terminal queries, to be written to the PTY input.
    replies: Vec<u8>,
    pub(super) tabs: TabStops,
    pub(super) transcript: Transcript,
}

impl vt100::Callbacks for Hooks {
    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params
            .first()
            .and_then(|param| param.first())
            .copied()
            .unwrap_or(0);
        match (i1, i2, c) {
            (None, None, 'n') if first == 6 => {
                let (row, col) = report_position(screen);
                let _ = write!(ReplyWriter(&mut self.replies), "\x1b[{row};{col}R");
            }
            (Some(b'?'), None, 'n') if first == 6 => {
                let (row, col) = report_position(screen);
                let _ = write!(ReplyWriter(&mut self.replies), "\x1b[?{row};{col}R");
            }
            (None, None, 'n') if first == 5 => self.replies.extend_from_slice(b"\x1b[0n"),
            (None, None, 'c') if first == 0 => self.replies.extend_from_slice(DA1_REPLY),
            (Some(b'>'), None, 'c') if first == 0 => self.replies.extend_from_slice(DA2_REPLY),
            (None, None, 't') if first == 18 => {
                let (rows, cols) = screen.size();
                let _ = write!(ReplyWriter(&mut self.replies), "\x1b[8;{rows};{cols}t");
            }
            (None, None, 'g') => match first {
                0 => self.tabs.clear(screen.cursor_position().1),
                3 => self.tabs.clear_all(),
                _ => {}
            },
            _ => {}
        }
    }

    fn unhandled_escape(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        b: u8,
    ) {
        if i1.is_none() && b == b'H' {
            self.tabs.set(screen.cursor_position().1);
        }
    }

    fn on_scroll(&mut self, contents: RowContents<'_>, alternate_screen: bool) {
        if !alternate_screen {
            let (text, wrapped) = row_text(&contents, self.tabs.cols());
            self.transcript.push(text, wrapped);
        }
    }
}

/// Returns the 1-based cursor position for a position report. A cursor in the
/// pending-wrap state (column equal to the width) reports the last column.
fn report_position(screen: &vt100::Screen) -> (u16, u16) {
    let (row, col) = screen.cursor_position();
    let cols = screen.size().1.get();
    (row + 1, col.min(cols - 1) + 1)
}

/// Appends formatted text to the reply buffer.
struct ReplyWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ReplyWriter<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// Collects a row's text from vt100's SGR-formatted rendering, leaving out the SGR
/// sequences (the only escape sequences that rendering contains).
#[derive(Default)]
struct PlainText {
    text: String,
    in_escape: bool,
}

impl std::fmt::Write for PlainText {
    // vt100 writes one cell at a time, so this runs for every cell of every row that
    // leaves the history: the common case is a short string with no escape in it.
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if let [byte] = text.as_bytes()
            && !self.in_escape
            && *byte != 0x1b
        {
            self.text.push(char::from(*byte));
            return Ok(());
        }
        if !self.in_escape && !text.bytes().any(|byte| byte == 0x1b) {
            self.text.push_str(text);
            return Ok(());
        }
        for c in text.chars() {
            if self.in_escape {
                self.in_escape = c != 'm';
            } else if c == '\x1b' {
                self.in_escape = true;
            } else {
                self.text.push(c);
            }
        }
        Ok(())
    }

    fn write_char(&mut self, c: char) -> std::fmt::Result {
        if self.in_escape {
            self.in_escape = c != 'm';
        } else if c == '\x1b' {
            self.in_escape = true;
        } else {
            self.text.push(c);
        }
        Ok(())
    }
}

/// Records whether a rendering starts with a newline, then stops it.
struct NewlineProbe {
    newline: bool,
}

impl std::fmt::Write for NewlineProbe {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.newline = text.starts_with('\n');
        Err(std::fmt::Error)
    }
}

/// Returns a discarded row's text and soft-wrap flag. vt100 exposes the flag only
/// through its rendering: rendering a row a second time with the same capture state
/// starts with a newline exactly when the first rendering was not wrapped.
/// `cols` is the screen width, the text length of a full row of ASCII.
fn row_text(contents: &RowContents<'_>, cols: u16) -> (String, bool) {
    let mut state = BasicFormattedCaptureState::new();
    let mut plain = PlainText {
        text: String::with_capacity(usize::from(cols)),
        in_escape: false,
    };
    let _ = contents.write_formatted_basic(&mut plain, &mut state);
    let mut probe = NewlineProbe { newline: false };
    let _ = contents.write_formatted_basic(&mut probe, &mut state);
    let wrapped = !probe.newline;
    let mut text = plain.text;
    if !wrapped {
        text.truncate(text.trim_end_matches(' ').len());
    }
    (text, wrapped)
}

/// vt100's parser, fed and resized only under `catch_unwind`.
pub(super) struct Emulator {
    parser: vt100::Parser<Hooks>,
    scrollback_rows: usize,
    resets: u32,
}

impl Emulator {
    pub(super) fn new(size: TermSize, scrollback_rows: usize, transcript_bytes: usize) -> Emulator {
        let hooks = Hooks {
            replies: Vec::new(),
            tabs: TabStops::new(size.cols),
            transcript: Transcript::new(transcript_bytes),
        };
        Emulator {
            parser: new_parser(size, scrollback_rows, hooks),
            scrollback_rows,
            resets: 0,
        }
    }

    pub(super) fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    pub(super) fn hooks(&self) -> &Hooks {
        self.parser.callbacks()
    }

    pub(super) fn hooks_mut(&mut self) -> &mut Hooks {
        self.parser.callbacks_mut()
    }

    pub(super) fn resets(&self) -> u32 {
        self.resets
    }

    /// Returns the history rows the screen is configured to keep.
    pub(super) fn scrollback_rows(&self) -> usize {
        self.scrollback_rows
    }

    pub(super) fn size(&self) -> TermSize {
        let (rows, cols) = self.parser.screen().size();
        TermSize {
            cols: cols.get(),
            rows: rows.get(),
        }
    }

    pub(super) fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.parser.callbacks_mut().replies)
    }

    /// Feeds bytes to vt100. A panic inside vt100 is contained: the parser is rebuilt
    /// at the same size with an empty screen, and the rows it held move to the
    /// transcript when they can still be read.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let parser = &mut self.parser;
        if catch_unwind(AssertUnwindSafe(|| parser.process(bytes))).is_err() {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        self.resets += 1;
        let size = self.size();
        let salvaged = catch_unwind(AssertUnwindSafe(|| {
            let mut rows = Vec::new();
            self.visit_main_rows(0, |text, wrapped| rows.push((text.to_owned(), wrapped)));
            rows
        }));
        let mut hooks = std::mem::replace(
            self.parser.callbacks_mut(),
            Hooks {
                replies: Vec::new(),
                tabs: TabStops::new(size.cols),
                transcript: Transcript::new(0),
            },
        );
        if let Ok(rows) = salvaged {
            for (text, wrapped) in rows {
                hooks.transcript.push(text, wrapped);
            }
        }
        self.parser = new_parser(size, self.scrollback_rows, hooks);
    }

    /// Runs `action` on the main screen, leaving the alternate screen for the
    /// duration if it is active. Callers keep vt100 in its ground state between feeds,
    /// so the two mode switches fed here are parsed as whole sequences.
    pub(super) fn with_main<R>(&mut self, action: impl FnOnce(&mut Emulator) -> R) -> R {
        let alternate = self.parser.screen().alternate_screen();
        if alternate {
            self.feed(b"\x1b[?47l");
        }
        let result = action(self);
        if alternate {
            self.feed(b"\x1b[?47h");
        }
        result
    }

    /// Visits the active screen's rows from `from` on, where index 0 is the oldest
    /// scrollback row and the visible rows follow the scrollback, as `(text, wrapped)`.
    /// Trailing blank cells are left out; wide characters appear once.
    pub(super) fn visit_main_rows(&mut self, from: usize, mut visit: impl FnMut(&str, bool)) {
        let screen = self.parser.screen_mut();
        let scrollback = screen.scrollback_len();
        let rows = usize::from(screen.size().0.get());
        let total = scrollback + rows;
        let mut window = from;
        while window < total {
            screen.set_scrollback(scrollback.saturating_sub(window));
            let skip = window.saturating_sub(scrollback);
            let count = if window < scrollback {
                (scrollback - window).min(rows)
            } else {
                rows - skip
            };
            for (index, text) in screen.rows(0, u16::MAX).enumerate().skip(skip).take(count) {
                let wrapped = screen.row_wrapped(index as u16);
                visit(&text, wrapped);
            }
            window += count;
        }
        screen.set_scrollback(0);
    }

    /// Erases the main screen's scrollback and the transcript, counting the erased
    /// rows so absolute row indexes stay valid.
    pub(super) fn erase_scrollback(&mut self) {
        let scrollback = self.parser.screen().scrollback_len();
        let mut chars = 0u64;
        self.visit_main_rows(0, |text, _| chars += text.chars().count() as u64);
        // The loop above also counted the visible rows, which stay.
        let visible_chars: u64 = self
            .parser
            .screen()
            .rows(0, u16::MAX)
            .map(|text| text.chars().count() as u64)
            .sum();
        self.parser.screen_mut().clear_scrollback();
        self.parser
            .callbacks_mut()
            .transcript
            .erase(scrollback as u64, chars - visible_chars);
    }

    /// Pushes the main screen's rows, down to the last non-blank one, into history, so
    /// an erase of the whole display keeps the text it clears (as VTE and kitty do).
    /// Callers check that the scroll region spans the screen, so each line feed at the
    /// bottom row scrolls one row into history.
    pub(super) fn save_visible_rows(&mut self) {
        let screen = self.parser.screen();
        if screen.alternate_screen() {
            return;
        }
        let last_text_row = screen
            .rows(0, u16::MAX)
            .enumerate()
            .filter(|(_, row)| !row.trim_end().is_empty())
            .map(|(index, _)| index)
            .last();
        let Some(last_text_row) = last_text_row else {
            return;
        };
        let rows = screen.size().0.get();
        let mut bytes = format!("\x1b7\x1b[{rows};1H").into_bytes();
        bytes.extend(std::iter::repeat_n(b'\n', last_text_row + 1));
        bytes.extend_from_slice(b"\x1b8");
        self.feed(&bytes);
    }

    /// Moves the main screen's scrollback into the transcript, before a full reset
    /// (which makes vt100 drop its scrollback).
    pub(super) fn move_scrollback_to_transcript(&mut self) {
        let scrollback = self.parser.screen().scrollback_len();
        let mut rows = Vec::with_capacity(scrollback);
        self.visit_main_rows(0, |text, wrapped| {
            if rows.len() < scrollback {
                rows.push((text.to_owned(), wrapped));
            }
        });
        self.parser.screen_mut().clear_scrollback();
        let transcript = &mut self.parser.callbacks_mut().transcript;
        for (text, wrapped) in rows {
            transcript.push(text, wrapped);
        }
    }

    /// Resizes both screens and the tab stops.
    ///
    /// Growing pulls rows back from scrollback. For history it has already discarded,
    /// vt100 would also insert blank rows at the top, but those rows live in the
    /// transcript. So growth beyond the scrollback is a second step, after resetting
    /// vt100's count of discarded rows, and it adds blank rows at the bottom.
    pub(super) fn resize(&mut self, size: TermSize) {
        let old = self.size();
        if old == size {
            return;
        }
        self.parser.callbacks_mut().tabs.resize(size.cols);
        self.with_main(|emulator| {
            let scrollback = emulator.parser.screen().scrollback_len();
            let growth = usize::from(size.rows.saturating_sub(old.rows));
            if growth > scrollback {
                let pulled = old.rows + scrollback as u16;
                if scrollback > 0 {
                    emulator.set_size(TermSize {
                        cols: size.cols,
                        rows: pulled,
                    });
                }
                emulator.parser.screen_mut().clear_scrollback();
            }
            emulator.set_size(size);
        });
        if self.parser.screen().scrollback_capacity()
            > history_capacity(self.scrollback_rows, size.cols)
        {
            self.shrink_history(size);
        }
    }

    /// Replaces the parser with one whose history fits [`HISTORY_CELL_BUDGET`] at the
    /// width `size`. vt100 fixes the history capacity when the parser is built, so the
    /// history moves to the transcript and the main screen is redrawn into the new
    /// parser. The alternate screen starts blank; the program redraws it on SIGWINCH.
    fn shrink_history(&mut self, size: TermSize) {
        self.with_main(|emulator| {
            emulator.move_scrollback_to_transcript();
            let contents = emulator.parser.screen().state_formatted();
            let hooks = std::mem::replace(
                emulator.parser.callbacks_mut(),
                Hooks {
                    replies: Vec::new(),
                    tabs: TabStops::new(size.cols),
                    transcript: Transcript::new(0),
                },
            );
            emulator.parser = new_parser(size, emulator.scrollback_rows, hooks);
            emulator.feed(contents.as_bytes());
        });
    }

    fn set_size(&mut self, size: TermSize) {
        let (rows, cols) = non_zero(size);
        let parser = &mut self.parser;
        if catch_unwind(AssertUnwindSafe(|| parser.set_size(rows, cols))).is_err() {
            self.rebuild();
        }
    }
}

fn non_zero(size: TermSize) -> (NonZeroU16, NonZeroU16) {
    (
        NonZeroU16::new(size.rows).unwrap_or(NonZeroU16::MIN),
        NonZeroU16::new(size.cols).unwrap_or(NonZeroU16::MIN),
    )
}

/// Maximum cells of emulator history per session. vt100 0.18.1 stores 32 bytes per
/// cell, so this is about 31 MiB: 10,000 rows at 100 columns. Rows beyond it live in the
/// transcript as plain text.
pub(super) const HISTORY_CELL_BUDGET: usize = 1_000_000;

/// History rows the emulator keeps at width `cols`: the configured rows, fewer when
/// they would exceed [`HISTORY_CELL_BUDGET`].
pub(super) fn history_capacity(scrollback_rows: usize, cols: u16) -> usize {
    scrollback_rows.min(HISTORY_CELL_BUDGET / usize::from(cols.max(1)))
}

fn new_parser(size: TermSize, scrollback_rows: usize, hooks: Hooks) -> vt100::Parser<Hooks> {
    let (rows, cols) = non_zero(size);
    let capacity = history_capacity(scrollback_rows, cols.get());
    vt100::Parser::new_with_callbacks(rows, cols, capacity, hooks)
}
