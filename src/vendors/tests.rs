//! The dispatchers' tests: every vendor's User-Agents and file names, through the one entry
//! point the provisioning path calls.

mod recognition_tests {
    use crate::domain::{Mac, OuiTable, Vendor};
    use crate::vendors::*;
    use proptest::prelude::*;

    fn rec<'a>(path: &'a str, ua: Option<&'a str>) -> Option<PhoneRequest<'a>> {
        recognise(path, ua, &OuiTable::default())
    }

    fn mac(s: &str) -> Mac {
        Mac::parse(s).unwrap()
    }

    const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:13";
    const SNOM_UA: &str = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)";
    const GIGASET_UA: &str = "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605";

    #[test]
    fn yealink_paths() {
        let r = rec("/805ec017de13.cfg", Some(YEALINK_UA)).unwrap();
        assert_eq!(r.file, FileKind::Device);
        assert_eq!(r.path_mac, Some(mac("805ec017de13")));
        assert_eq!(r.model(), Some("T46S"));
        assert_eq!(r.firmware(), Some("66.86.0.15"));

        let r = rec("/prov/yealink/805EC017DE13.CFG", None).unwrap();
        assert_eq!(r.file, FileKind::Device);

        let r = rec("/y000000000066.cfg", None).unwrap();
        assert_eq!(
            (r.vendor, r.file, r.model_code),
            (Vendor::Yealink, FileKind::Common, Some(66))
        );
        assert_eq!(r.model(), Some("T46S"));

        let r = rec("/y000000000123.cfg", Some(YEALINK_UA)).unwrap();
        assert_eq!(r.model_code, Some(123));

        assert_eq!(
            rec("/805ec017de13.boot", None).unwrap().file,
            FileKind::Boot
        );
        assert_eq!(
            rec("/y000000000000.boot", None).unwrap().file,
            FileKind::Boot
        );
        assert!(rec("/y100000000066.cfg", None).is_none());
        assert!(rec("/805ec017de1.cfg", None).is_none());
    }

    #[test]
    fn snom_paths() {
        let r = rec("/snomD785.htm", Some(SNOM_UA)).unwrap();
        assert_eq!((r.file, r.path_model), (FileKind::Model, Some("D785")));
        let r = rec("/snomD785-000413922D24.htm", Some(SNOM_UA)).unwrap();
        assert_eq!(r.file, FileKind::Device);
        assert_eq!(r.path_mac, Some(mac("000413922D24")));
        let r = rec("/snom/000413922D24.xml", Some(SNOM_UA)).unwrap();
        assert_eq!(r.file, FileKind::Device);
        let r = rec("/snom/000413922d24.xml", None).unwrap();
        assert_eq!(r.file, FileKind::Device, "no UA: the OUI decides");
        let r = rec("/snom/settings.xml?mac=000413922D24", Some(SNOM_UA)).unwrap();
        assert_eq!(
            (r.file, r.path_mac),
            (FileKind::Device, Some(mac("000413922D24")))
        );
        let r = rec("/snomD785.htm?mac=000413922D24", Some(SNOM_UA)).unwrap();
        assert_eq!(r.file, FileKind::Device);
    }

    #[test]
    fn gigaset_paths() {
        let r = rec("/7C2F80E0D605.xml", Some(GIGASET_UA)).unwrap();
        assert_eq!(r.file, FileKind::Device);
        assert_eq!(r.model(), Some("N870 IP PRO"));
        let r = rec("/gigaset/7c2f80e0d605.xml", None).unwrap();
        assert_eq!(r.file, FileKind::Device, "lower-case MAC, no UA");
        assert_eq!(
            rec("/provisioning.xml", Some(GIGASET_UA)).unwrap().file,
            FileKind::Index
        );
    }

    #[test]
    fn the_user_agent_decides_between_snom_and_gigaset() {
        // A Snom phone asking for a Gigaset MAC's file is still a Snom request.
        let r = rec("/7C2F80E0D605.xml", Some(SNOM_UA)).unwrap();
        assert_eq!((r.vendor, r.file), (Vendor::Snom, FileKind::Device));
        // Without a User-Agent, the MAC's maker decides; a Yealink MAC's `.xml` is nobody's.
        let r = rec("/7C2F80E0D605.xml", None).unwrap();
        assert_eq!(r.vendor, Vendor::Gigaset);
        assert!(rec("/805ec017de13.xml", None).is_none());
    }

    #[test]
    fn vendor_specific_files() {
        let r = rec("/gigaset/42/2/master.bin", Some(GIGASET_UA)).unwrap();
        assert_eq!((r.vendor, r.file), (Vendor::Gigaset, FileKind::Boot));
        assert!(rec("/master.bin", None).is_none());
        let r = rec("/snomD785-000413922D24-firmware.xml", Some(SNOM_UA)).unwrap();
        assert_eq!((r.vendor, r.file), (Vendor::Snom, FileKind::Firmware));
        assert_eq!(r.path_mac, Some(mac("000413922D24")));
    }

    #[test]
    fn other_paths_are_not_recognised() {
        for p in [
            "/",
            "",
            "/index.html",
            "/001122334455.xml",
            "/etc/passwd",
            "/../805ec017de13",
            "/snom.htm",
            "/snom-x.htm",
            "/805ec017de13.xml.bak",
        ] {
            assert!(rec(p, None).is_none(), "{p:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(path in "\\PC{0,120}", ua in proptest::option::of("\\PC{0,120}")) {
            let _ = rec(&path, ua.as_deref());
        }

        #[test]
        fn phone_shaped_paths_never_panic(
            dir in "(/[a-z]{0,6}){0,3}",
            stem in "(y|snom|Snom|[0-9a-fA-F]{12}|snom[A-Z0-9]{0,5}-)[0-9a-fA-F.ä-]{0,14}",
            ext in prop::sample::select(vec!["cfg", "boot", "htm", "xml", "CFG", ""]),
            query in "(\\?[a-z]{0,3}=?[0-9A-F]{0,12})?",
        ) {
            let _ = rec(&format!("{dir}/{stem}.{ext}{query}"), None);
        }

        #[test]
        fn any_device_mac_in_a_yealink_path_is_found(bytes in any::<[u8; 6]>(), upper in any::<bool>()) {
            let m = Mac::from_bytes(bytes);
            let hex = if upper { m.to_upper_hex() } else { m.to_lower_hex() };
            let path = format!("/p/{hex}.cfg");
            let r = rec(&path, None).unwrap();
            prop_assert_eq!(r.path_mac, Some(m));
        }
    }
}

mod user_agent_tests {
    use crate::domain::{Mac, Vendor};
    use crate::vendors::spelling::same_model;
    use crate::vendors::*;
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
        let got = parse_user_agent(ua).unwrap_or_else(|| panic!("not recognised: {ua:?}"));
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
                let got = parse_user_agent(ua).unwrap_or_else(|| panic!("{ua}"));
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
            assert_eq!(parse_user_agent(ua), None, "{ua:?}");
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
            let _ = parse_user_agent(&ua);
        }

        #[test]
        fn never_panics_on_phone_shaped_noise(
            vendor in prop::sample::select(vec!["Yealink", "yealink-", "snom", "Snom", "Gigaset", "N510", "Mozilla/4.0 (compatible; snom"]),
            rest in "[ -~]{0,80}",
        ) {
            let _ = parse_user_agent(&format!("{vendor}{rest}"));
        }

        #[test]
        fn yealink_mac_survives_any_spacing(bytes in any::<[u8; 6]>(), gap1 in 1usize..4, gap2 in 1usize..4, upper in any::<bool>()) {
            let m = Mac::from_bytes(bytes);
            let hex: Vec<String> = bytes.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect();
            let ua = format!("Yealink{}SIP-T46S 66.86.0.15{}{}", " ".repeat(gap1), " ".repeat(gap2), hex.join(":"));
            let got = parse_user_agent(&ua).unwrap();
            prop_assert_eq!(got.mac, Some(m));
            prop_assert_eq!(got.model, Some("T46S"));
        }
    }
}

mod readme_table {
    use crate::vendors::{facts, ALL};
    use std::path::Path;

    const BEGIN: &str = "<!-- vendor-table";
    const END: &str = "<!-- /vendor-table -->";

    /// A cell names only keys the vendor's templates write (in some variant's golden file).
    #[test]
    fn every_key_a_cell_names_is_written() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
        for profile in ALL {
            let dir = root.join(profile.vendor().as_str());
            let written: String = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect();
            for family in profile.facts() {
                assert!(
                    dir.parent().unwrap().join(family.golden).exists(),
                    "{}",
                    family.golden
                );
                for (setting, cell) in family.cells {
                    for key in facts::keys(cell) {
                        assert!(
                            written.contains(key),
                            "{} {setting:?}: {key:?} is in no golden file of {}",
                            family.name,
                            dir.display()
                        );
                    }
                }
            }
        }
    }

    /// README's table is the one generated from the facts; `ZEROTOUCH_UPDATE_GOLDEN=1` rewrites it.
    #[test]
    fn readme_shows_the_generated_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = readme
            .find(BEGIN)
            .expect("README has the vendor-table marker");
        let body = start + readme[start..].find('\n').unwrap() + 1;
        let end = readme.find(END).expect("README has the end marker");
        let want = facts::table();
        if std::env::var_os("ZEROTOUCH_UPDATE_GOLDEN").is_some() {
            let updated = format!("{}{}{}", &readme[..body], want, &readme[end..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            assert_eq!(
                &readme[body..end],
                want,
                "README's vendor table is stale (ZEROTOUCH_UPDATE_GOLDEN=1 regenerates it)"
            );
        }
    }
}
