//! Running one command and knowing when it ended: session_exec (in a shell session,
//! through the shell integration marks), session_signal, and execute_command (outside
//! any session).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::call::CallContext;
use super::params::{CommandParams, ExecParams, SignalParams, SignalTarget, View};
use super::results::{CommandResult, ExecResult, ReadResult, RunState, Truncation};
use super::tools::{
    ReadPlan, TerminalServer, ToolError, WRITE_TIMEOUT, check_env, check_running, max_chars,
    paste_bytes, run_state, seconds, write_error,
};
use crate::session::SessionRef;
use crate::session::command::{CommandError, CommandRequest, run_command};
use crate::session::output::cap_text;
use crate::session::process_tree::Membership;
use crate::session::pty::{SESSION_TAG_VAR, build_environment};
use crate::session::shell_integration::ShellKind;
use crate::session::wait::{Cancelled, MatchTarget, ReadyRule, WaitReason, WaitSpec, wait};

/// How long session_signal waits for the shell's prompt or the program's reaction.
const SIGNAL_WAIT: Duration = Duration::from_secs(1);
/// Output bytes execute_command keeps in memory (head and tail) before the
/// `max_chars` cap applies.
const COMMAND_OUTPUT_BYTES: usize = 4 << 20;

/// Signals session_signal sends, by name.
const SIGNALS: &[(&str, i32)] = &[
    ("INT", libc::SIGINT),
    ("TERM", libc::SIGTERM),
    ("KILL", libc::SIGKILL),
    ("HUP", libc::SIGHUP),
    ("QUIT", libc::SIGQUIT),
    ("TSTP", libc::SIGTSTP),
    ("CONT", libc::SIGCONT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
];

/// Parses a signal name such as `INT`, `SIGINT` or `int`.
pub(super) fn parse_signal(name: &str) -> Result<(&'static str, i32), ToolError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(known, _)| *known == bare)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = SIGNALS.iter().map(|(known, _)| *known).collect();
            ToolError(format!(
                "invalid signal {name:?}: pass one of {}",
                names.join(", ")
            ))
        })
}

/// Checks a command line for session_exec: one line, no control characters but tab.
pub(super) fn check_command_line(command: &str) -> Result<&str, ToolError> {
    let command = command.trim_end_matches(['\r', '\n']);
    if command.trim().is_empty() {
        return Err(ToolError(
            "invalid command \"\": pass a command line such as \"ls -l\"".into(),
        ));
    }
    if command.contains(['\r', '\n']) {
        return Err(ToolError(
            "invalid command: it spans several lines; join the commands with ; or &&, or type them with session_write".into(),
        ));
    }
    if let Some(control) = command.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(ToolError(format!(
            "invalid command: it contains the control character {control:?}; send control keys with session_write keys or session_signal"
        )));
    }
    Ok(command)
}

/// Removes the first line: the prompt and the echoed command line.
fn without_first_line(text: &str) -> &str {
    text.split_once('\n').map_or("", |(_, rest)| rest)
}

impl TerminalServer {
    pub(super) async fn exec(
        &self,
        params: ExecParams,
        call: &CallContext,
    ) -> Result<(ExecResult, String), ToolError> {
        let command = check_command_line(&params.command)?;
        let timeout = match params.timeout {
            Some(timeout) => seconds("timeout", timeout, self.settings.command_timeout)?,
            None => self.settings.command_timeout,
        };
        let max_chars = max_chars(params.max_chars, self.settings.default_max_chars)?;
        let session = self.table.get(&params.session_id)?;
        let result = self
            .run_in_shell(&session, command, timeout, max_chars, call)
            .await?;
        let text = result.to_text();
        Ok((result, text))
    }

    /// Types `command` at the prompt of `session`'s shell and waits for the shell
    /// integration to report that it finished.
    pub(super) async fn run_in_shell(
        &self,
        session: &SessionRef,
        command: &str,
        timeout: Duration,
        max_chars: usize,
        call: &CallContext,
    ) -> Result<ExecResult, ToolError> {
        check_running(session)?;
        let id = session.id;
        let Some(shell) = session.shell_integration else {
            return Err(ToolError(format!(
                "session {id} runs {:?}, not a shell with integration (bash, zsh or sh opened without command or argv); \
                 use session_write with submit and wait_for instead",
                session.command
            )));
        };
        let (start, finished_before, prompts_before, bracketed, active, at_prompt, typed) = {
            let state = session.state();
            let marks = state.screen.marks();
            (
                state.screen.current_cursor(),
                marks.finished,
                marks.prompts,
                state.screen.bracketed_paste(),
                marks.prompts > 0,
                marks.at_prompt,
                state.screen.typed_at_prompt(),
            )
        };
        if !active {
            return Err(ToolError(format!(
                "session {id}: the {} prompt hook has reported no prompt yet, because the shell is still starting \
                 or a startup file replaced PROMPT_COMMAND or PS1; use session_write with submit and wait_for instead",
                shell.name()
            )));
        }
        if !at_prompt {
            let state = super::results::state_label(run_state(session), None, None);
            return Err(ToolError(format!(
                "session {id} is not at its {} prompt (state: {state}): a command still runs or reads input, \
                 or a shell without integration (sh, zsh -f, a shell whose startup file replaced PROMPT_COMMAND) \
                 runs in the foreground; check the screen with session_read, type with session_write, \
                 interrupt with session_signal, or open another session",
                shell.name()
            )));
        }

        // Text left typed at the prompt would run in front of the command, so the line
        // is cleared first: C-e moves to its end and C-u erases it, in readline, zsh's
        // line editor and a terminal's canonical mode alike.
        let mut bytes = Vec::new();
        if typed.is_some() {
            bytes.extend_from_slice(b"\x05\x15");
        }
        // Pasted text is not subject to readline's key bindings (a tab would complete).
        if bracketed {
            bytes.extend(paste_bytes(command, true));
        } else {
            bytes.extend_from_slice(command.as_bytes());
        }
        bytes.push(b'\r');
        session.state().screen.submit_command();
        let started = Instant::now();
        let writer = Arc::clone(session);
        let length = bytes.len();
        tokio::task::spawn_blocking(move || writer.write_input(&bytes, WRITE_TIMEOUT))
            .await
            .map_err(|error| ToolError(format!("write to session {id} failed: {error}")))?
            .map_err(|error| write_error(session, error, length))?;

        let spec = WaitSpec {
            timeout,
            settle: None,
            pattern: None,
            settle_after_output: false,
            ready: ReadyRule::NewPromptOrInput,
            after_input: true,
            prompts_before: Some(prompts_before),
            bytes_before: None,
        };
        let waiting = wait(session, &spec, start, MatchTarget::Output, &call.cancel);
        let what = format!("command {command:?} in session {id}");
        let reason = match call.with_progress(waiting, &what, timeout).await {
            Ok(reason) => reason,
            Err(Cancelled) => {
                return Err(ToolError(format!(
                    "the request was cancelled; the command may still run in session {id}: interrupt it with session_signal"
                )));
            }
        };
        let duration = started.elapsed();

        let run_state = run_state(session);
        let echo = !session.input_hidden().unwrap_or(false);
        let state = session.state();
        let screen = &state.screen;
        let marks = screen.marks();
        let finished = marks
            .last_finished
            .filter(|_| marks.finished > finished_before);
        // The output starts at the `C` mark. Shells without one (sh) start it at the
        // prompt's row, whose first line is the prompt and the echoed command.
        let output_start = match finished {
            Some(finished) => finished.output_start,
            None => marks.running_since,
        }
        .filter(|output_start| output_start.row >= start.row());
        let from_row = output_start.map_or(start.row(), |output_start| output_start.row);
        let slice = match finished {
            Some(finished) => screen.output_between(from_row, finished.output_end),
            None => screen.output_since(Some(screen.cursor_at_row(from_row))),
        };
        let output = if output_start.is_none() && slice.dropped_chars == 0 {
            without_first_line(&slice.text).to_owned()
        } else {
            slice.text
        };
        let dropped_chars = slice.dropped_chars;
        let (exit_code, result_state) = match finished {
            Some(finished) if run_state != RunState::Exited => (finished.status, RunState::Idle),
            Some(finished) => (finished.status, RunState::Exited),
            None => (state.exit.as_ref().and_then(|exit| exit.code), run_state),
        };
        let note = match (finished, reason) {
            (Some(_), _) => None,
            (None, WaitReason::Exited) => Some(format!(
                "the shell exited{}; open a new session to continue",
                state
                    .exit
                    .as_ref()
                    .map(|exit| format!(" ({})", exit.describe()))
                    .unwrap_or_default()
            )),
            (None, WaitReason::InputWanted) if marks.awaiting_start && shell != ShellKind::Sh => {
                Some(
                    "the shell waits for the rest of the command line (an unclosed quote or a trailing \
                     backslash); complete it with session_write, or cancel it with session_write keys [\"C-c\"]"
                        .to_owned(),
                )
            }
            (None, WaitReason::InputWanted) => Some(format!(
                "the command waits for input{}; answer with session_write (input, submit: true), or interrupt it with session_signal",
                if echo {
                    ""
                } else {
                    " with echo off (a password prompt)"
                }
            )),
            (None, _) => Some(format!(
                "the command still runs after {} s; wait for it with session_read and a timeout, \
                 read new output with since = the cursor, or interrupt it with session_signal",
                (timeout.as_secs_f64() * 10.0).round() / 10.0
            )),
        };
        let note = if dropped_chars > 0 {
            let lost = format!(
                "the first {dropped_chars} characters of the output are no longer retained \
                 (the history of a session is bounded, see --scrollback and --transcript-bytes); \
                 redirect long output to a file to keep all of it"
            );
            Some(note.map_or(lost.clone(), |note| format!("{lost}\n{note}")))
        } else {
            note
        };
        let note = match (note, typed) {
            (note, None) => note,
            (None, Some(typed)) => Some(format!(
                "the text {typed:?} that was typed at the prompt was cleared first"
            )),
            (Some(note), Some(typed)) => Some(format!(
                "{note}\nthe text {typed:?} that was typed at the prompt was cleared first"
            )),
        };
        let cursor = screen.current_cursor();
        drop(state);

        let capped = cap_text(&output, max_chars);
        Ok(ExecResult {
            session_id: id.to_string(),
            output: capped.text,
            dropped_chars: (dropped_chars > 0).then_some(dropped_chars),
            exit_code,
            state: result_state,
            duration: duration.as_secs_f64(),
            reason,
            truncated: (capped.omitted_chars > 0).then_some(Truncation {
                omitted_chars: capped.omitted_chars,
                omitted_lines: capped.omitted_lines,
            }),
            cursor: cursor.to_string(),
            note,
        })
    }

    pub(super) async fn signal(
        &self,
        params: SignalParams,
        call: &CallContext,
    ) -> Result<(ReadResult, String), ToolError> {
        let (name, number) = parse_signal(&params.signal)?;
        let session = self.table.get(&params.session_id)?;
        check_running(&session)?;
        let start = session.state().screen.current_cursor();
        let sent = match params.target.unwrap_or_default() {
            SignalTarget::Foreground => {
                let group = session.foreground_process_group().ok_or_else(|| {
                    ToolError(format!(
                        "session {}: the terminal's foreground process group could not be read; retry with target \"session\"",
                        session.id
                    ))
                })?;
                // SAFETY: killpg has no memory effects; the group owns the session's
                // terminal, as tcgetpgrp just reported.
                if unsafe { libc::killpg(group, number) } != 0 {
                    let error = std::io::Error::last_os_error();
                    return Err(ToolError(format!(
                        "sending SIG{name} to process group {group} of session {} failed: {error}",
                        session.id
                    )));
                }
                format!("sent SIG{name} to the foreground process group {group}")
            }
            SignalTarget::Session => {
                let members = Membership::new(
                    session.pid,
                    session.leader_start_time,
                    SESSION_TAG_VAR,
                    &session.id.to_string(),
                );
                let mut count = 0;
                for pid in members.scan() {
                    // SAFETY: kill has no memory effects; `scan` just found the process
                    // in the session.
                    if unsafe { libc::kill(pid, number) } == 0 {
                        count += 1;
                    }
                }
                format!("sent SIG{name} to {count} process(es) of the session")
            }
        };
        tracing::info!(session_id = %session.id, signal = name, "{sent}");

        let plan = ReadPlan {
            view: View::Auto,
            since: None,
            wait: Some(WaitSpec {
                timeout: SIGNAL_WAIT.min(self.settings.command_timeout),
                settle: None,
                pattern: None,
                settle_after_output: false,
                ready: ReadyRule::Any,
                after_input: true,
                prompts_before: None,
                bytes_before: None,
            }),
            max_chars: self.settings.default_max_chars,
        };
        let mut result = self
            .wait_and_render(&session, &plan, Some(start), call)
            .await?;
        result.note = Some(match result.note.take() {
            Some(note) => format!("{sent}\n{note}"),
            None => sent,
        });
        let text = result.to_text();
        Ok((result, text))
    }

    pub(super) async fn execute(
        &self,
        params: CommandParams,
        call: &CallContext,
    ) -> Result<(CommandResult, String), ToolError> {
        let request = self.command_request(&params)?;
        let timeout = request.timeout;
        let what = format!("command {:?}", params.command);
        let outcome = call
            .with_progress(run_command(request, &call.cancel), &what, timeout)
            .await
            .map_err(|error| match error {
                CommandError::Spawn { .. } => ToolError(format!("{error}; pass an existing shell")),
                CommandError::SpawnWithLimits { .. } => ToolError(format!(
                    "{error}; pass an existing shell, or start the server with --session-rlimit \
                     values within its own hard limits"
                )),
                other => ToolError(other.to_string()),
            })?;
        // The command line is not logged: it may carry a secret.
        tracing::info!(
            exit_code = ?outcome.exit.as_ref().and_then(|exit| exit.code),
            timed_out = outcome.timed_out,
            duration_ms = outcome.duration.as_millis() as u64,
            "execute_command finished"
        );
        let capped = cap_text(&outcome.output, self.settings.default_max_chars);
        let result = CommandResult {
            output: capped.text,
            exit_code: outcome.exit.as_ref().and_then(|exit| exit.code),
            signal: outcome.exit.as_ref().and_then(|exit| exit.signal.clone()),
            timed_out: outcome.timed_out,
            duration: outcome.duration.as_secs_f64(),
            truncated: (capped.omitted_chars > 0 || outcome.omitted_bytes > 0).then_some(
                Truncation {
                    omitted_chars: capped.omitted_chars + outcome.omitted_bytes,
                    omitted_lines: capped.omitted_lines,
                },
            ),
        };
        let text = result.to_text();
        Ok((result, text))
    }

    /// Validates execute_command parameters into a request with the session
    /// environment, a fresh tag and the server's shell unless another is named.
    fn command_request(&self, params: &CommandParams) -> Result<CommandRequest, ToolError> {
        if params.command.trim().is_empty() {
            return Err(ToolError(
                "invalid command \"\": pass a shell command line such as \"make test\"".into(),
            ));
        }
        if params.command.contains('\0') {
            return Err(ToolError("invalid command: it contains a NUL byte".into()));
        }
        let timeout = match params.timeout {
            Some(timeout) => seconds("timeout", timeout, self.settings.command_timeout)?,
            None => self.settings.command_timeout,
        };
        let overrides = params.env.clone().unwrap_or_default();
        check_env(&overrides)?;
        let cwd = match &params.cwd {
            Some(cwd) => {
                let path = std::path::PathBuf::from(cwd);
                if !path.is_dir() {
                    return Err(ToolError(format!(
                        "invalid cwd {cwd:?}: not an existing directory; pass an existing directory"
                    )));
                }
                path
            }
            None => std::env::current_dir().map_err(|error| {
                ToolError(format!(
                    "failed to read the server's working directory: {error}"
                ))
            })?,
        };

        let spawn = &self.table.config().spawn;
        let shell = params
            .shell
            .as_ref()
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| spawn.shell.clone());
        let tag = uuid::Uuid::new_v4();
        let env = build_environment(std::env::vars(), &spawn.pass_env, &shell, tag, &overrides);
        Ok(CommandRequest {
            command: params.command.clone(),
            shell,
            cwd,
            env,
            tag: tag.to_string(),
            timeout,
            capture_stderr: params.capture_stderr.unwrap_or(true),
            output_limit: COMMAND_OUTPUT_BYTES,
            rlimits: spawn.rlimits.clone(),
            cgroups: spawn.cgroups.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_signal_names() {
        assert_eq!(parse_signal("INT").ok(), Some(("INT", libc::SIGINT)));
        assert_eq!(parse_signal("sigterm").ok(), Some(("TERM", libc::SIGTERM)));
        assert_eq!(parse_signal(" usr1 ").ok(), Some(("USR1", libc::SIGUSR1)));
        let error = parse_signal("SEGV").err().map(|ToolError(message)| message);
        assert!(error.is_some_and(|message| message.contains("INT, TERM, KILL")));
    }

    #[test]
    fn command_line_checks() {
        assert_eq!(check_command_line("ls -l\n").ok(), Some("ls -l"));
        assert!(check_command_line("  ").is_err());
        assert!(check_command_line("echo a\necho b").is_err());
        assert!(check_command_line("echo \u{3}").is_err());
        assert_eq!(
            check_command_line("printf 'a\tb'").ok(),
            Some("printf 'a\tb'")
        );
    }

    #[test]
    fn first_line_is_the_echo() {
        assert_eq!(without_first_line("$ echo hi\nhi\n"), "hi\n");
        assert_eq!(without_first_line("$ true"), "");
    }
}
