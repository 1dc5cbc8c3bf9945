//! Waiting for a session to reach a condition: a pattern, quiet output, exit, or a
//! timeout, whichever comes first.

use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Session;
use super::screen::OutputCursor;

/// The reason a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// `wait_for` matched the output.
    Matched,
    /// No output arrived for `settle`.
    Settled,
    /// The session's process exited.
    Exited,
    /// The timeout passed first.
    Timeout,
}

/// The conditions that end a wait.
#[derive(Debug, Clone)]
pub struct WaitSpec {
    pub timeout: Duration,
    pub settle: Option<Duration>,
    pub pattern: Option<Regex>,
    /// Count `settle` only once some output has arrived during the wait (a program that
    /// is still starting is quiet, not settled).
    pub settle_after_output: bool,
}

/// The facts a wait decision depends on, sampled at one moment.
#[derive(Debug, Clone, Copy)]
pub struct WaitSample {
    pub now: Instant,
    pub started: Instant,
    /// Last output, or the start of the wait if that is later.
    pub last_output: Instant,
    pub exited: bool,
    pub matched: bool,
    /// Output arrived since the wait started.
    pub output_seen: bool,
}

/// Decides whether a wait is over. Returns the reason, or the instant at which the
/// decision can next change without new output.
pub fn decide(spec: &WaitSpec, sample: WaitSample) -> Result<WaitReason, Instant> {
    if sample.matched {
        return Ok(WaitReason::Matched);
    }
    if sample.exited {
        return Ok(WaitReason::Exited);
    }
    let deadline = sample.started + spec.timeout;
    let quiet_since = sample.last_output.max(sample.started);
    let settle = spec
        .settle
        .filter(|_| sample.output_seen || !spec.settle_after_output);
    if let Some(settle) = settle {
        let settled_at = quiet_since + settle;
        if sample.now >= settled_at && settled_at <= deadline {
            return Ok(WaitReason::Settled);
        }
        if sample.now >= deadline {
            return Ok(WaitReason::Timeout);
        }
        return Err(settled_at.min(deadline));
    }
    if sample.now >= deadline {
        return Ok(WaitReason::Timeout);
    }
    Err(deadline)
}

/// Matching `wait_for` renders the output, which costs more as output grows. After an
/// evaluation that took `t`, the next waits until `t × MATCH_COST_FACTOR` has passed, so
/// matching takes at most about a tenth of the time during a flood while small outputs
/// are matched at once.
const MATCH_COST_FACTOR: u32 = 10;
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
pub async fn wait(
    session: &Session,
    spec: &WaitSpec,
    start: OutputCursor,
    target: MatchTarget,
    cancel: &CancellationToken,
) -> Result<WaitReason, Cancelled> {
    let mut changes = session.subscribe();
    let started = Instant::now();
    let started_std = std::time::Instant::now();
    let bytes_at_start = session.state().bytes_read;
    // The earliest time the pattern may be evaluated again.
    let mut next_match_at = Instant::now();
    loop {
        changes.borrow_and_update();
        let evaluation_started = Instant::now();
        let sample = {
            let state = session.state();
            let matched = spec.pattern.as_ref().is_some_and(|pattern| {
                let on_screen = match target {
                    MatchTarget::Screen => true,
                    MatchTarget::Output => false,
                    MatchTarget::Auto => state.screen.alternate_screen(),
                };
                if on_screen {
                    pattern.is_match(&state.screen.screen_text())
                } else {
                    pattern.is_match(&state.screen.output_since(Some(start)).text)
                }
            });
            // `last_output` is a std Instant; convert its age to the tokio clock.
            let output_age = std::time::Instant::now()
                .saturating_duration_since(state.last_output.max(started_std));
            WaitSample {
                now: Instant::now(),
                started,
                last_output: Instant::now() - output_age,
                exited: state.exit.is_some(),
                matched,
                output_seen: state.bytes_read > bytes_at_start,
            }
        };
        let next = match decide(spec, sample) {
            Ok(reason) => return Ok(reason),
            Err(next) => next,
        };
        if spec.pattern.is_some() {
            let cost = evaluation_started.elapsed();
            next_match_at = Instant::now() + (cost * MATCH_COST_FACTOR).min(MAX_MATCH_PAUSE);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(timeout_ms: u64, settle_ms: Option<u64>) -> WaitSpec {
        WaitSpec {
            timeout: Duration::from_millis(timeout_ms),
            settle: settle_ms.map(Duration::from_millis),
            pattern: None,
            settle_after_output: false,
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
            }
        }
    }

    #[test]
    fn match_wins_over_exit() {
        let clock = Clock(Instant::now());
        let mut sample = clock.sample(0, 0);
        sample.matched = true;
        sample.exited = true;
        assert_eq!(decide(&spec(1000, None), sample), Ok(WaitReason::Matched));
    }

    #[test]
    fn exit_ends_the_wait_at_once() {
        let clock = Clock(Instant::now());
        let mut sample = clock.sample(0, 0);
        sample.exited = true;
        assert_eq!(
            decide(&spec(10_000, Some(300)), sample),
            Ok(WaitReason::Exited)
        );
    }

    #[test]
    fn settle_counts_from_last_output() {
        let clock = Clock(Instant::now());
        let spec = spec(10_000, Some(300));
        assert_eq!(decide(&spec, clock.sample(200, 0)), Err(clock.at(300)));
        assert_eq!(decide(&spec, clock.sample(400, 200)), Err(clock.at(500)));
        assert_eq!(
            decide(&spec, clock.sample(500, 200)),
            Ok(WaitReason::Settled)
        );
    }

    #[test]
    fn timeout_caps_settle() {
        let clock = Clock(Instant::now());
        let spec = spec(1000, Some(300));
        assert_eq!(decide(&spec, clock.sample(900, 800)), Err(clock.at(1000)));
        assert_eq!(
            decide(&spec, clock.sample(1000, 900)),
            Ok(WaitReason::Timeout)
        );
    }

    #[test]
    fn settle_can_wait_for_first_output() {
        let clock = Clock(Instant::now());
        let mut spec = spec(1000, Some(100));
        spec.settle_after_output = true;
        let mut quiet = clock.sample(500, 0);
        quiet.output_seen = false;
        assert_eq!(decide(&spec, quiet), Err(clock.at(1000)));
        assert_eq!(
            decide(&spec, clock.sample(500, 300)),
            Ok(WaitReason::Settled)
        );
    }

    #[test]
    fn without_settle_only_timeout_ends() {
        let clock = Clock(Instant::now());
        let spec = spec(1000, None);
        assert_eq!(decide(&spec, clock.sample(999, 0)), Err(clock.at(1000)));
        assert_eq!(
            decide(&spec, clock.sample(1000, 0)),
            Ok(WaitReason::Timeout)
        );
    }
}
