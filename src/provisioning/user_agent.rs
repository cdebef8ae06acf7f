//! User-Agent parsing for Yealink, Snom and Gigaset phones.
//!
//! Parses by tokens, never by fixed positions: real phones send runs of spaces, either case of
//! the vendor word, MACs with or without colons, and builds with spaces in them (vendors.md).
//! Borrowed and allocation-free; used on the phone's hot path. Knows nothing of HTTP.

use crate::domain::{Mac, Vendor};

/// What a phone says about itself in its User-Agent.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct UserAgent<'a> {
    /// The vendor, when the User-Agent names it; `None` for Yealink's vendor-less form
    /// (`W52P 25.30.0.2 00:15:65:44:b3:7c`), where the MAC's OUI decides.
    pub vendor: Option<Vendor>,
    /// Model as the phone names it (`T46S`, `D785`, `N870 IP PRO`, `N720-DM-PRO`).
    pub model: Option<&'a str>,
    /// Firmware version.
    pub firmware: Option<&'a str>,
    /// The MAC, when the phone sends it.
    pub mac: Option<Mac>,
}

impl<'a> UserAgent<'a> {
    /// Parses a User-Agent. Returns `None` for anything that is not a phone zerotouch knows
    /// (a browser, curl, an empty header): the request is then recognised by path and OUI alone.
    pub fn parse(ua: &'a str) -> Option<Self> {
        let ua = ua.trim();
        if ua.is_empty() || ua.len() > 512 {
            return None;
        }
        parse_snom(ua)
            .or_else(|| parse_yealink(ua))
            .or_else(|| parse_gigaset(ua))
            .or_else(|| parse_vendorless(ua))
    }
}

fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split_ascii_whitespace()
}

fn mac_token(t: &str) -> Option<Mac> {
    let b = t.as_bytes();
    match b.len() {
        12 => Mac::from_hex12(b),
        17 => Mac::from_colon17(b),
        _ => None,
    }
}

/// A version starts with a digit and holds a dot (`66.86.0.15`, `10.1.33.33`, `83.V2.11.0`).
fn is_version(t: &str) -> bool {
    t.as_bytes().first().is_some_and(u8::is_ascii_digit) && t.contains('.')
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let n = prefix.len();
    (s.len() >= n && s.is_char_boundary(n) && s[..n].eq_ignore_ascii_case(prefix)).then(|| &s[n..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let n = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(n) && s[n..].eq_ignore_ascii_case(suffix)).then(|| &s[..n])
}

fn is_model(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 32
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// `Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)`,
/// `Snom M900 <version> <mac>`, `snom lid 3605`.
fn parse_snom(ua: &str) -> Option<UserAgent<'_>> {
    let mut it = tokens(ua).map(|t| t.trim_matches(|c| c == '(' || c == ')' || c == ';'));
    let rest = it.by_ref().find_map(|t| strip_prefix_ci(t, "snom"))?;
    let model = if rest.is_empty() {
        // `Snom M900 …` or `snom lid NNNN`: the model, if any, is the next token.
        None
    } else {
        Some(strip_suffix_ci(rest, "-SIP").unwrap_or(rest)).filter(|m| is_model(m))
    };
    let mut agent = UserAgent {
        vendor: Some(Vendor::Snom),
        model,
        ..UserAgent::default()
    };
    let mut expect_model = rest.is_empty();
    for t in it {
        if expect_model {
            expect_model = false;
            if t.eq_ignore_ascii_case("lid") {
                return Some(agent);
            }
            if is_model(t) && !is_version(t) {
                agent.model = Some(t);
                continue;
            }
        }
        if agent.firmware.is_none() && is_version(t) {
            agent.firmware = Some(t);
        } else if agent.mac.is_none() && agent.firmware.is_some() {
            agent.mac = mac_token(t);
        }
    }
    Some(agent)
}

/// `Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:13`, `yealink SIP VP-T49G …`, `Yealink W60B …`,
/// `Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0` (no MAC), T5x with 12 bare hex digits.
fn parse_yealink(ua: &str) -> Option<UserAgent<'_>> {
    let mut it = tokens(ua).peekable();
    let first = it.next()?;
    let mut agent = UserAgent {
        vendor: Some(Vendor::Yealink),
        ..UserAgent::default()
    };
    if first.eq_ignore_ascii_case("yealink") {
        // `SIP VP-T49G`: a lone `SIP` token before the model.
        if it.peek().is_some_and(|t| t.eq_ignore_ascii_case("SIP")) {
            it.next();
        }
        if let Some(&t) = it.peek() {
            if !is_version(t) && mac_token(t).is_none() {
                it.next();
                let model = strip_prefix_ci(t, "SIP-")
                    .or_else(|| strip_prefix_ci(t, "VP-"))
                    .unwrap_or(t);
                agent.model = Some(model).filter(|m| is_model(m));
            }
        }
    } else if let Some(model) = strip_prefix_ci(first, "yealink-") {
        agent.model = Some(model).filter(|m| is_model(m));
    } else {
        return None;
    }
    for t in it {
        if agent.firmware.is_none() && is_version(t) {
            agent.firmware = Some(t);
        } else if agent.mac.is_none() {
            agent.mac = mac_token(t);
        }
    }
    Some(agent)
}

/// `Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605;Handset=3`,
/// `N510 IP PRO/42.245.00.000.000;<MAC>`, `N720-DM-PRO/…`, `Maxwell 3 PRO/<version>;<MAC>`.
fn parse_gigaset(ua: &str) -> Option<UserAgent<'_>> {
    let (left, right) = ua.rsplit_once('/')?;
    let named = strip_prefix_ci(left, "gigaset");
    let model_part = named.unwrap_or(left).trim();
    let looks_like_gigaset_model = {
        let b = model_part.as_bytes();
        (b.len() >= 4 && b[0].is_ascii_alphabetic() && b[1..4].iter().all(u8::is_ascii_digit))
            || strip_prefix_ci(model_part, "maxwell").is_some()
    };
    if named.is_none() && !looks_like_gigaset_model {
        return None;
    }
    let mut fields = right.split(';').map(str::trim);
    let firmware = fields.next().filter(|v| !v.is_empty() && !v.contains(' '));
    let mut mac = None;
    for field in fields {
        if mac.is_none() {
            mac = mac_token(field);
        }
    }
    Some(UserAgent {
        vendor: Some(Vendor::Gigaset),
        model: Some(model_part).filter(|m| !m.is_empty() && m.len() <= 32),
        firmware,
        mac,
    })
}

/// `W52P 25.30.0.2 00:15:65:44:b3:7c`, `VP530P 23.70.0.40 00:15:65:31:4b:c0`: Yealink devices
/// that omit the vendor word. The vendor is left to the MAC's OUI.
fn parse_vendorless(ua: &str) -> Option<UserAgent<'_>> {
    let mut it = tokens(ua);
    let (model, firmware, mac) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || !is_model(model) || !is_version(firmware) {
        return None;
    }
    Some(UserAgent {
        vendor: None,
        model: Some(model),
        firmware: Some(firmware),
        mac: Some(mac_token(mac)?),
    })
}

/// Compares two model names as phones spell them, ignoring case and treating `-` and runs of
/// spaces alike (`N720-DM-PRO` = `N720 DM PRO`).
pub fn same_model(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split(|c: char| c == '-' || c.is_ascii_whitespace())
            .filter(|p| !p.is_empty())
            .map(|p| p.to_ascii_uppercase())
            .collect::<Vec<_>>()
    };
    a.eq_ignore_ascii_case(b) || norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mac(s: &str) -> Option<Mac> {
        Some(Mac::parse(s).unwrap())
    }

    #[track_caller]
    fn check(
        ua: &str,
        vendor: Option<Vendor>,
        model: Option<&str>,
        fw: Option<&str>,
        m: Option<&str>,
    ) {
        let got = UserAgent::parse(ua).unwrap_or_else(|| panic!("not recognised: {ua:?}"));
        assert_eq!(got.vendor, vendor, "vendor of {ua:?}");
        assert_eq!(got.model, model, "model of {ua:?}");
        assert_eq!(got.firmware, fw, "firmware of {ua:?}");
        assert_eq!(got.mac, m.and_then(mac), "mac of {ua:?}");
    }

    const Y: Option<Vendor> = Some(Vendor::Yealink);
    const S: Option<Vendor> = Some(Vendor::Snom);
    const G: Option<Vendor> = Some(Vendor::Gigaset);

    #[test]
    fn yealink_variants() {
        check(
            "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:13",
            Y,
            Some("T46S"),
            Some("66.86.0.15"),
            Some("805ec017de13"),
        );
        check(
            "yealink SIP-T28P 2.70.0.140 00:15:65:13:ae:0b",
            Y,
            Some("T28P"),
            Some("2.70.0.140"),
            Some("00156513ae0b"),
        );
        check(
            "Yealink SIP-T38G  38.70.0.125 00:15:65:2f:c3:5e",
            Y,
            Some("T38G"),
            Some("38.70.0.125"),
            Some("0015652fc35e"),
        );
        check(
            "Yealink W60B 77.83.0.10 80:5e:c0:aa:bb:cc",
            Y,
            Some("W60B"),
            Some("77.83.0.10"),
            Some("805ec0aabbcc"),
        );
        check(
            "Yealink CP860 37.72.0.5 00:15:65:8a:37:86",
            Y,
            Some("CP860"),
            Some("37.72.0.5"),
            Some("0015658a3786"),
        );
        check(
            "Yealink SIP VP-T49G 51.80.0.10 00:15:65:9b:5a:44",
            Y,
            Some("T49G"),
            Some("51.80.0.10"),
            Some("0015659b5a44"),
        );
        check(
            "Yealink SIP-T54W 96.86.0.100 805EC0AABBCC",
            Y,
            Some("T54W"),
            Some("96.86.0.100"),
            Some("805ec0aabbcc"),
        );
        check(
            "Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0",
            Y,
            Some("T46G"),
            Some("28.71.0.81"),
            None,
        );
        check(
            "YEALINK   SIP-T19P_E2   53.80.0.3   00:15:65:4c:4c:26",
            Y,
            Some("T19P_E2"),
            Some("53.80.0.3"),
            Some("0015654c4c26"),
        );
    }

    #[test]
    fn yealink_without_vendor_word() {
        check(
            "W52P 25.30.0.2 00:15:65:44:b3:7c",
            None,
            Some("W52P"),
            Some("25.30.0.2"),
            Some("00156544b37c"),
        );
        check(
            "VP530P 23.70.0.40 00:15:65:31:4b:c0",
            None,
            Some("VP530P"),
            Some("23.70.0.40"),
            Some("001565314bc0"),
        );
    }

    #[test]
    fn snom_variants() {
        check(
            "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)",
            S, Some("D785"), Some("10.1.33.33"), Some("000413922D24"),
        );
        check(
            "Mozilla/4.0 (compatible; snom710-SIP 8.7.3.25 1.1.3-s)",
            S,
            Some("710"),
            Some("8.7.3.25"),
            None,
        );
        check(
            "Mozilla/4.0 (compatible; snom320-SIP 8.7.5.13 SPEEX OPUS (Jul  2 2015) 00041325A6B1)",
            S,
            Some("320"),
            Some("8.7.5.13"),
            Some("00041325A6B1"),
        );
        check(
            "Snom M900 05.40.0004 00087b1a2b3c",
            S,
            Some("M900"),
            Some("05.40.0004"),
            Some("00087b1a2b3c"),
        );
        check("snom lid 3605", S, None, None, None);
        check(
            "Mozilla/4.0 (compatible; SNOMPA1-SIP 8.7.5.17 000413AABBCC)",
            S,
            Some("PA1"),
            Some("8.7.5.17"),
            Some("000413AABBCC"),
        );
    }

    #[test]
    fn gigaset_variants() {
        check(
            "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
            G,
            Some("N870 IP PRO"),
            Some("83.V2.11.0+build.a546b91"),
            Some("7C2F80E0D605"),
        );
        check(
            "Gigaset N870 IP PRO/83.V2.64.0-160-g1a2b3c4;7C2F80E0D605;Handset=3",
            G,
            Some("N870 IP PRO"),
            Some("83.V2.64.0-160-g1a2b3c4"),
            Some("7C2F80E0D605"),
        );
        check(
            "N510 IP PRO/42.245.00.000.000;7C2F80AABBCC",
            G,
            Some("N510 IP PRO"),
            Some("42.245.00.000.000"),
            Some("7C2F80AABBCC"),
        );
        check(
            "Gigaset N720 DM PRO/70.089.00.000.000;7C2F80AABBCD",
            G,
            Some("N720 DM PRO"),
            Some("70.089.00.000.000"),
            Some("7C2F80AABBCD"),
        );
        check(
            "N720-DM-PRO/70.089.00.000.000",
            G,
            Some("N720-DM-PRO"),
            Some("70.089.00.000.000"),
            None,
        );
        check(
            "Maxwell 3 PRO/2.22.7;589EC6112233",
            G,
            Some("Maxwell 3 PRO"),
            Some("2.22.7"),
            Some("589EC6112233"),
        );
        check(
            "Gigaset N670 IP PRO/83.V2.30.0-release;7C2F80E0D607",
            G,
            Some("N670 IP PRO"),
            Some("83.V2.30.0-release"),
            Some("7C2F80E0D607"),
        );
    }

    #[test]
    fn every_sample_request_user_agent_is_recognised() {
        let text = include_str!("../../fixtures/requests.json");
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        for phone in doc["phones"].as_array().unwrap() {
            let vendor: Vendor = phone["vendor"].as_str().unwrap().parse().unwrap();
            let mac = Mac::parse(phone["mac"].as_str().unwrap()).unwrap();
            for ua in phone["user_agents"].as_array().unwrap() {
                let ua = ua.as_str().unwrap();
                let got = UserAgent::parse(ua).unwrap_or_else(|| panic!("{ua}"));
                assert!(got.vendor.is_none_or(|v| v == vendor), "{ua}");
                assert!(got.model.is_some(), "{ua}");
                assert!(got.mac.is_none_or(|m| m == mac), "{ua}");
            }
        }
    }

    #[test]
    fn other_clients_are_not_phones() {
        for ua in [
            "",
            "curl/8.5.0",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            "python-requests/2.31",
        ] {
            assert_eq!(UserAgent::parse(ua), None, "{ua:?}");
        }
    }

    #[test]
    fn model_comparison() {
        assert!(same_model("N720-DM-PRO", "n720 dm  pro"));
        assert!(same_model("T46S", "t46s"));
        assert!(!same_model("T46S", "T46G"));
    }

    proptest! {
        #[test]
        fn never_panics(ua in "\\PC{0,200}") {
            let _ = UserAgent::parse(&ua);
        }

        #[test]
        fn never_panics_on_phone_shaped_noise(
            vendor in prop::sample::select(vec!["Yealink", "yealink-", "snom", "Snom", "Gigaset", "N510", "Mozilla/4.0 (compatible; snom"]),
            rest in "[ -~]{0,80}",
        ) {
            let _ = UserAgent::parse(&format!("{vendor}{rest}"));
        }

        #[test]
        fn yealink_mac_survives_any_spacing(bytes in any::<[u8; 6]>(), gap1 in 1usize..4, gap2 in 1usize..4, upper in any::<bool>()) {
            let m = Mac::from_bytes(bytes);
            let hex: Vec<String> = bytes.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect();
            let ua = format!("Yealink{}SIP-T46S 66.86.0.15{}{}", " ".repeat(gap1), " ".repeat(gap2), hex.join(":"));
            let got = UserAgent::parse(&ua).unwrap();
            prop_assert_eq!(got.mac, Some(m));
            prop_assert_eq!(got.model, Some("T46S"));
        }
    }
}
