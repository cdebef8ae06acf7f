//! Devices with pending credentials that were challenged and have not answered yet.
//!
//! A phone holding its pending credentials answers a 401 at once with them; a phone whose
//! first answer was lost has nothing to answer with and asks again without credentials. So a
//! pending device's first unauthenticated fetch is challenged and noted here, and its next
//! unauthenticated fetch (inside the window, from where it may enrol) is issued fresh
//! credentials. Re-issuing at the first unauthenticated fetch would hand every Digest phone,
//! which always asks without credentials first, new ones forever and never bind it.
//!
//! In memory and per node: behind a balancer the phone may need one more round. Knows
//! nothing of HTTP or credentials.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::domain::Mac;

/// Pending devices challenged, with the address challenged and when (milliseconds since the
/// epoch). Tied to the address, so a stranger's unanswered challenge does not make the phone's
/// own next request a re-issue.
#[derive(Default)]
pub struct Unanswered {
    devices: DashMap<Mac, (IpAddr, u64)>,
    tracked: AtomicUsize,
}

impl Unanswered {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `mac` was challenged at `source` while pending, and nobody answered since.
    pub fn was_challenged(&self, mac: Mac, source: IpAddr) -> bool {
        self.tracked.load(Ordering::Relaxed) != 0
            && self.devices.get(&mac).is_some_and(|e| e.0 == source)
    }

    /// Notes that pending `mac` was challenged at `source` at `now_ms`.
    pub fn challenged(&self, mac: Mac, source: IpAddr, now_ms: u64) {
        if self.devices.insert(mac, (source, now_ms)).is_none() {
            self.tracked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets `mac`: credentials were presented (right or wrong: whoever was challenged had
    /// something to answer with), or new ones were issued.
    pub fn settled(&self, mac: Mac) {
        if self.tracked.load(Ordering::Relaxed) != 0 && self.devices.remove(&mac).is_some() {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Drops notes older than a day, bounding the memory to devices challenged lately.
    pub fn sweep(&self, now_ms: u64) {
        const FORGET_AFTER: u64 = 24 * 60 * 60 * 1000;
        self.devices.retain(|_, (_, at)| {
            let keep = at.saturating_add(FORGET_AFTER) > now_ms;
            if !keep {
                self.tracked.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_lasts_until_settled_or_a_day_old() {
        let u = Unanswered::new();
        let mac = Mac::parse("805ec017de13").unwrap();
        let (phone, stranger): (IpAddr, IpAddr) = (
            "192.0.2.10".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
        );
        assert!(!u.was_challenged(mac, phone));
        u.challenged(mac, phone, 0);
        assert!(u.was_challenged(mac, phone));
        assert!(!u.was_challenged(mac, stranger), "tied to the address");
        u.settled(mac);
        assert!(!u.was_challenged(mac, phone));
        u.challenged(mac, phone, 0);
        u.sweep(24 * 60 * 60 * 1000);
        assert!(!u.was_challenged(mac, phone));
    }
}
