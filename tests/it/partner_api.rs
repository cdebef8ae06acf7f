//! Partners registering phones through the real HTTPS API.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_partner_session_from_claim_to_release_reaches_the_phone_at_once() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales", "support"]).await;
    let phone = server.phone(Some(YEALINK_UA));
    let path = format!("/{YEALINK_MAC}.cfg");
    assert_eq!(phone.get(&path).await.status, 404, "not claimed yet");

    let (status, device) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": "80-5E-C0-17-DE-13", "tenant": "sales",
                    "lines": [{"user": "1001", "password": "secret-pw-1001", "display_name": "Front desk"}]}),
        )
        .await;
    assert_eq!(status, 201, "{device}");
    assert_eq!(device["mac"], YEALINK_MAC);
    assert_eq!(device["vendor"], "yealink");
    assert!(
        !device.to_string().contains("secret-pw-1001"),
        "passwords are write-only: {device}"
    );

    // The very next fetch sees the claim: no polling, no restart.
    let served = phone.get(&path).await;
    assert_eq!(served.status, 200);
    assert!(served
        .text()
        .contains("account.1.sip_server.1.address = sales.cloud.example"));
    assert!(served
        .text()
        .contains("account.1.password = secret-pw-1001"));

    // A tenant change reaches the phone on its next fetch.
    let (status, t) = acme
        .patch(
            "/api/v1/tenants/sales",
            &json!({"keepalive_seconds": 45, "transport": "tls"}),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["keepalive_seconds"], 45);
    let text = phone.get(&path).await.text();
    assert!(
        text.contains("account.1.nat.udp_update_time = 45"),
        "{text}"
    );
    assert!(
        text.contains("account.1.sip_server.1.transport_type = 2"),
        "{text}"
    );
    // That fetch authenticated: the credentials are bound (written off the phone's path).
    server.bound(YEALINK_MAC).await;

    let (status, moved) = acme
        .patch(
            &format!("/api/v1/devices/{YEALINK_MAC}"),
            &json!({"tenant": "support"}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["tenant"], "support");
    assert!(phone
        .get(&path)
        .await
        .text()
        .contains("support.cloud.example"));

    // Status is written off the hot path, in batches: it shows up shortly after.
    let shown = eventually(|| async {
        let (_, shown) = acme.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
        (shown["status"]["last_outcome"] == "served").then_some(shown)
    })
    .await;
    assert_eq!(shown["status"]["model"], "T46S", "{shown}");
    assert_eq!(shown["status"]["last_outcome"], "served", "{shown}");

    let (status, _) = acme.delete(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert_eq!(status, 204);
    assert_eq!(
        phone.get(&path).await.status,
        404,
        "released: the phone gets nothing"
    );
    assert_eq!(
        acme.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await.0,
        404
    );

    let (_, audit) = server
        .admin()
        .get(&format!("/api/v1/audit?mac={YEALINK_MAC}"))
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "device.claim",
            "device.enrol",
            "device.enrol.confirmed",
            "device.move",
            "device.release"
        ]
    );
    for e in audit["entries"].as_array().unwrap() {
        let actor = e["actor"].as_str().unwrap();
        let expected = if e["action"]
            .as_str()
            .is_some_and(|a| a.starts_with("device.enrol"))
        {
            "phone"
        } else {
            "partner:"
        };
        assert!(actor.starts_with(expected), "{e}");
        assert_eq!(e["source"], "127.0.0.1");
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
    }
    assert!(
        !audit.to_string().contains("secret-pw"),
        "no secrets in the audit log"
    );
}

#[tokio::test]
async fn the_claim_rules() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales", "support"]).await;
    let globex = server.partner("globex", &["globex-hq"]).await;

    for (mac, reason) in [
        ("80:5E:C0:17:DE", "invalid_mac"),
        ("80:5E:C0:17:DE:ZZ", "invalid_mac"),
        ("00:00:00:00:00:00", "invalid_mac"),
        ("FF:FF:FF:FF:FF:FF", "invalid_mac"),
        ("01:00:5E:00:00:01", "invalid_mac"),
        ("00:11:22:33:44:55", "unsupported_vendor"),
    ] {
        let (status, body) = acme.claim(mac, "sales").await;
        assert_eq!(status, 422, "{mac}: {body}");
        assert_eq!(body["error"]["code"], "could_not_be_registered", "{body}");
        assert_eq!(body["error"]["reason"], reason, "{mac}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be registered"));
    }

    assert_eq!(acme.claim("805ec017de13", "sales").await.0, 201);
    let (status, again) = acme.claim("80:5e:c0:17:de:13", "sales").await;
    assert_eq!(status, 200, "idempotent for the same tenant: {again}");
    let (status, body) = acme.claim("805EC017DE13", "support").await;
    assert_eq!(status, 409, "another tenant of the same partner: {body}");
    let (status, body) = globex.claim("805ec017de13", "globex-hq").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "already_in_use");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is already in use"));

    // Another partner's tenant is as unknown as a tenant that does not exist.
    let (status, foreign) = globex.claim("805ec017de99", "sales").await;
    let (status2, missing) = globex.claim("805ec017de99", "nowhere").await;
    assert_eq!((status, status2), (404, 404));
    assert_eq!(foreign, missing);

    let page = server.metrics().await;
    assert!(
        metric_value(&page, r#"zerotouch_claims_total{result="created"}"#) >= 1.0,
        "{page}"
    );
    assert!(
        metric_value(
            &page,
            r#"zerotouch_claim_refusals_total{reason="already_in_use"}"#
        ) >= 2.0
    );
    assert!(
        metric_value(
            &page,
            r#"zerotouch_claim_refusals_total{reason="unsupported_vendor"}"#
        ) >= 1.0
    );
    assert!(
        metric_value(
            &page,
            r#"zerotouch_api_requests_total{method="POST",route="/api/v1/devices",status="409"}"#
        ) >= 2.0
    );
}

#[tokio::test]
async fn gigaset_devices_need_the_code_on_their_label() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    let (status, body) = acme.claim(GIGASET_MAC, "sales").await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["reason"], "invalid_claim_code");
    let (status, body) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": GIGASET_MAC, "tenant": "sales", "claim_code": "A1"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["reason"].as_str()),
        (422, Some("invalid_claim_code"))
    );
    let (status, _) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": GIGASET_MAC, "tenant": "sales", "claim_code": "ab12"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": GIGASET_MAC, "tenant": "sales", "claim_code": "XY99"}),
        )
        .await;
    assert_eq!(status, 422, "a wrong label code is refused: {body}");
    assert_eq!(body["error"]["reason"], "claim_code_mismatch");
    let (status, _) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": GIGASET_MAC, "tenant": "sales", "claim_code": "AB12"}),
        )
        .await;
    assert_eq!(status, 200, "the right code, any case");
    assert!(
        !acme
            .get(&format!("/api/v1/devices/{GIGASET_MAC}"))
            .await
            .1
            .to_string()
            .contains("AB12"),
        "the code is never returned"
    );
}

#[tokio::test]
async fn partners_cannot_see_or_touch_each_others_things() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    let globex = server.partner("globex", &["globex-hq"]).await;
    assert_eq!(acme.claim(YEALINK_MAC, "sales").await.0, 201);

    let mine = format!("/api/v1/devices/{YEALINK_MAC}");
    let nobody = "/api/v1/devices/805ec0999999";
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"display_name": "x"}))),
        ("DELETE", None),
    ] {
        let call = |path: String| {
            let globex = globex.clone();
            let body = body.clone();
            async move {
                match method {
                    "GET" => globex.get(&path).await,
                    "PATCH" => globex.patch(&path, body.as_ref().unwrap()).await,
                    _ => globex.delete(&path).await,
                }
            }
        };
        let theirs = call(mine.clone()).await;
        let missing = call(nobody.to_owned()).await;
        assert_eq!(theirs.0, 404, "{method}");
        assert_eq!(theirs, missing, "{method}: no existence oracle");
    }
    let (status, _) = globex.patch(&mine, &json!({"tenant": "globex-hq"})).await;
    assert_eq!(status, 404, "cannot move another partner's device");
    let (_, list) = globex.get("/api/v1/devices").await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 0);
    assert_eq!(globex.get("/api/v1/tenants/sales").await.0, 404);
    assert_eq!(
        globex
            .patch("/api/v1/tenants/sales", &json!({"keepalive_seconds": 10}))
            .await
            .0,
        404
    );
    assert_eq!(globex.delete("/api/v1/tenants/sales").await.0, 404);
    assert_eq!(globex.get("/api/v1/customers/1").await.0, 404);
    let (_, tenants) = globex.get("/api/v1/tenants").await;
    assert_eq!(tenants.as_array().unwrap().len(), 1);
    // acme still owns it, untouched.
    let (status, d) = acme.get(&mine).await;
    assert_eq!((status, d["tenant"].as_str()), (200, Some("sales")));
}

#[tokio::test]
async fn many_concurrent_claims_of_one_mac_have_exactly_one_winner() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    let globex = server.partner("globex", &["globex-hq"]).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, tenant) = if i % 2 == 0 {
            (acme.clone(), "sales")
        } else {
            (globex.clone(), "globex-hq")
        };
        tasks.push(tokio::spawn(async move {
            client.claim("44:DB:D2:00:00:01", tenant).await
        }));
    }
    let mut created = 0;
    let mut winner = None;
    let mut results = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == 201 {
            created += 1;
            winner = body["tenant"].as_str().map(str::to_owned);
        }
        results.push((status, body));
    }
    assert_eq!(created, 1, "{results:?}");
    let winner = winner.unwrap();
    for (status, body) in &results {
        match *status {
            201 => {}
            200 => assert_eq!(
                body["tenant"].as_str(),
                Some(winner.as_str()),
                "idempotent only for the winner's tenant"
            ),
            409 => assert_eq!(body["error"]["code"], "already_in_use"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
}

#[tokio::test]
async fn tokens_and_roles() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    for client in [
        server.api(None),
        server.api(Some("nope")),
        server.api(Some(
            "zt_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )),
    ] {
        let (status, body) = client.get("/api/v1/devices").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
    assert_eq!(
        acme.get("/api/v1/partners").await.0,
        403,
        "partners cannot use admin routes"
    );
    assert_eq!(acme.get("/api/v1/audit").await.0, 403);
    assert_eq!(
        server.admin().get("/api/v1/devices").await.0,
        403,
        "the admin acts through partners"
    );

    let admin = server.admin();
    let (_, partners) = admin.get("/api/v1/partners").await;
    let id = partners[0]["id"].clone();
    let (status, t) = admin
        .post(&format!("/api/v1/partners/{id}/tokens"), &json!({}))
        .await;
    assert_eq!(status, 201);
    let second = server.api(t["token"].as_str());
    assert_eq!(second.get("/api/v1/devices").await.0, 200);
    let (_, tokens) = admin.get(&format!("/api/v1/partners/{id}/tokens")).await;
    assert_eq!(tokens.as_array().unwrap().len(), 2);
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("token").is_none()),
        "shown once: {tokens}"
    );
    let (status, _) = admin
        .delete(&format!("/api/v1/partners/{id}/tokens/{}", t["id"]))
        .await;
    assert_eq!(status, 204);
    assert_eq!(second.get("/api/v1/devices").await.0, 401, "revoked");
    assert_eq!(
        acme.get("/api/v1/devices").await.0,
        200,
        "the other token still works"
    );
    assert_eq!(
        admin
            .post("/api/v1/partners/999/tokens", &json!({}))
            .await
            .0,
        404
    );
    assert_eq!(
        admin
            .post("/api/v1/partners", &json!({"name": "acme"}))
            .await
            .0,
        409
    );

    // Tokens are stored hashed: the database never holds one.
    let db = std::fs::read(server.data_dir.join("zerotouch.db")).unwrap();
    let token = t["token"].as_str().unwrap();
    let secret = token.rsplit('_').next().unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    for (body, needle) in [
        (&b"{\"mac\": "[..], "EOF"),
        (b"[1,2]", "invalid type"),
        (br#"{"mac": 805, "tenant": "sales"}"#, "invalid type"),
        (
            br#"{"mac": "805ec017de13", "tenant": "sales", "colour": "red"}"#,
            "unknown field `colour`",
        ),
        (br#"{"tenant": "sales"}"#, "missing field `mac`"),
        (b"", "required"),
    ] {
        let (status, err) = acme
            .post_raw("/api/v1/devices", "application/json", body.to_vec())
            .await;
        assert_eq!(status, 400, "{}: {err}", String::from_utf8_lossy(body));
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{needle}: {err}"
        );
    }
    let (status, err) = acme
        .post_raw(
            "/api/v1/tenants",
            "application/json",
            br#"{"name":"x1","customer":1,"sip_server":"a.example","keepalive_seconds":"thirty"}"#
                .to_vec(),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = acme.post("/api/v1/tenants", &json!({"name": "x2", "customer": 1, "sip_server": "a.example", "keepalive_seconds": 0})).await;
    assert_eq!(status, 422, "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("keepalive_seconds"));
    let (status, err) = acme
        .post(
            "/api/v1/tenants",
            &json!({"name": "sales", "customer": 1, "sip_server": "a.example"}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("name_not_available"))
    );
    let (status, err) = acme
        .post(
            "/api/v1/tenants",
            &json!({"name": "bad name", "customer": 1, "sip_server": "a.example"}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("invalid_tenant_name"))
    );
    let huge = format!(
        r#"{{"mac": "805ec017de13", "tenant": "{}"}}"#,
        "a".repeat(1024 * 1024)
    );
    let (status, err) = acme
        .post_raw("/api/v1/devices", "application/json", huge.into_bytes())
        .await;
    assert_eq!(status, 413, "{err}");
    let (status, err) = acme.get("/api/v1/devices?limit=abc").await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = acme.get("/api/v1/devices?sort=mac").await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(acme.get("/api/v1/nothing").await.0, 404);
    assert_eq!(
        acme.claim(YEALINK_MAC, "sales").await.0,
        201,
        "still serving"
    );
}

#[tokio::test]
async fn bulk_import_answers_per_row_in_json_and_csv() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    let globex = server.partner("globex", &["globex-hq"]).await;
    assert_eq!(globex.claim("805ec0000003", "globex-hq").await.0, 201);

    let mut rows: Vec<serde_json::Value> = (0..2000).map(|i| json!({"mac": format!("80:5e:c0:10:{:02x}:{:02x}", i / 256, i % 256), "tenant": "sales"})).collect();
    rows.push(json!({"mac": "not-a-mac", "tenant": "sales"}));
    rows.push(json!({"mac": "805ec0000003", "tenant": "sales"}));
    rows.push(json!({"mac": "805ec0000004", "tenant": "globex-hq"}));
    rows.push(json!({"mac": "7c2f80000001", "tenant": "sales"}));
    rows.push(json!({"mac": "805ec0000005", "tenant": "sales", "oops": true}));
    let (status, report) = acme
        .post("/api/v1/devices/import", &json!({"devices": rows}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 2000);
    assert_eq!(report["refused"], 5);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 2005);
    let codes: Vec<&str> = results[2000..]
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "invalid_mac",
            "already_in_use",
            "unknown_tenant",
            "invalid_claim_code",
            "invalid_row"
        ]
    );
    // Applied rows reach phones at once.
    let f = server
        .phone(Some("Yealink SIP-T46S 66.86.0.15"))
        .get("/805ec0100000.cfg")
        .await;
    assert_eq!(f.status, 200);

    let csv = "mac,tenant,claim_code,line_user,line_password\n\
               80:5E:C0:20:00:01,sales,,2001,pw-2001\n\
               7C:2F:80:20:00:01,sales,QW12,,\n\
               80:5E:C0:10:00:00,sales,,,\n\
               zz,sales,,,\n";
    let (status, report) = acme
        .post_raw(
            "/api/v1/devices/import",
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let statuses: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["created", "created", "updated", "refused"]);
    assert!(server
        .phone(Some("Yealink SIP-T46S 66.86.0.15"))
        .get("/805ec0200001.cfg")
        .await
        .text()
        .contains("account.1.password = pw-2001"));

    let (status, err) = acme
        .post_raw(
            "/api/v1/devices/import",
            "text/csv",
            b"mac,tenant,colour\n1,2,3\n".to_vec(),
        )
        .await;
    // Any text is a CSV body by the OpenAPI document; its columns are a rule: 422.
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "invalid_document");
    assert!(err["error"]["message"].as_str().unwrap().contains("colour"));
    let (status, _) = acme
        .post_raw(
            "/api/v1/devices/import",
            "application/json",
            b"{\"devices\": [".to_vec(),
        )
        .await;
    assert_eq!(status, 400);

    let (_, page) = acme
        .get("/api/v1/devices?mac_prefix=80:5E:C0:10&limit=1000")
        .await;
    assert_eq!(page["devices"].as_array().unwrap().len(), 1000);
    let next = page["next"].as_str().unwrap().to_owned();
    let (_, rest) = acme
        .get(&format!(
            "/api/v1/devices?mac_prefix=805ec010&limit=1000&after={next}"
        ))
        .await;
    assert_eq!(rest["devices"].as_array().unwrap().len(), 1000);
    let (_, gigasets) = acme.get("/api/v1/devices?vendor=gigaset").await;
    assert_eq!(gigasets["devices"].as_array().unwrap().len(), 1);
    let (_, never) = acme
        .get("/api/v1/devices?never_seen=true&tenant=sales&limit=1000")
        .await;
    assert_eq!(never["devices"].as_array().unwrap().len(), 1000);
    let (_, seen) = acme
        .get("/api/v1/devices?seen_since=2000-01-01T00:00:00Z")
        .await;
    let seen = seen["devices"].as_array().unwrap();
    assert!(seen.iter().all(|d| !d["status"].is_null()));
}

#[tokio::test]
async fn customers_and_tenants() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &[]).await;
    let (status, c) = acme
        .post("/api/v1/customers", &json!({"company": "Initech", "contact": "Bill", "address": "1 Main St", "phone": "+1 555 0100", "email": "it@initech.example"}))
        .await;
    assert_eq!(status, 201, "{c}");
    let (status, c2) = acme
        .patch(
            &format!("/api/v1/customers/{}", c["id"]),
            &json!({"contact": "Peter"}),
        )
        .await;
    assert_eq!(
        (status, c2["contact"].as_str(), c2["company"].as_str()),
        (200, Some("Peter"), Some("Initech"))
    );
    assert_eq!(
        acme.post(
            "/api/v1/customers",
            &json!({"company": "X", "email": "nope"})
        )
        .await
        .0,
        422
    );
    let (_, list) = acme.get("/api/v1/customers").await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    let (status, t) = acme
        .post(
            "/api/v1/tenants",
            &json!({"name": "Initech-HQ", "customer": c["id"], "sip_server": "hq.initech.example", "transport": "tls",
                    "expiry_seconds": 600, "keepalive_seconds": 25, "ntp_server": "ntp.initech.example", "timezone": "America/New_York",
                    "language": "en", "recheck_minutes": 60,
                    "firmware": [{"vendor": "snom", "model": "D785", "version": "10.1.33.33", "url": "https://fw.example/snomD785.bin"}],
                    "vendor_keys": {"yealink": {"features.dnd.enable": "1"}}}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["name"], "initech-hq", "names are lower-cased DNS labels");
    assert_eq!(t["sip_port"], 5061);
    assert_eq!(
        acme.post(
            "/api/v1/tenants",
            &json!({"name": "x", "customer": 999, "sip_server": "a.example"})
        )
        .await
        .1["error"]["code"],
        "unknown_customer"
    );
    assert_eq!(
        acme.patch("/api/v1/tenants/initech-hq", &json!({"name": "other"}))
            .await
            .0,
        422,
        "no renames"
    );
    assert_eq!(acme.claim(SNOM_MAC, "initech-hq").await.0, 201);
    let phone = server.phone(Some(SNOM_UA));
    let text = phone.get(&format!("/{SNOM_MAC}.xml")).await.text();
    // The firmware image is named in the file `firmware_status` points at.
    let firmware = format!("snomD785-{SNOM_MAC}-firmware.xml");
    assert!(text.contains("<firmware_status perm=\"R\">"), "{text}");
    assert!(text.contains(&firmware), "{text}");
    let fw = phone.get(&format!("/{firmware}")).await.text();
    assert!(
        fw.contains("<firmware perm=\"R\">https://fw.example/snomD785.bin</firmware>"),
        "{fw}"
    );
    assert!(
        text.contains("<timezone perm=\"R\">USA-5</timezone>"),
        "{text}"
    );
    let (status, err) = acme.delete("/api/v1/tenants/initech-hq").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("tenant_has_devices"))
    );
    assert_eq!(
        acme.delete(&format!("/api/v1/devices/{SNOM_MAC}")).await.0,
        204
    );
    assert_eq!(acme.delete("/api/v1/tenants/initech-hq").await.0, 204);
    assert_eq!(acme.get("/api/v1/tenants/initech-hq").await.0, 404);
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    let (status, doc) = server.api(None).get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("per-row"));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "post", "patch", "delete", "put"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let concrete = path
                .replace("{id}", "1")
                .replace("{token}", "1")
                .replace("{name}", "sales")
                .replace("{mac}", "805ec017de13");
            let client = if path.contains("partners") || path.contains("audit") {
                server.admin()
            } else {
                acme.clone()
            };
            let (status, body) = client
                .request(method.to_uppercase().parse().unwrap(), &concrete)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .map(|r| (r.status().as_u16(), r))
                .unwrap();
            let text = body.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} documented but not routed");
            assert!(
                !text.contains("route not found"),
                "{method} {path} documented but not routed: {text}"
            );
        }
    }
    assert!(operations >= 20, "{operations} operations documented");
    // And every route answers something documented: an undocumented path is the fallback.
    let (status, body) = acme.get("/api/v1/undocumented").await;
    assert_eq!(status, 404);
    assert!(body.to_string().contains("route not found"));
}

#[tokio::test]
async fn the_api_is_not_on_the_phones_port_and_phones_are_not_on_the_api_port() {
    let server = TestServer::demo().await;
    let phone = server.phone(None);
    assert_eq!(phone.get("/api/v1/openapi.json").await.status, 404);
    assert_eq!(phone.get("/api/v1/devices").await.status, 404);
    let (status, _) = server.api(None).get(&format!("/{YEALINK_MAC}.cfg")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn api_metrics_pass_promtool() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    acme.claim(YEALINK_MAC, "sales").await;
    acme.claim("00:11:22:33:44:55", "sales").await;
    acme.delete(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    let page = server.metrics().await;
    assert!(metric_value(&page, "zerotouch_releases_total") >= 1.0);
    assert!(
        page.contains(r#"zerotouch_api_request_duration_seconds_bucket{route="/api/v1/devices""#),
        "{page}"
    );
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn an_import_larger_than_2_mb_is_taken_and_a_small_route_keeps_its_limit() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    // About 2.9 MB: 20,000 rows with a long display name each.
    let rows: Vec<String> = (0..20_000u32)
        .map(|i| {
            format!(
                "80:5E:C0:{:02X}:{:02X}:{:02X},sales,,{}",
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff,
                "x".repeat(120)
            )
        })
        .collect();
    let csv = format!("mac,tenant,claim_code,display_name\n{}\n", rows.join("\n"));
    assert!(csv.len() > 2_700_000, "{}", csv.len());
    let (status, report) = acme
        .post_raw("/api/v1/devices/import", "text/csv", csv.into_bytes())
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 20_000, "{}", report["refused"]);
    let huge = format!(
        r#"{{"mac": "805ec017de13", "tenant": "{}"}}"#,
        "a".repeat(3 << 20)
    );
    let (status, _) = acme
        .post_raw("/api/v1/devices", "application/json", huge.into_bytes())
        .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn methods_nobody_knows_do_not_grow_the_metrics_page() {
    let server = TestServer::start().await;
    let api = server.api(None);
    let before = server.metrics().await.len();
    for i in 0..50 {
        let method =
            reqwest::Method::from_bytes(format!("X{}{i}", "M".repeat(2000)).as_bytes()).unwrap();
        let _ = api.request(method, "/api/v1/devices").send().await.unwrap();
    }
    let page = server.metrics().await;
    assert!(
        page.len() < before + 4096,
        "{} → {} bytes",
        before,
        page.len()
    );
    assert!(page.contains(r#"method="other""#));
    assert!(!page.contains("MMMM"));
}

/// What the OpenAPI document promises holds at the edges: every error is the API's JSON, a
/// number with a zero fraction is an integer, and times take any RFC 3339 offset.
#[tokio::test]
async fn the_api_keeps_its_documents_promises_at_the_edges() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;

    // A path parameter of the wrong type, or one too big: 400 as JSON, not text.
    for path in [
        "/api/v1/customers/abc",
        "/api/v1/customers/9223372036854775808",
    ] {
        let response = acme
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{path}");
    }
    // A method the route does not have: 405 as JSON, with the methods it has.
    let response = acme
        .request(reqwest::Method::PUT, "/api/v1/devices")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("allow"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    // 30.0 is the integer 30 in JSON Schema; 30.5 is not an integer.
    let (status, tenant) = acme
        .patch("/api/v1/tenants/sales", &json!({"keepalive_seconds": 45.0}))
        .await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["keepalive_seconds"], 45);
    let (status, _) = acme
        .patch("/api/v1/tenants/sales", &json!({"keepalive_seconds": 45.5}))
        .await;
    assert_eq!(status, 400);

    // Any offset, not only Z; an offset that moves the instant moves the filter.
    let (status, _) = acme.claim("80:5E:C0:17:DE:13", "sales").await;
    assert_eq!(status, 201);
    let (status, page) = acme
        .get("/api/v1/devices?seen_since=2000-01-01T02:00:00%2B02:00&never_seen=true")
        .await;
    assert_eq!(status, 200, "{page}");
    let (status, page) = acme
        .get("/api/v1/devices?seen_before=2999-01-01T00:00:00-05:00")
        .await;
    assert_eq!(status, 200, "{page}");
    let (status, err) = acme.get("/api/v1/devices?seen_since=yesterday").await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("RFC 3339"));
}

#[tokio::test]
async fn a_partner_previews_what_its_phone_will_be_served_with_every_secret_masked() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    let globex = server.partner("globex", &["ops"]).await;
    let (status, device) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": YEALINK_MAC, "tenant": "sales",
                    "lines": [{"user": "1001", "password": "secret-pw-1001"}]}),
        )
        .await;
    assert_eq!(status, 201, "{device}");
    let preview_path = format!("/api/v1/devices/{YEALINK_MAC}/config");

    // Before its first fetch: the device file is the one that hands out its credentials.
    let (status, first) = acme.get(&preview_path).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["path"], format!("/{YEALINK_MAC}.cfg"));
    assert_eq!(first["content_type"], "text/plain; charset=utf-8");
    assert_eq!(first["hands_out_credentials"], true);
    let config = first["config"].as_str().unwrap();
    assert!(
        config.contains("account.1.sip_server.1.address = sales.cloud.example"),
        "{config}"
    );
    assert!(config.contains("account.1.password = ********"), "{config}");
    assert!(config.contains("<issued-at-first-fetch>"), "{config}");
    assert!(!first.to_string().contains("secret-pw-1001"), "{first}");

    // Once the phone has enrolled, the preview is what it is served, password masked.
    let phone = server.phone(Some(YEALINK_UA));
    let path = format!("/{YEALINK_MAC}.cfg");
    assert_eq!(phone.get(&path).await.status, 200, "enrols");
    assert_eq!(phone.get(&path).await.status, 200, "authenticates: binds");
    server.bound(YEALINK_MAC).await;
    let served = phone.get(&path).await;
    assert_eq!(served.status, 200);
    let (status, after) = acme
        .get(&format!(
            "{preview_path}?user_agent={}",
            urlencode(YEALINK_UA)
        ))
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["hands_out_credentials"], false);
    assert_eq!(
        after["config"].as_str().unwrap(),
        served.text().replace("secret-pw-1001", "********"),
        "the preview is the served file with its password masked"
    );
    let (_, served_device) = acme.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert_eq!(
        served_device["phone_auth"]["state"], "enrolled",
        "a preview binds and records nothing"
    );

    // The model's common file, as the phone asks for it.
    let (status, common) = acme
        .get(&format!(
            "{preview_path}?path=/y000000000066.cfg&user_agent={}",
            urlencode(YEALINK_UA)
        ))
        .await;
    assert_eq!(status, 200, "{common}");
    assert_eq!(common["hands_out_credentials"], false);

    // Files this phone is not served, and callers it is not theirs.
    for (query, why) in [
        ("?path=/nonsense.txt", "not a phone's file"),
        ("?path=/805ec0000001.cfg", "another device's file"),
        (
            &format!("?path=/{}.xml", YEALINK_MAC.to_uppercase()) as &str,
            "another vendor's file",
        ),
    ] {
        let (status, body) = acme.get(&format!("{preview_path}{query}")).await;
        assert_eq!(status, 422, "{why}: {body}");
        assert_eq!(body["error"]["code"], "not_served", "{why}: {body}");
    }
    let (status, body) = globex.get(&preview_path).await;
    assert_eq!(status, 404, "another partner's device: {body}");
    let (status, body) = acme.get("/api/v1/devices/805ec0000001/config").await;
    assert_eq!(status, 404, "an unclaimed MAC: {body}");
    let (status, body) = acme.get(&format!("{preview_path}?colour=blue")).await;
    assert_eq!(status, 400, "{body}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_partner_exports_its_devices_as_csv_page_after_page() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales", "support"]).await;
    let globex = server.partner("globex", &["globex-hq"]).await;
    assert_eq!(globex.claim("805ec0000003", "globex-hq").await.0, 201);
    // More than the export's page of 1,000, so it must follow its own cursor.
    let rows: Vec<serde_json::Value> = (0..2500)
        .map(|i| json!({"mac": format!("80:5e:c0:20:{:02x}:{:02x}", i / 256, i % 256), "tenant": "sales"}))
        .collect();
    let (status, report) = acme
        .post("/api/v1/devices/import", &json!({"devices": rows}))
        .await;
    assert_eq!(status, 200, "{report}");
    let (status, d) = acme
        .post(
            "/api/v1/devices",
            &json!({"mac": YEALINK_MAC, "tenant": "support", "display_name": "=HYPERLINK(\"http://x\")",
                    "lines": [{"user": "1001", "password": "secret-pw-1001"}]}),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let phone = server.phone(Some(YEALINK_UA));
    assert_eq!(phone.get(&format!("/{YEALINK_MAC}.cfg")).await.status, 200);
    eventually(|| async {
        let (_, shown) = acme.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
        (!shown["status"].is_null()).then_some(())
    })
    .await;

    let export = |query: &'static str| {
        let acme = &acme;
        async move {
            let response = acme
                .request(
                    reqwest::Method::GET,
                    &format!("/api/v1/devices/export{query}"),
                )
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            (status, content_type, text)
        }
    };
    let (status, content_type, text) = export("").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type.as_deref(), Some("text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[..3], ["mac", "vendor", "tenant"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        records.len(),
        2501,
        "every device of the partner, none of another's"
    );
    let macs: Vec<&str> = records.iter().map(|r| r.get(0).unwrap()).collect();
    assert!(
        macs.windows(2).all(|w| w[0] < w[1]),
        "MAC order, no repeats"
    );
    assert!(!macs.contains(&"805ec0000003"), "another partner's device");
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let phone_row = records
        .iter()
        .find(|r| r.get(0) == Some(YEALINK_MAC))
        .expect("the phone's row");
    assert_eq!(&phone_row[column("tenant")], "support");
    assert_eq!(&phone_row[column("lines")], "1");
    assert_eq!(
        &phone_row[column("display_name")],
        "'=HYPERLINK(\"http://x\")",
        "a formula is written as text"
    );
    assert_eq!(&phone_row[column("last_outcome")], "enrolled");
    assert_eq!(&phone_row[column("phone_auth")], "enrolment_pending");
    assert_eq!(&phone_row[column("model")], "T46S");
    assert!(!text.contains("secret-pw-1001"));

    // The list's filters apply.
    let (status, _, text) = export("?tenant=support").await;
    assert_eq!(status, 200);
    assert_eq!(
        text.lines().count(),
        2,
        "the header and the one phone: {text}"
    );
    let (_, _, text) = export("?never_seen=true&mac_prefix=80:5e:c0:20:09").await;
    assert_eq!(text.lines().count(), 1 + 196, "{text}");
    let (status, _, text) = export("?limit=5").await;
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = export("?vendor=cisco").await;
    assert_eq!(status, 400, "{text}");
}

#[tokio::test]
async fn tenant_and_customer_lists_come_a_page_at_a_time_following_the_link_header() {
    let server = TestServer::start().await;
    let acme = server
        .partner("acme", &["t1", "t2", "t3", "t4", "t5"])
        .await;
    let _globex = server.partner("globex", &["t22"]).await;

    // Following `Link: rel="next"` walks every tenant once, in name order.
    let mut seen = Vec::new();
    let mut next = Some("/api/v1/tenants?limit=2".to_owned());
    while let Some(path) = next.take() {
        let response = acme
            .request(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with(">; rel=\"next\""), "{link}");
            link[1..link.find('>').unwrap()].to_owned()
        });
        let page: Vec<serde_json::Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
    }
    assert_eq!(
        seen,
        ["t1", "t2", "t3", "t4", "t5"],
        "only its own, each once"
    );

    // Without parameters: the whole list (up to 1,000), no Link.
    let response = acme
        .request(reqwest::Method::GET, "/api/v1/tenants")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("link").is_none());
    assert_eq!(
        response
            .json::<Vec<serde_json::Value>>()
            .await
            .unwrap()
            .len(),
        5
    );

    for company in ["B", "C"] {
        let (status, body) = acme
            .post("/api/v1/customers", &json!({"company": company}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, first) = acme.get("/api/v1/customers?limit=2").await;
    assert_eq!(status, 200, "{first}");
    let first = first.as_array().unwrap();
    assert_eq!(first.len(), 2);
    let after = first[1]["id"].as_i64().unwrap();
    let (_, rest) = acme
        .get(&format!("/api/v1/customers?after={after}&limit=2"))
        .await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(rest[0]["company"], "C");

    for bad in [
        "/api/v1/tenants?limit=0",
        "/api/v1/tenants?limit=1001",
        "/api/v1/tenants?after=Not_A_Name",
        "/api/v1/customers?after=x",
        "/api/v1/customers?after=-1",
        "/api/v1/customers?page=2",
    ] {
        let (status, body) = acme.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["code"].is_string(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_partner_manages_its_own_tokens_named_scoped_expiring_and_last_used() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    let globex = server.partner("globex", &["ops"]).await;

    let (status, issued) = acme
        .post(
            "/api/v1/tokens",
            &json!({"name": "inventory export", "scope": "read_only"}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["scope"], "read_only");
    assert_eq!(issued["name"], "inventory export");
    assert!(issued["expires_at"].is_null());
    let reader = server.api(issued["token"].as_str());

    // A read-only token reads, and changes nothing.
    let (status, _) = reader.get("/api/v1/tenants").await;
    assert_eq!(status, 200);
    let (status, body) = reader.claim(YEALINK_MAC, "sales").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "read_only_token");
    let (status, body) = reader.post("/api/v1/tokens", &json!({})).await;
    assert_eq!(status, 403, "it cannot issue a writer either: {body}");
    let (_, device) = acme.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert_eq!(
        device["error"]["code"], "not_found",
        "the refused claim left nothing"
    );

    // The list shows each token's use, without the token itself.
    let listed = eventually(|| async {
        let (_, tokens) = acme.get("/api/v1/tokens").await;
        let tokens = tokens.as_array().unwrap().clone();
        let reader = tokens.iter().find(|t| t["id"] == issued["id"])?.clone();
        (!reader["last_used_at"].is_null()).then_some(tokens)
    })
    .await;
    assert_eq!(listed.len(), 2, "the partner's first token and the new one");
    assert!(listed.iter().all(|t| t["token"].is_null()));
    let (_, theirs) = globex.get("/api/v1/tokens").await;
    assert_eq!(
        theirs.as_array().unwrap().len(),
        1,
        "only its own: {theirs}"
    );

    // An expiry in the past is refused; a token past its expiry is refused like a wrong one.
    let (status, body) = acme
        .post(
            "/api/v1/tokens",
            &json!({"expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let soon = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3),
    )
    .to_string();
    let (status, short) = acme
        .post(
            "/api/v1/tokens",
            &json!({"name": "short", "expires_at": soon}),
        )
        .await;
    assert_eq!(status, 201, "{short}");
    let short_lived = server.api(short["token"].as_str());
    assert_eq!(short_lived.get("/api/v1/tenants").await.0, 200);
    eventually(|| async { (short_lived.get("/api/v1/tenants").await.0 == 401).then_some(()) })
        .await;

    // Revoking: another partner's token is not found; its own works at once.
    let (status, _) = globex
        .delete(&format!("/api/v1/tokens/{}", issued["id"]))
        .await;
    assert_eq!(status, 404);
    assert_eq!(reader.get("/api/v1/tenants").await.0, 200);
    let (status, _) = acme
        .delete(&format!("/api/v1/tokens/{}", issued["id"]))
        .await;
    assert_eq!(status, 204);
    assert_eq!(reader.get("/api/v1/tenants").await.0, 401);

    // The administrator's routes set the same, and its token has no partner's tokens.
    let (status, body) = server.admin().get("/api/v1/tokens").await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn a_partner_releases_and_moves_selected_devices_in_one_request() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales", "support"]).await;
    let globex = server.partner("globex", &["globex-hq"]).await;
    let yealink = |n: u8| {
        (
            format!("805ec00000{n:02x}"),
            server.phone(Some(&format!(
                "Yealink SIP-T46S 66.86.0.15 80:5e:c0:00:00:{n:02x}"
            ))),
        )
    };
    let phones: Vec<_> = (1..=5).map(yealink).collect();
    for (mac, phone) in &phones {
        assert_eq!(acme.claim(mac, "sales").await.0, 201);
        let served = phone.get(&format!("/{mac}.cfg")).await;
        assert_eq!(served.status, 200);
        assert!(served.text().contains("sales.cloud.example"));
    }
    let (theirs, their_phone) = yealink(9);
    assert_eq!(globex.claim(&theirs, "globex-hq").await.0, 201);
    assert_eq!(their_phone.get(&format!("/{theirs}.cfg")).await.status, 200);

    // Three of acme's (in three notations), one of globex's and a malformed MAC.
    let (status, body) = acme
        .post(
            "/api/v1/devices/bulk",
            &json!({"action": "release", "macs": [
                "80:5E:C0:00:00:01", &theirs, "805ec0000002", "not-a-mac", "80-5E-C0-00-00-03"
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"applied": 3, "refused": 2, "results": [
            {"mac": "80:5E:C0:00:00:01", "outcome": "released"},
            {"mac": theirs, "outcome": "refused", "code": "not_found"},
            {"mac": "805ec0000002", "outcome": "released"},
            {"mac": "not-a-mac", "outcome": "refused", "code": "invalid_mac"},
            {"mac": "80-5E-C0-00-00-03", "outcome": "released"},
        ]})
    );
    // The released phones get nothing on their very next fetch; globex's is untouched.
    for (mac, phone) in &phones[..3] {
        assert_eq!(phone.get(&format!("/{mac}.cfg")).await.status, 404, "{mac}");
        assert_eq!(acme.get(&format!("/api/v1/devices/{mac}")).await.0, 404);
    }
    assert_eq!(their_phone.get(&format!("/{theirs}.cfg")).await.status, 200);
    let (status, device) = globex.get(&format!("/api/v1/devices/{theirs}")).await;
    assert_eq!(
        (status, device["tenant"].as_str()),
        (200, Some("globex-hq"))
    );
    let (_, audit) = server.admin().get("/api/v1/audit?limit=1000").await;
    let releases: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "device.release")
        .inspect(|e| assert!(e["actor"].as_str().unwrap().starts_with("partner:")))
        .map(|e| e["mac"].as_str().unwrap())
        .collect();
    assert_eq!(releases, ["805ec0000001", "805ec0000002", "805ec0000003"]);

    // A move to another of acme's tenants reaches the phones on their next fetch.
    let (status, body) = acme
        .post(
            "/api/v1/devices/bulk",
            &json!({"action": "move", "tenant": "support",
                    "macs": [&phones[3].0, &phones[4].0, &phones[3].0]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let outcomes: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["moved", "moved", "unchanged"]);
    assert_eq!(
        (body["applied"].as_u64(), body["refused"].as_u64()),
        (Some(3), Some(0))
    );
    for (mac, phone) in &phones[3..] {
        let served = phone.get(&format!("/{mac}.cfg")).await;
        assert!(served.text().contains("support.cloud.example"), "{mac}");
    }

    // A move to globex's tenant is refused whole: nothing changes.
    // What partners did, that is: a phone's enrolment is confirmed off its fetch's path.
    let partners_did = || async {
        let (_, audit) = server.admin().get("/api/v1/audit?limit=1000").await;
        let entries = audit["entries"].as_array().unwrap().clone();
        entries
            .into_iter()
            .filter(|e| e["actor"] != "phone")
            .collect::<Vec<_>>()
    };
    let audited = partners_did().await;
    let (status, body) = acme
        .post(
            "/api/v1/devices/bulk",
            &json!({"action": "move", "tenant": "globex-hq", "macs": [&phones[3].0, &theirs]}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, device) = acme.get(&format!("/api/v1/devices/{}", phones[3].0)).await;
    assert_eq!(device["tenant"], "support");
    let (_, device) = globex.get(&format!("/api/v1/devices/{theirs}")).await;
    assert_eq!(device["tenant"], "globex-hq");
    assert_eq!(partners_did().await, audited);

    // What the body must say: a tenant for a move, none for a release, 10,000 MACs at most.
    for (body, status) in [
        (json!({"action": "move", "macs": [&phones[3].0]}), 422),
        (
            json!({"action": "release", "tenant": "sales", "macs": []}),
            422,
        ),
        (json!({"action": "steal", "macs": []}), 400),
        (
            json!({"action": "release", "macs": vec!["805ec0000004"; 10_001]}),
            422,
        ),
    ] {
        assert_eq!(
            acme.post("/api/v1/devices/bulk", &body).await.0,
            status,
            "{body}"
        );
    }
    let (_, device) = acme.get(&format!("/api/v1/devices/{}", phones[3].0)).await;
    assert_eq!(device["tenant"], "support");
    // The administrator has no devices of its own to release.
    assert_eq!(
        server
            .admin()
            .post(
                "/api/v1/devices/bulk",
                &json!({"action": "release", "macs": []})
            )
            .await
            .0,
        403
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_mac_is_checked_as_it_is_typed_with_the_claims_own_reasons() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales"]).await;
    let globex = server.partner("globex", &["ops"]).await;
    assert_eq!(acme.claim("805ec0000001", "sales").await.0, 201);
    assert_eq!(globex.claim("805ec0000002", "ops").await.0, 201);
    let (status, gigaset) = globex
        .post(
            "/api/v1/devices",
            &json!({"mac": GIGASET_MAC, "tenant": "ops", "claim_code": "AB12"}),
        )
        .await;
    assert_eq!(status, 201, "{gigaset}");

    let check = |query: String| {
        let acme = &acme;
        async move {
            let (status, body) = acme.get(&format!("/api/v1/devices/check?{query}")).await;
            assert_eq!(status, 200, "{query}: {body}");
            body
        }
    };
    let free = check("mac=80-5E-C0-00-00-09".into()).await;
    assert_eq!(free["state"], "available", "{free}");
    assert_eq!(free["mac"], "805ec0000009");
    assert_eq!(free["vendor"], "yealink");
    assert_eq!(free["needs_claim_code"], false);
    assert_eq!(check("mac=805e.c000.0001".into()).await["state"], "yours");
    let taken = check("mac=80:5e:c0:00:00:02".into()).await;
    assert_eq!(taken["state"], "in_use", "{taken}");
    assert!(!taken.to_string().contains("globex"), "never who: {taken}");
    let typing = check("mac=80:5e:c0".into()).await;
    assert_eq!(typing["state"], "invalid_mac");
    assert!(typing["mac"].is_null() && typing["reason"].is_string());
    assert_eq!(
        check("mac=001122334455".into()).await["state"],
        "unsupported_vendor"
    );

    // A Gigaset asks for its label code, unless it is taken already.
    let gigaset = check("mac=7c:2f:80:00:00:01".into()).await;
    assert_eq!(gigaset["state"], "needs_claim_code", "{gigaset}");
    assert_eq!(gigaset["needs_claim_code"], true);
    assert_eq!(gigaset["vendor"], "gigaset");
    assert_eq!(
        check("mac=7c:2f:80:00:00:01&claim_code=A!".into()).await["state"],
        "invalid_claim_code"
    );
    assert_eq!(
        check("mac=7c:2f:80:00:00:01&claim_code=ab12".into()).await["state"],
        "available"
    );
    assert_eq!(check(format!("mac={GIGASET_MAC}")).await["state"], "in_use");

    // The claim agrees with what the check said.
    assert_eq!(acme.claim("805ec0000009", "sales").await.0, 201);
    assert_eq!(acme.claim("805ec0000002", "sales").await.0, 409);
    let (status, body) = acme.get("/api/v1/devices/check").await;
    assert_eq!(status, 400, "mac is required: {body}");
}

#[tokio::test]
async fn a_tenant_shows_how_its_devices_stand_including_those_failing_to_authenticate() {
    let server = TestServer::start().await;
    let acme = server.partner("acme", &["sales", "quiet"]).await;
    for mac in [YEALINK_MAC, "805ec0000002", "805ec0000003"] {
        assert_eq!(acme.claim(mac, "sales").await.0, 201);
    }
    let path = format!("/{YEALINK_MAC}.cfg");
    let phone = server.phone(Some(YEALINK_UA));
    assert_eq!(phone.get(&path).await.status, 200, "enrols");
    assert_eq!(phone.get(&path).await.status, 200, "authenticates: binds");
    server.bound(YEALINK_MAC).await;
    // 805ec0000002 enrols; then someone presents the wrong password for it.
    let other = server.phone(Some("Yealink SIP-T46S 66.86.0.15 80:5e:c0:00:00:02"));
    assert_eq!(other.get("/805ec0000002.cfg").await.status, 200, "enrols");
    let (wrong, _) = server
        .phone(Some("Yealink SIP-T46S 66.86.0.15 80:5e:c0:00:00:02"))
        .get_once(
            "/805ec0000002.cfg",
            Some("Basic MDAwMDAwMDAwMDAyOndyb25nLXBhc3N3b3Jk"),
        )
        .await;
    assert_eq!(wrong.status, 404, "answered like an unknown MAC");

    let counts = eventually(|| async {
        let (status, t) = acme.get("/api/v1/tenants/sales").await;
        assert_eq!(status, 200, "{t}");
        // Status and failures are written in batches, off the phones' path.
        let c = &t["counts"];
        (c["failing_authentication"] == 1 && c["never_seen"] == 1).then_some(c.clone())
    })
    .await;
    assert_eq!(counts["devices"], 3, "{counts}");
    assert_eq!(counts["enrolled"], 1, "{counts}");

    // The failed attempt is not the phone's last-seen status; the partner sees it apart.
    let (_, device) = acme.get("/api/v1/devices/805ec0000002").await;
    assert_eq!(device["status"]["last_outcome"], "enrolled", "{device}");
    let failure = &device["last_auth_failure"];
    assert_eq!(failure["source"], "127.0.0.1", "{device}");
    assert_eq!(
        failure["user_agent"],
        "Yealink SIP-T46S 66.86.0.15 80:5e:c0:00:00:02"
    );
    assert!(failure["at"].is_string());
    assert!(!device.to_string().contains("wrong-password"));
    let (_, fine) = acme.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert!(fine["last_auth_failure"].is_null(), "{fine}");

    let (_, list) = acme.get("/api/v1/tenants?counts=true").await;
    let list = list.as_array().unwrap();
    assert_eq!(list[0]["name"], "quiet");
    assert_eq!(list[0]["counts"]["devices"], 0);
    assert_eq!(list[1]["counts"], counts);
    let (_, plain) = acme.get("/api/v1/tenants").await;
    assert!(plain[0].get("counts").is_none(), "only when asked: {plain}");
}
