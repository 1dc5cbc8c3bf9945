//! The parts of a tool call besides its parameters: its cancellation, and the progress
//! token under which the client wants progress notifications.

use std::future::Future;
use std::time::{Duration, Instant};

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use tokio_util::sync::CancellationToken;

/// A wait sends its first progress notification after this long, and then one per
/// interval, so short waits send none.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// The parts of a request a waiting tool uses.
pub struct CallContext {
    pub cancel: CancellationToken,
    progress: Option<(Peer<RoleServer>, ProgressToken)>,
}

impl CallContext {
    pub fn new(context: &RequestContext<RoleServer>) -> Self {
        Self {
            cancel: context.ct.clone(),
            progress: context
                .meta
                .get_progress_token()
                .map(|token| (context.peer.clone(), token)),
        }
    }

    /// Runs `work`, sending a progress notification every [`PROGRESS_INTERVAL`] while it
    /// lasts, when the client asked for them. `what` names the wait in the message,
    /// e.g. "session 1234 to finish its command"; `total` is its timeout.
    pub async fn with_progress<T>(
        &self,
        work: impl Future<Output = T>,
        what: &str,
        total: Duration,
    ) -> T {
        let Some((peer, token)) = &self.progress else {
            return work.await;
        };
        let started = Instant::now();
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + PROGRESS_INTERVAL,
            PROGRESS_INTERVAL,
        );
        tokio::pin!(work);
        loop {
            tokio::select! {
                output = &mut work => return output,
                _ = ticks.tick() => {
                    let elapsed = started.elapsed().as_secs_f64();
                    let mut progress = ProgressNotificationParam::new(token.clone(), elapsed);
                    progress.total = Some(total.as_secs_f64());
                    progress.message = Some(format!("waiting for {what}: {elapsed:.0} s"));
                    if let Err(error) = peer.notify_progress(progress).await {
                        tracing::debug!(%error, "progress notification not sent");
                    }
                }
            }
        }
    }
}
