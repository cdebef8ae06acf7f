//! The renderer's tests: escaping, golden files per vendor variant, overrides, and the
//! property that whatever the API accepts renders to what the phone parses.

use super::*;

#[test]
fn escaping() {
    assert_eq!(escape_key_value("a\nb\rc\u{2028}d"), "a b c d");
    assert_eq!(
        escape_xml(r#"<a href="x">&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
    );
    assert_eq!(escape_xml("a\u{1}b\nc"), "ab c");
}

#[test]
fn latin1_transcoding_refuses_what_it_cannot_hold() {
    assert_eq!(to_latin1("Réception"), Ok(b"R\xe9ception".to_vec()));
    assert_eq!(to_latin1("Réception €"), Err('€'));
}

/// The sample phone of one variant.
fn sample_input<'a>(
    tenant: &'a TenantName,
    settings: &'a TenantSettings,
    device: Option<&'a DeviceSettings>,
    phone: vendors::Phone<'a>,
) -> Input<'a> {
    Input {
        phone: Phone {
            mac: Mac::from_bytes([0x80, 0x5e, 0xc0, 0x17, 0xde, 0x13]),
            model: phone.model,
            firmware: phone.firmware,
        },
        tenant,
        settings,
        device,
        provisioning_url: "https://prov.example/",
        credentials: Some(Credentials {
            username: "zt-805ec017de13-0000",
            password: "sample-password",
        }),
    }
}

/// Renders every vendor's variants (model family × firmware) with the sample tenant and
/// device and compares the bytes with `fixtures/golden/<vendor>/<variant>.<ext>`. A
/// template change shows up as a diff there; run with `ZEROTOUCH_UPDATE_GOLDEN=1` to accept
/// it.
#[test]
fn golden_files() {
    let renderer = Renderer::load(None).unwrap();
    let (tenant, mut settings, device) = sample();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
    let update = std::env::var_os("ZEROTOUCH_UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for profile in vendors::ALL {
        for variant in profile.variants() {
            let template = profile.template(variant.file, variant.phone).unwrap();
            settings.transport = variant.transport;
            let input = sample_input(&tenant, &settings, Some(&device), variant.phone);
            let got = renderer.render(profile.vendor(), template, &input).unwrap();
            let ext = template
                .path()
                .trim_end_matches(".tera")
                .rsplit('.')
                .next()
                .unwrap();
            let dir = root.join(profile.vendor().as_str());
            let file = dir.join(format!("{}.{ext}", variant.name));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &got).unwrap();
            } else {
                let want = std::fs::read(&file).unwrap_or_default();
                if want != got {
                    mismatches.push(format!(
                        "{}:\n{}",
                        file.display(),
                        String::from_utf8_lossy(&got)
                    ));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "rendered output differs from the golden files (ZEROTOUCH_UPDATE_GOLDEN=1 accepts):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn a_device_value_with_a_line_break_cannot_add_a_key() {
    use crate::domain::{LineAccount, Secret};
    let renderer = Renderer::load(None).unwrap();
    let (tenant, settings, _) = sample();
    // Validation refuses this at the API; rendering must hold even if it did not.
    let device = DeviceSettings {
        display_name: Some("x\nstatic.firmware.url = https://evil.example/".into()),
        lines: vec![LineAccount {
            user: "1\r\naccount.1.password = stolen".into(),
            auth_user: None,
            password: Secret::new("p"),
            display_name: None,
        }],
        ..DeviceSettings::default()
    };
    let input = Input {
        phone: Phone {
            mac: Mac::from_bytes([0x80, 0x5e, 0xc0, 0x17, 0xde, 0x13]),
            model: None,
            firmware: None,
        },
        tenant: &tenant,
        settings: &settings,
        device: Some(&device),
        provisioning_url: "https://prov.example/",
        credentials: None,
    };
    let template = vendors::profile(Vendor::Yealink)
        .template(vendors::FileKind::Device, vendors::Phone::default())
        .unwrap();
    let out = renderer.render(Vendor::Yealink, template, &input).unwrap();
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(
        !text.lines().any(|l| l.starts_with("static.firmware.url")),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("account.1.password = stolen")),
        "{text}"
    );
}

#[test]
fn shipped_templates_load() {
    Renderer::load(None).unwrap();
}

#[test]
fn an_override_with_a_syntax_error_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("snom")).unwrap();
    std::fs::write(
        dir.path().join("snom/device.xml.tera"),
        "<settings>\n{% if %}\n",
    )
    .unwrap();
    let err = Renderer::load(Some(dir.path())).err().unwrap();
    assert!(err.file.ends_with("snom/device.xml.tera"), "{err}");
    assert!(err.message.contains("2:"), "line number in {err}");
}

#[test]
fn an_override_referring_to_a_missing_value_fails_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("yealink")).unwrap();
    std::fs::write(
        dir.path().join("yealink/device.cfg.tera"),
        "#!version:1.0.0.1\nx = {{ nonexistent.value }}\n",
    )
    .unwrap();
    let err = Renderer::load(Some(dir.path())).err().unwrap();
    assert!(err.file.ends_with("yealink/device.cfg.tera"), "{err}");
}

mod phones_can_parse {
    //! Any tenant and device the API accepts renders, for every vendor variant, to a file
    //! the phone can parse, carrying each value unchanged: well-formed XML (ISO-8859-1
    //! bodies encodable with nothing dropped), one `key = value` setting per line.
    use super::*;
    use crate::domain::{LineAccount, Secret};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn renderer() -> &'static Renderer {
        static R: OnceLock<Renderer> = OnceLock::new();
        R.get_or_init(|| Renderer::load(None).unwrap())
    }

    /// Text a partner may type: any printable character, markup and quotes included.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{1,24}",
            "\\PC{1,16}",
            Just("a\"b'c<d>&e".to_owned()),
            Just("Réception €".to_owned()),
        ]
    }

    fn line() -> impl Strategy<Value = LineAccount> {
        (
            text(),
            proptest::option::of(text()),
            text(),
            proptest::option::of(text()),
        )
            .prop_map(|(user, auth_user, password, display_name)| LineAccount {
                user,
                auth_user,
                password: Secret::new(password),
                display_name,
            })
    }

    fn device() -> impl Strategy<Value = DeviceSettings> {
        (
            proptest::option::of(text()),
            proptest::collection::vec(line(), 0..8),
        )
            .prop_map(|(display_name, lines)| DeviceSettings {
                display_name,
                lines,
                ..DeviceSettings::default()
            })
    }

    fn tenant() -> impl Strategy<Value = TenantSettings> {
        let zones: Vec<TimeZone> = TimeZone::all().collect();
        let languages: Vec<Language> = Language::all().collect();
        (
            prop::sample::select(zones),
            prop::sample::select(languages),
            prop::sample::select(vec![Transport::Udp, Transport::Tcp, Transport::Tls]),
            15u32..3600,
            proptest::collection::btree_map("[A-Za-z][A-Za-z0-9_]{0,20}", text(), 0..3),
        )
            .prop_map(|(timezone, language, transport, keepalive, keys)| {
                let mut s = sample().1;
                s.timezone = timezone;
                s.language = language;
                s.transport = transport;
                s.keepalive_seconds = keepalive;
                s.vendor_keys = Vendor::ALL.into_iter().map(|v| (v, keys.clone())).collect();
                s
            })
    }

    /// The value of every element or attribute named like a secret, as the phone reads it.
    fn xml_values(doc: &roxmltree::Document<'_>) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.is_element())
            .flat_map(|n| {
                let text = n.text().map(str::to_owned);
                let value = n.attribute("value").map(|v| v.trim_matches('"').to_owned());
                text.into_iter().chain(value)
            })
            .collect()
    }

    fn check(vendor: Vendor, settings: &TenantSettings, device: &DeviceSettings) {
        let (tenant, _, _) = sample();
        let profile = vendors::profile(vendor);
        for variant in profile.variants() {
            let template = profile.template(variant.file, variant.phone).unwrap();
            let input = Input {
                phone: Phone {
                    mac: Mac::from_bytes([0x80, 0x5e, 0xc0, 0x17, 0xde, 0x13]),
                    model: variant.phone.model,
                    firmware: variant.phone.firmware,
                },
                tenant: &tenant,
                settings,
                device: Some(device),
                provisioning_url: "https://prov.example/",
                credentials: None,
            };
            let body = match renderer().render(vendor, template, &input) {
                Ok(body) => body,
                // A combination the model cannot do is answered with nothing.
                Err(RenderError::Unsupported(_)) => continue,
                Err(e) => panic!("{vendor} {}: {e}", variant.name),
            };
            let text: String = match template.spec().charset {
                Charset::Utf8 => String::from_utf8(body.to_vec()).unwrap(),
                Charset::Latin1 => body.iter().map(|&b| char::from(b)).collect(),
            };
            let passwords = device.lines.iter().map(|l| l.password.expose());
            match template.spec().format {
                Format::Xml => {
                    let doc = roxmltree::Document::parse(&text)
                        .unwrap_or_else(|e| panic!("{vendor} {}: {e}\n{text}", variant.name));
                    if variant.file == vendors::FileKind::Device {
                        let values = xml_values(&doc);
                        for p in passwords {
                            assert!(
                                values.iter().any(|v| v == p),
                                "{p:?} not carried in\n{text}"
                            );
                        }
                    }
                }
                Format::KeyValue => {
                    for l in text.lines() {
                        assert!(
                            l.is_empty()
                                || l.starts_with('#')
                                || l.split_once(" = ").is_some_and(|(k, _)| {
                                    !k.is_empty()
                                        && k.bytes().all(|c| {
                                            c.is_ascii_alphanumeric() || b"._-".contains(&c)
                                        })
                                }),
                            "{vendor} {}: not a setting: {l:?}",
                            variant.name
                        );
                    }
                    if variant.file == vendors::FileKind::Device {
                        for (i, p) in passwords.enumerate() {
                            let want = format!("account.{}.password = {p}", i + 1);
                            assert!(text.lines().any(|l| l == want), "{want:?} not in\n{text}");
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn what_is_accepted_renders_to_what_the_phone_parses(
            vendor in prop::sample::select(Vendor::ALL.to_vec()),
            settings in tenant(),
            device in device(),
        ) {
            prop_assume!(vendors::validate_tenant(&settings).is_ok());
            prop_assume!(vendors::validate_device(vendor, &device).is_ok());
            check(vendor, &settings, &device);
        }
    }
}
