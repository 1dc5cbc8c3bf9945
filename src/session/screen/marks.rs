//! Shell integration marks: OSC 133 sequences that a shell's prompt hook prints around
//! each command, each carrying the session's nonce.
//!
//! The hook installed by [`crate::session::shell_integration`] prints
//! `OSC 133 ; KIND ; NONCE [; STATUS] BEL` with these kinds:
//!
//! - `A`: a prompt starts;
//! - `B`: the prompt ends, so the shell now reads a command line;
//! - `C`: a command line was read and starts to run;
//! - `D`: the last command finished, with its exit status.
//!
//! Marks without the nonce are ignored, so a file that happens to contain OSC 133
//! sequences (a recording of another terminal, say) cannot end a wait. The nonce is not
//! a secret from the session's own processes: they can read it from their environment.

/// The kind of a mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    PromptStart,
    PromptEnd,
    CommandStart,
    /// A command finished with this exit status, when the shell reported a number.
    CommandEnd(Option<i32>),
}

/// Parses an OSC payload (the bytes between `ESC ]` and the terminator). Returns `None`
/// for anything that is not an OSC 133 mark with `nonce`.
pub fn parse_mark(payload: &[u8], nonce: &str) -> Option<MarkKind> {
    let rest = payload.strip_prefix(b"133;")?;
    let mut fields = rest.split(|byte| *byte == b';');
    let kind = fields.next()?;
    if fields.next()? != nonce.as_bytes() {
        return None;
    }
    match kind {
        b"A" => Some(MarkKind::PromptStart),
        b"B" => Some(MarkKind::PromptEnd),
        b"C" => Some(MarkKind::CommandStart),
        b"D" => {
            let status = fields
                .next()
                .and_then(|field| std::str::from_utf8(field).ok())
                .and_then(|field| field.parse().ok());
            Some(MarkKind::CommandEnd(status))
        }
        _ => None,
    }
}

/// The position of a printed mark: the absolute main-screen row (as in an
/// [`super::OutputCursor`]) and the cursor column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkPosition {
    pub row: u64,
    pub col: u16,
}

/// A command that finished: where its output starts and ends, and its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedCommand {
    /// The position of the `C` mark, if the shell prints one (bash 4.4 and later, zsh).
    /// `sh` does not.
    pub output_start: Option<MarkPosition>,
    /// The position of the `D` mark: the end of the command's output.
    pub output_end: MarkPosition,
    pub status: Option<i32>,
}

/// The shell's state as the marks seen so far report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellMarks {
    /// At least one mark arrived, so the integration works in this session.
    pub active: bool,
    /// Prompts completed: `B` marks, or `A` marks when no `B` follows.
    pub prompts: u64,
    /// `D` marks seen; each ends one command (or an empty command line).
    pub finished: u64,
    /// The shell printed a prompt and has not started a command since.
    pub at_prompt: bool,
    /// The prompt being printed has not reached its `B` mark yet.
    pub prompt_pending: bool,
    /// Start of the command that runs now.
    pub running_since: Option<MarkPosition>,
    /// The position of the last prompt's end (its `B` mark), after which typed text follows.
    pub prompt_end: Option<MarkPosition>,
    /// A command line was submitted at the prompt and no `C` mark or new prompt has
    /// followed yet: the shell is parsing it, or waits for the rest of an incomplete
    /// line, or (in sh) runs it.
    pub awaiting_start: bool,
    /// The last command that finished.
    pub last_finished: Option<FinishedCommand>,
}

impl ShellMarks {
    /// Updates the state with one mark printed at `position`.
    pub fn record(&mut self, kind: MarkKind, position: MarkPosition) {
        self.active = true;
        match kind {
            MarkKind::PromptStart => {
                self.at_prompt = true;
                self.prompt_pending = true;
                self.awaiting_start = false;
            }
            MarkKind::PromptEnd => {
                self.at_prompt = true;
                self.awaiting_start = false;
                self.prompt_end = Some(position);
                if self.prompt_pending {
                    self.prompt_pending = false;
                    self.prompts += 1;
                }
            }
            MarkKind::CommandStart => {
                self.at_prompt = false;
                self.prompt_pending = false;
                self.awaiting_start = false;
                self.running_since = Some(position);
            }
            MarkKind::CommandEnd(status) => {
                self.finished += 1;
                self.last_finished = Some(FinishedCommand {
                    output_start: self.running_since.take(),
                    output_end: position,
                    status,
                });
            }
        }
    }
}

impl ShellMarks {
    /// Records that a command line was submitted at the prompt (Enter was written).
    /// The shell is no longer at its prompt, even if it prints no `C` mark.
    pub fn submit(&mut self) {
        if self.at_prompt {
            self.at_prompt = false;
            self.prompt_pending = false;
            self.awaiting_start = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_mark_needs_the_nonce() {
        assert_eq!(parse_mark(b"133;A;n1", "n1"), Some(MarkKind::PromptStart));
        assert_eq!(parse_mark(b"133;B;n1", "n1"), Some(MarkKind::PromptEnd));
        assert_eq!(parse_mark(b"133;C;n1", "n1"), Some(MarkKind::CommandStart));
        assert_eq!(
            parse_mark(b"133;D;n1;3", "n1"),
            Some(MarkKind::CommandEnd(Some(3)))
        );
        assert_eq!(
            parse_mark(b"133;D;n1", "n1"),
            Some(MarkKind::CommandEnd(None))
        );
        assert_eq!(parse_mark(b"133;A;other", "n1"), None);
        assert_eq!(parse_mark(b"133;A", "n1"), None);
        assert_eq!(parse_mark(b"133;Z;n1", "n1"), None);
        assert_eq!(parse_mark(b"0;title", "n1"), None);
    }

    #[test]
    fn marks_track_one_command() {
        let at = |row| MarkPosition { row, col: 0 };
        let mut marks = ShellMarks::default();
        marks.record(MarkKind::CommandEnd(Some(0)), at(0));
        marks.record(MarkKind::PromptStart, at(0));
        assert!(marks.at_prompt);
        assert_eq!(marks.prompts, 0);
        marks.record(MarkKind::PromptEnd, at(0));
        assert_eq!(marks.prompts, 1);

        marks.record(MarkKind::CommandStart, at(1));
        assert!(!marks.at_prompt);
        marks.record(MarkKind::CommandEnd(Some(3)), at(4));
        assert_eq!(marks.finished, 2);
        assert_eq!(
            marks.last_finished,
            Some(FinishedCommand {
                output_start: Some(at(1)),
                output_end: at(4),
                status: Some(3),
            })
        );
        marks.record(MarkKind::PromptStart, at(4));
        marks.record(MarkKind::PromptEnd, at(4));
        assert_eq!(marks.prompts, 2);
        assert!(marks.at_prompt);
        assert_eq!(marks.prompt_end, Some(at(4)));
    }

    #[test]
    fn submit_leaves_the_prompt() {
        let at = |row| MarkPosition { row, col: 2 };
        let mut marks = ShellMarks::default();
        marks.record(MarkKind::PromptStart, at(0));
        marks.record(MarkKind::PromptEnd, at(0));
        marks.submit();
        assert!(!marks.at_prompt);
        assert!(marks.awaiting_start);
        marks.record(MarkKind::CommandStart, at(1));
        assert!(!marks.awaiting_start);

        // Enter while a command runs is input for it, not a new command line.
        marks.submit();
        assert!(!marks.awaiting_start);
    }
}
