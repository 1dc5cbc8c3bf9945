//! Sequences of operations on the emulator wrapper: bytes fed in arbitrary pieces (so
//! UTF-8 characters and escape sequences straddle reads), resizes, and every view.
//! After each operation the screen has the current size, the cursor is inside it, every
//! rendered string is clean text, and reading one cursor twice gives the same text.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_terminal_server::session::screen::{Screen, ScreenLimits, TermSize};

/// Pieces that start or end the constructs a parser has to track across reads.
const PIECES: [&[u8]; 16] = [
    b"\x1b[",
    b"\x1b]",
    b"\x1bP",
    b"\xc2\x9b",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[8;65535;65535t",
    b"\xe4\xbd\xa0",
    b"e\xcc\x81",
    b"\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb",
    b"\x1b]133;D;0\x07",
    b"\x1b]0;title\x07",
    b"\r\n",
    b"\x1b[K",
    b"\x1b[2J",
    b"\x1b[6n",
];

#[derive(Arbitrary, Debug)]
enum Op {
    Feed(Vec<u8>),
    Piece(u8),
    Resize { cols: u8, rows: u8 },
    ReadAll,
    ReadFromCursor(u8),
    TakeCursor,
}

#[derive(Arbitrary, Debug)]
struct Input {
    cols: u8,
    rows: u8,
    ops: Vec<Op>,
}

fn size(cols: u8, rows: u8) -> TermSize {
    TermSize {
        cols: 2 + u16::from(cols) % 199,
        rows: 2 + u16::from(rows) % 59,
    }
}

/// Text the tools return: no C0 control except newline and tab, no C1 control.
fn assert_clean(what: &str, text: &str) {
    if let Some(bad) = text
        .chars()
        .find(|&c| (c < ' ' && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c))
    {
        panic!("{what} contains U+{:04X}: {text:?}", u32::from(bad));
    }
}

fuzz_target!(|input: Input| {
    let limits = ScreenLimits {
        scrollback_rows: 50,
        transcript_bytes: 4096,
    };
    let mut current = size(input.cols, input.rows);
    let mut screen = Screen::new(current, limits);
    let mut cursors = Vec::new();
    for op in input.ops {
        match op {
            Op::Feed(bytes) => {
                screen.process(&bytes);
            }
            Op::Piece(index) => {
                screen.process(PIECES[usize::from(index) % PIECES.len()]);
            }
            Op::Resize { cols, rows } => {
                current = size(cols, rows);
                screen.resize(current);
            }
            Op::ReadAll => {
                assert_clean("screen", &screen.screen_text());
                assert_clean("scrollback", &screen.scrollback_text());
                assert_clean("output", &screen.output_since(None).text);
                assert_clean("title", screen.title());
            }
            Op::ReadFromCursor(index) => {
                if let Some(cursor) = cursors.get(usize::from(index) % cursors.len().max(1)) {
                    let first = screen.output_since(Some(*cursor));
                    let second = screen.output_since(Some(*cursor));
                    assert_eq!(first.text, second.text);
                    assert_clean("output since a cursor", &first.text);
                }
            }
            Op::TakeCursor => cursors.push(screen.current_cursor()),
        }
        assert_eq!(screen.size(), current);
        let rows = screen.visible_rows();
        assert_eq!(rows.len(), usize::from(current.rows));
        let (row, col) = screen.cursor_position();
        assert!(row < current.rows, "cursor row {row} of {current:?}");
        assert!(col <= current.cols, "cursor col {col} of {current:?}");
        assert_eq!(screen.resets(), 0, "vt100 panicked and was rebuilt");
    }
    screen.finish();
});
