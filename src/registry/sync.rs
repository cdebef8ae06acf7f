//! Keeping the registry in step with the store: the change feed follower.
//!
//! Every commit that changes what phones receive appends to the store's change sequence. This
//! task reads the sequence after the last change it applied and re-reads each changed entity,
//! so changes made by another process (the `import` command) or another node reach this
//! node's phones without a restart. Applying a change twice is harmless: refreshing reads the
//! current row. Knows nothing of HTTP.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Registry;
use crate::store::Store;

/// Applies every change after the registry's applied sequence; returns how many were applied.
pub async fn catch_up(
    registry: &Registry,
    store: &dyn Store,
) -> Result<usize, crate::store::Error> {
    const BATCH: usize = 1_000;
    let mut applied = 0;
    let _order = registry.write_lock().await;
    loop {
        let since = registry.applied_seq();
        let changes = store.changes_since(since, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(applied);
        };
        for entry in &changes {
            registry.refresh(store, &entry.change).await?;
        }
        applied += changes.len();
        registry.advance_seq(last);
        if changes.len() < BATCH {
            return Ok(applied);
        }
    }
}

/// What started a catch-up pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `wake` was notified: a database notification, or the notification connection was
    /// (re-)established.
    Notification,
    /// The periodic read: the safety net for notifications that never arrived.
    Poll,
}

impl Trigger {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Notification => "notification",
            Trigger::Poll => "poll",
        }
    }
}

/// Follows the change feed until `shutdown`: polls every `interval`, or at once when `wake`
/// is notified (a local commit, or a database notification). The poll stays even when
/// notifications arrive: it is what makes a notification lost during a reconnect harmless.
pub async fn follow(
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    interval: Duration,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    on_applied: impl Fn(usize, Trigger) + Send + 'static,
) {
    let mut failing = false;
    loop {
        let trigger = tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => Trigger::Poll,
            () = wake.notified() => Trigger::Notification,
        };
        match catch_up(&registry, store.as_ref()).await {
            Ok(n) => {
                if failing {
                    tracing::info!("change feed readable again");
                    failing = false;
                }
                if n > 0 {
                    tracing::debug!(
                        changes = n,
                        trigger = trigger.as_str(),
                        "applied store changes to the registry"
                    );
                    on_applied(n, trigger);
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the change feed; phones are served from the registry as it is");
                    failing = true;
                }
            }
        }
    }
}
