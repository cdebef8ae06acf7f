//! Vendors zerotouch provisions and the table that tells a vendor from a MAC's OUI.
//!
//! The OUI table is data: shipped defaults from the IEEE registry, extendable from configuration
//! so an operator can add a prefix the day a vendor gets one. Knows nothing of requests or storage.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::mac::{Mac, Oui};

/// A phone maker whose provisioning protocol zerotouch speaks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Vendor {
    /// Yealink desk phones, DECT bases and conference phones.
    Yealink,
    /// Snom desk phones and M-series DECT bases.
    Snom,
    /// Gigaset DECT bases (N510/N720, Nx70 family) and Maxwell desk phones.
    Gigaset,
}

impl Vendor {
    /// Every supported vendor, in a fixed order (also the order of metric label slots).
    pub const ALL: [Vendor; 3] = [Vendor::Yealink, Vendor::Snom, Vendor::Gigaset];

    /// The lower-case name used in configuration, the API, template paths and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Snom => "snom",
            Vendor::Gigaset => "gigaset",
        }
    }

    /// Position in [`Vendor::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vendor name that zerotouch does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported vendor {0:?}: expected yealink, snom or gigaset")]
pub struct UnknownVendor(pub String);

impl FromStr for Vendor {
    type Err = UnknownVendor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownVendor(s.to_owned()))
    }
}

impl serde::Serialize for Vendor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Vendor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Shipped OUI prefixes per vendor (IEEE registry; see vendors.md). Snom's M-series DECT bases
/// are built by RTX and Gigaset's oldest devices carry Siemens prefixes: both are included
/// because such devices are in the field.
pub const DEFAULT_OUIS: &[(Vendor, [u8; 3])] = &[
    (Vendor::Yealink, [0x00, 0x15, 0x65]),
    (Vendor::Yealink, [0x24, 0x9a, 0xd8]),
    (Vendor::Yealink, [0x80, 0x5e, 0x0c]),
    (Vendor::Yealink, [0x80, 0x5e, 0xc0]),
    (Vendor::Yealink, [0x44, 0xdb, 0xd2]),
    (Vendor::Yealink, [0xc4, 0xfc, 0x22]),
    (Vendor::Yealink, [0x34, 0x97, 0xd7]),
    (Vendor::Yealink, [0x64, 0x4f, 0x56]),
    (Vendor::Yealink, [0xb0, 0x61, 0xa9]),
    (Vendor::Yealink, [0xec, 0x1d, 0xa9]),
    (Vendor::Yealink, [0xf0, 0x16, 0x53]),
    (Vendor::Snom, [0x00, 0x04, 0x13]),
    (Vendor::Snom, [0x1c, 0x71, 0x26]),
    (Vendor::Snom, [0x00, 0x08, 0x7b]),
    (Vendor::Gigaset, [0x7c, 0x2f, 0x80]),
    (Vendor::Gigaset, [0x58, 0x9e, 0xc6]),
    (Vendor::Gigaset, [0x00, 0x21, 0x04]),
    (Vendor::Gigaset, [0x14, 0xb3, 0x70]),
    (Vendor::Gigaset, [0x00, 0x01, 0xe3]),
];

/// Which vendor made a device, from its MAC's OUI.
#[derive(Clone, Debug)]
pub struct OuiTable {
    by_oui: HashMap<Oui, Vendor>,
}

/// Two vendors claim one OUI in the configured table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OUI {oui} is listed for both {first} and {second}")]
pub struct ConflictingOui {
    /// The prefix listed twice.
    pub oui: Oui,
    /// The vendor it was first listed for.
    pub first: Vendor,
    /// The vendor it was listed for again.
    pub second: Vendor,
}

impl OuiTable {
    /// The shipped table plus `extra` prefixes from configuration.
    pub fn with_extra(
        extra: impl IntoIterator<Item = (Vendor, Oui)>,
    ) -> Result<Self, ConflictingOui> {
        let mut by_oui = HashMap::new();
        let defaults = DEFAULT_OUIS.iter().map(|&(v, o)| (v, Oui(o)));
        for (vendor, oui) in defaults.chain(extra) {
            match by_oui.insert(oui, vendor) {
                Some(first) if first != vendor => {
                    return Err(ConflictingOui {
                        oui,
                        first,
                        second: vendor,
                    })
                }
                _ => {}
            }
        }
        Ok(Self { by_oui })
    }

    /// The vendor whose prefix `mac` carries, if it is one zerotouch supports.
    pub fn vendor_of(&self, mac: Mac) -> Option<Vendor> {
        self.by_oui.get(&mac.oui()).copied()
    }

    /// All prefixes of one vendor, sorted (for documentation and `check-config`).
    pub fn prefixes(&self, vendor: Vendor) -> Vec<Oui> {
        let mut v: Vec<Oui> = self
            .by_oui
            .iter()
            .filter(|(_, &v)| v == vendor)
            .map(|(&o, _)| o)
            .collect();
        v.sort();
        v
    }
}

impl Default for OuiTable {
    fn default() -> Self {
        // The shipped table lists each prefix once (a unit test checks it).
        Self {
            by_oui: DEFAULT_OUIS.iter().map(|&(v, o)| (Oui(o), v)).collect(),
        }
    }
}

/// A set of vendors (those with a redirect service configured, for one).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct VendorSet(u8);

impl VendorSet {
    /// No vendor.
    pub const EMPTY: VendorSet = VendorSet(0);

    /// The set with `vendor` added.
    pub const fn with(self, vendor: Vendor) -> VendorSet {
        VendorSet(self.0 | 1 << vendor.index())
    }

    /// Whether `vendor` is in the set.
    pub const fn contains(self, vendor: Vendor) -> bool {
        self.0 & 1 << vendor.index() != 0
    }

    /// Whether no vendor is.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The vendors in the set, in [`Vendor::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Vendor> {
        Vendor::ALL.into_iter().filter(move |v| self.contains(*v))
    }
}

impl FromIterator<Vendor> for VendorSet {
    fn from_iter<I: IntoIterator<Item = Vendor>>(iter: I) -> Self {
        iter.into_iter().fold(VendorSet::EMPTY, VendorSet::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_prefixes_resolve() {
        let t = OuiTable::default();
        let v = |s: &str| t.vendor_of(Mac::parse(s).unwrap());
        assert_eq!(v("80:5E:C0:17:DE:13"), Some(Vendor::Yealink));
        assert_eq!(v("000413922D24"), Some(Vendor::Snom));
        assert_eq!(v("7C2F80E0D605"), Some(Vendor::Gigaset));
        assert_eq!(v("001122334455"), None);
    }

    #[test]
    fn the_shipped_table_lists_each_prefix_once() {
        assert!(OuiTable::with_extra([]).is_ok());
        assert_eq!(OuiTable::default().by_oui.len(), DEFAULT_OUIS.len());
    }

    #[test]
    fn configured_prefixes_extend_the_table() {
        let t = OuiTable::with_extra([(Vendor::Snom, "00:11:22".parse().unwrap())]).unwrap();
        assert_eq!(
            t.vendor_of(Mac::parse("001122334455").unwrap()),
            Some(Vendor::Snom)
        );
    }

    #[test]
    fn a_prefix_cannot_belong_to_two_vendors() {
        let err = OuiTable::with_extra([(Vendor::Snom, "00:15:65".parse().unwrap())]).unwrap_err();
        assert_eq!(err.first, Vendor::Yealink);
    }

    #[test]
    fn vendor_names_parse_case_insensitively() {
        assert_eq!("Yealink".parse::<Vendor>(), Ok(Vendor::Yealink));
        assert!("polycom".parse::<Vendor>().is_err());
    }

    #[test]
    fn vendor_sets_hold_what_was_added() {
        let set: VendorSet = [Vendor::Snom, Vendor::Gigaset].into_iter().collect();
        assert!(!set.contains(Vendor::Yealink));
        assert!(set.contains(Vendor::Snom) && set.contains(Vendor::Gigaset));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Vendor::Snom, Vendor::Gigaset]
        );
        assert!(VendorSet::EMPTY.is_empty() && !set.is_empty());
    }
}
