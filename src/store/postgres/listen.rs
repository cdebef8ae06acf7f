//! Following other nodes' commits: a dedicated connection doing `LISTEN zerotouch_changes`,
//! reconnected with backoff when it is lost, waking whoever follows the change sequence.
//!
//! It only wakes: what changed is read by sequence (`changes_since`), so a notification lost
//! during a reconnect costs nothing but the wait for the next wake-up or poll. Must not know
//! the registry or operations.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::failure::describe;
use super::{Inner, LagObserver, PostgresStore, CHANNEL};
use crate::store::{now_millis, Millis};

/// Reconnect backoff of the `LISTEN` task: doubles from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl PostgresStore {
    /// Starts the task that follows other nodes' commits: a dedicated connection doing
    /// `LISTEN zerotouch_changes` calls `wake.notify_one()` on every notification. When the
    /// connection is lost it marks the store down and reconnects with exponential backoff
    /// (100 ms doubling to 5 s); every time `LISTEN` is (re-)established it calls
    /// `wake.notify_one()`, so the caller catches up by sequence on whatever it missed. Ends
    /// when `shutdown` is cancelled.
    pub fn listen(&self, wake: Arc<Notify>, shutdown: CancellationToken) -> JoinHandle<()> {
        let inner = Arc::clone(&self.inner);
        let lag = self.lag_observer.clone();
        tokio::spawn(async move {
            let mut backoff = BACKOFF_MIN;
            loop {
                let mut listening = false;
                let ended = tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = listen_session(&inner, &wake, lag.as_ref(), &mut listening) => r,
                };
                if listening {
                    backoff = BACKOFF_MIN;
                }
                inner.up.store(false, Ordering::Relaxed);
                match ended {
                    Ok(()) => tracing::warn!("store notification connection closed; reconnecting"),
                    Err(e) => {
                        tracing::warn!(error = %describe(&e), "store notification connection lost; reconnecting")
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        })
    }
}

/// One `LISTEN` session: connects, listens and forwards notifications until the connection
/// ends. Sets `listening` once `LISTEN` succeeded.
async fn listen_session(
    inner: &Inner,
    wake: &Notify,
    lag: Option<&LagObserver>,
    listening: &mut bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = inner.config.connect(inner.tls.clone()).await?;
    let listen_sql = format!("LISTEN {CHANNEL}");
    let mut listen = std::pin::pin!(client.batch_execute(&listen_sql));
    // The connection must be polled for LISTEN to complete and, after it, to receive
    // notifications: both are driven from this one loop.
    loop {
        tokio::select! {
            r = &mut listen, if !*listening => {
                r?;
                *listening = true;
                inner.up.store(true, Ordering::Relaxed);
                if inner.listened.swap(true, Ordering::Relaxed) {
                    inner.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                // Whatever was committed while we were not listening is caught up by sequence.
                wake.notify_one();
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    inner.notifications.fetch_add(1, Ordering::Relaxed);
                    if let (Some(observe), Some(at)) = (lag, committed_at(n.payload())) {
                        // Clocks of two nodes may disagree slightly: a negative lag is zero.
                        let millis = u64::try_from(now_millis() - at).unwrap_or(0);
                        observe(Duration::from_millis(millis));
                    }
                    wake.notify_one();
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}

/// The commit time in a notification's payload (`<seq> <millis>`); `None` for a payload
/// without one (written by an older build).
fn committed_at(payload: &str) -> Option<Millis> {
    payload.split_once(' ')?.1.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_notification_carries_its_commit_time() {
        assert_eq!(
            super::committed_at("42 1700000000123"),
            Some(1_700_000_000_123)
        );
        assert_eq!(super::committed_at("42"), None, "an older build's payload");
        assert_eq!(super::committed_at("42 soon"), None);
    }
}
