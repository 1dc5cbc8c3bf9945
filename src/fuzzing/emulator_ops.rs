//! The `emulator_ops` target: program output fed to [`Screen`] in pieces, with resizes
//! and reads in between.
//!
//! Input format: the bytes are program output, except that 0xFF, which never occurs
//! in UTF-8, starts an operation named by the next byte:
//!
//! | bytes | operation |
//! |---|---|
//! | `FF 7C` (`\|`) | end of one read: feed what came before as one `process` call |
//! | `FF 73 C R` (`s`) | resize to C columns and R rows |
//! | `FF 6E C R` (`n`) | replace the screen with a new one of C columns and R rows |
//! | `FF 72` (`r`) | read every view |
//! | `FF 63` (`c`) | remember the current output cursor |
//! | `FF 6F N` (`o`) | read twice from remembered cursor N (modulo their count) |
//! | `FF FF` | one literal 0xFF byte of output |
//!
//! Any other byte after 0xFF is skipped with it. Output before an operation is fed
//! first, so a plain recording is fed in one piece and then read.
//!
//! Properties: after every operation the screen has the requested size (clamped to at least 1×1,
//! as [`Screen`] does), the cursor lies inside it, and vt100 never panicked. Every
//! rendered string and the title are clean text, and one cursor read twice gives the
//! same text.

use crate::session::screen::{Screen, ScreenLimits, TermSize};

use super::assert_clean;

/// Nonce of the shell integration marks, so OSC 133 marks that carry it are parsed.
pub const MARK_NONCE: &str = "fuzznonce";

const LIMITS: ScreenLimits = ScreenLimits {
    scrollback_rows: 50,
    transcript_bytes: 4096,
};

const INITIAL_SIZE: TermSize = TermSize { cols: 80, rows: 24 };

/// The screen under test and what it must look like.
struct Run {
    screen: Screen,
    size: TermSize,
    cursors: Vec<crate::session::screen::OutputCursor>,
    pending: Vec<u8>,
}

impl Run {
    fn new(size: TermSize) -> Run {
        let mut screen = Screen::new(size, LIMITS);
        screen.set_mark_nonce(MARK_NONCE.to_owned());
        Run {
            screen,
            size: clamp(size),
            cursors: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.screen.process(&self.pending);
            self.pending.clear();
            self.assert_shape("after feeding output");
        }
    }

    fn read_views(&self) {
        assert_clean("screen", &self.screen.screen_text());
        assert_clean("scrollback", &self.screen.scrollback_text());
        assert_clean("output", &self.screen.output_since(None).text);
        assert_clean("title", self.screen.title());
        for row in self.screen.visible_rows() {
            assert_clean("visible row", &row);
        }
    }

    fn read_cursor_twice(&self, index: u8) {
        let Some(cursor) = self
            .cursors
            .get(usize::from(index) % self.cursors.len().max(1))
        else {
            return;
        };
        let first = self.screen.output_since(Some(*cursor));
        let second = self.screen.output_since(Some(*cursor));
        assert_eq!(first.text, second.text, "reading cursor {cursor} twice");
        assert_clean("output since a cursor", &first.text);
    }

    fn assert_shape(&self, when: &str) {
        assert_eq!(self.screen.size(), self.size, "size {when}");
        let rows = self.screen.visible_rows();
        assert_eq!(rows.len(), usize::from(self.size.rows), "row count {when}");
        let (row, col) = self.screen.cursor_position();
        assert!(
            row < self.size.rows,
            "cursor row {row} of {:?} {when}",
            self.size
        );
        // vt100 leaves the cursor one past the last column after printing into it.
        assert!(
            col <= self.size.cols,
            "cursor col {col} of {:?} {when}",
            self.size
        );
        assert_eq!(
            self.screen.resets(),
            0,
            "vt100 panicked and was rebuilt {when}"
        );
    }
}

fn clamp(size: TermSize) -> TermSize {
    TermSize {
        cols: size.cols.max(1),
        rows: size.rows.max(1),
    }
}

fn size_from(cols: u8, rows: u8) -> TermSize {
    TermSize {
        cols: u16::from(cols),
        rows: u16::from(rows),
    }
}

/// Runs one `emulator_ops` input; panics when a property fails.
pub fn check_emulator_ops(data: &[u8]) {
    let mut run = Run::new(INITIAL_SIZE);
    let mut bytes = data.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != 0xff {
            run.pending.push(byte);
            continue;
        }
        let Some(operation) = bytes.next() else {
            break;
        };
        if operation == 0xff {
            run.pending.push(0xff);
            continue;
        }
        run.flush();
        match operation {
            b'|' => {}
            b's' | b'n' => {
                let (Some(cols), Some(rows)) = (bytes.next(), bytes.next()) else {
                    break;
                };
                let size = size_from(cols, rows);
                if operation == b's' {
                    run.screen.resize(size);
                    run.size = clamp(size);
                } else {
                    run = Run::new(size);
                }
            }
            b'r' => run.read_views(),
            b'c' => run.cursors.push(run.screen.current_cursor()),
            b'o' => {
                let Some(index) = bytes.next() else {
                    break;
                };
                run.read_cursor_twice(index);
            }
            _ => {}
        }
        run.assert_shape(&format!("after operation {:?}", char::from(operation)));
    }
    run.flush();
    run.read_views();
    run.screen.finish();
    run.assert_shape("after the end of output");
    run.read_views();
}
