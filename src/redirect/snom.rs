//! Snom's Secure Redirection and Provisioning Service (SRAPS), through its REST API at
//! `https://secure-provisioning.snom.com/api/v1` with Hawk authentication (SHA-256 MAC over
//! the full URL, method, time stamp, nonce and payload hash; the server keeps replay
//! protection). docs/redirect.md names the sources and what is unverified.
//!
//! Our phones are endpoints of our company, each assigned to one provisioning profile of
//! ours (named by the settings, created the first time) whose `setting_server` is our URL.
//! SRAPS has no batch form for endpoints, so each device is one call. Knows nothing of the
//! outbox, the store or metrics.

use std::time::Duration;

use ::http::StatusCode;
use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::http::{self, Secret, SetupError};
use super::{Device, Failure, Holder, Listed, RedirectService};
use crate::domain::{Mac, Vendor};

/// SRAPS's API root.
pub const DEFAULT_BASE_URL: &str = "https://secure-provisioning.snom.com/api/v1";

/// How to reach our SRAPS company.
#[derive(Clone, Debug)]
pub struct SnomSettings {
    /// The API root, version included (a stand-in's in tests).
    pub base_url: String,
    /// The Hawk key id.
    pub hawk_id: String,
    /// The Hawk key.
    pub hawk_key: Secret,
    /// Our company's id; `None` takes the first company the key may manage.
    pub company: Option<String>,
    /// The name of our provisioning profile.
    pub profile_name: String,
    /// Time-out of one request.
    pub timeout: Duration,
}

impl SnomSettings {
    /// Settings for the real service with our key and the defaults.
    pub fn new(hawk_id: impl Into<String>, hawk_key: Secret) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            hawk_id: hawk_id.into(),
            hawk_key,
            company: None,
            profile_name: "zerotouch".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The SRAPS adapter.
pub struct Snom {
    settings: SnomSettings,
    client: reqwest::Client,
    url: String,
    /// (company, profile) once known; retried after a failure.
    account: Mutex<Option<(String, String)>>,
}

impl std::fmt::Debug for Snom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snom")
            .field("settings", &self.settings)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The URL Snom phones are sent to: our per-device settings file, with the `{mac}`
/// placeholder the phone fills in.
pub fn provisioning_url(public_url: &str) -> String {
    format!("{}/snom/{{mac}}.xml", public_url.trim_end_matches('/'))
}

/// Hawk's payload hash (`hash` attribute): SHA-256 of
/// `hawk.1.payload\n<content type, lower case, no parameters>\n<payload>\n`, base64.
pub fn payload_hash(content_type: &str, payload: &[u8]) -> String {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"hawk.1.payload\n");
    ctx.update(base.as_bytes());
    ctx.update(b"\n");
    ctx.update(payload);
    ctx.update(b"\n");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref())
}

/// Hawk's normalized request string (no `ext`).
pub fn normalized(
    ts: u64,
    nonce: &str,
    method: &str,
    resource: &str,
    host: &str,
    port: u16,
    hash: Option<&str>,
) -> String {
    format!(
        "hawk.1.header\n{ts}\n{nonce}\n{}\n{resource}\n{}\n{port}\n{}\n\n",
        method.to_ascii_uppercase(),
        host.to_ascii_lowercase(),
        hash.unwrap_or("")
    )
}

/// Hawk's `mac`: base64 HMAC-SHA256 of the normalized string.
pub fn hawk_mac(key: &str, normalized: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&key, normalized.as_bytes()).as_ref())
}

/// The `Authorization` header for one request.
pub fn authorization(
    id: &str,
    key: &str,
    method: &str,
    url: &reqwest::Url,
    ts: u64,
    nonce: &str,
    hash: Option<&str>,
) -> String {
    let mut resource = url.path().to_owned();
    if let Some(q) = url.query() {
        resource.push('?');
        resource.push_str(q);
    }
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(443);
    let mac = hawk_mac(
        key,
        &normalized(ts, nonce, method, &resource, host, port, hash),
    );
    let mut header = format!("Hawk id=\"{id}\", ts=\"{ts}\", nonce=\"{nonce}\"");
    if let Some(h) = hash {
        header.push_str(&format!(", hash=\"{h}\""));
    }
    header.push_str(&format!(", mac=\"{mac}\""));
    header
}

/// A vendor message out of an error body (`detail`, `message` or `error`, else the text).
pub fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["detail", "message", "error"] {
            if let Some(m) = v.get(key).and_then(Value::as_str) {
                return http::reason_line(m);
            }
        }
    }
    http::reason_line(&String::from_utf8_lossy(body))
}

/// The `uuid` (or `id`) of an object.
fn uuid_of(v: &Value) -> Option<String> {
    ["uuid", "id"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
}

/// A page of a listing: its `results` (or a bare array) and the `next` page's URL.
pub fn parse_page(v: &Value) -> (Vec<Value>, Option<String>) {
    let items = v
        .get("results")
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default();
    let next = v.get("next").and_then(Value::as_str).map(str::to_owned);
    (items, next)
}

impl Snom {
    /// An adapter for our company; phones are sent below `public_url`.
    pub fn new(settings: SnomSettings, public_url: &str) -> Result<Self, SetupError> {
        http::check_url(&settings.base_url, "Snom SRAPS base URL")?;
        http::check_url(public_url, "phones' public URL")?;
        let client = http::client("Snom", settings.timeout)?;
        Ok(Self {
            url: provisioning_url(public_url),
            client,
            settings,
            account: Mutex::new(None),
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}{}", self.settings.base_url.trim_end_matches('/'), path)
    }

    /// One Hawk-signed call to an absolute URL.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<http::Answer, Failure> {
        let url = reqwest::Url::parse(url)
            .map_err(|_| http::transient("the vendor gave an unusable URL"))?;
        let nonce = http::nonce_hex(8)?;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let raw = body.map(|b| b.to_string().into_bytes());
        let hash = raw.as_deref().map(|r| payload_hash("application/json", r));
        let auth = authorization(
            &self.settings.hawk_id,
            self.settings.hawk_key.expose(),
            method.as_str(),
            &url,
            ts,
            &nonce,
            hash.as_deref(),
        );
        let mut request = self
            .client
            .request(method, url)
            .header("Authorization", auth)
            .header("Accept", "application/json; version=v1");
        if let Some(raw) = raw {
            request = request.header("Content-Type", "application/json").body(raw);
        }
        let answer = http::send(request).await?;
        if let Some(f) = http::status_failure(&answer) {
            return Err(f);
        }
        Ok(answer)
    }

    /// A call whose answer must be a 2xx JSON document.
    async fn json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let answer = self.call(method, url, body).await?;
        if !answer.status.is_success() {
            return Err(http::refused(
                answer.status.as_u16().to_string(),
                &error_message(&answer.body),
            ));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|_| http::transient("the vendor's answer could not be read"))
    }

    /// Every item of a paginated listing.
    async fn all(&self, first: String) -> Result<Vec<Value>, Failure> {
        let mut items = Vec::new();
        let mut next = Some(first);
        // A bound on pages, so a vendor's loop of `next` links cannot keep us here.
        for _ in 0..1000 {
            let Some(url) = next.take() else { break };
            let page = self.json(reqwest::Method::GET, &url, None).await?;
            let (mut got, n) = parse_page(&page);
            items.append(&mut got);
            next = n;
        }
        Ok(items)
    }

    /// Our company and provisioning profile, found or (the profile) created.
    async fn account(&self) -> Result<(String, String), Failure> {
        let mut cached = self.account.lock().await;
        if let Some(a) = cached.as_ref() {
            return Ok(a.clone());
        }
        let company = match &self.settings.company {
            Some(c) => c.clone(),
            None => {
                let companies = self.all(self.api("/companies/")).await?;
                companies
                    .first()
                    .and_then(uuid_of)
                    .ok_or_else(|| http::refused("no_company", "the key may manage no company"))?
            }
        };
        let profiles_url = self.api(&format!("/companies/{company}/provisioning-profiles/"));
        let profiles = self.all(format!("{profiles_url}?page_size=1000")).await?;
        let name = &self.settings.profile_name;
        let found = profiles
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .and_then(uuid_of);
        let profile = match found {
            Some(p) => p,
            None => {
                let body = json!({
                    "name": name,
                    "autoprovisioning_enabled": true,
                    "settings_manager": {
                        "setting_server": {"value": self.url, "attrs": {"perm": "RW"}}
                    }
                });
                let created = self
                    .json(reqwest::Method::POST, &profiles_url, Some(body))
                    .await?;
                uuid_of(&created).ok_or_else(|| {
                    http::transient("the vendor created our profile without an id")
                })?
            }
        };
        let account = (company, profile);
        *cached = Some(account.clone());
        Ok(account)
    }

    fn endpoint_url(&self, company: &str, mac: Mac) -> String {
        self.api(&format!(
            "/companies/{company}/endpoints/{}",
            mac.to_lower_hex()
        ))
    }

    async fn register_one(&self, company: &str, profile: &str, mac: Mac) -> Result<(), Failure> {
        let body = json!({
            "mac": mac.to_lower_hex(),
            "autoprovisioning_enabled": true,
            "provisioning_profile": profile,
        });
        let answer = self
            .call(
                reqwest::Method::PUT,
                &self.endpoint_url(company, mac),
                Some(body),
            )
            .await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => Err(Failure::RegisteredElsewhere),
            s => Err(http::refused(
                s.as_u16().to_string(),
                &error_message(&answer.body),
            )),
        }
    }

    async fn deregister_one(&self, company: &str, mac: Mac) -> Result<(), Failure> {
        let answer = self
            .call(
                reqwest::Method::DELETE,
                &self.endpoint_url(company, mac),
                None,
            )
            .await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            // Not in our company: nothing to remove.
            StatusCode::NOT_FOUND => Ok(()),
            s => Err(http::refused(
                s.as_u16().to_string(),
                &error_message(&answer.body),
            )),
        }
    }
}

#[async_trait]
impl RedirectService for Snom {
    fn vendor(&self) -> Vendor {
        Vendor::Snom
    }

    fn batch_limit(&self) -> usize {
        1
    }

    fn provisioning_url(&self) -> &str {
        &self.url
    }

    async fn register(&self, devices: &[Device]) -> Vec<Result<(), Failure>> {
        if devices.is_empty() {
            return Vec::new();
        }
        let (company, profile) = match self.account().await {
            Ok(a) => a,
            Err(f) => return vec![Err(f); devices.len()],
        };
        let mut results = Vec::with_capacity(devices.len());
        for d in devices {
            results.push(self.register_one(&company, &profile, d.mac).await);
        }
        results
    }

    async fn deregister(&self, devices: &[Device]) -> Vec<Result<(), Failure>> {
        if devices.is_empty() {
            return Vec::new();
        }
        let (company, _) = match self.account().await {
            Ok(a) => a,
            Err(f) => return vec![Err(f); devices.len()],
        };
        let mut results = Vec::with_capacity(devices.len());
        for d in devices {
            results.push(self.deregister_one(&company, d.mac).await);
        }
        results
    }

    async fn check(&self, device: &Device) -> Result<Holder, Failure> {
        let (company, _) = self.account().await?;
        let answer = self
            .call(
                reqwest::Method::GET,
                &self.endpoint_url(&company, device.mac),
                None,
            )
            .await?;
        match answer.status {
            s if s.is_success() => Ok(Holder::Us),
            // SRAPS shows only our company's endpoints: another company's MAC looks unknown.
            StatusCode::NOT_FOUND => Ok(Holder::Nobody),
            s => Err(http::refused(
                s.as_u16().to_string(),
                &error_message(&answer.body),
            )),
        }
    }

    async fn list(&self) -> Result<Option<Vec<Listed>>, Failure> {
        let (company, profile) = self.account().await?;
        let items = self
            .all(self.api(&format!("/companies/{company}/endpoints/?page_size=500")))
            .await?;
        let listed = items
            .iter()
            .filter_map(|e| {
                let mac = Mac::parse(e.get("mac")?.as_str()?).ok()?;
                // The endpoint's URL is its profile's; only ours is known here.
                let url = if e.get("provisioning_profile").and_then(Value::as_str) == Some(&profile)
                {
                    self.url.clone()
                } else {
                    String::new()
                };
                Some(Listed { mac, url })
            })
            .collect();
        Ok(Some(listed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_show_the_secret() {
        let settings = SnomSettings::new("id", Secret::new("s3cr3t-value"));
        assert!(!format!("{settings:?}").contains("s3cr3t"));
        let adapter = Snom::new(settings, "https://p.example").unwrap();
        assert!(!format!("{adapter:?}").contains("s3cr3t"));
    }

    #[test]
    fn url_carries_the_mac_placeholder() {
        assert_eq!(
            provisioning_url("https://prov.example.com"),
            "https://prov.example.com/snom/{mac}.xml"
        );
        assert_eq!(
            provisioning_url("https://prov.example.com/t/"),
            "https://prov.example.com/t/snom/{mac}.xml"
        );
    }

    #[test]
    fn hawk_known_answer_vector() {
        // Computed independently with Python's hashlib/hmac (see docs/redirect.md).
        let hash = payload_hash("application/json; charset=utf-8", br#"{"a":1}"#);
        assert_eq!(hash, "qKG2AtsqLMhIdy7+OrxWG0bU8wTDncYSW0gmNukAKpI=");
        let url =
            reqwest::Url::parse("https://example.com/api/v1/companies/c1/endpoints/000413922d24")
                .unwrap();
        let header = authorization(
            "dh37fgj492je",
            "werxhqb98rpaxn39848xrunpaw3489ruxnpa98w4rxn",
            "PUT",
            &url,
            1353832234,
            "j4h3g2",
            Some(&hash),
        );
        assert_eq!(
            header,
            "Hawk id=\"dh37fgj492je\", ts=\"1353832234\", nonce=\"j4h3g2\", \
             hash=\"qKG2AtsqLMhIdy7+OrxWG0bU8wTDncYSW0gmNukAKpI=\", \
             mac=\"C87KGnK0gfBi0l75DaQavWpByEey0msrYE6Iy7DkI2c=\""
        );
    }

    #[test]
    fn pages_and_errors_parse() {
        let (items, next) =
            parse_page(&json!({"results": [{"uuid": "p1"}], "next": "https://x/?page=2"}));
        assert_eq!(items.len(), 1);
        assert_eq!(next.as_deref(), Some("https://x/?page=2"));
        let (items, next) = parse_page(&json!([{"uuid": "a"}, {"uuid": "b"}]));
        assert_eq!((items.len(), next), (2, None));
        assert_eq!(
            error_message(br#"{"detail":"Invalid MAC."}"#),
            "Invalid MAC."
        );
        assert_eq!(error_message(b"plain\nmore"), "plain");
    }
}
