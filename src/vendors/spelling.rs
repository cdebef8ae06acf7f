//! How phones spell things in paths and User-Agents: tokens, versions, MACs, model names.
//!
//! Shared by every vendor's recognition. Borrowed and allocation-free (the phone's hot path
//! uses it); case-insensitive where phones are. Knows no vendor.

use crate::domain::Mac;

/// White-space separated tokens; runs of spaces count as one.
pub fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split_ascii_whitespace()
}

/// A MAC written as 12 hex digits or in the 17-character colon form.
pub fn mac_token(t: &str) -> Option<Mac> {
    let b = t.as_bytes();
    match b.len() {
        12 => Mac::from_hex12(b),
        17 => Mac::from_colon17(b),
        _ => None,
    }
}

/// A version starts with a digit and holds a dot (`66.86.0.15`, `10.1.33.33`, `83.V2.11.0`).
pub fn is_version(t: &str) -> bool {
    t.as_bytes().first().is_some_and(u8::is_ascii_digit) && t.contains('.')
}

/// A model token: 1–32 letters, digits, `_` or `-`.
pub fn is_model_token(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 32
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// `s` without `prefix`, compared case-insensitively; `None` when it does not start with it.
pub fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let n = prefix.len();
    (s.len() >= n && s.is_char_boundary(n) && s[..n].eq_ignore_ascii_case(prefix)).then(|| &s[n..])
}

/// `s` without `suffix`, compared case-insensitively; `None` when it does not end with it.
pub fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let n = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(n) && s[n..].eq_ignore_ascii_case(suffix)).then(|| &s[..n])
}

/// Compares two model names as phones spell them, ignoring case and treating `-` and runs of
/// spaces alike (`N720-DM-PRO` = `N720 DM PRO`). Allocation-free.
pub fn same_model(a: &str, b: &str) -> bool {
    fn parts(s: &str) -> impl Iterator<Item = &str> {
        s.split(|c: char| c == '-' || c.is_ascii_whitespace())
            .filter(|p| !p.is_empty())
    }
    let (mut x, mut y) = (parts(a), parts(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.eq_ignore_ascii_case(q) => {}
            _ => return false,
        }
    }
}

/// The leading numbers of a dotted version, for comparisons (`2.42.1` → `[2, 42, 1]`); parts
/// that are not numbers end it. At most four parts.
pub fn version_numbers(v: &str) -> ([u32; 4], usize) {
    let mut out = [0u32; 4];
    let mut n = 0;
    for part in v.split('.') {
        if n == out.len() {
            break;
        }
        let digits = part.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            break;
        }
        out[n] = part[..digits].parse().unwrap_or(0);
        n += 1;
        if digits < part.len() {
            break;
        }
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_compare_as_phones_spell_them() {
        assert!(same_model("N720-DM-PRO", "n720 dm  pro"));
        assert!(same_model("T46S", "t46s"));
        assert!(!same_model("T46S", "T46G"));
        assert!(!same_model("N720", "N720 DM"));
        assert!(same_model("", " - "));
    }

    #[test]
    fn versions_split_into_numbers() {
        assert_eq!(version_numbers("2.42.1"), ([2, 42, 1, 0], 3));
        assert_eq!(version_numbers("70.108.00.000.000"), ([70, 108, 0, 0], 4));
        assert_eq!(version_numbers("2.12.0-release"), ([2, 12, 0, 0], 3));
        assert_eq!(version_numbers("V2.1"), ([0; 4], 0));
        assert_eq!(version_numbers("99999999999.1"), ([0; 4], 0));
    }

    #[test]
    fn prefixes_respect_character_boundaries() {
        assert_eq!(strip_prefix_ci("SNOMd785", "snom"), Some("d785"));
        assert_eq!(strip_prefix_ci("sn˘", "sno"), None);
        assert_eq!(strip_suffix_ci("D785-sip", "-SIP"), Some("D785"));
        assert_eq!(strip_suffix_ci("˘", "ab"), None);
    }
}
