//! What each vendor's phones are given, per model family, and what zerotouch refuses to give
//! them: configs a model cannot apply are not served, values a format cannot carry are refused
//! when saved, and the vendors' own normal requests never count as misses.

use serde_json::json;

use crate::support::*;

const N720_MAC: &str = "7C2F80AABBCE";
const N720_UA: &str = "Gigaset N720 DM PRO/70.108.00.000.000;7C2F80AABBCE";
const M900_MAC: &str = "000413B60680";
const M900_UA: &str = "Mozilla/4.0 (compatible; Snom M900 05.20.0001 000413b60680)";
const MAXWELL_MAC: &str = "7C2F80E61AF4";
const MAXWELL_UA: &str = "Maxwell 3 PRO/82.2.18.4-release;7C2F80E61AF4";

/// A trial (`mac` mode) server with a UDP tenant and a TLS tenant, an N510 in each, an N720,
/// a Snom M900 DECT base and a Maxwell desk phone.
async fn fleet() -> TestServer {
    TestServer::with_import(&format!(
        r#"{{
      "tenants": [
        {{"name": "udp", "sip_server": "udp.cloud.example", "phone_auth": "mac", "timezone": "Europe/Berlin", "language": "de"}},
        {{"name": "tls", "sip_server": "tls.cloud.example", "phone_auth": "mac", "transport": "tls"}}
      ],
      "devices": [
        {{"mac": "{N510_MAC}", "tenant": "tls", "claim_code": "CD34",
          "lines": [{{"user": "2001", "password": "pw-2001"}}]}},
        {{"mac": "7C2F80AABBCD", "tenant": "udp", "claim_code": "CD35",
          "lines": [{{"user": "2001", "password": "pw-2001"}}, {{"user": "2002", "password": "pw-2002"}}]}},
        {{"mac": "{N720_MAC}", "tenant": "udp", "claim_code": "CD36",
          "lines": [{{"user": "3001", "password": "pw-3001"}}]}},
        {{"mac": "{M900_MAC}", "tenant": "udp"}},
        {{"mac": "{MAXWELL_MAC}", "tenant": "udp", "claim_code": "CD37"}}
      ]
    }}"#
    ))
    .await
}

#[tokio::test]
async fn an_n510_is_not_sent_a_transport_it_cannot_use() {
    let server = fleet().await;
    // An N510 has no key for TCP or TLS: it would send UDP to the TLS port.
    let f = server
        .phone(Some(N510_UA))
        .get(&format!("/{N510_MAC}.xml"))
        .await;
    assert_eq!(f.status, 404, "{}", f.text());
    assert_eq!(
        server
            .metric(r#"zerotouch_phone_requests_total{file="device",outcome="unsupported",vendor="gigaset"}"#)
            .await,
        1.0
    );
    // The same model in a UDP tenant gets its profile, line 1 without suffix, line 2 with.
    let ua = "N510 IP PRO/42.245.00.000.000;7C2F80AABBCD";
    let f = server.phone(Some(ua)).get("/7C2F80AABBCD.xml").await;
    assert_eq!(f.status, 200);
    let text = f.text();
    for item in [
        r#"ID="BS_IP_Data1.aucS_SIP_USER_ID" class="symb_item" value='"2001"'"#,
        r#"ID="BS_IP_Data1.aucS_SIP_USER_ID_2" class="symb_item" value='"2002"'"#,
        r#"ID="BS_IP_Data1.aucS_SIP_ACCOUNT_NAME_1""#,
        r#"ID="BS_IP_Data1.ucB_SIP_ACCOUNT_IS_ACTIVE_2""#,
        r#"ID="BS_IP_Data1.uiI_NAT_REFRESH_TIME" class="symb_item" value="0x1e""#,
        r#"ID="BS_IP_Data1.uiI_TIME_TIMEZONE" class="symb_item" value="0x1b""#,
        r#"ID="BS_AE_SwConfig.ucCountryCodeTone" class="symb_item" value="0xc""#,
    ] {
        assert!(text.contains(item), "missing {item} in\n{text}");
    }
    assert!(!text.contains("aucS_SIP_USER_ID_1"), "{text}");
}

#[tokio::test]
async fn an_n720_gets_the_n720_scheme() {
    let server = fleet().await;
    let f = server
        .phone(Some(N720_UA))
        .get(&format!("/{N720_MAC}.xml"))
        .await;
    assert_eq!(f.status, 200);
    let text = f.text();
    assert!(text.contains(
        r#"ID="BS_VOIP_Data.astVoipAccounts[0].aucS_SIP_USER_ID[0]" class="symb_item" value='"3001"'"#
    ), "{text}");
    assert!(text.contains(
        r#"ID="BS_VOIP_Data.astVoipProviders[0].aucSIP_SERVER[%]" class="symb_item" value='"udp.cloud.example"'"#
    ), "{text}");
    assert!(!text.contains("BS_IP_Data1."), "no N510 keys:\n{text}");
}

#[tokio::test]
async fn models_without_a_verified_format_are_not_served() {
    let server = fleet().await;
    for (ua, path) in [
        (M900_UA, format!("/{M900_MAC}.xml")),
        (MAXWELL_UA, format!("/{MAXWELL_MAC}.xml")),
    ] {
        let f = server.phone(Some(ua)).get(&path).await;
        assert_eq!(f.status, 404, "{ua}: {}", f.text());
    }
    let page = server.metrics().await;
    for vendor in ["snom", "gigaset"] {
        let series = format!(
            r#"zerotouch_phone_requests_total{{file="device",outcome="unsupported",vendor="{vendor}"}}"#
        );
        assert_eq!(metric_value(&page, &series), 1.0, "{series}");
    }
}

#[tokio::test]
async fn the_n510_firmware_tree_is_a_normal_request_not_a_miss() {
    let server = fleet().await;
    let phone = server.phone(Some(N510_UA));
    // More than the miss budget (100) from one address: none of them is counted.
    for _ in 0..120 {
        let f = phone.get("/42/2/master.bin").await;
        assert_eq!(f.status, 404);
    }
    assert_eq!(
        server
            .metric(r#"zerotouch_phone_requests_total{file="boot",outcome="optional_absent",vendor="gigaset"}"#)
            .await,
        120.0
    );
    assert_eq!(server.metric("zerotouch_throttle_blocks_total").await, 0.0);
}

#[tokio::test]
async fn yealink_multi_cell_dect_takes_its_server_from_a_template() {
    let server = TestServer::demo().await;
    let f = server
        .phone(Some("Yealink W80B 103.85.0.20 80:5e:c0:17:de:13"))
        .get(&format!("/{YEALINK_MAC}.cfg"))
        .await;
    assert_eq!(f.status, 200);
    let text = f.text();
    assert!(
        text.contains("template.1.sip_server.1.address = sales.cloud.example"),
        "{text}"
    );
    assert!(text.contains("account.1.sip_server.template = 1"), "{text}");
    assert!(!text.contains("account.1.sip_server.1.address"), "{text}");
}

#[tokio::test]
async fn values_a_vendor_cannot_carry_are_refused_by_the_api() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["hq"]).await;
    for (patch, field, models) in [
        (
            json!({"keepalive_seconds": 10}),
            "keepalive_seconds",
            "yealink",
        ),
        (
            json!({"vendor_keys": {"snom": {"user_realname[1]": "x"}}}),
            "vendor_keys.snom.user_realname[1]",
            "snom",
        ),
        (
            json!({"recheck_minutes": 10}),
            "recheck_minutes",
            "gigaset Nx70",
        ),
    ] {
        let (status, body) = acme.patch("/api/v1/tenants/hq", &patch).await;
        assert_eq!(status, 422, "{patch}: {body}");
        assert_eq!(body["error"]["code"], "invalid_setting", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(field) && message.contains(models),
            "{message}"
        );
    }
    let (status, body) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": "7C2F80E0D609", "tenant": "hq", "claim_code": "AB12",
                    "lines": [{"user": "1", "password": "a\"b"}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("lines[0].password") && message.contains("gigaset N510/N720"),
        "{message}"
    );
    // The same password on a Yealink phone is fine.
    let (status, body) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": "805EC0000099", "tenant": "hq",
                    "lines": [{"user": "1", "password": "a\"b"}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
