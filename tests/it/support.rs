//! Test harness: spawns the real server on 127.0.0.1:0 with a temporary data directory and its
//! generated certificate, and clients that talk to it the way phones and operators do.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zerotouch::app::{self, Addresses, Listeners};
use zerotouch::config::{Config, Knobs};

/// The demo import: tenants `sales` and `support`, one device of each vendor.
pub const DEMO: &str = include_str!("../../fixtures/demo.json");

pub const YEALINK_MAC: &str = "805ec017de13";
pub const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:13";
pub const SNOM_MAC: &str = "000413922D24";
pub const SNOM_UA: &str = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)";
pub const GIGASET_MAC: &str = "7C2F80E0D605";
pub const GIGASET_UA: &str = "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605";
pub const N510_MAC: &str = "7C2F80AABBCC";
pub const N510_UA: &str = "N510 IP PRO/42.245.00.000.000;7C2F80AABBCC";

/// A running server.
pub struct TestServer {
    pub addrs: Addresses,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    stop: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub config: Config,
    /// Asks the server to reload, as SIGHUP does.
    pub reload: zerotouch::reload::Reload,
}

/// The administrator's token of every test server.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Knobs every test server uses: every listener on port 0, fast change feed and status writes.
pub fn test_knobs(data_dir: &Path) -> Knobs {
    Knobs {
        data_dir: Some(data_dir.to_owned()),
        phones_addr: Some("127.0.0.1:0".parse().unwrap()),
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        change_poll: Some("50ms".parse().unwrap()),
        status_flush: Some("50ms".parse().unwrap()),
        shutdown_grace: Some("3s".parse().unwrap()),
        ..Knobs::default()
    }
}

/// Imports a document into the store in `data_dir` the way `zerotouch import` does.
pub async fn import(data_dir: &Path, document: &str) -> zerotouch::import::Report {
    let config = Config::resolve(test_knobs(data_dir)).unwrap();
    let store = app::open_store(&config).await.unwrap();
    zerotouch::import::import_json(
        store.as_ref(),
        &config.oui_table(),
        document.as_bytes(),
        &zerotouch::store::Actor::cli(),
    )
    .await
    .unwrap()
}

impl TestServer {
    /// A server with an empty store.
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let mut s = Self::start_in(&dir, |_| {}).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server whose store holds the demo import with `phone_auth: mac` (trial mode): phones
    /// get their config by MAC alone, so tests about content can fetch freely.
    pub async fn demo() -> Self {
        Self::with_import(&demo_with_phone_auth("mac")).await
    }

    /// A server whose store holds the demo import as shipped (`phone_auth` default:
    /// enrolment; Gigaset phones authenticate with their MAC-ID).
    pub async fn demo_enrolment() -> Self {
        Self::with_import(DEMO).await
    }

    /// A server whose store holds `document`.
    pub async fn with_import(document: &str) -> Self {
        Self::with_import_and(document, |_| {}).await
    }

    /// The `mac`-mode demo server with knobs adjusted by `tweak`.
    pub async fn demo_with(tweak: impl FnOnce(&mut Knobs)) -> Self {
        Self::with_import_and(&demo_with_phone_auth("mac"), tweak).await
    }

    /// A server whose store holds `document`, with knobs adjusted by `tweak`.
    pub async fn with_import_and(document: &str, tweak: impl FnOnce(&mut Knobs)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let report = import(tmp.path(), document).await;
        assert_eq!(report.refused, 0, "fixture import refused rows: {report:?}");
        let dir = tmp.path().to_owned();
        let mut s = Self::start_in(&dir, tweak).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on an existing data directory, with knobs adjusted by `tweak`.
    pub async fn start_in(data_dir: &Path, tweak: impl FnOnce(&mut Knobs)) -> Self {
        let mut knobs = test_knobs(data_dir);
        tweak(&mut knobs);
        let config = Config::load(knobs).unwrap();
        let listeners = Listeners::bind(&config).await.unwrap();
        let addrs = listeners.addresses();
        let reload = listeners.reload();
        let stop = CancellationToken::new();
        let handle = tokio::spawn(app::run(config.clone(), listeners, stop.clone()));
        let server = Self {
            addrs,
            data_dir: data_dir.to_owned(),
            _tmp: None,
            stop,
            handle: Some(handle),
            config,
            reload,
        };
        server.wait_ready().await;
        server
    }

    /// Waits until /readyz answers 200 (the app loads the store and templates first).
    pub async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.addrs.metrics.unwrap());
        for _ in 0..500 {
            if let Ok(r) = reqwest::get(&url).await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server not ready");
    }

    /// Triggers shutdown and waits for the server to stop.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.handle.take().unwrap().await.unwrap()
    }

    /// Triggers shutdown without waiting.
    pub fn begin_shutdown(&self) {
        self.stop.cancel();
    }

    /// Waits for a shutdown begun earlier.
    pub async fn join(mut self) -> anyhow::Result<()> {
        self.handle.take().unwrap().await.unwrap()
    }

    /// The generated certificate, for clients that verify the server.
    pub fn certificate(&self) -> reqwest::Certificate {
        let pem = std::fs::read(self.data_dir.join("tls/cert.pem")).unwrap();
        reqwest::Certificate::from_pem(&pem).unwrap()
    }

    /// A phone that sends `user_agent` (or none) over HTTPS, verifying the certificate. Like
    /// a real phone it keeps the provisioning credentials a config hands it and answers
    /// Digest challenges with them.
    pub fn phone(&self, user_agent: Option<&str>) -> PhoneClient {
        self.phone_from(user_agent, None)
    }

    /// The same, with its client socket bound to `local` (simulates other source addresses).
    pub fn phone_from(
        &self,
        user_agent: Option<&str>,
        local: Option<std::net::IpAddr>,
    ) -> PhoneClient {
        let mut builder = reqwest::Client::builder()
            .add_root_certificate(self.certificate())
            .timeout(Duration::from_secs(10))
            .local_address(local);
        if let Some(ua) = user_agent {
            builder = builder.user_agent(ua);
        }
        PhoneClient::new(
            builder.build().unwrap(),
            format!("https://{}", self.addrs.phones.unwrap()),
        )
    }

    /// The same over plain HTTP.
    pub fn phone_http(&self, user_agent: Option<&str>) -> PhoneClient {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(ua) = user_agent {
            builder = builder.user_agent(ua);
        }
        PhoneClient::new(
            builder.build().unwrap(),
            format!("http://{}", self.addrs.http.unwrap()),
        )
    }

    /// The partner API as the administrator.
    pub fn admin(&self) -> ApiClient {
        self.api(Some(ADMIN_TOKEN))
    }

    /// The partner API with `token` (or none).
    pub fn api(&self, token: Option<&str>) -> ApiClient {
        ApiClient {
            client: reqwest::Client::builder()
                .add_root_certificate(self.certificate())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: format!("https://{}", self.addrs.api.unwrap()),
            token: token.map(str::to_owned),
        }
    }

    /// A new partner with its own token, a customer and the tenants named.
    pub async fn partner(&self, name: &str, tenants: &[&str]) -> ApiClient {
        let admin = self.admin();
        let (status, p) = admin
            .post("/api/v1/partners", &serde_json::json!({ "name": name }))
            .await;
        assert_eq!(status, 201, "{p}");
        let (status, t) = admin
            .post(
                &format!("/api/v1/partners/{}/tokens", p["id"]),
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        let partner = self.api(t["token"].as_str());
        let (status, c) = partner
            .post(
                "/api/v1/customers",
                &serde_json::json!({ "company": format!("{name} customer") }),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        for tenant in tenants {
            let (status, body) = partner
                .post(
                    "/api/v1/tenants",
                    &serde_json::json!({ "name": tenant, "customer": c["id"], "sip_server": format!("{tenant}.cloud.example") }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        partner
    }

    /// The metrics page.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.addrs.metrics.unwrap()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The source address of a device's last fetch, once its status is written (SQLite).
    pub fn last_seen_source(&self, mac: &str) -> Option<String> {
        let db = rusqlite::Connection::open(self.data_dir.join("zerotouch.db")).ok()?;
        db.query_row(
            "SELECT source_ip FROM device_status WHERE mac = ?1",
            [mac],
            |r| r.get(0),
        )
        .ok()
    }

    /// The User-Agent of the device's last recorded fetch, read from the store.
    pub fn last_user_agent(&self, mac: &str) -> Option<String> {
        let db = rusqlite::Connection::open(self.data_dir.join("zerotouch.db")).ok()?;
        db.query_row(
            "SELECT user_agent FROM device_status WHERE mac = ?1",
            [mac],
            |r| r.get(0),
        )
        .ok()
    }

    /// The audit actions recorded for `mac`, oldest first (as the administrator reads them).
    pub async fn audit_actions(&self, mac: &str) -> Vec<String> {
        let (status, log) = self.admin().get(&format!("/api/v1/audit?mac={mac}")).await;
        assert_eq!(status, 200, "{log}");
        let actions: Vec<String> = log["entries"]
            .as_array()
            .or(log.as_array())
            .into_iter()
            .flatten()
            .filter_map(|e| e["action"].as_str().map(str::to_owned))
            .collect();
        actions
    }

    /// Waits until the device's credentials are bound: the phone used them, which is written
    /// off its path.
    pub async fn bound(&self, mac: &str) {
        eventually(|| async {
            let actions = self.audit_actions(mac).await;
            let last = actions
                .iter()
                .rev()
                .find(|a| a.starts_with("device.enrol"))?;
            (last == "device.enrol.confirmed").then_some(())
        })
        .await;
    }

    /// The value of one series on the metrics page (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics().await, series)
    }
}

/// Reads `series` (name with its labels, exactly as exposed) from a metrics page.
pub fn metric_value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// A phone.
#[derive(Clone)]
pub struct PhoneClient {
    client: reqwest::Client,
    base: String,
    /// Provisioning credentials it knows (from a config, or a Gigaset's MAC / MAC-ID).
    credentials: std::sync::Arc<std::sync::Mutex<Option<(String, String)>>>,
    nc: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

/// What a phone got.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub cache_control: String,
    pub body: Vec<u8>,
}

impl Fetched {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl PhoneClient {
    fn new(client: reqwest::Client, base: String) -> Self {
        Self {
            client,
            base,
            credentials: Default::default(),
            nc: Default::default(),
        }
    }

    /// Gives the phone credentials (a Gigaset's MAC and MAC-ID, or stolen ones).
    pub fn with_credentials(self, user: &str, password: &str) -> Self {
        *self.credentials.lock().unwrap() = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// The credentials the phone holds.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.credentials.lock().unwrap().clone()
    }

    /// GETs one file, once, with the `Authorization` header given; returns the
    /// `WWW-Authenticate` challenges too.
    pub async fn get_once(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> (Fetched, Vec<String>) {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(a) = authorization {
            r = r.header("authorization", a);
        }
        let r = r.send().await.unwrap();
        let header = |name| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let challenges = r
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let fetched = Fetched {
            status: r.status().as_u16(),
            content_type: header("content-type"),
            cache_control: header("cache-control"),
            body: r.bytes().await.unwrap().to_vec(),
        };
        (fetched, challenges)
    }

    /// The Digest answer to `challenge` for `path` with the phone's credentials.
    pub fn digest_answer(&self, challenge: &str, path: &str) -> Option<String> {
        let (user, password) = self.credentials()?;
        let param = |name: &str| {
            let start = challenge.find(&format!("{name}="))? + name.len() + 1;
            let rest = &challenge[start..];
            Some(match rest.strip_prefix('"') {
                Some(q) => q[..q.find('"')?].to_owned(),
                None => rest.split([',', ' ']).next()?.to_owned(),
            })
        };
        let realm = param("realm")?;
        let nonce = param("nonce")?;
        let md5 = zerotouch::domain::credentials::Algorithm::Md5;
        let nc = format!(
            "{:08x}",
            self.nc.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
        );
        let cnonce = format!("c{nc}");
        let ha1 = md5.hex(format!("{user}:{realm}:{password}").as_bytes());
        let ha2 = md5.hex(format!("GET:{path}").as_bytes());
        let response = md5.hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes());
        Some(format!(
            r#"Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{path}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}", response="{response}""#
        ))
    }

    /// GETs one file like a phone: answers a Digest challenge with its credentials, and keeps
    /// provisioning credentials a config hands it.
    pub async fn get(&self, path: &str) -> Fetched {
        let (mut fetched, challenges) = self.get_once(path, None).await;
        if fetched.status == 401 {
            let md5 = challenges.iter().find(|c| c.contains("algorithm=MD5"));
            if let Some(answer) = md5.and_then(|c| self.digest_answer(c, path)) {
                fetched = self.get_once(path, Some(&answer)).await.0;
            }
        }
        if fetched.status == 200 {
            self.learn(&fetched.text());
        }
        fetched
    }

    /// Keeps credentials from a Yealink (`static.auto_provision.server.*`) or Snom
    /// (`http_client_user/pass`) config.
    fn learn(&self, config: &str) {
        let yealink = |key: &str| {
            config.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.strip_prefix(" = "))
                    .map(|v| v.trim().to_owned())
            })
        };
        let snom = |tag: &str| {
            let open = format!("<{tag} perm=\"R\">");
            let start = config.find(&open)? + open.len();
            let end = config[start..].find('<')?;
            Some(config[start..start + end].to_owned())
        };
        let found = match (
            yealink("static.auto_provision.server.username"),
            yealink("static.auto_provision.server.password"),
        ) {
            (Some(u), Some(p)) => Some((u, p)),
            _ => snom("http_client_user").zip(snom("http_client_pass")),
        };
        if let Some(c) = found {
            *self.credentials.lock().unwrap() = Some(c);
        }
    }

    /// Runs a vendor's boot sequence, returning each file's status.
    pub async fn boot(&self, sequence: &[String]) -> Vec<(String, Fetched)> {
        let mut out = Vec::new();
        for path in sequence {
            out.push((path.clone(), self.get(path).await));
        }
        out
    }
}

/// The files a phone asks for on boot, in order.
pub fn boot_sequence(vendor: &str, mac: &str, model: &str) -> Vec<String> {
    match vendor {
        "yealink" => {
            let code = zerotouch::vendors::yealink::model_code(model).unwrap_or(0);
            vec![
                format!("/{}.boot", mac.to_lowercase()),
                "/y000000000000.boot".into(),
                format!("/y{code:012}.cfg"),
                format!("/{}.cfg", mac.to_lowercase()),
            ]
        }
        "snom" => vec![
            format!("/snom{model}.htm"),
            format!("/snom{model}-{}.htm", mac.to_uppercase()),
        ],
        "gigaset" => vec![
            "/provisioning.xml".into(),
            format!("/{}.xml", mac.to_uppercase()),
        ],
        other => panic!("unknown vendor {other}"),
    }
}

/// The demo import with every tenant's `phone_auth` set to `mode`; a `mac`-mode (trial)
/// tenant also allows plain HTTP, as a trial on a LAN might.
pub fn demo_with_phone_auth(mode: &str) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(DEMO).unwrap();
    for tenant in doc["tenants"].as_array_mut().unwrap() {
        tenant["phone_auth"] = serde_json::Value::String(mode.to_owned());
        if mode == "mac" {
            tenant["allow_plain_http"] = serde_json::Value::Bool(true);
        }
    }
    doc.to_string()
}

/// Address of a listener, for raw-socket tests.
pub fn addr(a: Option<SocketAddr>) -> SocketAddr {
    a.expect("listener configured")
}

/// A partner API client.
#[derive(Clone)]
pub struct ApiClient {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    /// The API's base URL (`https://127.0.0.1:PORT`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The raw request builder, with the token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let response = r.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::PATCH, path).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        self.send(
            self.request(reqwest::Method::POST, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// Its token (to call another server whose store holds the same partner, e.g. restored).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Claims `mac` for `tenant`: the partner's everyday call.
    pub async fn claim(&self, mac: &str, tenant: &str) -> (u16, serde_json::Value) {
        self.post(
            "/api/v1/devices",
            &serde_json::json!({ "mac": mac, "tenant": tenant }),
        )
        .await
    }
}

/// Polls `check` until it yields a value, failing after 10 seconds. For effects the server
/// applies asynchronously by design (batched status writes, the change feed).
pub async fn eventually<T, F, Fut>(check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "condition never met");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP/1.1 connection driven by hand, so a test sees exactly what happens on it: several
/// requests on one keep-alive connection, and whether the server closed it.
pub struct RawHttp<S> {
    stream: tokio::io::BufReader<S>,
}

/// A response read off a [`RawHttp`] connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> RawHttp<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream: tokio::io::BufReader::new(stream),
        }
    }

    /// GETs `path` with `user_agent` (if any) and reads the response; `None` when the server
    /// closed (or reset) the connection instead of answering.
    pub async fn get(&mut self, path: &str, user_agent: Option<&str>) -> Option<RawResponse> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let ua = user_agent
            .map(|u| format!("User-Agent: {u}\r\n"))
            .unwrap_or_default();
        let request = format!("GET {path} HTTP/1.1\r\nHost: prov.example\r\n{ua}\r\n");
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .ok()?;
        let mut line = String::new();
        if self.stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let status = line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.ok()?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':')?;
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let length: usize = response.header("content-length")?.parse().ok()?;
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(RawResponse { body, ..response })
    }

    /// Whether the server has closed the connection (end of stream or reset), waiting at most
    /// ten seconds for it to.
    pub async fn closed_by_server(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    /// The stream underneath (for a TLS stream's peer certificate).
    pub fn stream(&self) -> &S {
        self.stream.get_ref()
    }
}

/// A TCP connection to `to` from the local address `from` (any 127/8 address on loopback).
pub async fn connect_from(from: &str, to: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// A TLS client (rustls) that trusts exactly the certificates in `roots` (PEM).
pub fn tls_client(roots: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            store.add(cert.unwrap()).unwrap();
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// TLS over `stream` to `localhost`.
pub async fn tls_over(
    connector: &tokio_rustls::TlsConnector,
    stream: tokio::net::TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, stream).await
}
