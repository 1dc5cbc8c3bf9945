//! The `tool_args` target: arguments of every tool, through the handlers' own parsing
//! and checks ([`check_arguments`]).
//!
//! Input format: a JSON object `{"tool": NAME, "arguments": VALUE}`, optionally with
//! `"repeat": [FIELD, TEXT, COUNT]`, which sets `arguments[FIELD]` to TEXT repeated
//! COUNT times (at most 4 MiB), so a small file can carry an oversized input. Anything
//! else is skipped.
//!
//! Properties: checking never panics, and a rejection carries a message. An accepted call has a size
//! within 2–1000 columns by 2–500 rows, at most 1 MiB of input, waits of at most the
//! command timeout, `max_chars` from 1 to 1,000,000 and `grace` of at most 60 s.

use std::time::Duration;

use serde_json::Value;

use crate::mcp::ToolSettings;
use crate::mcp::check::check_arguments;

/// Command timeout the checks run with, as `MCP_COMMAND_TIMEOUT` sets it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest string a `repeat` builds.
const MAX_REPEAT_BYTES: usize = 4 << 20;

/// Decodes one input into a tool name and its arguments.
fn decode(data: &[u8]) -> Option<(String, Value)> {
    let Value::Object(mut call) = serde_json::from_slice(data).ok()? else {
        return None;
    };
    let tool = call.get("tool")?.as_str()?.to_owned();
    let mut arguments = call.remove("arguments").unwrap_or(Value::Null);
    if let Some(Value::Array(repeat)) = call.get("repeat")
        && let [
            Value::String(field),
            Value::String(text),
            Value::Number(count),
        ] = repeat.as_slice()
        && let Value::Object(fields) = &mut arguments
    {
        let count = count.as_u64().unwrap_or(0) as usize;
        let count = count.min(MAX_REPEAT_BYTES / text.len().max(1));
        fields.insert(field.clone(), Value::String(text.repeat(count)));
    }
    Some((tool, arguments))
}

/// Runs one `tool_args` input; panics when a property fails.
pub fn check_tool_args(data: &[u8]) {
    let Some((tool, arguments)) = decode(data) else {
        return;
    };
    let settings = ToolSettings::new(COMMAND_TIMEOUT, Duration::from_secs(2), false);
    let checked = match check_arguments(&tool, arguments, &settings) {
        Err(message) => {
            assert!(!message.is_empty(), "{tool}: a rejection without a message");
            return;
        }
        Ok(checked) => checked,
    };
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
