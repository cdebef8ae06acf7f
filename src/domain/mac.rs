//! MAC addresses: parsing every notation a person or a phone writes, and the canonical form.
//!
//! Owns the rules for what a device MAC is (12 hex digits, a unicast, non-zero address) and its
//! spellings on the wire. Knows nothing of vendors, HTTP or storage.

use std::fmt;
use std::str::FromStr;

use macaddr::MacAddr6;

/// A device's hardware address, normalised. Equal MACs compare equal whatever notation they came in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(MacAddr6);

/// Why a string is not a MAC a device can be registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    /// Not 12 hex digits in one of the usual notations.
    #[error("not a MAC address: expected 12 hex digits, optionally separated by ':' or '-' (every 2) or '.' (every 4)")]
    Syntax,
    /// The all-zero address is a placeholder, never a real device.
    #[error("the zero MAC address does not belong to a device")]
    Zero,
    /// Broadcast and multicast addresses name groups, not one device.
    #[error("a multicast or broadcast MAC address does not belong to a device")]
    Multicast,
}

/// The first three bytes of a MAC: the IEEE organisationally unique identifier of its maker.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Oui(pub [u8; 3]);

impl Mac {
    /// Builds a MAC from its six bytes.
    pub const fn from_bytes(bytes: [u8; 6]) -> Self {
        Self(MacAddr6::new(
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5],
        ))
    }

    /// The six bytes, most significant first.
    pub fn bytes(&self) -> [u8; 6] {
        self.0.into_array()
    }

    /// The maker's prefix.
    pub fn oui(&self) -> Oui {
        let b = self.bytes();
        Oui([b[0], b[1], b[2]])
    }

    /// Parses any notation a person types: `805EC017DE13`, `80:5e:c0:17:de:13`,
    /// `80-5E-C0-17-DE-13`, `805e.c017.de13`, `805EC0-17DE13`; surrounding white space is ignored.
    /// Only the syntax is checked here; [`Mac::check_assignable`] says whether a device can have it.
    pub fn parse(input: &str) -> Result<Self, MacError> {
        let s = input.trim().as_bytes();
        let mut digits = [0u8; 12];
        let separator_at: &[usize] = match s.len() {
            12 => &[],
            13 => &[6],
            14 => &[4, 9],
            17 => &[2, 5, 8, 11, 14],
            _ => return Err(MacError::Syntax),
        };
        let separator = separator_at.first().map(|&i| s[i]);
        match (s.len(), separator) {
            (12, None) => {}
            (13, Some(b'-')) | (14, Some(b'.')) | (17, Some(b':' | b'-')) => {}
            _ => return Err(MacError::Syntax),
        }
        let mut n = 0;
        for (i, &c) in s.iter().enumerate() {
            if separator_at.contains(&i) {
                if Some(c) != separator {
                    return Err(MacError::Syntax);
                }
                continue;
            }
            digits[n] = c;
            n += 1;
        }
        Self::from_hex12(&digits).ok_or(MacError::Syntax)
    }

    /// Parses exactly 12 hex digits of either case with no separators, the form phones put in
    /// file names and most User-Agents. Allocation-free; used on the phone's hot path.
    pub fn from_hex12(digits: &[u8]) -> Option<Self> {
        if digits.len() != 12 {
            return None;
        }
        let mut bytes = [0u8; 6];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            bytes[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self::from_bytes(bytes))
    }

    /// Parses the colon form `80:5e:c0:17:de:13` (either case), as Yealink User-Agents write it.
    pub fn from_colon17(s: &[u8]) -> Option<Self> {
        if s.len() != 17 {
            return None;
        }
        let mut digits = [0u8; 12];
        for (k, chunk) in s.chunks(3).enumerate() {
            if chunk.len() == 3 && chunk[2] != b':' {
                return None;
            }
            digits[2 * k] = chunk[0];
            digits[2 * k + 1] = chunk[1];
        }
        Self::from_hex12(&digits)
    }

    /// Refuses addresses no single device can own: zero, broadcast and multicast.
    pub fn check_assignable(&self) -> Result<(), MacError> {
        if self.0.is_nil() {
            Err(MacError::Zero)
        } else if self.0.is_multicast() || self.0.is_broadcast() {
            Err(MacError::Multicast)
        } else {
            Ok(())
        }
    }

    /// 12 lower-case hex digits, the canonical form stored and returned by the API.
    pub fn to_lower_hex(&self) -> String {
        let mut s = String::with_capacity(12);
        self.write_hex(&mut s, false);
        s
    }

    /// 12 upper-case hex digits, the form Snom and Gigaset put in file names.
    pub fn to_upper_hex(&self) -> String {
        let mut s = String::with_capacity(12);
        self.write_hex(&mut s, true);
        s
    }

    fn write_hex(&self, out: &mut String, upper: bool) {
        let table = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        for b in self.bytes() {
            out.push(table[usize::from(b >> 4)] as char);
            out.push(table[usize::from(b & 0xf)] as char);
        }
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Mac {
    /// The canonical form: 12 lower-case hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl FromStr for Mac {
    type Err = MacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Mac::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Oui {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}:{:02X}:{:02X}", self.0[0], self.0[1], self.0[2])
    }
}

impl FromStr for Oui {
    type Err = MacError;
    /// Accepts `80:5E:C0`, `80-5e-c0` or `805EC0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().as_bytes();
        let digits: [u8; 6] = match s.len() {
            6 => [s[0], s[1], s[2], s[3], s[4], s[5]],
            8 if s[2] == s[5] && matches!(s[2], b':' | b'-') => {
                [s[0], s[1], s[3], s[4], s[6], s[7]]
            }
            _ => return Err(MacError::Syntax),
        };
        let mut out = [0u8; 3];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            out[i] = (hex_value(pair[0]).ok_or(MacError::Syntax)? << 4)
                | hex_value(pair[1]).ok_or(MacError::Syntax)?;
        }
        Ok(Oui(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXPECTED: [u8; 6] = [0x80, 0x5e, 0xc0, 0x17, 0xde, 0x13];

    #[test]
    fn every_usual_notation_normalises_to_one() {
        for s in [
            "805EC017DE13",
            "805ec017de13",
            "80:5E:C0:17:DE:13",
            "80:5e:c0:17:de:13",
            "80-5E-C0-17-DE-13",
            "805E.C017.DE13",
            "805ec0-17de13",
            "  80:5e:c0:17:de:13\n",
        ] {
            assert_eq!(Mac::parse(s).map(|m| m.bytes()), Ok(EXPECTED), "{s:?}");
        }
    }

    #[test]
    fn malformed_notations_are_refused() {
        for s in [
            "",
            "805EC017DE1",
            "805EC017DE133",
            "80:5E:C0:17:DE:1G",
            "80:5E-C0:17:DE:13",
            "80.5E.C0.17.DE.13",
            "805E:C017:DE13",
            "8:05E:C0:17:DE:13",
            "805EC0:17DE13",
            "+05EC017DE13",
        ] {
            assert_eq!(Mac::parse(s), Err(MacError::Syntax), "{s:?}");
        }
    }

    #[test]
    fn group_and_zero_addresses_are_not_assignable() {
        assert_eq!(
            Mac::parse("000000000000").unwrap().check_assignable(),
            Err(MacError::Zero)
        );
        assert_eq!(
            Mac::parse("FFFFFFFFFFFF").unwrap().check_assignable(),
            Err(MacError::Multicast)
        );
        assert_eq!(
            Mac::parse("01005E000001").unwrap().check_assignable(),
            Err(MacError::Multicast)
        );
        assert_eq!(
            Mac::parse("805EC017DE13").unwrap().check_assignable(),
            Ok(())
        );
    }

    #[test]
    fn display_forms() {
        let mac = Mac::from_bytes(EXPECTED);
        assert_eq!(mac.to_string(), "805ec017de13");
        assert_eq!(mac.to_lower_hex(), "805ec017de13");
        assert_eq!(mac.to_upper_hex(), "805EC017DE13");
        assert_eq!(mac.oui().to_string(), "80:5E:C0");
    }

    #[test]
    fn colon_form_from_user_agents() {
        assert_eq!(
            Mac::from_colon17(b"80:5e:c0:17:DE:13").map(|m| m.bytes()),
            Some(EXPECTED)
        );
        assert_eq!(Mac::from_colon17(b"80-5e-c0-17-DE-13"), None);
        assert_eq!(Mac::from_colon17(b"80:5e:c0:17:DE:1"), None);
    }

    #[test]
    fn oui_notations() {
        for s in ["80:5E:C0", "80-5e-c0", "805ec0"] {
            assert_eq!(s.parse::<Oui>(), Ok(Oui([0x80, 0x5e, 0xc0])), "{s}");
        }
        for s in ["80:5E-C0", "805E", "80:5E:CG"] {
            assert!(s.parse::<Oui>().is_err(), "{s}");
        }
    }

    fn notation(bytes: [u8; 6], style: u8, upper: bool) -> String {
        let hex: Vec<String> = bytes
            .iter()
            .map(|b| {
                if upper {
                    format!("{b:02X}")
                } else {
                    format!("{b:02x}")
                }
            })
            .collect();
        let flat = hex.concat();
        match style % 5 {
            0 => flat,
            1 => hex.join(":"),
            2 => hex.join("-"),
            3 => format!("{}.{}.{}", &flat[0..4], &flat[4..8], &flat[8..12]),
            _ => format!("{}-{}", &flat[0..6], &flat[6..12]),
        }
    }

    proptest! {
        #[test]
        fn any_notation_round_trips(bytes in any::<[u8; 6]>(), style in 0u8..5, upper in any::<bool>()) {
            let parsed = Mac::parse(&notation(bytes, style, upper)).unwrap();
            prop_assert_eq!(parsed.bytes(), bytes);
            prop_assert_eq!(Mac::parse(&parsed.to_string()).unwrap(), parsed);
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,40}") {
            let _ = Mac::parse(&s);
            let _ = Mac::from_hex12(s.as_bytes());
            let _ = Mac::from_colon17(s.as_bytes());
            let _ = s.parse::<Oui>();
        }

        #[test]
        fn hex12_agrees_with_parse(s in "[0-9a-fA-F]{12}") {
            prop_assert_eq!(Mac::from_hex12(s.as_bytes()), Mac::parse(&s).ok());
        }
    }
}
