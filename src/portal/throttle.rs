//! Login throttling: failed logins counted per account (e-mail) and per source network (/24
//! for IPv4, /64 for IPv6); past the budget, logins from there or for that account are
//! refused until the window ends, even with the right password.
//!
//! Kept in memory on each node: a cluster of N nodes behind a balancer allows up to N times the
//! budget, and a restart forgets the counts (README, "Partner portal"). Bounded: past
//! [`MAX_KEYS`] remembered keys, the oldest windows are forgotten first. Must not know HTTP or
//! the store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::Network;

/// Failed logins allowed per account in a window.
pub const PER_ACCOUNT: u32 = 5;
/// Failed logins allowed per source network in a window.
pub const PER_NETWORK: u32 = 20;
/// How long a window lasts (counted from its first failure).
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most keys (accounts and networks) remembered at once.
pub const MAX_KEYS: usize = 100_000;

/// The counts of failed logins.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    fn keys(email: &str, source: Option<IpAddr>) -> [(String, u32); 2] {
        let network = source.map_or_else(|| "-".to_owned(), |ip| Network::site_of(ip).to_string());
        [
            (format!("a:{email}"), PER_ACCOUNT),
            (format!("n:{network}"), PER_NETWORK),
        ]
    }

    /// Whether a login for `email` from `source` may be tried now.
    pub fn allows(&self, email: &str, source: Option<IpAddr>, now: Instant) -> bool {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(email, source).iter().all(|(key, budget)| {
            map.get(key)
                .is_none_or(|(n, since)| now.duration_since(*since) >= WINDOW || n < budget)
        })
    }

    /// Counts a failed login.
    pub fn failed(&self, email: &str, source: Option<IpAddr>, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        for (key, _) in Self::keys(email, source) {
            let entry = map.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// Forgets an account's failures after a successful login (its network's stay counted).
    pub fn succeeded(&self, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&format!("a:{email}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_its_budget_until_the_window_ends() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..PER_ACCOUNT {
            assert!(t.allows("ann@x.test", Some(ip), now));
            t.failed("ann@x.test", Some(ip), now);
        }
        assert!(!t.allows("ann@x.test", Some(ip), now));
        assert!(!t.allows("ann@x.test", Some("198.51.100.1".parse().unwrap()), now));
        assert!(t.allows("bob@x.test", Some(ip), now), "another account");
        assert!(t.allows("ann@x.test", Some(ip), now + WINDOW));
    }

    #[test]
    fn a_network_is_locked_after_its_budget_across_accounts() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..PER_NETWORK {
            let ip: IpAddr = format!("192.0.2.{i}").parse().unwrap();
            t.failed(&format!("u{i}@x.test"), Some(ip), now);
        }
        let same_net: IpAddr = "192.0.2.200".parse().unwrap();
        assert!(!t.allows("new@x.test", Some(same_net), now));
        assert!(t.allows("new@x.test", Some("192.0.3.1".parse().unwrap()), now));
    }

    #[test]
    fn success_forgets_the_account() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..PER_ACCOUNT {
            t.failed("ann@x.test", None, now);
        }
        t.succeeded("ann@x.test");
        assert!(t.allows("ann@x.test", Some("192.0.2.1".parse().unwrap()), now));
    }
}
