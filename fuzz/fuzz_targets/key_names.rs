//! Arbitrary `keys` arrays in both cursor-key modes. Encoding must not panic, every
//! documented name must encode, and an unknown name must reject the whole array.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_terminal_server::session::keys::{encode_key, encode_keys};

const DOCUMENTED: [&str; 24] = [
    "Enter",
    "Tab",
    "Escape",
    "Backspace",
    "Delete",
    "Insert",
    "Up",
    "Down",
    "Left",
    "Right",
    "Home",
    "End",
    "PageUp",
    "PageDown",
    "F1",
    "F5",
    "F12",
    "C-a",
    "C-c",
    "C-z",
    "M-x",
    "M-Enter",
    "C-[",
    "Space",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Documented(u8),
    Prefixed(u8, String),
    Other(String),
}

impl Name {
    fn text(self) -> String {
        match self {
            Name::Documented(index) => DOCUMENTED[usize::from(index) % DOCUMENTED.len()].to_owned(),
            Name::Prefixed(prefix, rest) => {
                let prefix = ["C-", "M-", "S-", "C-M-", "F"][usize::from(prefix) % 5];
                format!("{prefix}{rest}")
            }
            Name::Other(name) => name,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    names: Vec<Name>,
    application_cursor: bool,
}

fuzz_target!(|input: Input| {
    let names: Vec<String> = input.names.into_iter().map(Name::text).collect();
    let mode = input.application_cursor;
    let each: Vec<_> = names.iter().map(|name| encode_key(name, mode)).collect();
    match encode_keys(&names, mode) {
        Ok(bytes) => {
            let expected: Vec<u8> = each
                .into_iter()
                .flat_map(|encoded| encoded.expect("an accepted array contains only valid names"))
                .collect();
            assert_eq!(bytes, expected);
        }
        Err(_) => assert!(
            each.iter().any(Result::is_err),
            "rejected a valid array: {names:?}"
        ),
    }
    for name in DOCUMENTED {
        let bytes = encode_key(name, mode).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(!bytes.is_empty(), "{name}");
    }
});
