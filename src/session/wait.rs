//! Waiting for a session to reach a condition: a pattern, quiet output, the shell back
//! at its prompt, the foreground blocked reading the terminal, exit, or a timeout,
//! whichever comes first.

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::activity::Activity;
use super::screen::OutputCursor;
use super::{Progress, SessionRef};

/// The reason a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// `wait_for` matched the output.
    Matched,
    /// No output arrived for `settle`.
    Settled,
    /// The shell is back at its prompt.
    Prompt,
    /// The foreground program is blocked reading the terminal.
    InputWanted,
    /// The session's process exited.
    Exited,
    /// The timeout passed first.
    Timeout,
}

/// The ready states (shell at its prompt, program waiting for input) that end a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyRule {
    /// None: only the pattern, `settle`, exit or the timeout end the wait.
    Off,
    /// Any ready state, also one that held when the wait began.
    Any,
    /// A prompt mark printed during the wait, or a program waiting for input. Used
    /// after a command line was submitted to a shell at its prompt, where the old
    /// prompt must not count.
    NewPromptOrInput,
    /// A ready state reached during the wait: after the session was seen busy, or
    /// through a new prompt mark. Used by reads with a pattern, which must not end at
    /// once just because the shell is idle.
    Reached,
    /// A new prompt mark, or a ready state the kernel reports for certain (not an
    /// unknown wait channel). Used while a shell with integration starts, because its
    /// startup files may run programs whose state looks like waiting.
    FirstPrompt,
}

/// Output must be quiet this long before a ready state read from the kernel counts,
/// so a program that is still printing or has not yet read its input is not taken
/// for one waiting at a prompt.
pub const READY_QUIET: Duration = Duration::from_millis(300);
/// How often the foreground's activity is sampled while output is quiet.
const ACTIVITY_POLL: Duration = Duration::from_millis(50);

/// The conditions that end a wait.
#[derive(Debug, Clone)]
pub struct WaitSpec {
    pub timeout: Duration,
    pub settle: Option<Duration>,
    pub pattern: Option<Regex>,
    /// Count `settle` only once some output has arrived during the wait (a program that
    /// is still starting is quiet, not settled).
    pub settle_after_output: bool,
    pub ready: ReadyRule,
    /// True when the wait follows input written just before it. Quiet output for ready
    /// states then counts from the start of the wait. Otherwise it counts from the last
    /// output, so a session that is already idle ends the wait at once.
    pub after_input: bool,
    /// Prompts counted before the input was written; a prompt mark counts as new when
    /// the count exceeds it. `None` counts from the start of the wait.
    pub prompts_before: Option<u64>,
    /// Output bytes counted before the wait's cause (a spawn or a write), for
    /// `settle_after_output`. `None` counts from the start of the wait, which misses
    /// output that arrived between the cause and the wait.
    pub bytes_before: Option<u64>,
}

/// The facts a wait decision depends on, sampled at one moment.
#[derive(Debug, Clone, Copy)]
pub struct WaitSample {
    pub now: Instant,
    pub started: Instant,
    /// Last output, which may precede the start of the wait.
    pub last_output: Instant,
    pub exited: bool,
    pub matched: bool,
    /// Output arrived since the wait started.
    pub output_seen: bool,
    /// A prompt mark completed during the wait, and no command has started since.
    pub new_prompt: bool,
    /// The session was seen busy during the wait.
    pub busy_seen: bool,
    /// The foreground's activity, when it was sampled (only once output is quiet for
    /// [`READY_QUIET`]).
    pub activity: Option<Activity>,
}

/// The outcome of one decision: the reason the wait ends, or when to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Done(WaitReason),
    /// Wake at this instant, or at new output, whichever is first.
    Wait(Instant),
}

/// Returns when output counts as quiet for ready states.
fn ready_quiet_since(spec: &WaitSpec, sample: &WaitSample) -> Instant {
    if spec.after_input {
        sample.last_output.max(sample.started)
    } else {
        sample.last_output
    }
}

/// Reports whether the foreground's activity should be sampled for `spec` now: ready
/// states are on and output has been quiet long enough.
pub fn wants_activity(spec: &WaitSpec, sample: &WaitSample) -> bool {
    spec.ready != ReadyRule::Off && sample.now >= ready_quiet_since(spec, sample) + READY_QUIET
}

/// Decides whether a wait is over.
pub fn decide(spec: &WaitSpec, sample: WaitSample) -> Decision {
    if sample.matched {
        return Decision::Done(WaitReason::Matched);
    }
    if sample.exited {
        return Decision::Done(WaitReason::Exited);
    }
    if spec.ready != ReadyRule::Off && sample.new_prompt {
        return Decision::Done(WaitReason::Prompt);
    }
    if let Some(reason) = ready_reason(spec.ready, &sample) {
        return Decision::Done(reason);
    }
    let deadline = sample.started + spec.timeout;
    let quiet_since = sample.last_output.max(sample.started);
    let mut next = deadline;
    if spec.ready != ReadyRule::Off {
        let ready_at = ready_quiet_since(spec, &sample) + READY_QUIET;
        let ready_check = if sample.now >= ready_at {
            sample.now + ACTIVITY_POLL
        } else {
            ready_at
        };
        next = next.min(ready_check);
    }
    let settle = spec
        .settle
        .filter(|_| sample.output_seen || !spec.settle_after_output);
    if let Some(settle) = settle {
        let settled_at = quiet_since + settle;
        if sample.now >= settled_at && settled_at < deadline {
            return Decision::Done(WaitReason::Settled);
        }
        next = next.min(settled_at);
    }
    if sample.now >= deadline {
        return Decision::Done(WaitReason::Timeout);
    }
    Decision::Wait(next)
}

/// Returns `current` unless it is [`Activity::Unknown`] for the first time in a row.
///
/// A process's state and its wait channel are two reads of `/proc`. A process that wakes
/// between them shows as sleeping with the wait channel `0` of a running process, which
/// looks like a hidden wait channel. A hidden one (a setuid program) stays hidden, so
/// only a second sample in a row, [`ACTIVITY_POLL`] later, counts.
fn confirmed(current: Option<Activity>, previous: Option<Activity>) -> Option<Activity> {
    match current {
        Some(Activity::Unknown) if previous != Some(Activity::Unknown) => None,
        _ => current,
    }
}

/// Maps a sampled activity to the reason it ends the wait under `rule`, if it does.
fn ready_reason(rule: ReadyRule, sample: &WaitSample) -> Option<WaitReason> {
    let activity = sample.activity?;
    match (rule, activity) {
        (ReadyRule::Off, _) | (_, Activity::Running) => None,
        (ReadyRule::Reached, _) if !sample.busy_seen => None,
        (ReadyRule::NewPromptOrInput, Activity::Idle) => None,
        (ReadyRule::FirstPrompt, Activity::Unknown) => None,
        (_, Activity::Idle) => Some(WaitReason::Prompt),
        (_, Activity::WaitingForInput) => Some(WaitReason::InputWanted),
        (_, Activity::Unknown) => Some(WaitReason::Settled),
    }
}

/// Matching `wait_for` renders the output, which costs more as output grows. A wait
/// spends at most about a tenth of its time matching: once its matches have taken `t`
/// in all, the next one may start `(t − FREE_MATCH_TIME) × MATCH_COST_FACTOR` after the
/// wait began. The first [`FREE_MATCH_TIME`] of matching is exempt, so a command's echo
/// and its output are matched as soon as each arrives. Only a flood is throttled.
const MATCH_COST_FACTOR: u32 = 10;
/// Matching time a wait may spend before the throttle applies.
const FREE_MATCH_TIME: Duration = Duration::from_millis(1);
/// Maximum pause between two evaluations while output keeps arriving.
const MAX_MATCH_PAUSE: Duration = Duration::from_millis(100);

/// The text `wait_for` is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchTarget {
    /// The visible screen.
    Screen,
    /// Output from the wait's start cursor on.
    Output,
    /// The screen while a full-screen program is on the alternate screen, else output.
    Auto,
}

/// The error of a wait stopped by cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// Waits on `session` until `spec` is met, matching `wait_for` against `target` (output
/// counts from `start`). Returns early with [`Cancelled`] when `cancel` fires.
///
/// A wake reads the [`Progress`] the session published and takes no state lock on the
/// async runtime. The parser keeps that lock while it parses, so during a flood many
/// waits woken on every chunk would otherwise block every worker thread. Matching the
/// pattern renders output under the lock, so it runs on the blocking pool.
pub async fn wait(
    session: &SessionRef,
    spec: &WaitSpec,
    start: OutputCursor,
    target: MatchTarget,
    cancel: &CancellationToken,
) -> Result<WaitReason, Cancelled> {
    let mut changes = session.subscribe();
    let started = Instant::now();
    let at_start = *changes.borrow_and_update();
    let bytes_at_start = spec.bytes_before.unwrap_or(at_start.bytes_read);
    let prompts_at_start = spec.prompts_before.unwrap_or(at_start.prompts);
    let mut busy_seen = false;
    let mut last_activity = None;
    // The earliest time the pattern may be evaluated again, and the time spent matching.
    let mut next_match_at = Instant::now();
    let mut total_match_cost = Duration::ZERO;
    loop {
        let progress: Progress = *changes.borrow_and_update();
        let (matched, match_cost) = match &spec.pattern {
            Some(pattern) => pattern_matches(session, pattern, start, target).await,
            None => (false, Duration::ZERO),
        };
        // Exit and prompt come from the snapshot taken before matching, so the match saw
        // all output before them. Quiet time is measured from the latest output, which
        // may have arrived while the match ran: ready states are sampled now, and must
        // not end the wait on output the match did not see.
        let last_output = changes.borrow().last_output;
        // `last_output` is a std Instant; convert its age to the tokio clock.
        let output_age = std::time::Instant::now().saturating_duration_since(last_output);
        let mut sample = WaitSample {
            now: Instant::now(),
            started,
            last_output: Instant::now() - output_age,
            exited: progress.exited,
            matched,
            output_seen: progress.bytes_read > bytes_at_start,
            new_prompt: progress.prompts > prompts_at_start && progress.at_prompt,
            busy_seen,
            activity: None,
        };
        if !sample.matched && !sample.exited && wants_activity(spec, &sample) {
            let activity = session.activity();
            sample.activity = confirmed(activity, last_activity);
            last_activity = activity;
            if sample.activity == Some(Activity::Running) {
                busy_seen = true;
            }
        }
        let next = match decide(spec, sample) {
            Decision::Done(reason) => return Ok(reason),
            Decision::Wait(next) => next,
        };
        if spec.pattern.is_some() {
            total_match_cost += match_cost;
            let budget = total_match_cost.saturating_sub(FREE_MATCH_TIME) * MATCH_COST_FACTOR;
            next_match_at = (started + budget).min(Instant::now() + MAX_MATCH_PAUSE);
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(Cancelled),
            changed = changes.changed() => {
                if changed.is_err() {
                    // The session is gone; the next sample reports what is left.
                    tokio::time::sleep_until(next).await;
                } else if spec.pattern.is_some() && Instant::now() < next_match_at {
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(Cancelled),
                        _ = tokio::time::sleep_until(next.min(next_match_at)) => {}
                    }
                }
            }
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}

/// Matches `pattern` against the session's screen or its output from `start`, on the
/// blocking pool, and returns whether it matched and how long rendering and matching
/// took. That time excludes the hop to the blocking pool and back, which does not grow
/// with the output. A panic while rendering counts as no match.
async fn pattern_matches(
    session: &SessionRef,
    pattern: &Regex,
    start: OutputCursor,
    target: MatchTarget,
) -> (bool, Duration) {
    let session = Arc::clone(session);
    let pattern = pattern.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let state = session.state();
        let on_screen = match target {
            MatchTarget::Screen => true,
            MatchTarget::Output => false,
            MatchTarget::Auto => state.screen.alternate_screen(),
        };
        let matched = if on_screen {
            pattern.is_match(&state.screen.screen_text())
        } else {
            pattern.is_match(&state.screen.output_since(Some(start)).text)
        };
        (matched, started.elapsed())
    })
    .await
    .unwrap_or((false, Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(timeout_ms: u64, settle_ms: Option<u64>) -> WaitSpec {
        WaitSpec {
            timeout: Duration::from_millis(timeout_ms),
            settle: settle_ms.map(Duration::from_millis),
            pattern: None,
            settle_after_output: false,
            ready: ReadyRule::Off,
            after_input: false,
            prompts_before: None,
            bytes_before: None,
        }
    }

    /// Times in milliseconds after one shared start.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }

        fn sample(&self, now_ms: u64, output_ms: u64) -> WaitSample {
            WaitSample {
                now: self.at(now_ms),
                started: self.0,
                last_output: self.at(output_ms),
                exited: false,
                matched: false,
                output_seen: true,
                new_prompt: false,
                busy_seen: false,
                activity: None,
            }
        }
    }

    #[test]
    fn hidden_wait_channel_counts_on_second_sample() {
        assert_eq!(confirmed(Some(Activity::Unknown), None), None);
        assert_eq!(
            confirmed(Some(Activity::Unknown), Some(Activity::Running)),
            None
        );
        assert_eq!(
            confirmed(Some(Activity::Unknown), Some(Activity::Unknown)),
            Some(Activity::Unknown)
        );
        assert_eq!(
            confirmed(Some(Activity::WaitingForInput), None),
            Some(Activity::WaitingForInput)
        );
        assert_eq!(confirmed(None, Some(Activity::Unknown)), None);
    }

    #[test]
    fn match_wins_over_exit() {
        let clock = Clock(Instant::now());
        let mut sample = clock.sample(0, 0);
        sample.matched = true;
        sample.exited = true;
        assert_eq!(
            decide(&spec(1000, None), sample),
            Decision::Done(WaitReason::Matched)
        );
    }

    #[test]
    fn exit_ends_the_wait_at_once() {
        let clock = Clock(Instant::now());
        let mut sample = clock.sample(0, 0);
        sample.exited = true;
        assert_eq!(
            decide(&spec(10_000, Some(300)), sample),
            Decision::Done(WaitReason::Exited)
        );
    }

    #[test]
    fn settle_counts_from_last_output() {
        let clock = Clock(Instant::now());
        let spec = spec(10_000, Some(300));
        assert_eq!(
            decide(&spec, clock.sample(200, 0)),
            Decision::Wait(clock.at(300))
        );
        assert_eq!(
            decide(&spec, clock.sample(400, 200)),
            Decision::Wait(clock.at(500))
        );
        assert_eq!(
            decide(&spec, clock.sample(500, 200)),
            Decision::Done(WaitReason::Settled)
        );
    }

    #[test]
    fn timeout_caps_settle() {
        let clock = Clock(Instant::now());
        let spec = spec(1000, Some(300));
        assert_eq!(
            decide(&spec, clock.sample(900, 800)),
            Decision::Wait(clock.at(1000))
        );
        assert_eq!(
            decide(&spec, clock.sample(1000, 900)),
            Decision::Done(WaitReason::Timeout)
        );
    }

    #[test]
    fn settle_can_wait_for_first_output() {
        let clock = Clock(Instant::now());
        let mut spec = spec(1000, Some(100));
        spec.settle_after_output = true;
        let mut quiet = clock.sample(500, 0);
        quiet.output_seen = false;
        assert_eq!(decide(&spec, quiet), Decision::Wait(clock.at(1000)));
        assert_eq!(
            decide(&spec, clock.sample(500, 300)),
            Decision::Done(WaitReason::Settled)
        );
    }

    #[test]
    fn without_settle_only_timeout_ends() {
        let clock = Clock(Instant::now());
        let spec = spec(1000, None);
        assert_eq!(
            decide(&spec, clock.sample(999, 0)),
            Decision::Wait(clock.at(1000))
        );
        assert_eq!(
            decide(&spec, clock.sample(1000, 0)),
            Decision::Done(WaitReason::Timeout)
        );
    }

    fn ready_spec(rule: ReadyRule) -> WaitSpec {
        WaitSpec {
            ready: rule,
            ..spec(10_000, None)
        }
    }

    #[test]
    fn new_prompt_ends_the_wait_at_once() {
        let clock = Clock(Instant::now());
        let mut sample = clock.sample(5, 5);
        sample.new_prompt = true;
        assert_eq!(
            decide(&ready_spec(ReadyRule::NewPromptOrInput), sample),
            Decision::Done(WaitReason::Prompt)
        );
        assert_eq!(
            decide(&spec(10_000, None), sample),
            Decision::Wait(clock.at(10_000))
        );
    }

    #[test]
    fn ready_states_need_quiet_output() {
        let clock = Clock(Instant::now());
        let mut rule = ready_spec(ReadyRule::Any);
        rule.after_input = true;
        let early = clock.sample(100, 50);
        assert!(!wants_activity(&rule, &early));
        assert_eq!(decide(&rule, early), Decision::Wait(clock.at(350)));

        let quiet = clock.sample(350, 50);
        assert!(wants_activity(&rule, &quiet));
        let waiting = WaitSample {
            activity: Some(Activity::WaitingForInput),
            ..quiet
        };
        assert_eq!(
            decide(&rule, waiting),
            Decision::Done(WaitReason::InputWanted)
        );
        let running = WaitSample {
            activity: Some(Activity::Running),
            ..quiet
        };
        assert_eq!(decide(&rule, running), Decision::Wait(clock.at(400)));
        let unknown = WaitSample {
            activity: Some(Activity::Unknown),
            ..quiet
        };
        assert_eq!(decide(&rule, unknown), Decision::Done(WaitReason::Settled));
    }

    #[test]
    fn read_of_idle_session_ends_at_once() {
        let clock = Clock(Instant::now());
        let rule = ready_spec(ReadyRule::Any);
        // Output stopped long before the wait began.
        let mut sample = clock.sample(0, 0);
        sample.started = clock.at(0);
        sample.last_output = clock.0 - Duration::from_secs(5);
        assert!(wants_activity(&rule, &sample));
        sample.activity = Some(Activity::Idle);
        assert_eq!(decide(&rule, sample), Decision::Done(WaitReason::Prompt));
    }

    #[test]
    fn submitted_command_ignores_old_prompt() {
        let clock = Clock(Instant::now());
        let rule = ready_spec(ReadyRule::NewPromptOrInput);
        let mut sample = clock.sample(400, 0);
        sample.activity = Some(Activity::Idle);
        assert_eq!(decide(&rule, sample), Decision::Wait(clock.at(450)));
        sample.activity = Some(Activity::WaitingForInput);
        assert_eq!(
            decide(&rule, sample),
            Decision::Done(WaitReason::InputWanted)
        );
    }

    #[test]
    fn pattern_read_needs_a_change() {
        let clock = Clock(Instant::now());
        let rule = ready_spec(ReadyRule::Reached);
        let mut sample = clock.sample(400, 0);
        sample.activity = Some(Activity::Idle);
        assert_eq!(decide(&rule, sample), Decision::Wait(clock.at(450)));
        sample.busy_seen = true;
        assert_eq!(decide(&rule, sample), Decision::Done(WaitReason::Prompt));
    }
}
