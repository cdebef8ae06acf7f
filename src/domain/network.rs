//! IP networks written as CIDR (`192.0.2.0/24`, `2001:db8::/32`): parsing, membership, and
//! the network an address belongs to at a given prefix length (its /24 or /64).
//!
//! Owns what a network is and how it is written. Knows nothing of sockets, of which networks
//! are trusted, or of what a network is counted for.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network: its first address and prefix length. Host bits are always zero,
/// so equal networks compare (and hash) equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Network {
    first: IpAddr,
    bits: u8,
}

/// Why a string is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// Not `ADDRESS` or `ADDRESS/LENGTH`.
    #[error("{0:?} is not a network like 192.0.2.0/24, 2001:db8::/32 or a single address")]
    Syntax(String),
    /// The prefix length is longer than the address (32 bits for IPv4, 128 for IPv6).
    #[error("{0:?}: the prefix length is at most 32 for IPv4 and 128 for IPv6")]
    Length(String),
    /// Bits set after the prefix: most likely a typo in the address or the length.
    #[error("{written:?} has bits set after its prefix; the network is {network}")]
    HostBits {
        /// As written.
        written: String,
        /// The network the prefix names.
        network: Network,
    },
}

impl Network {
    /// The network of `bits` leading bits around `ip` (host bits cleared; `bits` is capped at
    /// the address length). An IPv4-mapped IPv6 address counts as the IPv4 address it maps.
    pub fn around(ip: IpAddr, bits: u8) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let bits = bits.min(32);
                Self {
                    first: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(bits))),
                    bits,
                }
            }
            IpAddr::V6(v6) => {
                let bits = bits.min(128);
                Self {
                    first: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(bits))),
                    bits,
                }
            }
        }
    }

    /// The network a client's address is counted in: its /24 (IPv4) or /64 (IPv6), the usual
    /// size of one site.
    pub fn site_of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            v4 @ IpAddr::V4(_) => Self::around(v4, 24),
            v6 @ IpAddr::V6(_) => Self::around(v6, 64),
        }
    }

    /// Whether `ip` is inside. An IPv4-mapped IPv6 address is matched as the IPv4 address it
    /// maps (what a dual-stack listener reports for IPv4 clients).
    pub fn contains(&self, ip: IpAddr) -> bool {
        Self::around(ip, self.bits) == *self
    }

    /// The first address.
    pub fn first(&self) -> IpAddr {
        self.first
    }

    /// The prefix length.
    pub fn bits(&self) -> u8 {
        self.bits
    }
}

fn mask_v4(bits: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0)
}

fn mask_v6(bits: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0)
}

impl FromStr for Network {
    type Err = NetworkError;

    /// `ADDRESS/LENGTH`, or a single address (a /32 or /128). Surrounding white space is
    /// ignored; bits after the prefix are refused rather than cleared, so a typo cannot widen
    /// or move a network silently.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let written = s.trim();
        let syntax = || NetworkError::Syntax(written.to_owned());
        let (address, length) = match written.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (written, None),
        };
        let ip: IpAddr = address.parse().map_err(|_| syntax())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match length {
            None => max,
            // Digits only: `u8::from_str` would also take a sign.
            Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse::<u8>().map_err(|_| syntax())?
            }
            Some(_) => return Err(syntax()),
        };
        if bits > max {
            return Err(NetworkError::Length(written.to_owned()));
        }
        // An IPv4-mapped network (`::ffff:192.0.2.0/120`) is the IPv4 network it maps: that is
        // how `contains` sees a client's mapped address.
        if let IpAddr::V6(v6) = ip {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), bits >= 96) {
                let bits = bits - 96;
                let first = Ipv4Addr::from(u32::from(v4) & mask_v4(bits));
                return if first == v4 {
                    Ok(Network {
                        first: IpAddr::V4(first),
                        bits,
                    })
                } else {
                    Err(NetworkError::HostBits {
                        written: written.to_owned(),
                        network: Network {
                            first: IpAddr::V4(first),
                            bits,
                        },
                    })
                };
            }
        }
        let network = match ip {
            IpAddr::V4(v4) => Network {
                first: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(bits))),
                bits,
            },
            IpAddr::V6(v6) => Network {
                first: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(bits))),
                bits,
            },
        };
        if network.first != ip {
            return Err(NetworkError::HostBits {
                written: written.to_owned(),
                network,
            });
        }
        Ok(network)
    }
}

impl serde::Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `ip` is inside one of `networks`; an empty list admits every address.
pub fn admits(networks: &[Network], ip: IpAddr) -> bool {
    networks.is_empty() || networks.iter().any(|n| n.contains(ip))
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.first, self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_and_single_addresses_parse() {
        assert_eq!(net("192.0.2.0/24").to_string(), "192.0.2.0/24");
        assert_eq!(net(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
        assert_eq!(net("127.0.0.1").to_string(), "127.0.0.1/32");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("::1").to_string(), "::1/128");
    }

    #[test]
    fn malformed_networks_are_refused_with_the_reason() {
        for s in [
            "",
            "/24",
            "192.0.2.0/",
            "192.0.2.0/+8",
            "192.0.2.0/ 8",
            "192.0.2/24",
            "192.0.2.0/24/1",
            "host.example/24",
            "010.0.0.0/8",
        ] {
            assert!(
                matches!(s.parse::<Network>(), Err(NetworkError::Syntax(_))),
                "{s:?}"
            );
        }
        assert!(matches!(
            "192.0.2.0/33".parse::<Network>(),
            Err(NetworkError::Length(_))
        ));
        assert!(matches!(
            "::/129".parse::<Network>(),
            Err(NetworkError::Length(_))
        ));
        let err = "192.0.2.7/24".parse::<Network>().unwrap_err();
        assert!(err.to_string().contains("192.0.2.0/24"), "{err}");
    }

    #[test]
    fn a_written_ipv4_mapped_network_is_the_ipv4_network_it_maps() {
        // Found by the `network` fuzz target: a mapped network contained nothing.
        let n: Network = "::ffff:192.0.2.1/128".parse().unwrap();
        assert_eq!(n, "192.0.2.1/32".parse().unwrap());
        assert!(n.contains(ip("192.0.2.1")));
        assert!(n.contains(ip("::ffff:192.0.2.1")));
        let n: Network = "::ffff:192.0.2.0/120".parse().unwrap();
        assert_eq!(n.to_string().parse::<Network>(), Ok(n));
        assert!("::ffff:192.0.2.1/120".parse::<Network>().is_err());
    }

    #[test]
    fn membership_counts_ipv4_mapped_addresses_as_ipv4() {
        let n = net("192.0.2.0/24");
        assert!(n.contains(ip("192.0.2.200")));
        assert!(n.contains(ip("::ffff:192.0.2.9")));
        assert!(!n.contains(ip("192.0.3.1")));
        assert!(!n.contains(ip("2001:db8::1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.5")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("2001:db8:1::/48").contains(ip("2001:db8:1:ffff::1")));
    }

    #[test]
    fn a_site_is_a_slash_24_or_a_slash_64() {
        assert_eq!(
            Network::site_of(ip("198.51.100.77")),
            net("198.51.100.0/24")
        );
        assert_eq!(
            Network::site_of(ip("::ffff:198.51.100.77")),
            net("198.51.100.0/24")
        );
        assert_eq!(
            Network::site_of(ip("2001:db8:0:5:1:2:3:4")),
            net("2001:db8:0:5::/64")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,50}") {
            let _ = s.parse::<Network>();
        }

        #[test]
        fn written_networks_round_trip(v4 in any::<u32>(), v6 in any::<u128>(), b4 in 0u8..=32, b6 in 0u8..=128) {
            for n in [
                Network::around(IpAddr::V4(Ipv4Addr::from(v4)), b4),
                Network::around(IpAddr::V6(Ipv6Addr::from(v6)), b6),
            ] {
                prop_assert_eq!(n.to_string().parse::<Network>(), Ok(n));
                prop_assert!(n.contains(n.first()));
            }
        }

        #[test]
        fn an_address_is_inside_exactly_the_networks_that_share_its_prefix(a in any::<u32>(), b in any::<u32>(), bits in 0u8..=32) {
            let n = Network::around(IpAddr::V4(Ipv4Addr::from(a)), bits);
            let same_prefix = (a ^ b) & mask_v4(bits) == 0;
            prop_assert_eq!(n.contains(IpAddr::V4(Ipv4Addr::from(b))), same_prefix);
        }
    }
}
