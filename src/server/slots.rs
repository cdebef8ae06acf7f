//! Connection slots per client address and per client network (its /24 or /64), so neither a
//! few addresses nor one network can take every connection a listener has.
//!
//! Owns the counting; a slot is given back when its guard drops. Knows nothing of what the
//! connections carry, nor of where the client's address came from (the socket or a PROXY
//! header).

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;

use crate::domain::Network;

/// The caps: open connections at most per address, and per network of each family.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Per client address.
    pub per_address: usize,
    /// Per IPv4 /24.
    pub per_ipv4_network: usize,
    /// Per IPv6 /64.
    pub per_ipv6_network: usize,
}

/// Which cap a connection ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// Its address holds `per_address` connections already.
    Address,
    /// Its network holds its family's cap already.
    Network,
}

/// Open connections per address and per network of one listener.
pub struct Slots {
    caps: Caps,
    addresses: DashMap<IpAddr, usize, ahash::RandomState>,
    networks: DashMap<Network, usize, ahash::RandomState>,
}

/// One connection's place in both counts, given back on drop.
pub struct Slot {
    slots: Arc<Slots>,
    address: IpAddr,
    network: Network,
}

impl Slots {
    /// Empty counts with these caps.
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            addresses: DashMap::default(),
            networks: DashMap::default(),
        })
    }

    /// A slot for a connection from `ip`, or the cap it would exceed.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Full> {
        // A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6 addresses: count them
        // as the IPv4 addresses they are.
        let address = ip.to_canonical();
        let network = Network::site_of(address);
        let network_cap = if address.is_ipv4() {
            self.caps.per_ipv4_network
        } else {
            self.caps.per_ipv6_network
        };
        if !acquire(&self.addresses, address, self.caps.per_address) {
            return Err(Full::Address);
        }
        if !acquire(&self.networks, network, network_cap) {
            release(&self.addresses, &address);
            return Err(Full::Network);
        }
        Ok(Slot {
            slots: self.clone(),
            address,
            network,
        })
    }

    /// Open connections counted for `ip`'s address and network (tests and diagnostics).
    pub fn open(&self, ip: IpAddr) -> (usize, usize) {
        let address = ip.to_canonical();
        let network = Network::site_of(address);
        (
            self.addresses.get(&address).map_or(0, |n| *n),
            self.networks.get(&network).map_or(0, |n| *n),
        )
    }
}

fn acquire<K: Eq + Hash>(map: &DashMap<K, usize, ahash::RandomState>, key: K, cap: usize) -> bool {
    let mut count = map.entry(key).or_insert(0);
    if *count >= cap {
        return false;
    }
    *count += 1;
    true
}

fn release<K: Eq + Hash>(map: &DashMap<K, usize, ahash::RandomState>, key: &K) {
    // Remove the entry at zero so the maps only hold clients with open connections.
    map.remove_if_mut(key, |_, n| {
        *n = n.saturating_sub(1);
        *n == 0
    });
}

impl Drop for Slot {
    fn drop(&mut self) {
        release(&self.slots.addresses, &self.address);
        release(&self.slots.networks, &self.network);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn slots() -> Arc<Slots> {
        Slots::new(Caps {
            per_address: 2,
            per_ipv4_network: 3,
            per_ipv6_network: 4,
        })
    }

    #[test]
    fn an_address_and_a_network_each_have_a_cap() {
        let s = slots();
        let a = [s.take(ip("192.0.2.1")), s.take(ip("192.0.2.1"))];
        assert!(a.iter().all(Result::is_ok));
        assert_eq!(s.take(ip("192.0.2.1")).err(), Some(Full::Address));
        let third = s.take(ip("192.0.2.2")).unwrap();
        assert_eq!(s.take(ip("192.0.2.3")).err(), Some(Full::Network));
        // A refusal by network takes nothing: the address is still free.
        assert_eq!(s.open(ip("192.0.2.3")), (0, 3));
        // Another network is untouched.
        assert!(s.take(ip("192.0.3.1")).is_ok());
        drop(third);
        assert!(s.take(ip("192.0.2.3")).is_ok());
    }

    #[test]
    fn ipv6_counts_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let s = slots();
        let held: Vec<_> = (1..=4)
            .map(|i| s.take(ip(&format!("2001:db8:0:1::{i}"))).unwrap())
            .collect();
        assert_eq!(
            s.take(ip("2001:db8:0:1::99")).err(),
            Some(Full::Network),
            "a fresh address in the same /64 gains nothing"
        );
        assert!(s.take(ip("2001:db8:0:2::1")).is_ok());
        let mapped = s.take(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(s.open(ip("192.0.2.1")), (1, 1));
        drop((held, mapped));
    }

    #[test]
    fn given_back_slots_leave_no_entry() {
        let s = slots();
        let a = s.take(ip("198.51.100.7")).unwrap();
        let b = s.take(ip("198.51.100.8")).unwrap();
        drop((a, b));
        assert!(s.addresses.is_empty() && s.networks.is_empty());
    }
}
