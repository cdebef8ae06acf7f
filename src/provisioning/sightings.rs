//! Recording what phones fetch (last-seen status), off the hot path.
//!
//! The hot path hands a sighting to a bounded queue and moves on; a background writer keeps
//! the newest sighting per device and writes them to the store in one transaction per flush.
//! When the queue is full (the store is slow or down), sightings are dropped and counted:
//! status is for troubleshooting and never worth slowing a phone down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::sighting::Sighting;
use crate::domain::Mac;
use crate::metrics::Metrics;

use super::ledger::Ledger;

/// The hot path's end of the queue.
#[derive(Clone)]
pub struct SightingQueue {
    tx: mpsc::Sender<Sighting>,
    metrics: Arc<Metrics>,
}

impl SightingQueue {
    /// Queues a sighting, or drops and counts it when the queue is full.
    pub fn record(&self, sighting: Sighting) {
        if self.tx.try_send(sighting).is_err() {
            self.metrics.sightings_dropped.inc();
        }
    }
}

/// Batching settings.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Sightings queued at most.
    pub queue: usize,
    /// How often pending sightings are written.
    pub flush_every: Duration,
    /// Devices per write at most; a full batch is written at once.
    pub max_batch: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            queue: 65_536,
            flush_every: Duration::from_secs(1),
            max_batch: 2_000,
        }
    }
}

/// Creates the queue and its writer task. The writer stops on `shutdown` after writing what
/// is pending; await the returned handle to know the last write is done.
pub fn spawn(
    ledger: Arc<dyn Ledger>,
    metrics: Arc<Metrics>,
    batching: Batching,
    shutdown: CancellationToken,
) -> (SightingQueue, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(batching.queue.max(1));
    let queue = SightingQueue {
        tx,
        metrics: metrics.clone(),
    };
    let writer = tokio::spawn(write_batches(ledger, metrics, batching, rx, shutdown));
    (queue, writer)
}

async fn write_batches(
    ledger: Arc<dyn Ledger>,
    metrics: Arc<Metrics>,
    batching: Batching,
    mut rx: mpsc::Receiver<Sighting>,
    shutdown: CancellationToken,
) {
    // The latest of each kind per device: a failed authentication (anyone's) must not take
    // the place of the phone's own served fetch in the same batch.
    let mut pending: HashMap<(Mac, bool), Sighting> = HashMap::new();
    let mut tick = tokio::time::interval(batching.flush_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => flush(&*ledger, &metrics, &mut pending).await,
            s = rx.recv() => match s {
                Some(s) => {
                    pending.insert((s.mac, s.is_failed_authentication()), s);
                    if pending.len() >= batching.max_batch {
                        flush(&*ledger, &metrics, &mut pending).await;
                    }
                }
                None => break,
            },
        }
    }
    rx.close();
    while let Ok(s) = rx.try_recv() {
        pending.insert((s.mac, s.is_failed_authentication()), s);
    }
    flush(&*ledger, &metrics, &mut pending).await;
}

async fn flush(
    ledger: &dyn Ledger,
    metrics: &Metrics,
    pending: &mut HashMap<(Mac, bool), Sighting>,
) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<Sighting> = pending.drain().map(|(_, s)| s).collect();
    let n = batch.len() as u64;
    match ledger.record_sightings(batch).await {
        Ok(()) => metrics.sightings_written.inc_by(n),
        Err(e) => {
            metrics.sightings_dropped.inc_by(n);
            tracing::warn!(error = %e, dropped = n, "cannot write device status");
        }
    }
}

/// `s` as a partner may be shown it: control characters removed (a User-Agent is anybody's
/// text, and ends up in partners' tools and spreadsheets), at most `max` bytes.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod truncate_tests {
    #[test]
    fn cuts_at_a_character_boundary() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("abc", 5), "abc");
    }
}
