//! The `key_names` target: arrays of key names in both cursor-key modes.
//!
//! Input format: UTF-8 text (invalid bytes become U+FFFD). The first line selects the
//! cursor-key mode: application mode when its first byte is odd (`1`), normal mode
//! otherwise (`0`). Every further line is one key name, as a caller passes in `keys`.
//!
//! Properties: encoding never panics. An array is accepted exactly when each of its
//! names is, and then encodes to the concatenation of their encodings, so an unknown
//! name writes nothing. A name listed in [`DOCUMENTED_KEYS`] encodes to the bytes listed
//! there.

use crate::session::keys::{encode_key, encode_keys};

/// The key names the README documents for `keys`, with the bytes xterm sends for each in
/// normal and in application cursor-key mode.
pub const DOCUMENTED_KEYS: &[(&str, &[u8], &[u8])] = &[
    ("Enter", b"\r", b"\r"),
    ("Tab", b"\t", b"\t"),
    ("Escape", b"\x1b", b"\x1b"),
    ("Backspace", b"\x7f", b"\x7f"),
    ("Delete", b"\x1b[3~", b"\x1b[3~"),
    ("Insert", b"\x1b[2~", b"\x1b[2~"),
    ("Up", b"\x1b[A", b"\x1bOA"),
    ("Down", b"\x1b[B", b"\x1bOB"),
    ("Right", b"\x1b[C", b"\x1bOC"),
    ("Left", b"\x1b[D", b"\x1bOD"),
    ("Home", b"\x1b[H", b"\x1bOH"),
    ("End", b"\x1b[F", b"\x1bOF"),
    ("PageUp", b"\x1b[5~", b"\x1b[5~"),
    ("PageDown", b"\x1b[6~", b"\x1b[6~"),
    ("F1", b"\x1bOP", b"\x1bOP"),
    ("F2", b"\x1bOQ", b"\x1bOQ"),
    ("F3", b"\x1bOR", b"\x1bOR"),
    ("F4", b"\x1bOS", b"\x1bOS"),
    ("F5", b"\x1b[15~", b"\x1b[15~"),
    ("F6", b"\x1b[17~", b"\x1b[17~"),
    ("F7", b"\x1b[18~", b"\x1b[18~"),
    ("F8", b"\x1b[19~", b"\x1b[19~"),
    ("F9", b"\x1b[20~", b"\x1b[20~"),
    ("F10", b"\x1b[21~", b"\x1b[21~"),
    ("F11", b"\x1b[23~", b"\x1b[23~"),
    ("F12", b"\x1b[24~", b"\x1b[24~"),
    ("C-a", b"\x01", b"\x01"),
    ("C-c", b"\x03", b"\x03"),
    ("C-d", b"\x04", b"\x04"),
    ("C-z", b"\x1a", b"\x1a"),
    ("C-@", b"\x00", b"\x00"),
    ("C-[", b"\x1b", b"\x1b"),
    ("C-\\", b"\x1c", b"\x1c"),
    ("C-]", b"\x1d", b"\x1d"),
    ("C-^", b"\x1e", b"\x1e"),
    ("C-_", b"\x1f", b"\x1f"),
    ("C-?", b"\x7f", b"\x7f"),
    ("M-x", b"\x1bx", b"\x1bx"),
    ("M-Enter", b"\x1b\r", b"\x1b\r"),
    ("M-C-a", b"\x1b\x01", b"\x1b\x01"),
    ("C-Up", b"\x1b[1;5A", b"\x1b[1;5A"),
    ("S-Tab", b"\x1b[Z", b"\x1b[Z"),
];

/// Runs one `key_names` input; panics when a property fails.
pub fn check_key_names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let application_cursor = lines
        .next()
        .and_then(|mode| mode.bytes().next())
        .is_some_and(|byte| byte % 2 == 1);
    let mut names: Vec<String> = lines.map(str::to_owned).collect();
    if text.ends_with('\n') {
        names.pop();
    }

    let encoded_names: Vec<_> = names
        .iter()
        .map(|name| encode_key(name, application_cursor))
        .collect();
    match encode_keys(&names, application_cursor) {
        Ok(bytes) => {
            let mut expected = Vec::new();
            for (name, encoded) in names.iter().zip(&encoded_names) {
                match encoded {
                    Ok(encoded) => expected.extend_from_slice(encoded),
                    Err(error) => panic!("accepted an array holding {name:?}: {error}"),
                }
            }
            assert_eq!(bytes, expected, "array {names:?} encodes as its names do");
        }
        Err(_) => assert!(
            encoded_names.iter().any(Result::is_err),
            "rejected an array of valid names: {names:?}"
        ),
    }

    for (name, encoded) in names.iter().zip(&encoded_names) {
        let Some((_, normal, application)) = DOCUMENTED_KEYS
            .iter()
            .find(|(documented, _, _)| documented == name)
        else {
            continue;
        };
        let expected = if application_cursor {
            application
        } else {
            normal
        };
        match encoded {
            Ok(bytes) => assert_eq!(
                bytes, expected,
                "{name:?} with application_cursor={application_cursor}"
            ),
            Err(error) => panic!("documented key {name:?} rejected: {error}"),
        }
    }
}
