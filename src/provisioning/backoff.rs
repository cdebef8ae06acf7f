//! Failed authentications per device, from every source together.
//!
//! The miss throttle counts per source network; a Gigaset MAC-ID's label code has about 21
//! bits, so an attacker spread over many networks could still try every code of one device
//! in days. Here each device has its own count: after [`FREE_FAILURES`] failed attempts every
//! further one doubles the time the device refuses to check credentials at all (capped at
//! [`MAX_WAIT`]), which puts the whole code space decades away while a phone with the right
//! code gets in at its next try after the wait. The count is forgotten at the first success.
//!
//! In memory and per node: a restart or another node starts counting afresh, which at most
//! doubles an attacker's rate per node. Knows nothing of HTTP or how credentials are checked.

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::domain::Mac;

/// Failed attempts a device may have before it waits.
pub const FREE_FAILURES: u32 = 5;

/// The longest wait, in milliseconds: 15 minutes, so at most 96 guesses a day per node.
pub const MAX_WAIT: u64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    /// No credentials are checked before this time (milliseconds since the epoch).
    until: u64,
    /// The last failure.
    last: u64,
}

/// Failed authentications per device.
#[derive(Default)]
pub struct Backoff {
    devices: DashMap<Mac, Entry>,
    /// How many devices have an entry: lets a success skip the map when none has.
    tracked: AtomicUsize,
}

impl Backoff {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long `mac` still waits at `now_ms` before credentials are checked again; `None`
    /// when it may try.
    pub fn waiting(&self, mac: Mac, now_ms: u64) -> Option<u64> {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let entry = *self.devices.get(&mac)?;
        (entry.until > now_ms).then(|| entry.until - now_ms)
    }

    /// Counts a failed attempt for `mac` at `now_ms`; returns the wait it now has to sit out,
    /// if any.
    pub fn failed(&self, mac: Mac, now_ms: u64) -> Option<u64> {
        let mut entry = self.devices.entry(mac).or_insert_with(|| {
            self.tracked.fetch_add(1, Ordering::Relaxed);
            Entry {
                failures: 0,
                until: 0,
                last: 0,
            }
        });
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now_ms;
        let over = entry.failures.checked_sub(FREE_FAILURES)?;
        if over == 0 {
            return None;
        }
        let wait = 1000u64
            .checked_shl(over - 1)
            .map_or(MAX_WAIT, |w| w.min(MAX_WAIT));
        entry.until = now_ms + wait;
        Some(wait)
    }

    /// Forgets `mac`'s failures: it authenticated.
    pub fn succeeded(&self, mac: Mac) {
        if self.tracked.load(Ordering::Relaxed) != 0 && self.devices.remove(&mac).is_some() {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Drops devices without a failure or a wait in the last day: they start counting
    /// afresh, which bounds the memory to devices attacked within the last day.
    pub fn sweep(&self, now_ms: u64) {
        const FORGET_AFTER: u64 = 24 * 60 * 60 * 1000;
        self.devices.retain(|_, e| {
            let keep = e.until.max(e.last).saturating_add(FORGET_AFTER) > now_ms;
            if !keep {
                self.tracked.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
    }

    /// Devices currently counted.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no device is counted.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_and_a_success_forgets() {
        let b = Backoff::new();
        let mac = Mac::parse("7c2f80e0d605").unwrap();
        for _ in 0..FREE_FAILURES {
            assert_eq!(b.failed(mac, 0), None);
        }
        assert_eq!(b.waiting(mac, 0), None);
        assert_eq!(b.failed(mac, 0), Some(1000));
        assert_eq!(b.waiting(mac, 400), Some(600));
        assert_eq!(b.failed(mac, 1000), Some(2000));
        assert_eq!(b.failed(mac, 3000), Some(4000));
        for _ in 0..40 {
            b.failed(mac, 10_000);
        }
        assert_eq!(b.waiting(mac, 10_000), Some(MAX_WAIT));
        assert_eq!(
            b.waiting(mac, 10_000 + MAX_WAIT),
            None,
            "the right code gets in after the wait"
        );
        b.succeeded(mac);
        assert!(b.is_empty());
        assert_eq!(b.failed(mac, 0), None, "counting starts afresh");
    }

    #[test]
    fn the_sweep_forgets_devices_a_day_after_their_wait() {
        let b = Backoff::new();
        let mac = Mac::parse("7c2f80e0d605").unwrap();
        for _ in 0..=FREE_FAILURES {
            b.failed(mac, 0);
        }
        b.sweep(1000);
        assert_eq!(b.len(), 1);
        b.sweep(2000 + 24 * 60 * 60 * 1000);
        assert!(b.is_empty());
        assert_eq!(b.waiting(mac, 0), None);
    }
}
