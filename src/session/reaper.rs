//! The idle reaper: closes sessions that saw neither a tool call nor output for the idle
//! timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::table::SessionTable;

/// Picks the sessions whose last activity is at least `idle_timeout` before `now`.
pub fn idle_sessions(
    now: Instant,
    idle_timeout: Duration,
    activity: &[(Uuid, Instant)],
) -> Vec<Uuid> {
    activity
        .iter()
        .filter(|(_, last)| now.saturating_duration_since(*last) >= idle_timeout)
        .map(|(id, _)| *id)
        .collect()
}

/// Returns how often the reaper scans: a quarter of the timeout, between 100 ms and 30 s, so a
/// session is closed at most 25 % late.
pub fn scan_interval(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// Runs the reaper until `shutdown` is cancelled. A session with a pending wait counts
/// as active at every scan, so a long `wait_for` is never cut short by the reaper and
/// the idle time starts when the wait ends.
pub async fn run(table: Arc<SessionTable>, idle_timeout: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(scan_interval(idle_timeout));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let activity: Vec<(Uuid, Instant)> = table
            .list()
            .iter()
            .map(|session| {
                if session.has_waiters() {
                    session.touch();
                }
                (session.id, session.state().last_activity)
            })
            .collect();
        let idle = idle_sessions(Instant::now(), idle_timeout, &activity);
        if !idle.is_empty() {
            table.reap(&idle).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_only_sessions_past_the_timeout() {
        let now = Instant::now() + Duration::from_secs(100);
        let fresh = Uuid::new_v4();
        let stale = Uuid::new_v4();
        let exact = Uuid::new_v4();
        let activity = [
            (fresh, now - Duration::from_secs(5)),
            (stale, now - Duration::from_secs(50)),
            (exact, now - Duration::from_secs(10)),
        ];
        let picked = idle_sessions(now, Duration::from_secs(10), &activity);
        assert_eq!(picked, vec![stale, exact]);
    }

    #[test]
    fn activity_in_the_future_is_not_idle() {
        let now = Instant::now();
        let id = Uuid::new_v4();
        assert!(
            idle_sessions(
                now,
                Duration::from_secs(1),
                &[(id, now + Duration::from_secs(5))]
            )
            .is_empty()
        );
    }

    #[test]
    fn scan_interval_is_clamped() {
        assert_eq!(
            scan_interval(Duration::from_secs(1800)),
            Duration::from_secs(30)
        );
        assert_eq!(
            scan_interval(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(
            scan_interval(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }
}
