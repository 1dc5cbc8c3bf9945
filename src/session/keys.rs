//! Encoding of named keys (`Enter`, `C-c`, `M-x`, `Up`, `F5`, ...) into the bytes an
//! xterm-compatible terminal sends for them, as described by the `xterm-256color`
//! terminfo entry and xterm's "PC-style" function keys.
//!
//! A key name is zero or more modifier prefixes followed by a base key, as in tmux's
//! `send-keys`:
//!
//! - Prefixes are `C-` (Ctrl), `M-` (Alt, also called Meta) and `S-` (Shift), in any
//!   order, each at most once. `^x` is accepted as another spelling of `C-x`.
//! - A base key is one of the named keys below or a single character, which is sent as
//!   its UTF-8 bytes. A lone control character is rejected: use its `C-` name.
//! - Named keys and prefixes are case-insensitive (`enter`, `PAGEUP`, `c-a`). A single
//!   character keeps its case (`A` sends `A`), except under Ctrl, where `C-a` and `C-A`
//!   both send 0x01 because a terminal has one byte for both.
//!
//! | names | bytes |
//! |---|---|
//! | `Enter`, `Return` | `\r` |
//! | `Tab` | `\t` |
//! | `BTab`, `BackTab`, `S-Tab` | `ESC [ Z` |
//! | `Escape`, `Esc` | `ESC` |
//! | `Backspace`, `BSpace` | DEL (0x7f) |
//! | `Space` | ` ` |
//! | `Insert`, `Ins`, `IC` | `ESC [ 2 ~` |
//! | `Delete`, `Del`, `DC` | `ESC [ 3 ~` |
//! | `PageUp`, `PgUp`, `PPage` | `ESC [ 5 ~` |
//! | `PageDown`, `PgDn`, `PgDown`, `NPage` | `ESC [ 6 ~` |
//! | `Up`, `Down`, `Right`, `Left`, `Home`, `End` | `ESC [ A`..`D`, `ESC [ H`, `ESC [ F`, with `ESC O` in place of `ESC [` in application cursor mode |
//! | `F1`..`F4` | `ESC O P`..`ESC O S` |
//! | `F5`..`F12` | `ESC [ 15 ~`, `17~`, `18~`, `19~`, `20~`, `21~`, `23~`, `24~` |
//! | `C-a`..`C-z` | 0x01..0x1a |
//! | `C-@`, `C-Space` | NUL |
//! | `C-[`, `C-\`, `C-]`, `C-^` | 0x1b, 0x1c, 0x1d, 0x1e |
//! | `C-_`, `C-/` | 0x1f |
//! | `C-?` | DEL (0x7f) |
//!
//! Modifiers combine as xterm sends them:
//!
//! - Alt prefixes ESC to a character or to `Enter`, `Tab`, `BTab`, `Escape` and
//!   `Backspace`: `M-x` is `ESC x`, `M-C-a` is `ESC 0x01`, `M-Enter` is `ESC \r`.
//! - Shift turns a letter into its capital (`S-a` is `A`) and `Tab` into back-tab.
//! - Any modifier on a cursor, editing or function key selects xterm's parameter form
//!   with modifier value 1 + Shift + 2·Alt + 4·Ctrl, whatever the cursor mode:
//!   `C-Up` is `ESC [ 1 ; 5 A`, `S-F1` is `ESC [ 1 ; 2 P`, `M-Delete` is `ESC [ 3 ; 3 ~`.
//! - Other combinations (`C-Enter`, `C-Tab`, `S-1`, `C-é`) have no standard encoding
//!   without extended keyboard protocols and are rejected.

use thiserror::Error;

/// Example names listed in every [`KeyError`] message.
const VALID_FORMS: &str = "Enter, Tab, Escape, Backspace, Up, PageUp, F1-F12, C-a..C-z, C-], M-x";

/// A key name that [`encode_key`] cannot encode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown key name {name:?}{}: use names such as {VALID_FORMS}",
    .reason.map(|reason| format!(" ({reason})")).unwrap_or_default()
)]
pub struct KeyError {
    /// The name as the caller wrote it.
    pub name: String,
    /// Reason for rejecting a name that looks close to a valid one, when one is known.
    pub reason: Option<&'static str>,
}

/// Encodes a sequence of key names into the bytes to write to the terminal.
///
/// The call is all or nothing: the first name that cannot be encoded rejects the whole
/// sequence, so the caller writes nothing.
pub fn encode_keys(names: &[String], application_cursor: bool) -> Result<Vec<u8>, KeyError> {
    let mut bytes = Vec::with_capacity(names.len() * 3);
    for name in names {
        bytes.extend(encode_key(name, application_cursor)?);
    }
    Ok(bytes)
}

/// Encodes one key name (see the module documentation for the accepted names).
///
/// `application_cursor` is the program's DECCKM state: when set, unmodified cursor
/// keys, `Home` and `End` are sent as `ESC O x` instead of `ESC [ x`.
pub fn encode_key(name: &str, application_cursor: bool) -> Result<Vec<u8>, KeyError> {
    let reject = |reason: Option<&'static str>| KeyError {
        name: name.to_owned(),
        reason,
    };

    let (modifiers, base_name) = split_modifiers(name).map_err(|reason| reject(Some(reason)))?;
    let base = parse_base(base_name).map_err(reject)?;
    encode_with_modifiers(base, modifiers, application_cursor)
        .map_err(|reason| reject(Some(reason)))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Modifiers {
    ctrl: bool,
    alt: bool,
    shift: bool,
}

impl Modifiers {
    fn any(self) -> bool {
        self.ctrl || self.alt || self.shift
    }

    /// xterm's modifier parameter, as in `ESC [ 1 ; 5 A` for Ctrl+Up.
    fn xterm_parameter(self) -> u8 {
        1 + u8::from(self.shift) + 2 * u8::from(self.alt) + 4 * u8::from(self.ctrl)
    }
}

/// A key without modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BaseKey {
    /// A printable character, `Space` included.
    Char(char),
    /// A key sent as fixed bytes that only Alt combines with: Enter, Escape, Backspace.
    Fixed(&'static [u8]),
    /// Tab, which Shift turns into back-tab.
    Tab,
    /// Back-tab, `ESC [ Z`.
    BackTab,
    /// A cursor key, `Home` or `End`: `ESC [ x` or `ESC O x` by cursor mode, `x` being
    /// the final byte given here.
    Cursor(u8),
    /// F1–F4: `ESC O x` unmodified, `x` being the final byte given here.
    Ss3Function(u8),
    /// An editing or function key sent as `ESC [ n ~`, `n` being the number given here.
    Tilde(u8),
}

/// Splits `C-`, `M-`, `S-` and `^` prefixes from `name`.
///
/// A prefix is stripped only when something follows it, so `C-` alone stays a base
/// name (and is rejected there) and `M--` is Alt with the `-` key.
fn split_modifiers(name: &str) -> Result<(Modifiers, &str), &'static str> {
    let mut modifiers = Modifiers::default();
    let mut rest = name;

    loop {
        let bytes = rest.as_bytes();
        if bytes.len() <= 2 || bytes[1] != b'-' {
            break;
        }
        let slot = match bytes[0].to_ascii_lowercase() {
            b'c' => &mut modifiers.ctrl,
            b'm' => &mut modifiers.alt,
            b's' => &mut modifiers.shift,
            _ => break,
        };
        if *slot {
            return Err("each of C-, M- and S- may appear once");
        }
        *slot = true;
        // The first byte is ASCII and the second is `-`, so index 2 is a char boundary.
        rest = &rest[2..];
    }

    // tmux's `^c` spelling of Ctrl, valid only on a single character.
    let mut chars = rest.chars();
    if let (Some('^'), Some(_), None) = (chars.next(), chars.next(), chars.next()) {
        if modifiers.ctrl {
            return Err("each of C-, M- and S- may appear once");
        }
        modifiers.ctrl = true;
        rest = &rest[1..];
    }

    Ok((modifiers, rest))
}

/// Parses a base key name, returning the rejection reason when there is one to give.
fn parse_base(name: &str) -> Result<BaseKey, Option<&'static str>> {
    let mut chars = name.chars();
    if let (Some(only), None) = (chars.next(), chars.next()) {
        if only.is_control() {
            return Err(Some("send control characters by their C- name, as in C-j"));
        }
        return Ok(BaseKey::Char(only));
    }

    let lower = name.to_ascii_lowercase();
    let key = match lower.as_str() {
        "enter" | "return" => BaseKey::Fixed(b"\r"),
        "tab" => BaseKey::Tab,
        "btab" | "backtab" => BaseKey::BackTab,
        "escape" | "esc" => BaseKey::Fixed(b"\x1b"),
        "backspace" | "bspace" => BaseKey::Fixed(b"\x7f"),
        "space" => BaseKey::Char(' '),
        "insert" | "ins" | "ic" => BaseKey::Tilde(2),
        "delete" | "del" | "dc" => BaseKey::Tilde(3),
        "pageup" | "pgup" | "ppage" => BaseKey::Tilde(5),
        "pagedown" | "pgdn" | "pgdown" | "npage" => BaseKey::Tilde(6),
        "up" => BaseKey::Cursor(b'A'),
        "down" => BaseKey::Cursor(b'B'),
        "right" => BaseKey::Cursor(b'C'),
        "left" => BaseKey::Cursor(b'D'),
        "home" => BaseKey::Cursor(b'H'),
        "end" => BaseKey::Cursor(b'F'),
        "f1" => BaseKey::Ss3Function(b'P'),
        "f2" => BaseKey::Ss3Function(b'Q'),
        "f3" => BaseKey::Ss3Function(b'R'),
        "f4" => BaseKey::Ss3Function(b'S'),
        "f5" => BaseKey::Tilde(15),
        "f6" => BaseKey::Tilde(17),
        "f7" => BaseKey::Tilde(18),
        "f8" => BaseKey::Tilde(19),
        "f9" => BaseKey::Tilde(20),
        "f10" => BaseKey::Tilde(21),
        "f11" => BaseKey::Tilde(23),
        "f12" => BaseKey::Tilde(24),
        _ => return Err(guess_reason(&lower)),
    };
    Ok(key)
}

/// Explains an unknown name that resembles a valid one.
fn guess_reason(lower: &str) -> Option<&'static str> {
    if lower.is_empty() {
        Some("the name is empty")
    } else if lower.starts_with("ctrl") || lower.starts_with("control") {
        Some("write Ctrl as C-, as in C-c")
    } else if lower.starts_with("alt") || lower.starts_with("meta") {
        Some("write Alt as M-, as in M-x")
    } else if lower.starts_with("shift") {
        Some("write Shift as S-, as in S-Tab")
    } else if lower.len() > 1
        && lower.starts_with('f')
        && lower[1..].bytes().all(|byte| byte.is_ascii_digit())
    {
        Some("function keys are F1-F12")
    } else if lower.ends_with('-') && lower.len() <= 6 {
        Some("a modifier needs a key after it, as in C-c")
    } else {
        None
    }
}

fn encode_with_modifiers(
    base: BaseKey,
    modifiers: Modifiers,
    application_cursor: bool,
) -> Result<Vec<u8>, &'static str> {
    match base {
        BaseKey::Char(character) => encode_char(character, modifiers),
        BaseKey::Fixed(bytes) => {
            if modifiers.ctrl || modifiers.shift {
                return Err("Enter, Escape and Backspace combine only with M-");
            }
            Ok(alt_prefixed(modifiers.alt, bytes))
        }
        BaseKey::Tab => {
            if modifiers.ctrl {
                return Err("Tab combines only with M- and S-");
            }
            let bytes: &[u8] = if modifiers.shift { b"\x1b[Z" } else { b"\t" };
            Ok(alt_prefixed(modifiers.alt, bytes))
        }
        BaseKey::BackTab => {
            if modifiers.ctrl || modifiers.shift {
                return Err("BTab combines only with M-");
            }
            Ok(alt_prefixed(modifiers.alt, b"\x1b[Z"))
        }
        BaseKey::Cursor(final_byte) if !modifiers.any() => {
            let introducer = if application_cursor { b'O' } else { b'[' };
            Ok(vec![0x1b, introducer, final_byte])
        }
        BaseKey::Ss3Function(final_byte) if !modifiers.any() => Ok(vec![0x1b, b'O', final_byte]),
        BaseKey::Cursor(final_byte) | BaseKey::Ss3Function(final_byte) => {
            let mut bytes = format!("\x1b[1;{}", modifiers.xterm_parameter()).into_bytes();
            bytes.push(final_byte);
            Ok(bytes)
        }
        BaseKey::Tilde(number) if !modifiers.any() => Ok(format!("\x1b[{number}~").into_bytes()),
        BaseKey::Tilde(number) => {
            Ok(format!("\x1b[{number};{}~", modifiers.xterm_parameter()).into_bytes())
        }
    }
}

/// Encodes a character with modifiers: Shift capitalizes a letter, Ctrl maps it to its
/// C0 control byte, Alt prefixes ESC.
fn encode_char(character: char, modifiers: Modifiers) -> Result<Vec<u8>, &'static str> {
    if modifiers.shift && !character.is_ascii_alphabetic() {
        return Err("S- combines with a letter, Tab, or a cursor, editing or function key");
    }

    let byte_or_char = if modifiers.ctrl {
        let Some(control) = control_byte(character) else {
            return Err(
                "C- combines with a letter, Space, one of @ [ \\ ] ^ _ / ?, \
                        or a cursor, editing or function key",
            );
        };
        control as char
    } else if modifiers.shift {
        character.to_ascii_uppercase()
    } else {
        character
    };

    let mut utf8 = [0; 4];
    Ok(alt_prefixed(
        modifiers.alt,
        byte_or_char.encode_utf8(&mut utf8).as_bytes(),
    ))
}

/// Returns the byte xterm sends for Ctrl with `character`, if there is one.
fn control_byte(character: char) -> Option<u8> {
    let byte = match character {
        'a'..='z' => character as u8 - b'a' + 1,
        'A'..='Z' => character as u8 - b'A' + 1,
        '@' | ' ' => 0x00,
        '[' => 0x1b,
        '\\' => 0x1c,
        ']' => 0x1d,
        '^' => 0x1e,
        '_' | '/' => 0x1f,
        '?' => 0x7f,
        _ => return None,
    };
    Some(byte)
}

fn alt_prefixed(alt: bool, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    if alt {
        out.push(0x1b);
    }
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `name` in normal and in application cursor mode.
    fn encode_both(name: &str) -> (Vec<u8>, Vec<u8>) {
        let normal = encode_key(name, false).unwrap_or_else(|error| panic!("{name}: {error}"));
        let application = encode_key(name, true).unwrap_or_else(|error| panic!("{name}: {error}"));
        (normal, application)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn named_keys_same_in_both_cursor_modes() {
        let table: &[(&str, &[u8])] = &[
            ("Enter", b"\r"),
            ("Return", b"\r"),
            ("Tab", b"\t"),
            ("BTab", b"\x1b[Z"),
            ("BackTab", b"\x1b[Z"),
            ("S-Tab", b"\x1b[Z"),
            ("Escape", b"\x1b"),
            ("Esc", b"\x1b"),
            ("Backspace", b"\x7f"),
            ("BSpace", b"\x7f"),
            ("Space", b" "),
            ("Insert", b"\x1b[2~"),
            ("Ins", b"\x1b[2~"),
            ("IC", b"\x1b[2~"),
            ("Delete", b"\x1b[3~"),
            ("Del", b"\x1b[3~"),
            ("DC", b"\x1b[3~"),
            ("PageUp", b"\x1b[5~"),
            ("PgUp", b"\x1b[5~"),
            ("PPage", b"\x1b[5~"),
            ("PageDown", b"\x1b[6~"),
            ("PgDn", b"\x1b[6~"),
            ("PgDown", b"\x1b[6~"),
            ("NPage", b"\x1b[6~"),
            ("F1", b"\x1bOP"),
            ("F2", b"\x1bOQ"),
            ("F3", b"\x1bOR"),
            ("F4", b"\x1bOS"),
            ("F5", b"\x1b[15~"),
            ("F6", b"\x1b[17~"),
            ("F7", b"\x1b[18~"),
            ("F8", b"\x1b[19~"),
            ("F9", b"\x1b[20~"),
            ("F10", b"\x1b[21~"),
            ("F11", b"\x1b[23~"),
            ("F12", b"\x1b[24~"),
        ];
        for (name, expected) in table {
            let (normal, application) = encode_both(name);
            assert_eq!(normal, *expected, "{name} in normal cursor mode");
            assert_eq!(application, *expected, "{name} in application cursor mode");
        }
    }

    #[test]
    fn cursor_keys_follow_cursor_mode() {
        let table: &[(&str, &[u8], &[u8])] = &[
            ("Up", b"\x1b[A", b"\x1bOA"),
            ("Down", b"\x1b[B", b"\x1bOB"),
            ("Right", b"\x1b[C", b"\x1bOC"),
            ("Left", b"\x1b[D", b"\x1bOD"),
            ("Home", b"\x1b[H", b"\x1bOH"),
            ("End", b"\x1b[F", b"\x1bOF"),
        ];
        for (name, normal_expected, application_expected) in table {
            let (normal, application) = encode_both(name);
            assert_eq!(normal, *normal_expected, "{name} in normal cursor mode");
            assert_eq!(
                application, *application_expected,
                "{name} in application cursor mode"
            );
        }
    }

    #[test]
    fn ctrl_letters_cover_whole_alphabet() {
        for (offset, letter) in ('a'..='z').enumerate() {
            let expected = vec![offset as u8 + 1];
            for name in [
                format!("C-{letter}"),
                format!("C-{}", letter.to_ascii_uppercase()),
            ] {
                let (normal, application) = encode_both(&name);
                assert_eq!(normal, expected, "{name}");
                assert_eq!(application, expected, "{name}");
            }
            assert_eq!(
                encode_key(&format!("^{letter}"), false).unwrap(),
                expected,
                "^{letter}"
            );
        }
    }

    #[test]
    fn ctrl_keys_common_values() {
        let table: &[(&str, u8)] = &[
            ("C-c", 0x03),
            ("C-d", 0x04),
            ("C-z", 0x1a),
            ("C-j", 0x0a),
            ("C-m", 0x0d),
            ("C-h", 0x08),
            ("C-@", 0x00),
            ("C-Space", 0x00),
            ("C-[", 0x1b),
            ("C-\\", 0x1c),
            ("C-]", 0x1d),
            ("C-^", 0x1e),
            ("C-_", 0x1f),
            ("C-/", 0x1f),
            ("C-?", 0x7f),
            ("^C", 0x03),
            ("^[", 0x1b),
            ("^]", 0x1d),
            ("^?", 0x7f),
            ("c-c", 0x03),
        ];
        for (name, expected) in table {
            let (normal, application) = encode_both(name);
            assert_eq!(normal, vec![*expected], "{name}");
            assert_eq!(application, vec![*expected], "{name}");
        }
    }

    #[test]
    fn every_control_byte_has_a_name() {
        let mut reached = Vec::new();
        for name in [
            "C-@", "C-a", "C-b", "C-c", "C-d", "C-e", "C-f", "C-g", "C-h", "C-i", "C-j", "C-k",
            "C-l", "C-m", "C-n", "C-o", "C-p", "C-q", "C-r", "C-s", "C-t", "C-u", "C-v", "C-w",
            "C-x", "C-y", "C-z", "C-[", "C-\\", "C-]", "C-^", "C-_", "C-?",
        ] {
            let bytes = encode_key(name, false).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(bytes.len(), 1, "{name}");
            reached.push(bytes[0]);
        }
        let mut expected: Vec<u8> = (0x00..=0x1f).collect();
        expected.push(0x7f);
        assert_eq!(reached, expected);
    }

    #[test]
    fn alt_prefixes_escape() {
        let table: &[(&str, &[u8])] = &[
            ("M-x", b"\x1bx"),
            ("M-X", b"\x1bX"),
            ("m-x", b"\x1bx"),
            ("M-Enter", b"\x1b\r"),
            ("M-Tab", b"\x1b\t"),
            ("M-Escape", b"\x1b\x1b"),
            ("M-Backspace", b"\x1b\x7f"),
            ("M-Space", b"\x1b "),
            ("M-BTab", b"\x1b\x1b[Z"),
            ("M-C-a", b"\x1b\x01"),
            ("C-M-a", b"\x1b\x01"),
            ("M-^a", b"\x1b\x01"),
            ("M-C-]", b"\x1b\x1d"),
            ("M--", b"\x1b-"),
            ("M-S-a", b"\x1bA"),
            ("M-é", "\x1bé".as_bytes()),
        ];
        for (name, expected) in table {
            let (normal, application) = encode_both(name);
            assert_eq!(normal, *expected, "{name}");
            assert_eq!(application, *expected, "{name}");
        }
    }

    #[test]
    fn modified_special_keys_use_xterm_parameters() {
        let table: &[(&str, &[u8])] = &[
            ("S-Up", b"\x1b[1;2A"),
            ("M-Up", b"\x1b[1;3A"),
            ("C-Up", b"\x1b[1;5A"),
            ("C-Down", b"\x1b[1;5B"),
            ("C-Right", b"\x1b[1;5C"),
            ("C-Left", b"\x1b[1;5D"),
            ("C-Home", b"\x1b[1;5H"),
            ("C-End", b"\x1b[1;5F"),
            ("C-S-Left", b"\x1b[1;6D"),
            ("C-M-S-Right", b"\x1b[1;8C"),
            ("S-F1", b"\x1b[1;2P"),
            ("C-F4", b"\x1b[1;5S"),
            ("M-Delete", b"\x1b[3;3~"),
            ("C-PageUp", b"\x1b[5;5~"),
            ("S-PageDown", b"\x1b[6;2~"),
            ("C-Insert", b"\x1b[2;5~"),
            ("C-F5", b"\x1b[15;5~"),
            ("S-F12", b"\x1b[24;2~"),
        ];
        for (name, expected) in table {
            let (normal, application) = encode_both(name);
            assert_eq!(normal, *expected, "{name} in normal cursor mode");
            assert_eq!(application, *expected, "{name} in application cursor mode");
        }
    }

    #[test]
    fn names_case_insensitive() {
        for name in ["enter", "ENTER", "eNtEr"] {
            assert_eq!(encode_key(name, false).unwrap(), b"\r", "{name}");
        }
        assert_eq!(encode_key("pageup", false).unwrap(), b"\x1b[5~");
        assert_eq!(encode_key("f12", false).unwrap(), b"\x1b[24~");
        assert_eq!(encode_key("c-up", false).unwrap(), b"\x1b[1;5A");
    }

    #[test]
    fn single_characters_sent_literally() {
        assert_eq!(encode_key("q", false).unwrap(), b"q");
        assert_eq!(encode_key("Q", false).unwrap(), b"Q");
        assert_eq!(encode_key("-", false).unwrap(), b"-");
        assert_eq!(encode_key("^", false).unwrap(), b"^");
        assert_eq!(encode_key("é", false).unwrap(), "é".as_bytes());
        assert_eq!(encode_key("S-a", false).unwrap(), b"A");
        // A C, M or S letter alone is a character, not a modifier.
        assert_eq!(encode_key("C", false).unwrap(), b"C");
        // `C-M` is Ctrl with the letter M, carriage return.
        assert_eq!(encode_key("C-M", false).unwrap(), b"\r");
    }

    #[test]
    fn unknown_names_rejected_with_quoted_name() {
        for name in [
            "Ctrl+C", "C-", "F13", "F0", "", "C-é", "C-1", "C-Enter", "C-Tab", "C-Escape",
            "S-Enter", "S-1", "C-C-a", "M-", "Enterr", "\n", "\u{7}", "C-BTab", "^C-a",
        ] {
            let error = encode_key(name, false).expect_err(name);
            assert_eq!(error.name, name);
            let message = error.to_string();
            let quoted = format!("{name:?}");
            assert!(
                message.starts_with(&format!("unknown key name {quoted}")),
                "message for {quoted} does not quote it: {message}"
            );
            assert!(
                message.contains("C-a..C-z"),
                "message lists no valid forms: {message}"
            );
        }
    }

    #[test]
    fn rejection_messages_exact() {
        assert_eq!(
            encode_key("Ctrl+C", false).unwrap_err().to_string(),
            "unknown key name \"Ctrl+C\" (write Ctrl as C-, as in C-c): use names such as \
             Enter, Tab, Escape, Backspace, Up, PageUp, F1-F12, C-a..C-z, C-], M-x"
        );
        assert_eq!(
            encode_key("Frobnicate", false).unwrap_err(),
            KeyError {
                name: "Frobnicate".to_owned(),
                reason: None,
            }
        );
        assert_eq!(
            encode_key("F13", false).unwrap_err().reason,
            Some("function keys are F1-F12")
        );
        assert_eq!(
            encode_key("", false).unwrap_err().reason,
            Some("the name is empty")
        );
        assert_eq!(
            encode_key("C-", false).unwrap_err().reason,
            Some("a modifier needs a key after it, as in C-c")
        );
        assert!(
            encode_key("C-é", false)
                .unwrap_err()
                .to_string()
                .contains("C- combines with a letter")
        );
    }

    #[test]
    fn encode_keys_concatenates_in_order() {
        let bytes = encode_keys(&names(&["C-c", "Up", "Enter", "M-x", "F5"]), true).unwrap();
        assert_eq!(bytes, b"\x03\x1bOA\r\x1bx\x1b[15~");
        assert_eq!(encode_keys(&[], false).unwrap(), b"");
    }

    #[test]
    fn encode_keys_rejects_whole_list() {
        let error = encode_keys(&names(&["C-c", "Enter", "Ctrl+D", "Up"]), false).unwrap_err();
        assert_eq!(error.name, "Ctrl+D");

        let error = encode_keys(&names(&["Enter", "Bogus", "AlsoBogus"]), false).unwrap_err();
        assert_eq!(error.name, "Bogus", "the first unknown name is reported");
    }
}
