//! The partner portal over real HTTPS, as a browser uses it (cookies and forms by hand): users
//! and their set-password links, login and its throttle, sessions ending by logout and by
//! expiry, CSRF refusals, isolation between partners by URL, the security headers, French from
//! `Accept-Language`, and the pages acting through the API's rules and audit.

use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::support::{ApiClient, TestServer, YEALINK_MAC};

const PASSWORD: &str = "a long enough password";

/// A browser: no automatic redirects, one session cookie, an optional language.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
    lang: Option<&'static str>,
}

/// An answer: status, headers, body.
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let start = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.body))
            + "name=\"csrf\" value=\"".len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl Browser {
    fn new(server: &TestServer) -> Self {
        Self {
            client: reqwest::Client::builder()
                .add_root_certificate(server.certificate())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("https://{}", server.addrs.api.unwrap()),
            cookie: None,
            lang: None,
        }
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let r = match &self.cookie {
            Some(c) => r.header(COOKIE, format!("zt_session={c}")),
            None => r,
        };
        let r = match self.lang {
            Some(l) => r.header(ACCEPT_LANGUAGE, l),
            None => r,
        };
        let response = r.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            if let Some(rest) = set.strip_prefix("zt_session=") {
                let value = rest.split(';').next().unwrap();
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.client.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(r).await
    }

    /// Posts a form with the CSRF token of the page at `from`.
    async fn submit(&mut self, from: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf();
        let mut form = form.to_vec();
        form.push(("csrf", &csrf));
        self.post(path, &form).await
    }

    /// Posts `multipart/form-data`, as a browser does for a form with a file input: the
    /// fields, then the file part (its name, its bytes).
    async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &[u8]),
    ) -> Page {
        let boundary = "----zerotouch-test-boundary-7d1f";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: text/csv\r\n\r\n",
                file.0
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.1);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.send(r).await
    }

    async fn login(&mut self, email: &str, password: &str) -> Page {
        self.post("/login", &[("email", email), ("password", password)])
            .await
    }
}

/// The id of the partner named `name`.
pub(crate) async fn partner_id(server: &TestServer, name: &str) -> i64 {
    let (_, partners) = server.admin().get("/api/v1/partners").await;
    partners
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Creates a user of `partner` through the admin API; its one-time link's path and its id.
pub(crate) async fn user_link(server: &TestServer, partner: &str, email: &str) -> (String, i64) {
    let id = partner_id(server, partner).await;
    let (status, body) = server
        .admin()
        .post("/api/v1/users", &json!({"partner_id": id, "email": email}))
        .await;
    assert_eq!(status, 201, "{body}");
    let link = body["link"].as_str().unwrap();
    let path = link.find("/set-password").map(|i| &link[i..]).unwrap();
    (path.to_owned(), body["id"].as_i64().unwrap())
}

/// Sets the password through the link's form.
async fn set_password(browser: &mut Browser, link: &str) -> Page {
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = link.split("token=").nth(1).unwrap();
    browser
        .post(
            "/set-password",
            &[
                ("token", token),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await
}

/// A partner with tenants, and a logged-in user of it.
async fn logged_in(server: &TestServer, partner: &str, tenants: &[&str]) -> (Browser, ApiClient) {
    let api = server.partner(partner, tenants).await;
    let email = format!("ann@{partner}.test");
    let (link, _) = user_link(server, partner, &email).await;
    let mut browser = Browser::new(server);
    let set = set_password(&mut browser, &link).await;
    assert_eq!(set.status, 303, "{}", set.body);
    let login = browser.login(&email, PASSWORD).await;
    assert_eq!(login.status, 303, "{}", login.body);
    (browser, api)
}

#[tokio::test]
async fn a_user_sets_a_password_logs_in_and_out() {
    let server = TestServer::start().await;
    server.partner("acme", &["sales"]).await;
    let (link, _) = user_link(&server, "acme", "Ann@Acme.test").await;
    let mut browser = Browser::new(&server);

    let anonymous = browser.get("/devices").await;
    assert_eq!((anonymous.status, anonymous.location()), (303, "/login"));

    let set = set_password(&mut browser, &link).await;
    assert_eq!((set.status, set.location()), (303, "/login?set=1"));
    let again = set_password(&mut browser, &link).await;
    assert_eq!(again.status, 400, "a link works once");

    let wrong = browser.login("ann@acme.test", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong e-mail or password."));
    assert!(browser.cookie.is_none());

    let right = browser.login("ANN@acme.test", PASSWORD).await;
    assert_eq!((right.status, right.location()), (303, "/devices"));
    let cookie = right.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let devices = browser.get("/devices").await;
    assert_eq!(devices.status, 200, "{}", devices.body);
    assert!(devices.body.contains("ann@acme.test"));

    let refused = browser.post("/logout", &[]).await;
    assert_eq!(refused.status, 403, "no CSRF token");
    let session = browser.cookie.clone();
    let out = browser.submit("/devices", "/logout", &[]).await;
    assert_eq!((out.status, out.location()), (303, "/login?out=1"));
    assert!(browser.cookie.is_none(), "the cookie is cleared");
    browser.cookie = session;
    let after = browser.get("/devices").await;
    assert_eq!(
        (after.status, after.location()),
        (303, "/login?ended=1"),
        "the session is gone from the store, not only from the browser"
    );
}

#[tokio::test]
async fn the_administrator_resets_a_password_with_a_new_link() {
    let server = TestServer::start().await;
    server.partner("acme", &[]).await;
    let (first, id) = user_link(&server, "acme", "ann@acme.test").await;
    let (status, body) = server
        .admin()
        .post(&format!("/api/v1/users/{id}/reset"), &json!(null))
        .await;
    assert_eq!(status, 200, "{body}");
    let link = body["link"].as_str().unwrap();
    let second = &link[link.find("/set-password").unwrap()..];
    let mut browser = Browser::new(&server);
    assert_eq!(set_password(&mut browser, &first).await.status, 400);
    assert_eq!(set_password(&mut browser, second).await.status, 303);
    assert_eq!(browser.login("ann@acme.test", PASSWORD).await.status, 303);

    let (status, users) = server.admin().get("/api/v1/users?partner_id=1").await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(users[0]["email"], "ann@acme.test");
    assert_eq!(users[0]["password_set"], true);
    assert!(
        !users.to_string().contains("argon2"),
        "no hash in the answer"
    );
    let partner = server.partner("other", &[]).await;
    let (status, _) = partner
        .post(&format!("/api/v1/users/{id}/reset"), &json!(null))
        .await;
    assert_eq!(status, 403, "administrator only");
    let (status, body) = server
        .admin()
        .post(
            "/api/v1/users",
            &json!({"partner_id": 1, "email": "ann@acme.test"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("email_taken"))
    );
}

#[tokio::test]
async fn logins_are_throttled_per_account() {
    let server = TestServer::start().await;
    server.partner("acme", &[]).await;
    let (link, _) = user_link(&server, "acme", "ann@acme.test").await;
    let mut browser = Browser::new(&server);
    set_password(&mut browser, &link).await;
    for _ in 0..5 {
        assert_eq!(
            browser
                .login("ann@acme.test", "wrong password!")
                .await
                .status,
            401
        );
    }
    let locked = browser.login("ann@acme.test", PASSWORD).await;
    assert_eq!(locked.status, 429, "even the right password waits");
    assert!(locked.body.contains("Too many failed attempts"));
    assert!(browser.cookie.is_none());
}

#[tokio::test]
async fn an_idle_session_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |k| {
        k.portal_idle_timeout = Some("50ms".parse().unwrap());
    })
    .await;
    server.partner("acme", &[]).await;
    let (link, _) = user_link(&server, "acme", "ann@acme.test").await;
    let mut browser = Browser::new(&server);
    set_password(&mut browser, &link).await;
    assert_eq!(browser.login("ann@acme.test", PASSWORD).await.status, 303);
    // Waiting out the idle expiry itself (not synchronising with the server).
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    let page = browser.get("/devices").await;
    assert_eq!((page.status, page.location()), (303, "/login?ended=1"));
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let server = TestServer::start().await;
    let (mut browser, api) = logged_in(&server, "acme", &["sales"]).await;
    let bare = browser.post("/customers", &[("company", "Forged")]).await;
    assert_eq!(bare.status, 403);
    let wrong = browser
        .post("/customers", &[("company", "Forged"), ("csrf", "guess")])
        .await;
    assert_eq!(wrong.status, 403);
    let csrf = browser.get("/customers/new").await.csrf();
    let cross = browser
        .client
        .post(format!("{}/customers", browser.base))
        .header(
            COOKIE,
            format!("zt_session={}", browser.cookie.clone().unwrap()),
        )
        .header("Origin", "https://evil.example")
        .form(&[("company", "Forged"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let (_, customers) = api.get("/api/v1/customers").await;
    assert!(
        !customers.to_string().contains("Forged"),
        "nothing was created: {customers}"
    );
    let made = browser
        .submit("/customers/new", "/customers", &[("company", "Real Ltd")])
        .await;
    assert_eq!((made.status, made.location()), (303, "/customers?saved=1"));
}

#[tokio::test]
async fn a_user_cannot_reach_another_partners_objects_by_url() {
    let server = TestServer::start().await;
    let (mut ann, _) = logged_in(&server, "acme", &["sales"]).await;
    let (_, globex) = logged_in(&server, "globex", &["support"]).await;
    let (status, _) = globex
        .post(
            "/api/v1/devices",
            &json!({"mac": YEALINK_MAC, "tenant": "support"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, customers) = globex.get("/api/v1/customers").await;
    let theirs = customers[0]["id"].as_i64().unwrap();

    for path in [
        format!("/customers/{theirs}"),
        "/instances/support".to_owned(),
        format!("/devices/{YEALINK_MAC}"),
        format!("/devices/{YEALINK_MAC}/release"),
    ] {
        let page = ann.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        assert!(!page.body.contains("globex"), "{path}");
    }
    for path in [
        format!("/devices/{YEALINK_MAC}/release"),
        format!("/devices/{YEALINK_MAC}/rotate"),
        format!("/devices/{YEALINK_MAC}/enrolment"),
        format!("/customers/{theirs}"),
    ] {
        let page = ann
            .submit("/devices", &path, &[("company", "Taken over")])
            .await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    let (_, tokens) = globex.get("/api/v1/tokens").await;
    let token = tokens[0]["id"].as_i64().unwrap();
    let page = ann
        .submit("/tokens", &format!("/tokens/{token}/revoke"), &[])
        .await;
    assert_eq!(page.status, 404, "another partner's token");
    assert_eq!(globex.get("/api/v1/tokens").await.0, 200, "still valid");
    let list = ann.get("/devices").await;
    assert!(!list.body.contains(YEALINK_MAC));
    let (status, device) = globex.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert_eq!((status, device["tenant"].as_str()), (200, Some("support")));
}

#[tokio::test]
async fn every_answer_of_the_api_listener_carries_the_security_headers() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    for path in ["/login", "/api/v1/openapi.json", "/assets/portal.js"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        let h = |name: &str| page.headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            h("content-security-policy"),
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        );
        assert_eq!(h("x-frame-options"), "DENY");
        assert!(h("strict-transport-security").starts_with("max-age="));
    }
    let login = browser.get("/login").await;
    assert!(!login.body.contains("<script>"), "no inline script");
    assert!(login.body.contains("name=\"viewport\""));
    assert!(login.body.contains("<label for=\"email\">"));
}

#[tokio::test]
async fn french_from_accept_language_and_a_stored_choice() {
    let server = TestServer::start().await;
    let mut anonymous = Browser::new(&server);
    anonymous.lang = Some("fr-CH, fr;q=0.9, en;q=0.5");
    let login = anonymous.get("/login").await;
    assert!(login.body.contains("<html lang=\"fr\">"));
    assert!(login.body.contains("Mot de passe"));
    let wrong = anonymous.login("nobody@x.test", "whatever password").await;
    assert!(wrong.body.contains("E-mail ou mot de passe incorrect."));

    let (mut ann, _) = logged_in(&server, "acme", &["sales"]).await;
    assert!(ann.get("/devices").await.body.contains("Devices"));
    let switched = ann
        .submit(
            "/devices",
            "/language",
            &[("lang", "de"), ("back", "/devices")],
        )
        .await;
    assert_eq!((switched.status, switched.location()), (303, "/devices"));
    let page = ann.get("/devices").await;
    assert!(
        page.body.contains("Geräte"),
        "the stored choice wins over the browser"
    );
    let refused = ann
        .submit(
            "/devices/new",
            "/devices",
            &[("mac", "00:00:00:00:00:zz"), ("tenant", "sales")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("Die MAC-Adresse konnte nicht registriert werden"),
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn portal_pages_act_through_the_api_rules_and_the_audit_shows_the_user() {
    let server = TestServer::start().await;
    let (mut ann, _) = logged_in(&server, "acme", &["sales"]).await;
    let (_, globex) = logged_in(&server, "globex", &["support"]).await;
    let taken = "805ec0aabbcc";
    assert_eq!(
        globex
            .post(
                "/api/v1/devices",
                &json!({"mac": taken, "tenant": "support"})
            )
            .await
            .0,
        201
    );

    let customer = ann
        .submit(
            "/customers/new",
            "/customers",
            &[("company", "Dupont SA"), ("contact", "Marie")],
        )
        .await;
    assert_eq!(customer.status, 303);
    assert!(ann.get("/customers").await.body.contains("Dupont SA"));
    let form = ann.get("/instances/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let customer_id = {
        let select = form.body.find("<select id=\"customer\"").unwrap();
        let dupont = form.body[select..].find("\">Dupont SA<").unwrap() + select;
        let at = form.body[..dupont].rfind('"').unwrap() + 1;
        form.body[at..dupont].to_owned()
    };
    let instance = ann
        .submit(
            "/instances/new",
            "/instances",
            &[
                ("name", "dupont"),
                ("customer", customer_id.as_str()),
                ("sip_server", "pbx.dupont.example"),
                ("transport", "tls"),
                ("expiry_seconds", "600"),
                ("keepalive_seconds", "25"),
                ("timezone", "Europe/Paris"),
                ("language", "fr"),
                ("phone_auth", "enrolment"),
            ],
        )
        .await;
    assert_eq!(instance.status, 303, "{}", instance.body);
    let edit = ann.get("/instances/dupont").await;
    assert!(edit.body.contains("pbx.dupont.example"));
    let firmware = ann
        .submit(
            "/instances/dupont",
            "/instances/dupont",
            &[
                ("customer", customer_id.as_str()),
                ("sip_server", "pbx.dupont.example"),
                (
                    "firmware",
                    "yealink;T46S;66.86.0.15;https://fw.example/T46S.rom",
                ),
            ],
        )
        .await;
    assert_eq!(firmware.status, 303, "{}", firmware.body);
    assert!(ann
        .get("/instances/dupont")
        .await
        .body
        .contains("yealink;T46S;66.86.0.15;https:&#x2F;&#x2F;fw.example&#x2F;T46S.rom"));
    let broken = ann
        .submit(
            "/instances/dupont",
            "/instances/dupont",
            &[
                ("customer", customer_id.as_str()),
                ("firmware", "yealink;T46S"),
            ],
        )
        .await;
    assert_eq!(broken.status, 422);
    assert!(
        broken
            .body
            .contains("Firmware policy, entry 1: write vendor;model;version;url"),
        "{}",
        broken.body
    );

    let invalid = ann
        .submit(
            "/devices/new",
            "/devices",
            &[("mac", "12345"), ("tenant", "dupont")],
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert!(invalid
        .body
        .contains("The MAC address could not be registered"));
    let in_use = ann
        .submit(
            "/devices/new",
            "/devices",
            &[("mac", "80:5E:C0:AA:BB:CC"), ("tenant", "dupont")],
        )
        .await;
    assert_eq!(in_use.status, 409);
    assert!(in_use.body.contains("This MAC address is already in use"));
    assert!(!in_use.body.contains("globex") && !in_use.body.contains("support"));

    let made = ann
        .submit(
            "/devices/new",
            "/devices",
            &[("mac", "80-5E-C0-11-22-33"), ("tenant", "dupont")],
        )
        .await;
    assert_eq!(
        (made.status, made.location()),
        (303, "/devices/805ec0112233?created=1")
    );
    let page = ann.get("/devices/805ec0112233").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("dupont"));
    let search = ann.get("/devices?q=80%3A5e%3Ac0%3A11").await;
    assert!(search.body.contains("805ec0112233"));
    let fragment = ann.get("/devices?q=11-22").await;
    assert!(
        fragment.body.contains("805ec0112233"),
        "a fragment from the middle"
    );
    let none = ann.get("/devices?q=0004").await;
    assert!(!none.body.contains("805ec0112233"));
    let unseen = ann.get("/devices?never_seen=1").await;
    assert!(unseen.body.contains("805ec0112233"));
    let seen = ann.get("/devices?seen_since=2026-01-01").await;
    assert_eq!(seen.status, 200);
    assert!(!seen.body.contains("805ec0112233"), "never seen");

    let check = ann.get("/devices/check?mac=7C:2F:80:01:02:03").await;
    let check: serde_json::Value = serde_json::from_str(&check.body).unwrap();
    assert_eq!(check["vendor"], "gigaset");
    assert_eq!(check["needs_claim_code"], true);

    let preview = ann
        .submit(
            "/bulk",
            "/bulk",
            &[
                (
                    "lines",
                    "805ec0445566\nnot a mac\n805ec0aabbcc\n805ec0112233",
                ),
                ("tenant", "dupont"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    for state in [
        "state-available",
        "state-invalid_mac",
        "state-in_use",
        "state-yours",
    ] {
        assert!(preview.body.contains(state), "{state}: {}", preview.body);
    }
    let committed = ann
        .submit(
            "/bulk",
            "/bulk",
            &[
                ("lines", "805ec0445566\n805ec0aabbcc"),
                ("tenant", "dupont"),
                ("action", "commit"),
            ],
        )
        .await;
    assert!(
        committed.body.contains("state-created"),
        "{}",
        committed.body
    );
    assert!(committed.body.contains("state-refused"));

    let moved = ann
        .submit(
            "/devices",
            "/devices/selected",
            &[
                ("mac", "805ec0445566"),
                ("mac", "805ec0aabbcc"),
                ("tenant", "sales"),
                ("action", "move"),
            ],
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(moved.body.contains("state-moved") && moved.body.contains("state-refused"));
    let asked = ann
        .submit(
            "/devices",
            "/devices/selected",
            &[("mac", "805ec0445566"), ("action", "release")],
        )
        .await;
    assert!(
        asked.body.contains("release_confirmed"),
        "a confirmation first"
    );
    assert_eq!(ann.get("/devices/805ec0445566").await.status, 200);
    let released = ann
        .submit(
            "/devices",
            "/devices/selected",
            &[("mac", "805ec0445566"), ("action", "release_confirmed")],
        )
        .await;
    assert!(
        released.body.contains("state-released"),
        "{}",
        released.body
    );
    assert_eq!(ann.get("/devices/805ec0445566").await.status, 404);
    let (status, device) = globex.get("/api/v1/devices/805ec0aabbcc").await;
    assert_eq!((status, device["tenant"].as_str()), (200, Some("support")));
    let spare = ann
        .submit(
            "/instances/new",
            "/instances",
            &[
                ("name", "spare"),
                ("customer", customer_id.as_str()),
                ("sip_server", "pbx.spare.example"),
            ],
        )
        .await;
    assert_eq!(spare.status, 303, "{}", spare.body);
    assert_eq!(ann.get("/instances/spare/delete").await.status, 200);
    let busy = ann
        .submit("/instances/dupont/delete", "/instances/dupont/delete", &[])
        .await;
    assert_eq!(busy.status, 409, "it still has phones");
    let gone = ann
        .submit("/instances/spare/delete", "/instances/spare/delete", &[])
        .await;
    assert_eq!(gone.status, 303);
    assert_eq!(ann.get("/instances/spare").await.status, 404);
    let confirm = ann.get("/devices/805ec0112233/release").await;
    assert_eq!(confirm.status, 200);
    let released = ann
        .submit(
            "/devices/805ec0112233/release",
            "/devices/805ec0112233/release",
            &[],
        )
        .await;
    assert_eq!(
        (released.status, released.location()),
        (303, "/devices?released=1")
    );
    assert_eq!(ann.get("/devices/805ec0112233").await.status, 404);

    let actions = server.audit_actions("805ec0112233").await;
    assert_eq!(actions, vec!["device.claim", "device.release"]);
    let (_, log) = server.admin().get("/api/v1/audit?mac=805ec0112233").await;
    let actor = log["entries"][0]["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("user:") && actor.ends_with(":ann@acme.test"),
        "{actor}"
    );
    let issued = ann
        .submit(
            "/tokens",
            "/tokens",
            &[("name", "billing"), ("read_only", "1")],
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let token = {
        let at =
            issued.body.find("<output class=\"link\">").unwrap() + "<output class=\"link\">".len();
        issued.body[at..].split('<').next().unwrap().to_owned()
    };
    let reader = server.api(Some(&token));
    assert_eq!(reader.get("/api/v1/devices").await.0, 200);
    assert_eq!(
        reader
            .post("/api/v1/customers", &json!({"company": "No"}))
            .await
            .0,
        403,
        "read only"
    );
    let listed = ann.get("/tokens").await;
    let id = {
        let row = listed.body.find("<tr><td>billing</td>").unwrap();
        let at =
            listed.body[row..].find("action=\"/tokens/").unwrap() + row + "action=\"/tokens/".len();
        listed.body[at..].split('/').next().unwrap().to_owned()
    };
    let revoked = ann
        .submit("/tokens", &format!("/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(reader.get("/api/v1/devices").await.0, 401);
    let audit = ann.get("/audit?mac=80:5E:C0:11:22:33").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert!(audit.body.contains("device.claim") && audit.body.contains("device.release"));
    assert!(audit.body.contains(":ann@acme.test"));
    let everything = ann.get("/audit").await;
    assert!(everything.body.contains("customer.create"));
    assert!(
        !everything.body.contains("805ec0aabbcc\"") && !everything.body.contains("globex"),
        "nothing of another partner's"
    );
}

#[tokio::test]
async fn the_first_user_is_created_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zerotouch"))
            .args(args)
            .args([
                "--data-dir",
                dir,
                "--portal-url",
                "https://portal.example:9443",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["token", "create", "--partner", "acme"]);
    let root_link = run(&["user", "create", "--admin", "--email", "root@op.test"]);
    assert!(
        root_link.trim().contains("/set-password?token="),
        "{root_link}"
    );
    let link = run(&[
        "user",
        "create",
        "--partner",
        "acme",
        "--email",
        "ann@acme.test",
    ]);
    run(&["user", "disable", "--email", "ann@acme.test"]);
    run(&["user", "enable", "--email", "Ann@acme.test"]);
    let link = link.trim();
    assert!(
        link.starts_with("https://portal.example:9443/set-password?token="),
        "{link}"
    );
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let mut browser = Browser::new(&server);
    let path = &link["https://portal.example:9443".len()..];
    assert_eq!(set_password(&mut browser, path).await.status, 303);
    assert_eq!(browser.login("ann@acme.test", PASSWORD).await.status, 303);
    let page = browser.get("/devices").await;
    assert!(page.body.contains("ann@acme.test · acme"));
    let (_, log) = server.admin().get("/api/v1/audit").await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"user.create") && actions.contains(&"user.password.set"),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"user.disable") && actions.contains(&"user.enable"),
        "{actions:?}"
    );
    let (_, users) = server.admin().get("/api/v1/users").await;
    assert_eq!(
        (
            &users[0]["email"],
            &users[0]["admin"],
            &users[0]["partner_id"]
        ),
        (&json!("root@op.test"), &json!(true), &json!(null))
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_user_invites_a_colleague_of_the_same_partner() {
    let server = TestServer::start().await;
    let (mut ann, _) = logged_in(&server, "acme", &["sales"]).await;
    let invited = ann
        .submit("/invite", "/invite", &[("email", "Bob@Acme.test")])
        .await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let link = {
        // The page escapes the link's slashes (`&#x2F;`); its token is plain base64url.
        let at = invited.body.find("set-password?token=").unwrap() + "set-password?token=".len();
        let token = invited.body[at..].split('<').next().unwrap();
        format!("/set-password?token={token}")
    };
    let again = ann
        .submit("/invite", "/invite", &[("email", "bob@acme.test")])
        .await;
    assert_eq!(again.status, 409);
    assert!(again
        .body
        .contains("A user with this e-mail exists already"));

    let mut bob = Browser::new(&server);
    assert_eq!(set_password(&mut bob, &link).await.status, 303);
    assert_eq!(bob.login("bob@acme.test", PASSWORD).await.status, 303);
    let page = bob.get("/instances").await;
    assert!(page.body.contains("bob@acme.test · acme"));
    assert!(
        page.body.contains("/instances/sales"),
        "the partner's instances"
    );
    let (_, log) = server.admin().get("/api/v1/audit").await;
    let created = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.create" && e["detail"]["email"] == "bob@acme.test")
        .unwrap();
    assert!(created["actor"]
        .as_str()
        .unwrap()
        .ends_with(":ann@acme.test"));
}

/// Creates an administrator through the admin API and logs it in; its browser and its id.
async fn admin_logged_in(server: &TestServer, email: &str) -> (Browser, i64) {
    let (status, body) = server
        .admin()
        .post("/api/v1/users", &json!({"admin": true, "email": email}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["admin"].as_bool(), body["partner_id"].is_null()),
        (Some(true), true)
    );
    let link = body["link"].as_str().unwrap();
    let link = &link[link.find("/set-password").unwrap()..];
    let mut browser = Browser::new(server);
    assert_eq!(set_password(&mut browser, link).await.status, 303);
    let login = browser.login(email, PASSWORD).await;
    assert_eq!(
        (login.status, login.location()),
        (303, "/audit"),
        "{}",
        login.body
    );
    (browser, body["id"].as_i64().unwrap())
}

/// The UTC day `days` from today, as a date field sends it.
fn utc_day(days: i64) -> String {
    let now = std::time::SystemTime::now();
    let shift = std::time::Duration::from_secs(days.unsigned_abs() * 86_400);
    let at = if days < 0 { now - shift } else { now + shift };
    humantime::format_rfc3339(at).to_string()[..10].to_owned()
}

/// The ids of users by e-mail, from the admin API.
async fn user_id(server: &TestServer, email: &str) -> i64 {
    let (_, users) = server.admin().get("/api/v1/users").await;
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn an_administrator_logs_in_and_filters_the_audit_across_partners() {
    let server = TestServer::start().await;
    let (mut ann, _) = logged_in(&server, "acme", &["sales"]).await;
    let (mut gil, _) = logged_in(&server, "globex", &["front"]).await;
    for (browser, company) in [(&mut ann, "Acme Client"), (&mut gil, "Globex Client")] {
        let made = browser
            .submit("/customers/new", "/customers", &[("company", company)])
            .await;
        assert_eq!(made.status, 303, "{}", made.body);
    }
    // An administrator is created with `admin: true` and no partner, nothing else.
    for refused in [
        json!({"admin": true, "partner_id": 1, "email": "x@op.test"}),
        json!({"email": "x@op.test"}),
    ] {
        let (status, body) = server.admin().post("/api/v1/users", &refused).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_user")),
            "{refused}"
        );
    }
    let (mut root, _) = admin_logged_in(&server, "root@op.test").await;
    let home = root.get("/devices").await;
    assert_eq!(
        (home.status, home.location()),
        (303, "/audit"),
        "partners' pages send the administrator to its own"
    );

    let all = root.get("/audit").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(all.body.contains("root@op.test · Operator (administrator)"));
    assert!(all.body.contains(":ann@acme.test") && all.body.contains(":ann@globex.test"));
    assert!(all
        .body
        .contains("<option value=\"\">all partners</option>"));
    let acme = partner_id(&server, "acme").await;
    let only_acme = root.get(&format!("/audit?partner={acme}")).await;
    assert!(only_acme.body.contains(":ann@acme.test"));
    assert!(
        !only_acme.body.contains(":ann@globex.test"),
        "one partner's"
    );
    let by_actor = root.get("/audit?actor=ann%40globex").await;
    assert!(
        by_actor.body.contains(":ann@globex.test") && !by_actor.body.contains(":ann@acme.test")
    );
    let by_action = root.get("/audit?action=customer.create").await;
    assert!(
        by_action.body.contains("customer.create") && !by_action.body.contains("tenant.create")
    );
    let (today, tomorrow, yesterday) = (utc_day(0), utc_day(1), utc_day(-1));
    let this_day = root
        .get(&format!("/audit?since={today}&until={today}"))
        .await;
    assert!(
        this_day.body.contains("customer.create"),
        "a day includes its end"
    );
    for empty in [format!("since={tomorrow}"), format!("until={yesterday}")] {
        let page = root.get(&format!("/audit?{empty}")).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Nothing here yet."), "{empty}");
    }
    assert_eq!(root.get("/audit?since=29.11.2026").await.status, 422);
    assert_eq!(root.get("/audit?mac=nope").await.status, 422);

    // The administrator's own changes name the person.
    let gil_id = user_id(&server, "ann@globex.test").await;
    let done = root
        .submit("/users", &format!("/users/{gil_id}/disable"), &[])
        .await;
    assert_eq!((done.status, done.location()), (303, "/users?saved=1"));
    let (_, log) = server
        .admin()
        .get("/api/v1/audit?action=user.disable")
        .await;
    let root_id = user_id(&server, "root@op.test").await;
    assert_eq!(
        log["entries"][0]["actor"],
        format!("user:{root_id}:root@op.test")
    );
    assert_eq!(log["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_partner_never_reaches_the_administrators_audit_or_other_users() {
    let server = TestServer::start().await;
    let (mut ann, acme_api) = logged_in(&server, "acme", &["sales"]).await;
    let (mut gil, _) = logged_in(&server, "globex", &["front"]).await;
    gil.submit(
        "/customers/new",
        "/customers",
        &[("company", "Globex Client")],
    )
    .await;
    let (_, root_id) = admin_logged_in(&server, "root@op.test").await;
    let globex = partner_id(&server, "globex").await;
    for url in [
        format!("/audit?partner={globex}"),
        "/audit?actor=globex".to_owned(),
        "/audit?action=customer.create".to_owned(),
    ] {
        let page = ann.get(&url).await;
        assert_eq!(page.status, 200, "{url}");
        let table = &page.body[page.body.rfind("</form>").unwrap()..];
        assert!(
            !table.contains("globex") && !table.contains("root@op.test"),
            "{url}: {table}"
        );
        assert!(!page.body.contains("audit-partner"), "no partner menu");
    }
    let users = ann.get("/users").await;
    assert!(users.body.contains("ann@acme.test (you)"));
    assert!(!users.body.contains("globex") && !users.body.contains("root@op.test"));
    let gil_id = user_id(&server, "ann@globex.test").await;
    for id in [gil_id, root_id] {
        let refused = ann
            .submit("/users", &format!("/users/{id}/disable"), &[])
            .await;
        assert_eq!(refused.status, 404, "{id}");
    }
    let (_, gil_user) = server.admin().get("/api/v1/users").await;
    assert!(gil_user.to_string().contains("\"disabled\":false"));
    let (status, _) = acme_api
        .post(&format!("/api/v1/users/{gil_id}/disable"), &json!(null))
        .await;
    assert_eq!(status, 403, "administrator only");
}

#[tokio::test]
async fn disabling_a_user_ends_its_sessions_and_refuses_its_login() {
    let server = TestServer::start().await;
    let (mut ann, _) = logged_in(&server, "acme", &["sales"]).await;
    let (link, bob_id) = user_link(&server, "acme", "bob@acme.test").await;
    let mut bob = Browser::new(&server);
    assert_eq!(set_password(&mut bob, &link).await.status, 303);
    assert_eq!(bob.login("bob@acme.test", PASSWORD).await.status, 303);
    assert_eq!(bob.get("/devices").await.status, 200);

    let listed = ann.get("/users").await;
    assert!(listed.body.contains("bob@acme.test"));
    let ann_id = user_id(&server, "ann@acme.test").await;
    let own = ann
        .submit("/users", &format!("/users/{ann_id}/disable"), &[])
        .await;
    assert_eq!(own.status, 422, "one cannot lock oneself out");
    let done = ann
        .submit("/users", &format!("/users/{bob_id}/disable"), &[])
        .await;
    assert_eq!((done.status, done.location()), (303, "/users?saved=1"));
    assert!(ann.get("/users").await.body.contains("disabled"));
    let ended = bob.get("/devices").await;
    assert_eq!((ended.status, ended.location()), (303, "/login?ended=1"));
    let refused = bob.login("bob@acme.test", PASSWORD).await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.body.contains("Wrong e-mail or password."),
        "the same answer as a wrong password"
    );

    let admin = server.admin();
    let (status, body) = admin
        .post(&format!("/api/v1/users/{bob_id}/enable"), &json!(null))
        .await;
    assert_eq!(
        (status, body["disabled"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    assert_eq!(bob.login("bob@acme.test", PASSWORD).await.status, 303);
    assert_eq!(bob.get("/devices").await.status, 200);
    let (status, body) = admin
        .post(&format!("/api/v1/users/{bob_id}/disable"), &json!(null))
        .await;
    assert_eq!(
        (status, body["disabled"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let ended = bob.get("/devices").await;
    assert_eq!(ended.location(), "/login?ended=1");
    let (status, _) = admin
        .post("/api/v1/users/99999/disable", &json!(null))
        .await;
    assert_eq!(status, 404);

    let (_, log) = admin.get("/api/v1/audit?actor=user%3A").await;
    let actions: Vec<(&str, &str)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("user.")))
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    let by_ann = format!("user:{ann_id}:ann@acme.test");
    assert!(
        actions.contains(&("user.disable", by_ann.as_str())),
        "{actions:?}"
    );
    let (_, log) = admin.get("/api/v1/audit?actor=admin").await;
    let by_admin: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        by_admin.ends_with(&["user.enable", "user.disable"]),
        "{by_admin:?}"
    );
}

#[tokio::test]
async fn an_emptied_customer_field_is_cleared() {
    let server = TestServer::start().await;
    let (mut ann, api) = logged_in(&server, "acme", &["sales"]).await;
    let made = ann
        .submit(
            "/customers/new",
            "/customers",
            &[
                ("company", "Dupont SA"),
                ("contact", "Jean Dupont"),
                ("phone", "+33 1 23 45 67 89"),
                ("email", "jean@dupont.test"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let (_, customers) = api.get("/api/v1/customers").await;
    let id = customers[0]["id"].as_i64().unwrap();
    let path = format!("/customers/{id}");
    let saved = ann
        .submit(
            &path,
            &path,
            &[
                ("company", "Dupont SA"),
                ("contact", ""),
                ("address", ""),
                ("phone", " "),
                ("email", "jean@dupont.test"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, c) = api
        .get(&path.replace("/customers", "/api/v1/customers"))
        .await;
    assert_eq!(
        (&c["contact"], &c["phone"], &c["email"]),
        (&json!(null), &json!(null), &json!("jean@dupont.test")),
        "{c}"
    );
    let required = ann
        .submit(&path, &path, &[("company", ""), ("email", "")])
        .await;
    assert_eq!(required.status, 422, "the company stays required");
    let (_, c) = api.get(&format!("/api/v1/customers/{id}")).await;
    assert_eq!(
        (&c["company"], &c["email"]),
        (&json!("Dupont SA"), &json!("jean@dupont.test"))
    );

    // The API: a field left out keeps its value, `null` clears it.
    let (status, c) = api
        .patch(
            &format!("/api/v1/customers/{id}"),
            &json!({"address": "1 rue de Paris"}),
        )
        .await;
    assert_eq!(
        (status, &c["email"]),
        (200, &json!("jean@dupont.test")),
        "{c}"
    );
    let (status, c) = api
        .patch(&format!("/api/v1/customers/{id}"), &json!({"email": null}))
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        (&c["email"], &c["address"]),
        (&json!(null), &json!("1 rue de Paris"))
    );
    let (status, c) = api
        .patch(
            &format!("/api/v1/customers/{id}"),
            &json!({"company": null}),
        )
        .await;
    assert_eq!(
        (status, &c["company"]),
        (200, &json!("Dupont SA")),
        "the company is never cleared"
    );
}

/// A page's text with Tera's HTML escapes undone, to compare with what a person reads.
fn readable(body: &str) -> String {
    body.replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the first option of the customer menu on the instance form.
fn first_customer(form: &str) -> String {
    let select = form.find("<select id=\"customer\"").unwrap();
    let at = form[select..].find("<option value=\"").unwrap() + select + "<option value=\"".len();
    let end = form[at..].find('"').unwrap() + at;
    form[at..end].to_owned()
}

#[tokio::test]
async fn every_instance_setting_round_trips_through_the_form_and_refusals_read_in_french() {
    let server = TestServer::start().await;
    let (mut ann, api) = logged_in(&server, "acme", &["sales"]).await;
    ann.lang = Some("fr");
    let form = ann.get("/instances/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let text = readable(&form.body);
    for shown in [
        "Clés fabricant supplémentaires",
        "Réseaux d'inscription",
        "HTTPS uniquement (recommandé)",
        "mots de passe SIP compris, voyagent en clair",
        "voice.tone.country=Germany",
    ] {
        assert!(text.contains(shown), "{shown}: {text}");
    }
    let customer = first_customer(&form.body);
    let settings = |plain: &'static str, networks: &'static str, yealink: &'static str| {
        vec![
            ("customer", customer.clone()),
            ("sip_server", "pbx.paris.example".to_owned()),
            ("vendor_keys_yealink", yealink.to_owned()),
            ("vendor_keys_snom", "tone_scheme=FRA".to_owned()),
            (
                "vendor_keys_gigaset",
                "DmGlobal.0.NtpServer=ntp.paris.example".to_owned(),
            ),
            ("enrolment_networks", networks.to_owned()),
            ("allow_plain_http", plain.to_owned()),
            ("phone_auth", "enrolment".to_owned()),
        ]
    };
    let mut create = settings(
        "1",
        "198.51.100.0/24\r\n2001:db8::/32\r\n",
        "voice.tone.country=France\r\nfeatures.dnd.enable = 1",
    );
    create.push(("name", "paris".to_owned()));
    let borrowed: Vec<(&str, &str)> = create.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = ann.submit("/instances/new", "/instances", &borrowed).await;
    assert_eq!(created.status, 303, "{}", created.body);

    let (status, tenant) = api.get("/api/v1/tenants/paris").await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(
        tenant["vendor_keys"],
        json!({
            "yealink": {"voice.tone.country": "France", "features.dnd.enable": "1"},
            "snom": {"tone_scheme": "FRA"},
            "gigaset": {"DmGlobal.0.NtpServer": "ntp.paris.example"}
        })
    );
    assert_eq!(
        tenant["enrolment_networks"],
        json!(["198.51.100.0/24", "2001:db8::/32"])
    );
    assert_eq!(tenant["allow_plain_http"], true);
    let edit = ann.get("/instances/paris").await;
    let text = readable(&edit.body);
    for shown in [
        "features.dnd.enable=1\nvoice.tone.country=France",
        "tone_scheme=FRA",
        "DmGlobal.0.NtpServer=ntp.paris.example",
        "198.51.100.0/24\n2001:db8::/32",
        "id=\"plain-http-on\" name=\"allow_plain_http\" value=\"1\" checked",
    ] {
        assert!(text.contains(shown), "{shown}: {text}");
    }

    // Edited: the boxes emptied and HTTPS only again.
    let cleared = settings("0", "", "");
    let borrowed: Vec<(&str, &str)> = cleared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = ann
        .submit("/instances/paris", "/instances/paris", &borrowed)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, tenant) = api.get("/api/v1/tenants/paris").await;
    assert_eq!(tenant["enrolment_networks"], json!([]));
    assert_eq!(tenant["allow_plain_http"], false);
    assert!(tenant["vendor_keys"].get("yealink").is_none(), "{tenant}");
    assert_eq!(tenant["vendor_keys"]["snom"], json!({"tone_scheme": "FRA"}));
    assert!(readable(&ann.get("/instances/paris").await.body)
        .contains("id=\"plain-http-off\" name=\"allow_plain_http\" value=\"0\" checked"));

    // Refusals, each in French with nothing of the API's English, the form as typed.
    let refusals: [(&str, &str, &str); 7] = [
        (
            "sip_port",
            "70000",
            "Port SIP : doit être compris entre 1 et 65535",
        ),
        (
            "keepalive_seconds",
            "10",
            "Keep-alive NAT (secondes) : les téléphones Yealink exigent au moins 15",
        ),
        (
            "enrolment_networks",
            "198.51.100.0/24\n10.0.0.0/33",
            "Réseaux d'inscription, entrée 2 : n'est pas un réseau comme 198.51.100.0/24",
        ),
        (
            "vendor_keys_snom",
            "1tone=FRA",
            "Clés fabricant supplémentaires (Snom), 1tone : les noms de réglage Snom comptent 1 à 64",
        ),
        (
            "vendor_keys_yealink",
            "voice.tone.country",
            "Clés fabricant supplémentaires (Yealink), entrée 1 : écrivez clé=valeur",
        ),
        (
            "expiry_seconds",
            "soon",
            "Expiration de l'enregistrement (secondes) : doit être un nombre entier",
        ),
        (
            "firmware",
            "gigaset;N870 IP PRO;beta;https://fw.example/n870.bin",
            "Politique de firmware, entrée 1 : les téléphones Gigaset",
        ),
    ];
    for (field, value, french) in refusals {
        // The extra keys are replaced as a whole: a form sends every vendor's box.
        let mut form: Vec<(&str, &str)> = vec![
            ("customer", customer.as_str()),
            ("sip_server", "pbx.paris.example"),
            ("vendor_keys_yealink", ""),
            ("vendor_keys_snom", ""),
            ("vendor_keys_gigaset", ""),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let refused = ann
            .submit("/instances/paris", "/instances/paris", &form)
            .await;
        assert_eq!(refused.status, 422, "{field}: {}", refused.body);
        let text = readable(&refused.body);
        assert!(text.contains(french), "{field}: {text}");
        for english in ["must ", "accepts", "is not", "keepalive_seconds:", "line 1"] {
            assert!(!text.contains(english), "{field}: {english:?} in {text}");
        }
        assert!(text.contains(value), "the value as typed: {text}");
    }
    let (_, tenant) = api.get("/api/v1/tenants/paris").await;
    assert_eq!(tenant["keepalive_seconds"], 30, "nothing refused was saved");
}

#[tokio::test]
async fn a_phone_s_lines_and_display_name_are_edited_after_the_claim() {
    let server = TestServer::start().await;
    let (mut ann, api) = logged_in(&server, "acme", &["sales"]).await;
    ann.lang = Some("fr");
    assert_eq!(api.claim(YEALINK_MAC, "sales").await.0, 201);
    let path = format!("/devices/{YEALINK_MAC}");
    let settings = format!("{path}/settings");
    let page = ann.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = readable(&page.body);
    assert!(
        text.contains("non utilisé : aucun service de redirection n'est configuré"),
        "the redirect state, translated: {text}"
    );

    let saved = ann
        .submit(
            &path,
            &settings,
            &[
                ("display_name", "Accueil"),
                ("line0_user", "1001"),
                ("line0_password", "s3cret-one"),
                ("line0_display_name", "Reception"),
            ],
        )
        .await;
    assert_eq!(
        (saved.status, saved.location()),
        (303, format!("/devices/{YEALINK_MAC}?done=1").as_str()),
        "{}",
        saved.body
    );
    let (_, device) = api.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert_eq!(device["display_name"], "Accueil");
    assert_eq!(device["lines"][0]["user"], "1001");
    assert_eq!(device["lines"][0]["display_name"], "Reception");
    let page = ann.get(&path).await;
    assert!(
        page.body.contains("account.1.user_name = 1001"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Accueil"));
    assert!(
        !page.body.contains("s3cret-one"),
        "passwords are never shown back, in the form or the preview"
    );
    assert!(page.body.contains("placeholder=\"inchangé\""));

    // An empty password keeps the line's own; a new line needs one.
    let refused = ann
        .submit(
            &path,
            &settings,
            &[
                ("display_name", "Accueil"),
                ("line0_user", "1001"),
                ("line0_password", ""),
                ("line1_user", "1002"),
                ("line1_password", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let text = readable(&refused.body);
    assert!(
        text.contains("Ligne 2, Mot de passe : doit compter 1 à 128 caractères imprimables"),
        "{text}"
    );
    assert!(!text.contains("must be"), "{text}");
    assert!(text.contains("value=\"1002\""), "the form as typed");
    let saved = ann
        .submit(
            &path,
            &settings,
            &[
                ("display_name", "Accueil"),
                ("line0_user", "1001"),
                ("line0_password", ""),
                ("line0_display_name", "Front desk"),
                ("line1_user", "1002"),
                ("line1_password", "s3cret-two"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, device) = api.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert_eq!(device["lines"].as_array().unwrap().len(), 2, "{device}");
    let phone = server.phone(Some(crate::support::YEALINK_UA));
    let served = phone.get(&format!("/{YEALINK_MAC}.cfg")).await;
    assert_eq!(served.status, 200);
    let config = served.text();
    assert!(
        config.contains("account.1.password = s3cret-one"),
        "{config}"
    );
    assert!(
        config.contains("account.1.display_name = Front desk"),
        "{config}"
    );
    assert!(
        config.contains("account.2.password = s3cret-two"),
        "{config}"
    );

    // Line 1 removed by emptying its user, the display name removed by emptying it: line 2's
    // kept password follows it into first place.
    let saved = ann
        .submit(
            &path,
            &settings,
            &[
                ("display_name", ""),
                ("line0_user", ""),
                ("line1_user", "1002"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, device) = api.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert!(device["display_name"].is_null(), "{device}");
    assert_eq!(device["lines"].as_array().unwrap().len(), 1, "{device}");
    assert_eq!(device["lines"][0]["user"], "1002");

    // The phone's own enrolment networks: set, refused with the entry named, emptied.
    let saved = ann
        .submit(
            &path,
            &settings,
            &[
                ("line0_user", "1002"),
                ("enrolment_networks", "192.0.2.0/24\n\n 198.51.100.7 \n"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, device) = api.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert_eq!(
        device["enrolment_networks"],
        json!(["192.0.2.0/24", "198.51.100.7/32"]),
        "{device}"
    );
    let page = ann.get(&path).await;
    let shown = readable(&page.body);
    assert!(
        shown.contains("192.0.2.0/24\n198.51.100.7/32</textarea>"),
        "{shown}"
    );
    let refused = ann
        .submit(
            &path,
            &settings,
            &[
                ("line0_user", "1002"),
                ("enrolment_networks", "192.0.2.0/24\nnot a network"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let text = readable(&refused.body);
    assert!(text.contains("Réseaux d'inscription, entrée 2"), "{text}");
    let saved = ann
        .submit(
            &path,
            &settings,
            &[("line0_user", "1002"), ("enrolment_networks", "")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, device) = api.get(&format!("/api/v1/devices/{YEALINK_MAC}")).await;
    assert_eq!(device["enrolment_networks"], json!([]), "{device}");
}

#[tokio::test]
async fn the_api_names_the_setting_and_rule_it_refuses() {
    let server = TestServer::start().await;
    let api = server.partner("acme", &["sales"]).await;
    let (status, body) = api
        .patch("/api/v1/tenants/sales", &json!({"expiry_seconds": 20}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"],
        json!({
            "code": "invalid_setting",
            "message": "expiry_seconds must be between 60 and 86400, got 20",
            "detail": {"field": "expiry_seconds", "rule": "range", "min": 60, "max": 86400}
        })
    );
    assert_eq!(api.claim("7c2f80aabb01", "sales").await.0, 422, "no code");
    let (status, _) = api
        .post(
            "/api/v1/devices",
            &json!({"mac": "7c2f80aabb01", "tenant": "sales", "claim_code": "ab12"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = api
        .patch(
            "/api/v1/devices/7c2f80aabb01",
            &json!({"lines": [{"user": "1001", "password": "pass\"word"}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["detail"],
        json!({"field": "lines[0].password", "rule": "charset",
               "models": "gigaset N510/N720", "character": "\""})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_s_redirect_state_is_shown_in_the_users_language() {
    use zerotouch::domain::{Mac, Vendor};
    let snom = crate::standins::StandIn::start(Vendor::Snom).await;
    let mac = "000413cc0001";
    snom.seed_elsewhere(Mac::parse(mac).unwrap());
    let server = TestServer::demo_with(|k| {
        k.public_url = Some("https://prov.example.com".into());
        k.redirect_poll = Some("50ms".parse().unwrap());
        snom.configure(k);
    })
    .await;
    let (mut ann, api) = logged_in(&server, "acme", &["redir"]).await;
    ann.lang = Some("de");
    assert_eq!(api.claim(mac, "redir").await.0, 201);
    // The outbox asks the stand-in in the background: poll the API until it has answered.
    let started = std::time::Instant::now();
    let redirect = loop {
        let (_, device) = api.get(&format!("/api/v1/devices/{mac}")).await;
        if device["redirect"]["state"] == "registered_elsewhere" {
            break device["redirect"].clone();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{device}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let page = ann.get(&format!("/devices/{mac}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = readable(&page.body);
    assert!(
        text.contains("bei einem anderen Anbieter: das Telefon wird dorthin geschickt"),
        "{text}"
    );
    // The date as German writes it: `29.11.2026, 09:40 UTC`.
    let at = redirect["updated_at"].as_str().unwrap();
    let german = format!(
        "seit {}.{}.{}, {} UTC",
        &at[8..10],
        &at[5..7],
        &at[0..4],
        &at[11..16]
    );
    assert!(text.contains(&german), "{german}: {text}");
}

#[tokio::test]
async fn a_refused_customer_field_reads_in_german() {
    let server = TestServer::start().await;
    let (mut ann, _) = logged_in(&server, "acme", &[]).await;
    ann.lang = Some("de");
    let refused = ann
        .submit(
            "/customers/new",
            "/customers",
            &[("company", "Müller GmbH"), ("email", "kein-mail")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let text = readable(&refused.body);
    assert!(text.contains("E-Mail: ist keine E-Mail-Adresse"), "{text}");
    assert!(!text.contains("not an e-mail"), "{text}");
}

#[tokio::test]
async fn a_csv_file_is_read_by_the_server_and_a_paste_holds_up_to_ten_thousand_lines() {
    let server = TestServer::start().await;
    let (mut ann, _api) = logged_in(&server, "acme", &["dupont"]).await;
    let csrf = ann.get("/bulk").await.csrf();
    // No script ran: the box is empty, the file is posted and read by the server.
    let csv = b"mac,claim_code\n805ec0445566,\n\"80-5E-C0-AA-BB-CC\",\nnot a mac,\n";
    let fields = |action| {
        [
            ("csrf", csrf.clone()),
            ("lines", String::new()),
            ("tenant", "dupont".to_owned()),
            ("action", action),
        ]
    };
    let checked = fields("preview".to_owned());
    let checked: Vec<(&str, &str)> = checked.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = ann
        .post_multipart("/bulk", &checked, ("phones.csv", csv))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body.matches("state-available").count(),
        2,
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("state-invalid_mac").count(), 1);
    assert!(
        page.body.contains("mac,claim_code\n805ec0445566,"),
        "the file is shown in the box"
    );
    let registered = fields("commit".to_owned());
    let registered: Vec<(&str, &str)> = registered.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = ann
        .post_multipart("/bulk", &registered, ("phones.csv", csv))
        .await;
    assert_eq!(
        page.body.matches("state-created").count(),
        2,
        "{}",
        page.body
    );

    // The CSRF token is checked in this encoding too, and a file that is not text is refused.
    let forged: Vec<(&str, &str)> = checked
        .iter()
        .map(|&(k, v)| (k, if k == "csrf" { "forged" } else { v }))
        .collect();
    let page = ann
        .post_multipart("/bulk", &forged, ("phones.csv", csv))
        .await;
    assert_eq!(page.status, 403);
    let page = ann
        .post_multipart("/bulk", &checked, ("phones.csv", &[0xff, 0xfe, 0x00, 0x41]))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("UTF-8"), "{}", page.body);

    // 10,000 pasted lines are checked (one store read for all); one more is refused whole.
    let lines: String = (0..10_000u32)
        .map(|i| format!("80:5e:c0:{:02x}:{:02x}:{:02x}\n", 0x10, i >> 8, i & 0xff))
        .collect();
    let page = ann
        .submit(
            "/bulk",
            "/bulk",
            &[
                ("lines", &lines),
                ("tenant", "dupont"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("state-available").count(), 10_000);
    let page = ann
        .submit(
            "/bulk",
            "/bulk",
            &[
                ("lines", &format!("{lines}805ec0ffffff\n")),
                ("tenant", "dupont"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(page.status, 413);
    assert!(page.body.contains("10,000"), "{}", page.body);
}

#[tokio::test]
async fn a_refused_api_token_reads_in_french_and_the_api_names_the_rule() {
    let server = TestServer::start().await;
    let (mut ann, api) = logged_in(&server, "acme", &["dupont"]).await;
    ann.lang = Some("fr");
    let past = ann
        .submit(
            "/tokens",
            "/tokens",
            &[("name", "billing"), ("expires", "2020-01-01")],
        )
        .await;
    assert_eq!(past.status, 422, "{}", past.body);
    let text = readable(&past.body);
    assert!(text.contains("Expire : doit être dans le futur"), "{text}");
    assert!(!text.contains("must be"), "no English: {text}");
    let long = "n".repeat(65);
    let named = ann
        .submit("/tokens", "/tokens", &[("name", long.as_str())])
        .await;
    assert_eq!(named.status, 422, "{}", named.body);
    let text = readable(&named.body);
    assert!(text.contains("Nom : au plus 64 caractères"), "{text}");
    assert!(
        !text.contains("label DNS"),
        "the token's name, not an instance's: {text}"
    );

    let (status, body) = api
        .post(
            "/api/v1/tokens",
            &json!({"name": "x", "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["detail"],
        json!({"field": "expires_at", "rule": "future"})
    );
}

/// The one-time link shown in a page, as a path.
fn shown_link(body: &str) -> String {
    let at = body.find("<output class=\"link\">").unwrap() + "<output class=\"link\">".len();
    let link = body[at..].split('<').next().unwrap().replace("&#x2F;", "/");
    let link = link.replace("&amp;", "&");
    link[link.find("/set-password").unwrap()..].to_owned()
}

#[tokio::test]
async fn an_administrator_creates_users_and_password_links_in_the_portal() {
    let server = TestServer::start().await;
    let (mut ann, _api) = logged_in(&server, "acme", &["dupont"]).await;
    let acme = partner_id(&server, "acme").await;
    let (mut admin, _) = admin_logged_in(&server, "root@operator.test").await;

    let created = admin
        .submit(
            "/users",
            "/users",
            &[("email", "bob@acme.test"), ("partner", &acme.to_string())],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.body.contains("bob@acme.test"));
    let mut bob = Browser::new(&server);
    assert_eq!(
        set_password(&mut bob, &shown_link(&created.body))
            .await
            .status,
        303
    );
    assert_eq!(bob.login("bob@acme.test", PASSWORD).await.status, 303);
    assert!(
        bob.get("/devices").await.status == 200,
        "bob works for acme"
    );

    // A new link for bob: the old password stops working once it is used.
    let users = admin.get("/users").await;
    let bob_id = {
        let row = users.body.find("bob@acme.test").unwrap();
        let at =
            users.body[row..].find("action=\"/users/").unwrap() + row + "action=\"/users/".len();
        users.body[at..].split('/').next().unwrap().to_owned()
    };
    let reset = admin
        .submit("/users", &format!("/users/{bob_id}/reset"), &[])
        .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let link = shown_link(&reset.body);
    let mut bob_again = Browser::new(&server);
    let page = bob_again.get(&link).await;
    assert_eq!(page.status, 200, "the new link works: {}", page.body);

    // Refused input is said in the administrator's language; partners cannot do either.
    admin.lang = Some("fr");
    let refused = admin
        .submit(
            "/users",
            "/users",
            &[("email", "not an address"), ("partner", &acme.to_string())],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Ce n&#x27;est pas une adresse e-mail"),
        "{}",
        refused.body
    );
    let by_partner = ann
        .submit(
            "/users",
            "/users",
            &[("email", "eve@acme.test"), ("partner", "admin")],
        )
        .await;
    assert_eq!(by_partner.status, 404);
    let by_partner = ann
        .submit("/users", &format!("/users/{bob_id}/reset"), &[])
        .await;
    assert_eq!(by_partner.status, 404);
    let (_, listed) = server.admin().get("/api/v1/users").await;
    assert!(!listed.to_string().contains("eve@acme.test"));
}
