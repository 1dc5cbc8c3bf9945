//! Arbitrary argument objects for every tool: extreme numbers, huge and non-ASCII
//! strings, nulls, wrong types and unknown fields. Validation must not panic, and a call
//! it accepts carries only values inside the server's bounds.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_terminal_server::mcp::ToolSettings;
use mcp_terminal_server::mcp::check::check_arguments;
use serde_json::{Map, Number, Value};

const TOOLS: [&str; 8] = [
    "session_open",
    "session_write",
    "session_read",
    "session_resize",
    "session_close",
    "session_list",
    "session_exec",
    "session_signal",
];

const FIELDS: [&str; 22] = [
    "session_id",
    "input",
    "keys",
    "submit",
    "paste",
    "view",
    "since",
    "wait_for",
    "settle",
    "timeout",
    "max_chars",
    "command",
    "argv",
    "cwd",
    "env",
    "cols",
    "rows",
    "name",
    "grace",
    "signal",
    "target",
    "unknown_field",
];

const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Text(String),
    /// A long string of one character, up to 2 MiB, for the input limit.
    Repeated(char, u32),
    Array(Vec<Json>),
    Object(Vec<(Field, Json)>),
}

#[derive(Arbitrary, Debug)]
enum Field {
    Known(u8),
    Other(String),
}

impl Field {
    fn name(self) -> String {
        match self {
            Field::Known(index) => FIELDS[usize::from(index) % FIELDS.len()].to_owned(),
            Field::Other(name) => name,
        }
    }
}

impl Json {
    fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(value) => Value::Bool(value),
            Json::Int(value) => Value::from(value),
            Json::Uint(value) => Value::from(value),
            Json::Float(value) => Number::from_f64(value).map_or(Value::Null, Value::Number),
            Json::Text(text) => Value::String(text),
            Json::Repeated(c, count) => {
                Value::String(std::iter::repeat_n(c, (count % (2 << 20)) as usize).collect())
            }
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(field, value)| (field.name(), value.into_value()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Call {
    tool: u8,
    arguments: Vec<(Field, Json)>,
}

fuzz_target!(|call: Call| {
    let settings = ToolSettings::new(COMMAND_TIMEOUT, Duration::from_secs(2), false);
    let tool = TOOLS[usize::from(call.tool) % TOOLS.len()];
    let arguments = Json::Object(call.arguments).into_value();
    match check_arguments(tool, arguments, &settings) {
        Err(message) => assert!(!message.is_empty()),
        Ok(checked) => {
            if let Some(size) = checked.size {
                assert!((2..=1000).contains(&size.cols), "{tool}: {size:?}");
                assert!((2..=500).contains(&size.rows), "{tool}: {size:?}");
            }
            if let Some(bytes) = checked.input_bytes {
                assert!(bytes <= 1 << 20, "{tool}: {bytes} input bytes");
            }
            if let Some(wait) = checked.wait {
                assert!(wait <= COMMAND_TIMEOUT, "{tool}: wait {wait:?}");
            }
            if let Some(max_chars) = checked.max_chars {
                assert!((1..=1_000_000).contains(&max_chars), "{tool}: {max_chars}");
            }
            if let Some(grace) = checked.grace {
                assert!(grace <= Duration::from_secs(60), "{tool}: grace {grace:?}");
            }
        }
    }
});
