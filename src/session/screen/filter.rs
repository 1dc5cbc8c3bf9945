//! A byte-level pass in front of vt100 that fixes what vt100 0.18.1 renders
//! differently from xterm-compatible terminals.
//!
//! The filter keeps its own parse state across reads, so a sequence split between two
//! reads is handled once it is complete. It passes vt100 only whole escape sequences
//! and whole UTF-8 characters, which keeps vt100's parser in its ground state between
//! feeds. It handles:
//!
//! - UTF-8 characters split across reads (vt100 garbles them and drops the next
//!   character), by holding back an incomplete trailing sequence;
//! - DEC special graphics (line drawing) designated with `ESC ( 0` / `ESC ) 0` and
//!   selected with SO/SI;
//! - insert mode (IRM), autowrap off (DECAWM), tab stops set with HTS and cleared with
//!   TBC, CHT and CBT, DECALN, IND and NEL, and SCOSC/SCORC (`CSI s`, `CSI u`);
//! - OSC strings (the window title is kept, everything else is dropped) and DCS, SOS,
//!   PM and APC strings (dropped);
//! - erase scrollback (`CSI 3 J`) and full reset (`ESC c`), which must keep the
//!   transcript's row numbering.
//!
//! Plain text with none of these modes active is copied through in runs.

use unicode_width::UnicodeWidthChar as _;

use super::MainLayout;
use super::emulator::Emulator;
use super::marks::{MarkPosition, ShellMarks, parse_mark};

/// The character vt100 stores in place of U+FFFD: the last private-use code point, one
/// column wide like U+FFFD.
// NOTE: a program that prints U+10FFFD itself is shown U+FFFD.
pub(super) const REPLACEMENT_STAND_IN: char = '\u{10FFFD}';

/// Longest CSI or escape sequence passed on. Longer ones are dropped.
const MAX_SEQUENCE_BYTES: usize = 256;
/// Longest OSC payload kept for the title. The rest of a longer string is dropped.
const MAX_OSC_BYTES: usize = 4096;

const ESC: u8 = 0x1b;
const SHIFT_OUT: u8 = 0x0e;
const SHIFT_IN: u8 = 0x0f;
const CANCEL: u8 = 0x18;
const SUBSTITUTE: u8 = 0x1a;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC; `sequence` holds the bytes so far.
    Escape,
    /// After `ESC [`; `sequence` holds the bytes so far.
    Csi,
    /// Inside a CSI sequence longer than `MAX_SEQUENCE_BYTES`, dropped up to its final byte.
    CsiOverflow,
    /// Inside an OSC string; `osc` holds the payload.
    Osc,
    /// Inside a DCS, SOS, PM or APC string, which is dropped.
    IgnoredString,
}

/// Character sets designated to G0 and G1, and which one is shifted in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Charsets {
    g0_graphics: bool,
    g1_graphics: bool,
    shifted_out: bool,
}

impl Charsets {
    fn graphics_active(self) -> bool {
        if self.shifted_out {
            self.g1_graphics
        } else {
            self.g0_graphics
        }
    }
}

pub(super) struct Filter {
    state: State,
    sequence: Vec<u8>,
    osc: Vec<u8>,
    /// Bytes of an incomplete UTF-8 character at the end of the last read.
    held_utf8: Vec<u8>,
    /// Bytes waiting to be fed to vt100.
    out: Vec<u8>,
    charsets: Charsets,
    /// Charsets stored by DECSC, restored by DECRC.
    saved_charsets: Charsets,
    insert_mode: bool,
    autowrap: bool,
    /// True when tab stops may differ from the default, so HT needs the real stops.
    custom_tabs: bool,
    /// True unless DECSTBM set a scroll region smaller than the screen.
    scroll_region_full: bool,
    /// Cursor column as predicted while autowrap is off; `None` once anything other
    /// than a printed character may have moved the cursor.
    column: Option<u16>,
    pub(super) title: String,
    /// The nonce that shell integration marks must carry; `None` ignores every mark.
    pub(super) mark_nonce: Option<String>,
    pub(super) marks: ShellMarks,
}

impl Filter {
    pub(super) fn new() -> Filter {
        Filter {
            state: State::Ground,
            sequence: Vec::new(),
            osc: Vec::new(),
            held_utf8: Vec::new(),
            out: Vec::new(),
            charsets: Charsets::default(),
            saved_charsets: Charsets::default(),
            insert_mode: false,
            autowrap: true,
            custom_tabs: false,
            scroll_region_full: true,
            column: None,
            title: String::new(),
            mark_nonce: None,
            marks: ShellMarks::default(),
        }
    }

    /// Filters one read and feeds the result to `emulator`.
    pub(super) fn process(&mut self, bytes: &[u8], emulator: &mut Emulator) {
        if self.held_utf8.is_empty() {
            let complete = bytes.len() - incomplete_utf8_tail(bytes);
            self.run_valid(&bytes[..complete], emulator);
            self.held_utf8.extend_from_slice(&bytes[complete..]);
        } else {
            let mut joined = std::mem::take(&mut self.held_utf8);
            joined.extend_from_slice(bytes);
            let complete = joined.len() - incomplete_utf8_tail(&joined);
            self.run_valid(&joined[..complete], emulator);
            self.held_utf8.extend_from_slice(&joined[complete..]);
        }
        self.flush(emulator);
    }

    /// Feeds a held-back partial UTF-8 character, as U+FFFD, at end of file.
    pub(super) fn finish(&mut self, emulator: &mut Emulator) {
        let held = std::mem::take(&mut self.held_utf8);
        self.run_valid(&held, emulator);
        self.flush(emulator);
    }

    /// Runs `bytes` with every invalid UTF-8 sequence replaced, as xterm shows it, by
    /// U+FFFD. vt100 0.18.1 drops U+FFFD, so it gets [`REPLACEMENT_STAND_IN`], which the
    /// screen turns back into U+FFFD when it renders text.
    fn run_valid(&mut self, bytes: &[u8], emulator: &mut Emulator) {
        let text = String::from_utf8_lossy(bytes);
        if text.contains(char::REPLACEMENT_CHARACTER) {
            let stand_in = REPLACEMENT_STAND_IN.to_string();
            let text = text.replace(char::REPLACEMENT_CHARACTER, &stand_in);
            self.run(text.as_bytes(), emulator);
        } else {
            self.run(text.as_bytes(), emulator);
        }
    }

    /// Forgets the predicted cursor column and the scroll region, which vt100 resets on
    /// a resize.
    pub(super) fn cursor_moved(&mut self) {
        self.column = None;
        self.scroll_region_full = true;
    }

    fn flush(&mut self, emulator: &mut Emulator) {
        emulator.feed(&self.out);
        self.out.clear();
    }

    fn plain(&self) -> bool {
        self.autowrap && !self.insert_mode && !self.charsets.graphics_active()
    }

    fn run(&mut self, bytes: &[u8], emulator: &mut Emulator) {
        let mut index = 0;
        while index < bytes.len() {
            if self.state == State::Ground && self.plain() {
                let start = index;
                let custom_tabs = self.custom_tabs;
                while index < bytes.len() && !needs_attention(bytes[index], custom_tabs) {
                    index += 1;
                }
                self.out.extend_from_slice(&bytes[start..index]);
                if index == bytes.len() {
                    break;
                }
            }
            if self.state == State::Csi {
                // Parameter and intermediate bytes are collected in one go.
                let rest = &bytes[index..];
                let run = rest
                    .iter()
                    .position(|byte| !(0x20..=0x3f).contains(byte))
                    .unwrap_or(rest.len());
                if self.sequence.len() + run <= MAX_SEQUENCE_BYTES {
                    self.sequence.extend_from_slice(&rest[..run]);
                    index += run;
                    if index == bytes.len() {
                        break;
                    }
                }
            }
            index += self.step(&bytes[index..], emulator);
        }
    }

    /// Handles the byte (or UTF-8 character) at the start of `bytes`; returns how many
    /// bytes it consumed, at least 1.
    fn step(&mut self, bytes: &[u8], emulator: &mut Emulator) -> usize {
        let byte = bytes[0];
        match self.state {
            State::Ground => return self.ground(bytes, emulator),
            State::Escape => self.escape(byte, emulator),
            State::Csi | State::CsiOverflow => self.csi(byte, emulator),
            State::Osc | State::IgnoredString => self.string(byte, emulator),
        }
        1
    }

    fn ground(&mut self, bytes: &[u8], emulator: &mut Emulator) -> usize {
        let byte = bytes[0];
        match byte {
            ESC => self.start_escape(),
            SHIFT_OUT => self.charsets.shifted_out = true,
            SHIFT_IN => self.charsets.shifted_out = false,
            b'\t' if self.custom_tabs => self.tab(emulator, true, 1),
            0x00..=0x1f | 0x7f => {
                self.out.push(byte);
                self.column = None;
            }
            0x20..=0x7e => self.print(char::from(byte), &bytes[..1], emulator),
            _ => {
                let length = utf8_length(byte).min(bytes.len());
                match std::str::from_utf8(&bytes[..length])
                    .ok()
                    .and_then(|text| text.chars().next())
                {
                    Some(c) => {
                        self.print(c, &bytes[..length], emulator);
                        return length;
                    }
                    // Invalid bytes go to vt100 as they are, which draws nothing for them.
                    None => self.out.push(byte),
                }
            }
        }
        1
    }

    /// Emits one printable character, applying the active character set, insert mode
    /// and autowrap. `raw` is the character's encoding in the input.
    fn print(&mut self, c: char, raw: &[u8], emulator: &mut Emulator) {
        let c = if self.charsets.graphics_active() {
            dec_graphics(c)
        } else {
            c
        };
        if !self.plain() {
            let width = char_width(c);
            let cols = emulator.size().cols;
            if width > 0 && width <= cols {
                if !self.autowrap {
                    let column = match self.column {
                        Some(column) => column,
                        None => {
                            self.flush(emulator);
                            emulator.screen().cursor_position().1
                        }
                    };
                    let column = if column + width > cols {
                        // Without autowrap the character overwrites the end of the row.
                        let last = cols - width;
                        self.push_csi(&format!("{}G", last + 1));
                        last
                    } else {
                        column
                    };
                    self.column = Some(column + width);
                }
                if self.insert_mode {
                    self.push_csi(&format!("{width}@"));
                }
            }
        }
        if u32::from(c) < 0x80 && raw.len() == 1 && raw[0] == c as u8 {
            self.out.push(raw[0]);
        } else {
            let mut buffer = [0u8; 4];
            self.out
                .extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
        }
    }

    fn push_csi(&mut self, body: &str) {
        self.out.extend_from_slice(b"\x1b[");
        self.out.extend_from_slice(body.as_bytes());
    }

    fn start_escape(&mut self) {
        self.state = State::Escape;
        self.sequence.clear();
        self.sequence.push(ESC);
    }

    fn escape(&mut self, byte: u8, emulator: &mut Emulator) {
        match byte {
            CANCEL | SUBSTITUTE => {
                self.out.push(byte);
                self.state = State::Ground;
            }
            ESC => self.start_escape(),
            0x00..=0x1f => {
                self.out.push(byte);
                self.column = None;
            }
            0x20..=0x2f => {
                if self.sequence.len() < MAX_SEQUENCE_BYTES {
                    self.sequence.push(byte);
                }
            }
            0x30..=0x7e => {
                self.state = State::Ground;
                if self.sequence.len() == 1 {
                    match byte {
                        b'[' => {
                            self.sequence.push(byte);
                            self.state = State::Csi;
                            return;
                        }
                        b']' => {
                            self.osc.clear();
                            self.state = State::Osc;
                            return;
                        }
                        b'P' | b'X' | b'^' | b'_' => {
                            self.state = State::IgnoredString;
                            return;
                        }
                        _ => {}
                    }
                }
                self.sequence.push(byte);
                self.escape_dispatch(emulator);
            }
            0x7f => {}
            _ => {
                // A byte vt100 would not accept here ends the sequence; it is dropped.
                self.state = State::Ground;
            }
        }
    }

    fn escape_dispatch(&mut self, emulator: &mut Emulator) {
        self.column = None;
        let sequence = std::mem::take(&mut self.sequence);
        let final_byte = sequence[sequence.len() - 1];
        let intermediates = &sequence[1..sequence.len() - 1];
        match (intermediates, final_byte) {
            ([], b'c') => {
                self.flush(emulator);
                emulator.with_main(Emulator::move_scrollback_to_transcript);
                self.reset(emulator);
                self.out.extend_from_slice(&sequence);
            }
            ([], b'7') => {
                self.saved_charsets = self.charsets;
                self.out.extend_from_slice(&sequence);
            }
            ([], b'8') => {
                self.charsets = self.saved_charsets;
                self.out.extend_from_slice(&sequence);
            }
            ([], b'H') => {
                self.custom_tabs = true;
                self.out.extend_from_slice(&sequence);
            }
            // IND: vt100 treats LF as index (no carriage return).
            ([], b'D') => self.out.push(b'\n'),
            // NEL.
            ([], b'E') => self.out.extend_from_slice(b"\r\n"),
            // ST after a string that ended at the ESC.
            ([], b'\\') => {}
            ([b'('], designation) => self.charsets.g0_graphics = designation == b'0',
            ([b')'], designation) => self.charsets.g1_graphics = designation == b'0',
            ([b'*' | b'+' | b'-' | b'.' | b'/'], _) => {}
            ([b'#'], b'8') => self.alignment_test(emulator),
            ([b'#'], _) => {}
            _ => self.out.extend_from_slice(&sequence),
        }
        self.sequence = sequence;
    }

    /// Restores the state a full reset (RIS) gives the terminal.
    fn reset(&mut self, emulator: &mut Emulator) {
        self.charsets = Charsets::default();
        self.saved_charsets = Charsets::default();
        self.insert_mode = false;
        self.autowrap = true;
        self.custom_tabs = false;
        self.scroll_region_full = true;
        emulator.hooks_mut().tabs.reset();
    }

    /// DECALN: fills the screen with `E` and homes the cursor, with the scroll region
    /// reset.
    fn alignment_test(&mut self, emulator: &Emulator) {
        let size = emulator.size();
        self.scroll_region_full = true;
        self.out.extend_from_slice(b"\x1b[r");
        for row in 1..=size.rows {
            self.push_csi(&format!("{row};1H"));
            self.out
                .extend(std::iter::repeat_n(b'E', usize::from(size.cols)));
        }
        self.out.extend_from_slice(b"\x1b[H");
    }

    fn csi(&mut self, byte: u8, emulator: &mut Emulator) {
        match byte {
            CANCEL | SUBSTITUTE => {
                self.out.push(byte);
                self.state = State::Ground;
            }
            ESC => self.start_escape(),
            0x00..=0x1f => {
                self.out.push(byte);
                self.column = None;
            }
            0x20..=0x3f => {
                if self.sequence.len() < MAX_SEQUENCE_BYTES {
                    self.sequence.push(byte);
                } else {
                    self.state = State::CsiOverflow;
                }
            }
            0x40..=0x7e => {
                let overflow = self.state == State::CsiOverflow;
                self.state = State::Ground;
                if !overflow {
                    self.sequence.push(byte);
                    self.csi_dispatch(emulator);
                }
            }
            0x7f => {}
            _ => self.state = State::Ground,
        }
    }

    fn csi_dispatch(&mut self, emulator: &mut Emulator) {
        if self.sequence.last() == Some(&b'm') {
            // SGR, the most frequent sequence, changes nothing the filter tracks.
            self.out.extend_from_slice(&self.sequence);
            return;
        }
        self.column = None;
        let sequence = std::mem::take(&mut self.sequence);
        let csi = Csi::parse(&sequence);
        let first = csi.params.first().copied().unwrap_or(0);
        match (csi.private, csi.intermediates.is_empty(), csi.final_byte) {
            (None, true, b'h' | b'l') => {
                if csi.params.contains(&4) {
                    self.insert_mode = csi.final_byte == b'h';
                }
                self.out.extend_from_slice(&sequence);
            }
            (Some(b'?'), true, b'h' | b'l') => {
                let set = csi.final_byte == b'h';
                for param in &csi.params {
                    match param {
                        7 => self.autowrap = set,
                        // 1049 saves and restores the cursor, which includes the charsets.
                        1049 if set => self.saved_charsets = self.charsets,
                        1049 => self.charsets = self.saved_charsets,
                        _ => {}
                    }
                }
                self.out.extend_from_slice(&sequence);
            }
            (None | Some(b'?'), true, b'J') if first == 3 => {
                self.flush(emulator);
                emulator.with_main(Emulator::erase_scrollback);
            }
            // An erase of the whole display (ED 2, or ED 0 from the home position, as
            // `clear` and `tput clear` send) first saves the rows it clears.
            (None, true, b'J') if first == 2 || first == 0 => {
                self.flush(emulator);
                let whole = first == 2 || emulator.screen().cursor_position() == (0, 0);
                if whole && self.scroll_region_full {
                    emulator.save_visible_rows();
                }
                self.out.extend_from_slice(&sequence);
            }
            (None, true, b'r') => {
                let rows = emulator.size().rows;
                let top = csi.params.first().copied().unwrap_or(0);
                let bottom = csi.params.get(1).copied().unwrap_or(0);
                self.scroll_region_full = top <= 1 && (bottom == 0 || bottom >= rows);
                self.out.extend_from_slice(&sequence);
            }
            (None, true, b'I') => self.tab(emulator, true, first),
            (None, true, b'Z') => self.tab(emulator, false, first),
            (None, true, b'g') => {
                self.custom_tabs = true;
                self.out.extend_from_slice(&sequence);
            }
            (None, true, b's') if csi.params.is_empty() => {
                self.saved_charsets = self.charsets;
                self.out.extend_from_slice(b"\x1b7");
            }
            (None, true, b'u') if csi.params.is_empty() => {
                self.charsets = self.saved_charsets;
                self.out.extend_from_slice(b"\x1b8");
            }
            _ => self.out.extend_from_slice(&sequence),
        }
        self.sequence = sequence;
    }

    /// Moves the cursor `count` tab stops forward or backward, as HT, CHT and CBT do.
    fn tab(&mut self, emulator: &mut Emulator, forward: bool, count: u16) {
        self.column = None;
        self.flush(emulator);
        let tabs = &emulator.hooks().tabs;
        if forward && tabs.is_default() {
            // vt100 moves to the default stops itself.
            self.custom_tabs = false;
            self.out
                .extend(std::iter::repeat_n(b'\t', usize::from(count.max(1))));
            return;
        }
        let column = emulator.screen().cursor_position().1;
        let target = if forward {
            tabs.forward(column, count)
        } else {
            tabs.backward(column, count)
        };
        self.push_csi(&format!("{}G", target + 1));
    }

    fn string(&mut self, byte: u8, emulator: &mut Emulator) {
        match byte {
            0x07 => self.end_string(emulator),
            CANCEL | SUBSTITUTE => self.state = State::Ground,
            ESC => {
                self.end_string(emulator);
                self.start_escape();
            }
            _ => {
                if self.state == State::Osc && self.osc.len() < MAX_OSC_BYTES {
                    self.osc.push(byte);
                }
            }
        }
    }

    fn end_string(&mut self, emulator: &mut Emulator) {
        if self.state == State::Osc {
            let payload = std::mem::take(&mut self.osc);
            let mark = self
                .mark_nonce
                .as_deref()
                .and_then(|nonce| parse_mark(&payload, nonce));
            if let Some(kind) = mark {
                // The mark's position is where the bytes before it leave the cursor.
                self.flush(emulator);
                let layout = MainLayout::read(emulator);
                let position = MarkPosition {
                    row: layout.cursor_row(),
                    col: layout.cursor_col,
                };
                self.marks.record(kind, position);
            } else if let Some(title) = payload
                .strip_prefix(b"0;")
                .or_else(|| payload.strip_prefix(b"2;"))
            {
                self.title = String::from_utf8_lossy(title)
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
            }
            self.osc = payload;
        }
        self.state = State::Ground;
    }
}

/// Parameters of a CSI sequence, as vt100's parser splits them.
struct Csi<'a> {
    /// The private marker (`<`, `=`, `>` or `?`) before the parameters.
    private: Option<u8>,
    /// The first sub-parameter of each parameter; empty parameters are 0.
    params: Vec<u16>,
    intermediates: &'a [u8],
    final_byte: u8,
}

impl Csi<'_> {
    /// Parses `ESC [ ... final`.
    fn parse(sequence: &[u8]) -> Csi<'_> {
        let final_byte = sequence[sequence.len() - 1];
        let mut body = &sequence[2..sequence.len() - 1];
        let private = match body.first() {
            Some(marker @ 0x3c..=0x3f) => {
                body = &body[1..];
                Some(*marker)
            }
            _ => None,
        };
        let split = body
            .iter()
            .position(|byte| (0x20..=0x2f).contains(byte))
            .unwrap_or(body.len());
        let (digits, intermediates) = body.split_at(split);
        let params = if digits.is_empty() {
            Vec::new()
        } else {
            digits
                .split(|byte| *byte == b';')
                .map(|param| {
                    param.iter().take_while(|byte| byte.is_ascii_digit()).fold(
                        0u16,
                        |value, digit| {
                            value
                                .saturating_mul(10)
                                .saturating_add(u16::from(digit - b'0'))
                        },
                    )
                })
                .collect()
        };
        Csi {
            private,
            params,
            intermediates,
            final_byte,
        }
    }
}

/// Returns true for bytes the plain-text fast path must not copy through.
fn needs_attention(byte: u8, custom_tabs: bool) -> bool {
    matches!(byte, ESC | SHIFT_OUT | SHIFT_IN) || (custom_tabs && byte == b'\t')
}

/// Returns the length of an incomplete UTF-8 sequence at the end of `bytes`, or 0.
/// Only a valid lead byte (C2..F4) followed by too few continuation bytes counts;
/// bytes that can never complete a sequence are not held back.
pub(super) fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xc0 == 0x80 {
            continue;
        }
        let needed = match byte {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return 0,
        };
        return if back < needed { back } else { 0 };
    }
    0
}

/// Returns the length a UTF-8 sequence with this lead byte should have.
fn utf8_length(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

/// Returns the cells vt100 gives a character (0, 1 or 2).
fn char_width(c: char) -> u16 {
    c.width().unwrap_or(1).min(2) as u16
}

/// Maps a character through the DEC special graphics set (VT100 line drawing). Bytes
/// 0x60 to 0x7e change; the rest, including `_` (which tmux 3.x also shows as `_`),
/// print as ASCII.
fn dec_graphics(c: char) -> char {
    match c {
        '`' => '◆',
        'a' => '▒',
        'b' => '␉',
        'c' => '␌',
        'd' => '␍',
        'e' => '␊',
        'f' => '°',
        'g' => '±',
        'h' => '␤',
        'i' => '␋',
        'j' => '┘',
        'k' => '┐',
        'l' => '┌',
        'm' => '└',
        'n' => '┼',
        'o' => '⎺',
        'p' => '⎻',
        'q' => '─',
        'r' => '⎼',
        's' => '⎽',
        't' => '├',
        'u' => '┤',
        'v' => '┴',
        'w' => '┬',
        'x' => '│',
        'y' => '≤',
        'z' => '≥',
        '{' => 'π',
        '|' => '≠',
        '}' => '£',
        '~' => '·',
        other => other,
    }
}
