//! Phones fetching their files over real HTTPS, with their real User-Agents.

use crate::support::*;

fn assert_served(f: &Fetched, content_type: &str) {
    assert_eq!(f.status, 200, "body: {}", f.text());
    assert_eq!(f.content_type, content_type);
    assert_eq!(f.cache_control, "no-store");
}

#[tokio::test]
async fn yealink_gets_its_common_and_device_files() {
    let server = TestServer::demo().await;
    let phone = server.phone(Some(YEALINK_UA));

    let common = phone.get("/y000000000066.cfg").await;
    assert_served(&common, "text/plain; charset=utf-8");
    let text = common.text();
    assert!(text.starts_with("#!version:1.0.0.1\n"), "{text}");
    assert!(text.contains("account.1.sip_server.1.address = sales.cloud.example\n"));
    assert!(text.contains("static.firmware.url = https://fw.example/T46S-66.86.0.15.rom\n"));

    let device = phone.get(&format!("/{YEALINK_MAC}.cfg")).await;
    assert_served(&device, "text/plain; charset=utf-8");
    let text = device.text();
    assert!(text.starts_with("#!version:1.0.0.1\n"));
    for line in [
        "account.1.sip_server.1.address = sales.cloud.example",
        "account.1.sip_server.1.port = 5061",
        "account.1.sip_server.1.transport_type = 2",
        "account.1.sip_server.1.expires = 3600",
        "account.1.nat.udp_update_enable = 1",
        "account.1.nat.udp_update_time = 30",
        "account.1.user_name = 1001",
        "account.1.password = change-me-1001",
        "local_time.ntp_server1 = pool.ntp.org",
        "local_time.time_zone = +1",
        "lang.gui = French",
        "static.auto_provision.repeat.enable = 1",
        "static.auto_provision.repeat.minutes = 1440",
        "static.firmware.url = https://fw.example/T46S-66.86.0.15.rom",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let url = format!(
        "static.auto_provision.server.url = https://{}/",
        server.addrs.phones.unwrap()
    );
    assert!(
        text.lines().any(|l| l == url),
        "provisioning URL in\n{text}"
    );

    // Upper-case MAC in the path and a directory prefix work too; the provisioning URL keeps it.
    let prefixed = phone
        .get(&format!("/prov/yealink/{}.cfg", YEALINK_MAC.to_uppercase()))
        .await;
    assert_served(&prefixed, "text/plain; charset=utf-8");
    assert!(prefixed.text().contains("/prov/yealink/\n"));
}

#[tokio::test]
async fn firmware_is_named_only_for_the_models_the_policy_names() {
    let server = TestServer::demo().await;
    let t48s = server.phone(Some("Yealink SIP-T48S 66.86.0.15 80:5e:c0:17:de:13"));
    let text = t48s.get(&format!("/{YEALINK_MAC}.cfg")).await.text();
    assert!(!text.contains("static.firmware.url"), "{text}");
    let no_model = server.phone(None);
    let text = no_model.get(&format!("/{YEALINK_MAC}.cfg")).await.text();
    assert!(!text.contains("static.firmware.url"), "{text}");
}

#[tokio::test]
async fn yealink_without_user_agent_is_recognised_by_path_and_oui() {
    let server = TestServer::demo().await;
    let f = server.phone(None).get(&format!("/{YEALINK_MAC}.cfg")).await;
    assert_served(&f, "text/plain; charset=utf-8");
    // Without a MAC anywhere, a common file is an optional miss.
    assert_eq!(
        server.phone(None).get("/y000000000066.cfg").await.status,
        404
    );
}

#[tokio::test]
async fn snom_gets_its_model_and_device_settings() {
    let server = TestServer::demo().await;
    let phone = server.phone(Some(SNOM_UA));

    let model = phone.get("/snomD785.htm").await;
    assert_served(&model, "text/xml; charset=utf-8");
    assert!(
        model
            .text()
            .contains(&format!("snomD785-{SNOM_MAC}.htm\"/>")),
        "{}",
        model.text()
    );

    for path in [
        format!("/snomD785-{SNOM_MAC}.htm"),
        format!("/{SNOM_MAC}.xml"),
        format!("/settings.xml?mac={SNOM_MAC}"),
    ] {
        let f = phone.get(&path).await;
        assert_served(&f, "text/xml; charset=utf-8");
        let text = f.text();
        for element in [
            r#"<user_host idx="1" perm="R">sales.cloud.example</user_host>"#,
            r#"<user_outbound idx="1" perm="R">sales.cloud.example:5061;transport=tls</user_outbound>"#,
            r#"<user_expiry idx="1" perm="R">3600</user_expiry>"#,
            r#"<keepalive_interval idx="1" perm="R">30</keepalive_interval>"#,
            r#"<ntp_server perm="R">pool.ntp.org</ntp_server>"#,
            r#"<timezone perm="R">FRA+1</timezone>"#,
            r#"<language perm="R">Francais</language>"#,
            r#"<settings_refresh_timer perm="R">86400</settings_refresh_timer>"#,
        ] {
            assert!(
                text.contains(element),
                "{path}: missing {element} in\n{text}"
            );
        }
        assert!(
            !text.contains("<firmware"),
            "no Snom firmware in the policy"
        );
    }
}

#[tokio::test]
async fn gigaset_nx70_gets_its_nvm_profile() {
    let server = TestServer::demo().await;
    let phone = server.phone(Some(GIGASET_UA));
    assert_eq!(
        phone.get("/provisioning.xml").await.status,
        404,
        "optional index file"
    );
    for path in [
        format!("/{GIGASET_MAC}.xml"),
        format!("/{}.xml", GIGASET_MAC.to_lowercase()),
    ] {
        let f = phone.get(&path).await;
        assert_served(&f, "text/xml; charset=utf-8");
        let text = f.text();
        assert!(text.contains(r#"<provisioning version="1.1" productID="e2">"#));
        for param in [
            r#"<param name="SipProvider.0.Domain" value="support.cloud.example"/>"#,
            r#"<param name="SipProvider.0.TransportProtocol" value="1"/>"#,
            r#"<param name="SipProvider.0.RegServerRefreshTimer" value="3600"/>"#,
            r#"<param name="DmGlobal.0.NtpServer" value="pool.ntp.org"/>"#,
            r#"<param name="DmGlobal.0.TimeZone" value="Europe/Berlin"/>"#,
        ] {
            assert!(text.contains(param), "missing {param} in\n{text}");
        }
        assert!(text.contains("Provisioning.global.ProvisioningServer"));
    }
}

#[tokio::test]
async fn gigaset_n510_gets_its_provider_frame_in_latin1() {
    let server = TestServer::demo().await;
    let f = server
        .phone(Some(N510_UA))
        .get(&format!("/{N510_MAC}.xml"))
        .await;
    assert_served(&f, "text/xml; charset=iso-8859-1");
    let text = f.text();
    assert!(text.starts_with(r#"<?xml version="1.0" encoding="ISO-8859-1"?>"#));
    assert!(text.contains(&format!(r#"<MAC_ADDRESS value="{N510_MAC}"/>"#)));
    // Line 1's keys carry no suffix on an N510.
    assert!(text.contains(
        r#"ID="BS_IP_Data1.aucS_SIP_SERVER" class="symb_item" value='"support.cloud.example"'"#
    ));
    assert!(!text.contains("aucS_SIP_SERVER_1"), "{text}");
    assert!(
        text.contains(
            r#"ID="BS_IP_Data1.uiI_RE_REGISTRATION_TIMER" class="symb_item" value="0xe10""#
        ),
        "3600 s in hex"
    );
    assert!(
        !text.contains("aucS_DATA_SERVER"),
        "the base keeps Gigaset's data server"
    );
    assert!(
        text.contains(r#"ID="BS_IP_Data1.ucI_HTTPLANGUAGE" class="symb_item" value="0x2""#),
        "German"
    );
}

#[tokio::test]
async fn plain_http_listener_serves_the_same_files() {
    let server = TestServer::demo().await;
    let f = server
        .phone_http(Some(YEALINK_UA))
        .get(&format!("/{YEALINK_MAC}.cfg"))
        .await;
    assert_served(&f, "text/plain; charset=utf-8");
    assert!(f.text().contains(&format!(
        "static.auto_provision.server.url = http://{}/",
        server.addrs.http.unwrap()
    )));
}

#[tokio::test]
async fn refusals_have_their_status_counter_and_a_body_that_reveals_nothing() {
    let server = TestServer::demo().await;
    let yealink = server.phone(Some(YEALINK_UA));

    let unknown = server
        .phone(Some("Yealink SIP-T46S 66.86.0.15 80:5e:c0:00:00:01"))
        .get("/805ec0000001.cfg")
        .await;
    assert_eq!(unknown.status, 404);
    let unrecognised = yealink.get("/index.html").await;
    assert_eq!(unrecognised.status, 404);
    assert_eq!(
        unknown.body, unrecognised.body,
        "unknown MAC and unknown path look alike"
    );
    // A MAC in the path that differs from the one in the User-Agent.
    let mismatch = server
        .phone(Some(SNOM_UA))
        .get(&format!("/snomD785-{}.htm", YEALINK_MAC.to_uppercase()))
        .await;
    assert_eq!(
        mismatch.status, 403,
        "MAC in path differs from the Snom UA's MAC"
    );
    let mismatch = server
        .phone(Some("Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:99"))
        .get(&format!("/{YEALINK_MAC}.cfg"))
        .await;
    assert_eq!(mismatch.status, 403);
    // A registered MAC asked for by a phone of another vendor looks exactly like an unknown MAC.
    let vendor = server
        .phone(Some(
            "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 build)",
        ))
        .get(&format!("/snomD785-{}.htm", YEALINK_MAC.to_uppercase()))
        .await;
    assert_eq!(
        vendor.status, 404,
        "a Snom asking for a Yealink device's settings"
    );
    assert_eq!(vendor.body, unknown.body, "no existence oracle");
    for f in [&unknown, &unrecognised, &vendor, &mismatch] {
        assert_eq!(f.cache_control, "no-store");
        assert!(!f.text().contains("sales"), "a refusal names no tenant");
    }

    let page = server.metrics().await;
    for (series, at_least) in [
        (
            r#"zerotouch_phone_requests_total{file="device",outcome="unknown_device",vendor="yealink"}"#,
            1.0,
        ),
        (
            r#"zerotouch_phone_requests_total{file="none",outcome="unrecognised",vendor="yealink"}"#,
            1.0,
        ),
        (
            r#"zerotouch_phone_requests_total{file="device",outcome="vendor_mismatch",vendor="snom"}"#,
            1.0,
        ),
        (
            r#"zerotouch_phone_requests_total{file="device",outcome="mac_mismatch",vendor="yealink"}"#,
            1.0,
        ),
    ] {
        assert!(
            metric_value(&page, series) >= at_least,
            "{series} in\n{page}"
        );
    }
}

#[tokio::test]
async fn other_methods_are_refused() {
    let server = TestServer::demo().await;
    let client = reqwest::Client::builder()
        .add_root_certificate(server.certificate())
        .build()
        .unwrap();
    let r = client
        .post(format!(
            "https://{}/{YEALINK_MAC}.cfg",
            server.addrs.phones.unwrap()
        ))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn values_cannot_inject_settings() {
    // Markup in values the vendors can carry is escaped for each format.
    let doc = r#"{
      "tenants": [{"name": "evil", "sip_server": "pbx.example", "phone_auth": "mac",
                   "vendor_keys": {"snom": {"dnd_mode": "off</dnd_mode><user_pass idx=\"1\" perm=\"R\">stolen</user_pass><x>"},
                                   "gigaset": {"Telephony.0.CT_ByOnHook": "1\"/><param name=\"SipAccount.00001.AuthPassword\" value=\"stolen"}}}],
      "devices": [
        {"mac": "000413000042", "tenant": "evil",
         "lines": [{"user": "1001", "password": "p", "display_name": "Bob</user_realname><user_pass idx=\"1\">x</user_pass>"}]},
        {"mac": "7c2f80000042", "tenant": "evil", "claim_code": "ZZ99",
         "lines": [{"user": "1001", "password": "p", "display_name": "a b='c' <d>"}]}
      ]
    }"#;
    let server = TestServer::with_import(doc).await;

    let s = server.phone(None).get("/000413000042.xml").await.text();
    assert!(!s.contains("<user_pass idx=\"1\">x"), "{s}");
    assert!(!s.contains("stolen</user_pass>"), "{s}");
    assert_eq!(s.matches("<user_pass ").count(), 1, "{s}");
    assert!(s.contains("Bob&lt;/user_realname&gt;"), "{s}");

    let g = server.phone(None).get("/7C2F80000042.xml").await.text();
    assert_eq!(
        g.matches("<param name=\"SipAccount.00001.AuthPassword\"")
            .count(),
        1,
        "{g}"
    );
    assert!(g.contains("value=\"1&quot;/&gt;&lt;param"), "{g}");
    assert!(g.contains("a b=&apos;c&apos; &lt;d&gt;"), "{g}");
}

#[tokio::test]
async fn values_a_format_cannot_carry_are_refused_when_saved() {
    // A line break would end a key=value setting; a double quote ends an N510 string.
    let tmp = tempfile::tempdir().unwrap();
    let report = import(
        tmp.path(),
        r#"{
      "tenants": [{"name": "evil", "sip_server": "pbx.example",
                   "vendor_keys": {"yealink": {"features.dnd.enable": "1\nstatic.firmware.url = https://attacker.example/x.rom"}}},
                  {"name": "fine", "sip_server": "pbx.example"}],
      "devices": [
        {"mac": "7c2f80000042", "tenant": "fine", "claim_code": "ZZ99",
         "lines": [{"user": "1001", "password": "pa\"ss"}]},
        {"mac": "7c2f80000043", "tenant": "fine", "claim_code": "ZZ99",
         "lines": [{"user": "1001", "password": "€uro"}]}
      ]
    }"#,
    )
    .await;
    let refused: Vec<_> = report
        .tenants
        .iter()
        .chain(&report.devices)
        .filter(|r| r.status == "refused")
        .map(|r| (r.key.as_str(), r.code, r.reason.clone().unwrap_or_default()))
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused[0].2.contains("features.dnd.enable"), "{refused:?}");
    for (_, code, reason) in &refused[1..] {
        assert_eq!(*code, Some("invalid_setting"));
        assert!(reason.contains("lines[0].password"), "{reason}");
        assert!(reason.contains("gigaset N510/N720"), "{reason}");
    }
}

#[tokio::test]
async fn every_vendor_boot_sequence_ends_with_a_config() {
    let server = TestServer::demo().await;
    for (vendor, mac, model, ua) in [
        ("yealink", YEALINK_MAC, "T46S", YEALINK_UA),
        ("snom", SNOM_MAC, "D785", SNOM_UA),
        ("gigaset", GIGASET_MAC, "N870", GIGASET_UA),
    ] {
        let results = server
            .phone(Some(ua))
            .boot(&boot_sequence(vendor, mac, model))
            .await;
        let (last_path, last) = results.last().unwrap();
        assert_eq!(last.status, 200, "{vendor} {last_path}");
        for (path, f) in &results {
            assert!(
                matches!(f.status, 200 | 404),
                "{vendor} {path}: {}",
                f.status
            );
        }
    }
}
