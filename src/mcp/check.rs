//! Validation of tool arguments without a session: the same parsing and checks the
//! handlers run before they touch a session, returning what would reach the session
//! engine. The fuzz target `tool_args` drives it with arbitrary arguments.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ToolSettings;
use super::exec::{check_command_line, parse_signal};
use super::params::{
    CloseParams, ExecParams, OpenParams, ReadParams, ResizeParams, SignalParams, WriteParams,
};
use super::tools::{
    READ_PARAMETERS, ReadPlan, ToolError, WRITE_PARAMETERS, input_bytes, reject_unknown, seconds,
    spawn_request, term_size,
};
use crate::session::screen::TermSize;

/// Longest `grace` a session_close accepts.
const MAX_GRACE: Duration = Duration::from_secs(60);

/// The values of a valid call that would reach the session engine.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckedCall {
    /// Terminal size of a session_open or session_resize.
    pub size: Option<TermSize>,
    /// Bytes a session_write would type (with the application-cursor and bracketed-paste
    /// modes off).
    pub input_bytes: Option<usize>,
    /// Maximum wait of a session_write or session_read.
    pub wait: Option<Duration>,
    /// Characters a read may return.
    pub max_chars: Option<usize>,
    /// Pause between kill steps of a session_close.
    pub grace: Option<Duration>,
}

/// Parses and validates the arguments of `tool` as its handler does. An error is the
/// message the caller would get, from rmcp's parameter parsing or from the handler.
pub fn check_arguments(
    tool: &str,
    arguments: Value,
    settings: &ToolSettings,
) -> Result<CheckedCall, String> {
    match tool {
        "session_open" => {
            let request = spawn_request(parse::<OpenParams>(arguments)?).map_err(message)?;
            Ok(CheckedCall {
                size: Some(request.size),
                ..CheckedCall::default()
            })
        }
        "session_write" => {
            let params = parse::<WriteParams>(arguments)?;
            reject_unknown(&params.unknown, WRITE_PARAMETERS).map_err(message)?;
            let plan = ReadPlan::from_options(&params.read, settings, true).map_err(message)?;
            let bytes = input_bytes(&params, false, false).map_err(message)?;
            Ok(CheckedCall {
                input_bytes: Some(bytes.len()),
                wait: plan.wait.as_ref().map(|wait| wait.timeout),
                max_chars: Some(plan.max_chars),
                ..CheckedCall::default()
            })
        }
        "session_read" => {
            let params = parse::<ReadParams>(arguments)?;
            reject_unknown(&params.unknown, READ_PARAMETERS).map_err(message)?;
            let plan = ReadPlan::from_options(&params.read, settings, false).map_err(message)?;
            Ok(CheckedCall {
                wait: plan.wait.as_ref().map(|wait| wait.timeout),
                max_chars: Some(plan.max_chars),
                ..CheckedCall::default()
            })
        }
        "session_resize" => {
            let params = parse::<ResizeParams>(arguments)?;
            let size = term_size(Some(params.cols), Some(params.rows)).map_err(message)?;
            Ok(CheckedCall {
                size: Some(size),
                ..CheckedCall::default()
            })
        }
        "session_close" => {
            let params = parse::<CloseParams>(arguments)?;
            let grace = match params.grace {
                Some(grace) => Some(seconds("grace", grace, MAX_GRACE).map_err(message)?),
                None => None,
            };
            Ok(CheckedCall {
                grace,
                ..CheckedCall::default()
            })
        }
        "session_exec" => {
            let params = parse::<ExecParams>(arguments)?;
            let command = check_command_line(&params.command).map_err(message)?;
            let wait = match params.timeout {
                Some(timeout) => seconds("timeout", timeout, settings.command_timeout),
                None => Ok(settings.command_timeout),
            }
            .map_err(message)?;
            Ok(CheckedCall {
                input_bytes: Some(command.len() + 1),
                wait: Some(wait),
                ..CheckedCall::default()
            })
        }
        "session_signal" => {
            let params = parse::<SignalParams>(arguments)?;
            parse_signal(&params.signal).map_err(message)?;
            Ok(CheckedCall::default())
        }
        "session_list" => Ok(CheckedCall::default()),
        other => Err(format!("unknown tool {other:?}")),
    }
}

fn parse<T: DeserializeOwned>(arguments: Value) -> Result<T, String> {
    serde_json::from_value(arguments)
        .map_err(|error| format!("failed to deserialize parameters: {error}"))
}

fn message(ToolError(message): ToolError) -> String {
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> std::sync::Arc<ToolSettings> {
        ToolSettings::new(Duration::from_secs(30), Duration::from_secs(2), false)
    }

    #[test]
    fn sizes_outside_range_name_it() {
        for (rows, cols) in [
            (0, 0),
            (1, 1),
            (1, 80),
            (65535, 65535),
            (70000, 80),
            (-1, 80),
        ] {
            let arguments = json!({"session_id": "x", "rows": rows, "cols": cols});
            let error = check_arguments("session_resize", arguments, &settings())
                .err()
                .unwrap_or_default();
            assert!(error.contains("pass a"), "({rows}, {cols}): {error}");
        }
        let error = check_arguments(
            "session_open",
            json!({"rows": 24, "cols": "80"}),
            &settings(),
        )
        .err()
        .unwrap_or_default();
        assert!(error.contains("from 2 to 1000"), "{error}");
        let error = check_arguments(
            "session_open",
            json!({"rows": 24.5, "cols": 80}),
            &settings(),
        )
        .err()
        .unwrap_or_default();
        assert!(error.contains("from 2 to 500"), "{error}");
    }

    #[test]
    fn valid_call_reports_bounded_values() {
        let checked = check_arguments(
            "session_write",
            json!({"session_id": "x", "input": "ls", "submit": true, "timeout": 1e300}),
            &settings(),
        );
        assert_eq!(
            checked,
            Ok(CheckedCall {
                input_bytes: Some(3),
                wait: Some(Duration::from_secs(30)),
                max_chars: Some(super::super::DEFAULT_MAX_CHARS),
                ..CheckedCall::default()
            })
        );
    }

    #[test]
    fn oversized_input_is_rejected() {
        let input = "a".repeat(super::super::MAX_INPUT_BYTES + 1);
        let error = check_arguments(
            "session_write",
            json!({"session_id": "x", "input": input}),
            &settings(),
        )
        .err()
        .unwrap_or_default();
        assert!(error.contains("at most 1048576 bytes"), "{error}");
    }
}
