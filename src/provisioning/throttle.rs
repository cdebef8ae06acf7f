//! Miss throttling: a source network that keeps asking for things that are not there (unknown
//! MACs, failed authentication, unrecognised paths) is blocked for a cool-down.
//!
//! Counts misses, never hits: an office of 500 phones behind one NAT boots freely. Sources are
//! aggregated per /24 (IPv4) or /64 (IPv6), so rotating addresses inside a network gains
//! nothing. Each network has a token bucket of `budget` misses refilled at `refill_per_minute`;
//! an empty bucket blocks the network for `cooldown`. IPv6 is counted at three levels, because
//! one customer's /48 holds 65,536 /64s: each miss also charges its /56 (twice the budget) and
//! its /48 (four times), and a blocked /56 or /48 blocks every /64 inside it.
//!
//! Memory is bounded: at most `max_sources` networks are tracked, idle ones evicted first and
//! blocked ones never before unblocked ones (a shard full of blocked networks may grow to twice
//! its share before the oldest block is dropped), so flooding the table with fresh networks
//! does not set a blocked one free. Shards are chosen with a per-process random hash seed, so
//! nobody can aim their networks at one shard. While nothing is blocked, the hot path's check
//! is one atomic load. Knows nothing of HTTP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::Network;

/// A client's own network, which nonces are bound to: /24 for IPv4, /64 for IPv6 (IPv4-mapped
/// IPv6 counts as IPv4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Prefix {
    /// The first three octets.
    V4([u8; 3]),
    /// The first eight bytes.
    V6([u8; 8]),
}

impl Prefix {
    /// The prefix of an address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Prefix::V4([o[0], o[1], o[2]])
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Prefix::of(IpAddr::V4(v4)),
                None => {
                    let o = v6.octets();
                    let mut p = [0u8; 8];
                    p.copy_from_slice(&o[..8]);
                    Prefix::V6(p)
                }
            },
        }
    }

    /// The prefix's bytes (nonces are bound to them).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Prefix::V4(b) => b,
            Prefix::V6(b) => b,
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prefix::V4([a, b, c]) => write!(f, "{a}.{b}.{c}.0/24"),
            Prefix::V6(b) => write!(
                f,
                "{:x}:{:x}:{:x}:{:x}::/64",
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
                u16::from_be_bytes([b[4], b[5]]),
                u16::from_be_bytes([b[6], b[7]])
            ),
        }
    }
}

/// Throttle settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Misses a source network (/24, /64) may make before it is blocked (the bucket's size; an
    /// IPv6 /56 gets twice as many, a /48 four times).
    pub budget: u32,
    /// Misses forgiven per minute.
    pub refill_per_minute: u32,
    /// How long a blocked source waits.
    pub cooldown: Duration,
    /// Source networks tracked at most.
    pub max_sources: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            budget: 100,
            refill_per_minute: 30,
            cooldown: Duration::from_secs(600),
            max_sources: 100_000,
        }
    }
}

/// IPv6 levels counted above a /64, with their budgets as multiples of `budget`.
const IPV6_LEVELS: [(u8, u64); 3] = [(64, 1), (56, 2), (48, 4)];

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Misses still allowed, in thousandths (refill is fractional).
    milli_tokens: u64,
    /// The bucket's size, in thousandths: its level's budget.
    full: u64,
    last: Instant,
    blocked_until: Option<Instant>,
}

const SHARDS: usize = 64;

type Shard = HashMap<Network, Bucket, ahash::RandomState>;

/// The throttle.
pub struct Throttle {
    /// Replaced whole by a reload; networks already counted keep their bucket's size until
    /// they are counted afresh.
    settings: std::sync::RwLock<Settings>,
    shards: Box<[Mutex<Shard>]>,
    /// Chooses a network's shard; seeded at random per process.
    spread: ahash::RandomState,
    blocked: AtomicUsize,
}

/// A source just got blocked: log it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// The network (a /24, or an IPv6 /64, /56 or /48).
    pub prefix: Network,
    /// For how long.
    pub cooldown: Duration,
}

impl Throttle {
    /// A throttle with `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings: std::sync::RwLock::new(settings),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            spread: ahash::RandomState::new(),
            blocked: AtomicUsize::new(0),
        }
    }

    /// The settings.
    pub fn settings(&self) -> Settings {
        *self.settings.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts new settings in use (a reload).
    pub fn set_settings(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    fn shard(&self, network: &Network) -> &Mutex<Shard> {
        let h = self.spread.hash_one(network);
        &self.shards[(h as usize) % SHARDS]
    }

    /// The networks `ip` is counted in, with their budgets in thousandths of a miss: its /24,
    /// or its /64, /56 and /48.
    fn levels(&self, ip: IpAddr) -> impl Iterator<Item = (Network, u64)> {
        let full = u64::from(self.settings().budget) * 1000;
        let ip = ip.to_canonical();
        let v4 = ip.is_ipv4();
        IPV6_LEVELS
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| !v4 || *i == 0)
            .map(move |(_, (bits, times))| {
                let bits = if v4 { 24 } else { bits };
                (Network::around(ip, bits), full.saturating_mul(times))
            })
    }

    /// `Some(seconds left)` if the source is blocked now (its /24, or its /64, /56 or /48).
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        if self.blocked.load(Ordering::Acquire) == 0 {
            return None;
        }
        let now = Instant::now();
        self.levels(ip)
            .filter_map(|(network, full)| self.blocked_at(network, full, now))
            .max()
    }

    fn blocked_at(&self, prefix: Network, full: u64, now: Instant) -> Option<Duration> {
        // `full` is the level's budget: a block that ended starts the network afresh.
        let mut shard = self
            .shard(&prefix)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let bucket = shard.get_mut(&prefix)?;
        match bucket.blocked_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                bucket.blocked_until = None;
                bucket.milli_tokens = full;
                bucket.last = now;
                self.blocked.fetch_sub(1, Ordering::AcqRel);
                None
            }
            None => None,
        }
    }

    /// Counts a miss from `ip` at every level it is counted at; `Some` when this miss blocks
    /// a network (the widest one it blocks).
    pub fn miss(&self, ip: IpAddr) -> Option<Blocked> {
        let now = Instant::now();
        let mut blocked = None;
        for (network, full) in self.levels(ip) {
            if let Some(b) = self.miss_at(network, full, now) {
                blocked = Some(b);
            }
        }
        blocked
    }

    fn miss_at(&self, prefix: Network, full: u64, now: Instant) -> Option<Blocked> {
        let settings = self.settings();
        let per_shard = (settings.max_sources / SHARDS).max(1);
        let mut shard = self
            .shard(&prefix)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !shard.contains_key(&prefix) && shard.len() >= per_shard {
            self.evict_one(&mut shard, now, per_shard);
        }
        let bucket = shard.entry(prefix).or_insert(Bucket {
            milli_tokens: full,
            full,
            last: now,
            blocked_until: None,
        });
        if bucket.blocked_until.is_some_and(|u| u > now) {
            return None;
        }
        if bucket.full != full {
            // The budget was reloaded: a network already counted keeps its misses against
            // the new size.
            let spent = bucket.full.saturating_sub(bucket.milli_tokens);
            bucket.full = full;
            bucket.milli_tokens = full.saturating_sub(spent);
        }
        let elapsed_ms = u64::try_from(now.saturating_duration_since(bucket.last).as_millis())
            .unwrap_or(u64::MAX);
        let refill = elapsed_ms.saturating_mul(u64::from(settings.refill_per_minute)) / 60;
        bucket.milli_tokens = bucket.milli_tokens.saturating_add(refill).min(full);
        bucket.last = now;
        // This miss takes a token; the one that takes the last blocks the source, so a
        // scanner gets at most `budget` answers.
        bucket.milli_tokens = bucket.milli_tokens.saturating_sub(1000);
        if bucket.milli_tokens >= 1000 {
            return None;
        }
        if bucket.blocked_until.take().is_none() {
            self.blocked.fetch_add(1, Ordering::AcqRel);
        }
        bucket.blocked_until = Some(now + settings.cooldown);
        Some(Blocked {
            prefix,
            cooldown: settings.cooldown,
        })
    }

    /// Makes room in a full shard: the unblocked network whose last miss is oldest; only when
    /// every one is blocked and the shard holds twice its share, the oldest blocked one.
    fn evict_one(&self, shard: &mut Shard, now: Instant, per_shard: usize) {
        let is_blocked = |b: &Bucket| b.blocked_until.is_some_and(|u| u > now);
        let victim = shard
            .iter()
            .filter(|(_, b)| !is_blocked(b))
            .min_by_key(|(_, b)| b.last)
            .or_else(|| {
                (shard.len() >= 2 * per_shard)
                    .then(|| shard.iter().min_by_key(|(_, b)| b.blocked_until))
                    .flatten()
            })
            .map(|(p, b)| (*p, b.blocked_until.is_some()));
        if let Some((prefix, was_blocked)) = victim {
            shard.remove(&prefix);
            if was_blocked {
                self.blocked.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Forgets sources whose buckets have refilled and whose block has ended.
    pub fn sweep(&self) {
        let now = Instant::now();
        let refill_per_minute = self.settings().refill_per_minute;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, b| {
                if let Some(until) = b.blocked_until {
                    if until > now {
                        return true;
                    }
                    b.blocked_until = None;
                    self.blocked.fetch_sub(1, Ordering::AcqRel);
                    return false;
                }
                let elapsed_ms = u64::try_from(now.saturating_duration_since(b.last).as_millis())
                    .unwrap_or(u64::MAX);
                let refill = elapsed_ms.saturating_mul(u64::from(refill_per_minute)) / 60;
                b.milli_tokens.saturating_add(refill) < b.full
            });
        }
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Sources blocked now (some may have just expired).
    pub fn blocked_sources(&self) -> usize {
        self.blocked.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes() {
        assert_eq!(Prefix::of(ip("10.1.2.3")), Prefix::of(ip("10.1.2.250")));
        assert_ne!(Prefix::of(ip("10.1.2.3")), Prefix::of(ip("10.1.3.3")));
        assert_eq!(
            Prefix::of(ip("::ffff:10.1.2.3")),
            Prefix::of(ip("10.1.2.9"))
        );
        assert_eq!(
            Prefix::of(ip("2001:db8:1:2::1")),
            Prefix::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Prefix::of(ip("2001:db8:1:2::1")),
            Prefix::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(Prefix::of(ip("10.1.2.3")).to_string(), "10.1.2.0/24");
        assert_eq!(
            Prefix::of(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_is_blocked_after_its_budget_and_released_after_the_cooldown() {
        let t = Throttle::new(Settings {
            budget: 5,
            refill_per_minute: 0,
            cooldown: Duration::from_secs(60),
            max_sources: 100,
        });
        for i in 0..4 {
            assert_eq!(t.miss(ip(&format!("10.0.0.{i}"))), None);
            assert_eq!(t.blocked_for(ip("10.0.0.1")), None);
        }
        let blocked = t.miss(ip("10.0.0.77")).unwrap();
        assert_eq!(blocked.prefix.to_string(), "10.0.0.0/24");
        assert!(t.blocked_for(ip("10.0.0.200")).is_some(), "the whole /24");
        assert_eq!(t.blocked_for(ip("10.0.1.1")), None, "not the neighbours");
        assert_eq!(t.miss(ip("10.0.0.1")), None, "one event per block");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(t.blocked_for(ip("10.0.0.1")), None);
        assert_eq!(t.blocked_sources(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn misses_are_forgiven_over_time() {
        let t = Throttle::new(Settings {
            budget: 2,
            refill_per_minute: 60,
            cooldown: Duration::from_secs(60),
            max_sources: 100,
        });
        for _ in 0..100 {
            assert_eq!(t.miss(ip("10.0.0.1")), None);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_ipv6_48_cannot_multiply_its_budget_by_its_64s() {
        let t = Throttle::new(Settings {
            budget: 4,
            refill_per_minute: 0,
            cooldown: Duration::from_secs(600),
            max_sources: 10_000,
        });
        // Each miss from another /64 of 2001:db8:7::/48: each /64 keeps most of its budget,
        // but the /56s and then the /48 run out.
        let mut blocked = Vec::new();
        for i in 0..64u16 {
            // Another /56 each time (the third group's high byte), all in one /48.
            let a = ip(&format!("2001:db8:7:{:x}::1", i << 8));
            if let Some(b) = t.miss(a) {
                blocked.push((i, b.prefix.to_string()));
            }
        }
        assert_eq!(
            blocked.first().map(|b| b.1.as_str()),
            Some("2001:db8:7::/48")
        );
        assert_eq!(
            blocked.first().map(|b| b.0),
            Some(15),
            "blocked at four times the budget: {blocked:?}"
        );
        assert!(
            t.blocked_for(ip("2001:db8:7:ffff::9")).is_some(),
            "every /64 inside"
        );
        assert_eq!(t.blocked_for(ip("2001:db8:8::1")), None, "not the next /48");
        // One /56 alone: blocked at twice the budget, its neighbour /56 still free.
        let t = Throttle::new(Settings {
            budget: 4,
            refill_per_minute: 0,
            cooldown: Duration::from_secs(600),
            max_sources: 10_000,
        });
        let mut first_block = None;
        for i in 0..8u16 {
            if let Some(b) = t.miss(ip(&format!("2001:db8:9:{i:x}::1"))) {
                first_block.get_or_insert((i, b.prefix.to_string()));
            }
        }
        assert_eq!(first_block, Some((7, "2001:db8:9::/56".to_owned())));
        assert_eq!(t.blocked_for(ip("2001:db8:9:100::1")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_fresh_networks_does_not_set_a_blocked_one_free() {
        let t = Throttle::new(Settings {
            budget: 1,
            refill_per_minute: 0,
            cooldown: Duration::from_secs(600),
            max_sources: SHARDS,
        });
        // Block many networks, more than the table's share, then flood it.
        let blocked: Vec<IpAddr> = (0..=255u8).map(|a| IpAddr::from([10, a, 0, 1])).collect();
        for a in &blocked {
            t.miss(*a);
        }
        for a in 0..=255u8 {
            for b in 1..=8u8 {
                t.miss(IpAddr::from([172, a, b, 1]));
            }
        }
        let still = blocked
            .iter()
            .filter(|a| t.blocked_for(**a).is_some())
            .count();
        // A shard keeps up to twice its share of blocked networks and lets unblocked ones go
        // first: about one blocked network per shard survives (evicting blocked ones first
        // would leave none).
        assert!(still >= SHARDS / 2, "{still} of 256 still blocked");
        assert!(t.tracked() <= 2 * SHARDS + SHARDS);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded_and_blocked_sources_are_kept() {
        let t = Throttle::new(Settings {
            budget: 2,
            refill_per_minute: 0,
            cooldown: Duration::from_secs(600),
            max_sources: SHARDS * 4,
        });
        assert!(t.miss(ip("192.0.2.1")).is_none());
        assert!(t.miss(ip("192.0.2.1")).is_some());
        for a in 0..=255u8 {
            for b in 0..16u8 {
                t.miss(IpAddr::from([10, a, b, 1]));
            }
        }
        assert!(t.tracked() <= SHARDS * 4);
        assert!(
            t.blocked_for(ip("192.0.2.9")).is_some(),
            "blocked sources are evicted last"
        );
        t.sweep();
        assert!(t.tracked() <= SHARDS * 4);
    }
}
