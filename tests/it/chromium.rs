//! The partner portal end to end in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/test`), driven over WebDriver: set a password, log in,
//! create a customer, an instance and phones, watch the MAC field turn red and green as it is
//! typed, the Gigaset ID field appear, a MAC of another partner refused without a word about
//! it, a phone's lines and display name edited, bulk-paste mixed rows, search, release, log
//! out; the login page in French, and an instance setting refused in French; then the
//! operator's administrator filters the audit log of every partner. Each page is
//! photographed; with `ZEROTOUCH_UPDATE_SCREENSHOTS=1` into `docs/screenshots/` (README shows
//! them), else into a temporary directory.
//!
//! The WebDriver client is the few commands used here, over reqwest (W3C WebDriver is JSON
//! over HTTP), rather than a crate for the whole protocol.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::portal::user_link;
use crate::support::TestServer;

/// A chromedriver process, ended when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver (Debian's chromium-driver) must be installed, as .ci/test does: {e}")
            });
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // chromedriver is another process: wait until it answers.
        let started = Instant::now();
        while reqwest::get(format!("{}/status", driver.url))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A headless Chromium session speaking `lang`.
    async fn session(&self, lang: &str) -> Session {
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1200,900",
                         format!("--lang={lang}")],
                "prefs": {"intl.accept_languages": lang}
            }
        }}});
        let answer: Value = http
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        Session {
            http,
            base: format!("{}/session/{id}", self.url),
        }
    }
}

/// One browser window.
struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let r = self.http.request(method, format!("{}{path}", self.base));
        let r = match body {
            Some(b) => r.json(&b),
            None => r,
        };
        let answer: Value = r.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn send_keys(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn choose(&self, select: &str, value: &str) {
        self.click(&format!("{select} option[value=\"{value}\"]"))
            .await;
    }

    async fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
        .await
    }

    async fn text(&self) -> String {
        self.script("return document.body.innerText;")
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Waits until `js` (an expression) is true in the page: the page's own script answers
    /// after a round trip to the server.
    async fn until(&self, js: &str) {
        let started = Instant::now();
        while self.script(&format!("return !!({js});")).await != Value::Bool(true) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never true: {js}\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, dir: &std::path::Path, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{name} is not a PNG");
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

/// Where screenshots go.
fn screenshots(tmp: &tempfile::TempDir) -> PathBuf {
    if std::env::var_os("ZEROTOUCH_UPDATE_SCREENSHOTS").is_some() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    } else {
        tmp.path().to_owned()
    }
}

const PASSWORD: &str = "a long enough password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_works_in_the_portal_in_chromium() {
    let server = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let shots = screenshots(&tmp);
    server.partner("acme", &["sales"]).await;
    let globex = server.partner("globex", &["support"]).await;
    let (status, _) = globex
        .post(
            "/api/v1/devices",
            &json!({"mac": "805ec0aabbcc", "tenant": "support"}),
        )
        .await;
    assert_eq!(status, 201);
    let (link, _) = user_link(&server, "acme", "ann@acme.example").await;
    let base = format!("https://{}", server.addrs.api.unwrap());
    let driver = Driver::start().await;
    let web = driver.session("en").await;

    web.go(&format!("{base}{link}")).await;
    web.type_into("#password", PASSWORD).await;
    web.type_into("#password_again", PASSWORD).await;
    web.click("form button[type=submit]").await;
    web.until("location.search === '?set=1'").await;
    web.screenshot(&shots, "login").await;
    web.type_into("#email", "ann@acme.example").await;
    web.type_into("#password", PASSWORD).await;
    web.click("main form button[type=submit]").await;
    web.until("location.pathname === '/devices'").await;

    web.go(&format!("{base}/customers/new")).await;
    web.type_into("#company", "Dupont SA").await;
    web.type_into("#contact", "Marie Dupont").await;
    web.click("main form button[type=submit]").await;
    web.until("location.pathname === '/customers'").await;
    web.screenshot(&shots, "customers").await;

    web.go(&format!("{base}/instances/new")).await;
    web.type_into("#name", "dupont").await;
    web.type_into("#sip_server", "pbx.dupont.example").await;
    web.choose("#transport", "tls").await;
    web.choose("#timezone", "Europe/Paris").await;
    web.screenshot(&shots, "instance").await;
    web.click("main form button[type=submit]").await;
    web.until("location.pathname === '/instances'").await;
    assert!(web.text().await.contains("pbx.dupont.example"));
    web.screenshot(&shots, "instances").await;

    web.go(&format!("{base}/devices/new")).await;
    web.until("document.getElementById('claim-code-row').hidden")
        .await;
    web.type_into("#mac", "80:5E:C0:1").await;
    web.until("document.getElementById('mac').classList.contains('mac-invalid')")
        .await;
    web.screenshot(&shots, "new-phone-invalid").await;
    web.type_into("#mac", "80:5E:C0:11:22:33").await;
    web.until("document.getElementById('mac').classList.contains('mac-valid')")
        .await;
    assert!(web.text().await.contains("yealink"));
    web.screenshot(&shots, "new-phone-valid").await;
    web.type_into("#mac", "7C:2F:80:E0:D6:05").await;
    web.until("!document.getElementById('claim-code-row').hidden")
        .await;
    web.screenshot(&shots, "new-phone-gigaset").await;
    web.choose("#tenant", "dupont").await;
    web.click("main form button[type=submit]").await;
    web.until("document.body.innerText.includes('could not be registered')")
        .await;
    web.until("!document.getElementById('claim-code-row').hidden")
        .await;
    web.type_into("#claim_code", "AB12").await;
    web.choose("#tenant", "dupont").await;
    web.click("main form button[type=submit]").await;
    web.until("location.pathname === '/devices/7c2f80e0d605'")
        .await;
    web.go(&format!("{base}/devices/new")).await;
    web.type_into("#mac", "80:5E:C0:AA:BB:CC").await;
    web.until("document.getElementById('mac-state').textContent.includes('in use')")
        .await;
    web.choose("#tenant", "dupont").await;
    web.click("main form button[type=submit]").await;
    web.until("document.body.innerText.includes('already in use')")
        .await;
    let refused = web.text().await;
    assert!(!refused.contains("globex") && !refused.contains("support"));
    web.screenshot(&shots, "new-phone-in-use").await;

    web.type_into("#mac", "80-5E-C0-11-22-33").await;
    web.choose("#tenant", "dupont").await;
    web.click("main form button[type=submit]").await;
    web.until("location.pathname === '/devices/805ec0112233'")
        .await;
    web.type_into("#display_name", "Accueil").await;
    web.type_into("input[name=line0_user]", "1001").await;
    web.type_into("input[name=line0_password]", "s3cret-1001")
        .await;
    web.type_into("input[name=line0_display_name]", "Reception")
        .await;
    web.click("form[action$='/settings'] button[type=submit]")
        .await;
    web.until("location.search === '?done=1'").await;
    let device = web.text().await;
    assert!(device.contains("account.1.user_name = 1001"), "{device}");
    assert!(!device.contains("s3cret-1001"), "passwords never shown");
    assert!(device.contains("not used: no redirect service"));
    web.screenshot(&shots, "device").await;

    web.go(&format!("{base}/bulk")).await;
    web.type_into(
        "#lines",
        "805ec0445566\nnot a mac\n805ec0aabbcc\n7C2F80E0D605;AB12",
    )
    .await;
    web.choose("#bulk-tenant", "dupont").await;
    web.click("button[value=preview]").await;
    web.until("document.querySelectorAll('tbody tr').length === 4")
        .await;
    web.screenshot(&shots, "bulk-preview").await;
    web.click("button[value=commit]").await;
    web.until("document.querySelector('tr.state-created') !== null")
        .await;

    let csv = tmp.path().join("phones.csv");
    std::fs::write(&csv, "mac,claim_code\n80:5E:C0:77:88:99,\n").unwrap();
    web.go(&format!("{base}/bulk")).await;
    web.send_keys("#bulk-file", csv.to_str().unwrap()).await;
    web.until("document.getElementById('lines').value.includes('80:5E:C0:77:88:99')")
        .await;
    web.click("button[value=preview]").await;
    web.until("document.querySelectorAll('tr.state-available').length === 1")
        .await;

    web.go(&format!("{base}/devices?q=80%3A5e%3Ac0")).await;
    let list = web.text().await;
    assert!(list.contains("805ec0112233") && list.contains("805ec0445566"));
    assert!(!list.contains("805ec0aabbcc"));
    web.screenshot(&shots, "devices").await;

    web.go(&format!("{base}/devices/805ec0112233/release"))
        .await;
    web.screenshot(&shots, "release").await;
    web.click("main form button[type=submit]").await;
    web.until("location.search === '?released=1'").await;

    web.click("header form[action='/logout'] button").await;
    web.until("location.search === '?out=1'").await;
    web.go(&format!("{base}/devices")).await;
    web.until("location.pathname === '/login'").await;
    web.close().await;

    let french = driver.session("fr").await;
    french.go(&format!("{base}/login")).await;
    assert!(french.text().await.contains("Mot de passe"));
    french.type_into("#email", "ann@acme.example").await;
    french.type_into("#password", PASSWORD).await;
    french.click("main form button[type=submit]").await;
    french.until("location.pathname === '/devices'").await;
    french.go(&format!("{base}/devices/new")).await;
    french.type_into("#mac", "zz").await;
    french
        .until("document.getElementById('mac').classList.contains('mac-invalid')")
        .await;
    assert!(french.text().await.contains("Adresse MAC"));
    french.screenshot(&shots, "new-phone-fr").await;
    // A value the form allows and a vendor refuses: explained in French, field and rule.
    french.go(&format!("{base}/instances/dupont")).await;
    french.type_into("#keepalive_seconds", "10").await;
    french.click("main form button[type=submit]").await;
    french
        .until("document.body.innerText.includes('exigent au moins 15')")
        .await;
    let refused = french.text().await;
    assert!(
        refused.contains("Keep-alive NAT (secondes) : les téléphones Yealink exigent au moins 15"),
        "{refused}"
    );
    assert!(!refused.contains("accepts"), "{refused}");
    french.screenshot(&shots, "instance-refused-fr").await;
    french.close().await;

    // The operator's administrator: the audit log of every partner, narrowed to one partner
    // and one action, and the users of all partners.
    let (status, root) = server
        .admin()
        .post(
            "/api/v1/users",
            &json!({"admin": true, "email": "root@operator.example"}),
        )
        .await;
    assert_eq!(status, 201, "{root}");
    let link = root["link"].as_str().unwrap();
    let admin = driver.session("en").await;
    admin
        .go(&format!(
            "{base}{}",
            &link[link.find("/set-password").unwrap()..]
        ))
        .await;
    admin.type_into("#password", PASSWORD).await;
    admin.type_into("#password_again", PASSWORD).await;
    admin.click("form button[type=submit]").await;
    admin.until("location.search === '?set=1'").await;
    admin.type_into("#email", "root@operator.example").await;
    admin.type_into("#password", PASSWORD).await;
    admin.click("main form button[type=submit]").await;
    admin.until("location.pathname === '/audit'").await;
    let all = admin.text().await;
    assert!(all.contains(":ann@acme.example") && all.contains("globex"));
    let acme = crate::portal::partner_id(&server, "acme").await;
    admin.choose("#audit-partner", &acme.to_string()).await;
    admin.type_into("#audit-action", "device.claim").await;
    admin.click("main form button[type=submit]").await;
    admin
        .until("location.search.includes('action=device.claim')")
        .await;
    let filtered = admin.text().await;
    assert!(filtered.contains("805ec0112233") && !filtered.contains("805ec0aabbcc"));
    assert!(!filtered.contains("customer.create"));
    admin.screenshot(&shots, "admin-audit").await;
    admin.go(&format!("{base}/users")).await;
    assert!(admin.text().await.contains("ann@acme.example"));
    admin.screenshot(&shots, "admin-users").await;
    admin.close().await;
    server.stop().await.unwrap();
}
