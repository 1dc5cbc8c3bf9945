//! Replays the committed fuzz inputs through the fuzz targets' own property checks:
//! every file under `fuzz/seeds/TARGET/` and `fuzz/regressions/TARGET/`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use mcp_terminal_server::fuzzing;

/// Returns the files of `fuzz/seeds/TARGET` and `fuzz/regressions/TARGET`, sorted. A
/// missing directory counts as empty.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("fuzz input directory is readable").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs `check` on every input of `target` and fails with the names of the inputs that
/// broke a property. Returns how many inputs ran.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let files = inputs(target);
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("fuzz input is readable");
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: properties fail on {failed:#?}"
    );
    files.len()
}

#[test]
fn emulator_ops_inputs_replay() {
    let count = replay("emulator_ops", fuzzing::check_emulator_ops);
    assert!(count >= 10, "only {count} emulator_ops inputs");
}

#[test]
fn key_names_inputs_replay() {
    let count = replay("key_names", fuzzing::check_key_names);
    assert!(count >= 4, "only {count} key_names inputs");
}

#[test]
fn origin_host_inputs_replay() {
    let count = replay("origin_host", fuzzing::check_origin_host);
    assert!(count >= 20, "only {count} origin_host inputs");
}

#[test]
fn tool_args_inputs_replay() {
    let count = replay("tool_args", fuzzing::check_tool_args);
    assert!(count >= 10, "only {count} tool_args inputs");
}

/// The key table seed names every documented key, so the replay checks each one's bytes.
#[test]
fn key_table_seed_lists_documented_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/key_names");
    for file in ["documented_normal", "documented_application"] {
        let text = std::fs::read_to_string(root.join(file)).expect("key table seed exists");
        let names: Vec<&str> = text.lines().skip(1).collect();
        for (name, _, _) in fuzzing::DOCUMENTED_KEYS {
            assert!(names.contains(name), "{file} lacks {name:?}");
        }
    }
}
