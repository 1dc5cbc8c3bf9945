//! Property checks of the fuzz targets in `fuzz/`, as library code so that the same
//! checks replay the committed seeds and regression inputs in `cargo test`.
//!
//! Compiled only with the `fuzzing` feature, which the fuzz crate and this crate's own
//! tests enable, so the release binary carries none of it. Each `check_*` function takes
//! one raw fuzz input, decodes it in a format that keeps seed files readable (terminal
//! recordings, key lists, header values, JSON), and panics when a property fails. Input
//! that does not decode is skipped, not reported.

mod emulator_ops;
mod key_names;
mod origin_host;
mod tool_args;

pub use emulator_ops::check_emulator_ops;
pub use key_names::{DOCUMENTED_KEYS, check_key_names};
pub use origin_host::check_origin_host;
pub use tool_args::check_tool_args;

/// Panics when `text` contains what tool results never carry: a C0 control other than
/// newline and tab, or a C1 control.
pub(crate) fn assert_clean(what: &str, text: &str) {
    let bad = text
        .chars()
        .find(|&c| (c < ' ' && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c));
    if let Some(bad) = bad {
        panic!("{what} contains U+{:04X}: {text:?}", u32::from(bad));
    }
}
