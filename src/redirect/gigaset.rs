//! Gigaset's redirect server (the "auto-provisioning" service at `prov.gigaset.net`),
//! through its XML-RPC interface with HTTP Basic authentication: `autoprov.registerDevice`,
//! `autoprov.deregisterDevice` and `autoprov.checkDevice`, each keyed by the device's MAC-ID
//! (`MAC-CODE`, the 4-character code from the label). Answers are `[success, text]` pairs
//! whose text is `ok`, the MAC-ID, or `<error>:<argument>`. docs/redirect.md names the
//! sources and what is unverified. The service cannot list a provider's devices and has no
//! batch form. Knows nothing of the outbox, the store or metrics.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;

use super::http::{self, Secret, SetupError};
use super::xmlrpc::{self, Value};
use super::{Device, Failure, Holder, Listed, RedirectService};
use crate::domain::Vendor;

/// The service's XML-RPC endpoint.
pub const DEFAULT_URL: &str = "https://prov.gigaset.net/apxml/rpc.do";

/// How to reach our provider account.
#[derive(Clone, Debug)]
pub struct GigasetSettings {
    /// The XML-RPC endpoint (a stand-in's in tests).
    pub url: String,
    /// Our account's user name.
    pub user: String,
    /// Our account's password.
    pub password: Secret,
    /// The provider (profile) name registered with each device.
    pub provider_name: String,
    /// Time-out of one request.
    pub timeout: Duration,
}

impl GigasetSettings {
    /// Settings for the real service with our account and the defaults.
    pub fn new(user: impl Into<String>, password: Secret) -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            user: user.into(),
            password,
            provider_name: "zerotouch".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The Gigaset adapter.
pub struct Gigaset {
    settings: GigasetSettings,
    client: reqwest::Client,
    url: String,
}

impl std::fmt::Debug for Gigaset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gigaset")
            .field("settings", &self.settings)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The URL Gigaset phones are sent to: our per-device file, with the `%MACD` placeholder
/// Gigaset's redirect documentation shows (`http://provider.com/xml/%MACD.xml`), which the
/// device replaces with its MAC.
pub fn provisioning_url(public_url: &str) -> String {
    format!("{}/%MACD.xml", public_url.trim_end_matches('/'))
}

/// A device's MAC-ID, `MAC-CODE` in upper case; the code must be 4 letters or digits.
pub fn mac_id(device: &Device) -> Result<String, Failure> {
    let code = device.claim_code.as_deref().unwrap_or("").trim();
    if code.len() != 4 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(http::refused(
            "claim_code_missing",
            "a Gigaset device needs the 4-character code from its label",
        ));
    }
    Ok(format!(
        "{}-{}",
        device.mac.to_upper_hex(),
        code.to_ascii_uppercase()
    ))
}

/// One `autoprov.*` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Success; the text that came with it.
    Done(String),
    /// The service's error word (`mac_not_found`, `mac_already_in_use`, …) and the whole text.
    Error(String, String),
}

/// Reads an `autoprov.*` method response.
pub fn parse_answer(body: &[u8]) -> Result<Answer, Failure> {
    let unreadable = || http::transient("the vendor's answer could not be read");
    match xmlrpc::decode_response(body).map_err(|_| unreadable())? {
        xmlrpc::Response::Fault { code, message } => Err(http::refused(code.to_string(), &message)),
        xmlrpc::Response::Value(value) => {
            let (success, text) = match &value {
                Value::Array(items) => {
                    let success = match items.first() {
                        Some(Value::Bool(b)) => Some(*b),
                        Some(Value::Int(i)) => Some(*i != 0),
                        _ => None,
                    };
                    let text = items
                        .get(1)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    (success, text)
                }
                Value::Bool(b) => (Some(*b), String::new()),
                Value::Str(s) => (None, s.clone()),
                _ => return Err(unreadable()),
            };
            let text = text.trim().to_owned();
            let word = text.split(':').next().unwrap_or("").to_ascii_lowercase();
            match success {
                Some(true) => Ok(Answer::Done(text)),
                _ if word == "ok" => Ok(Answer::Done(text)),
                Some(false) | None if text.contains(':') || !word.is_empty() => {
                    Ok(Answer::Error(word, text))
                }
                _ => Err(unreadable()),
            }
        }
    }
}

fn refused(word: &str, text: &str) -> Failure {
    http::refused(word.to_owned(), text)
}

impl Gigaset {
    /// An adapter for our provider account; phones are sent to `public_url`.
    pub fn new(settings: GigasetSettings, public_url: &str) -> Result<Self, SetupError> {
        http::check_url(&settings.url, "Gigaset redirect server URL")?;
        http::check_url(public_url, "phones' public URL")?;
        let client = http::client("Gigaset", settings.timeout)?;
        Ok(Self {
            url: provisioning_url(public_url),
            client,
            settings,
        })
    }

    async fn call(&self, method: &str, params: &[Value]) -> Result<Answer, Failure> {
        let credentials = format!("{}:{}", self.settings.user, self.settings.password.expose());
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        let request = self
            .client
            .post(&self.settings.url)
            .header("Authorization", format!("Basic {basic}"))
            .header("Content-Type", "text/xml")
            .body(xmlrpc::encode_call(method, params));
        let answer = http::send(request).await?;
        if let Some(f) = http::status_failure(&answer) {
            return Err(f);
        }
        if !answer.status.is_success() {
            return Err(http::refused(
                answer.status.as_u16().to_string(),
                "the vendor refused the request",
            ));
        }
        parse_answer(&answer.body)
    }

    async fn register_call(&self, id: &str) -> Result<Answer, Failure> {
        self.call(
            "autoprov.registerDevice",
            &[
                Value::Str(id.to_owned()),
                Value::Str(self.url.clone()),
                Value::Str(self.settings.provider_name.clone()),
            ],
        )
        .await
    }

    async fn deregister_call(&self, id: &str) -> Result<(), Failure> {
        match self
            .call("autoprov.deregisterDevice", &[Value::Str(id.to_owned())])
            .await?
        {
            Answer::Done(_) => Ok(()),
            // Not ours (or unknown): nothing to remove.
            Answer::Error(word, _) if word == "mac_not_found" => Ok(()),
            Answer::Error(word, text) => Err(refused(&word, &text)),
        }
    }

    async fn check_call(&self, id: &str) -> Result<Holder, Failure> {
        match self
            .call("autoprov.checkDevice", &[Value::Str(id.to_owned())])
            .await?
        {
            Answer::Done(_) => Ok(Holder::Us),
            Answer::Error(word, _) if word == "mac_not_found" => Ok(Holder::Nobody),
            Answer::Error(word, _) if word == "mac_already_in_use" => Ok(Holder::Elsewhere),
            Answer::Error(word, text) => Err(refused(&word, &text)),
        }
    }

    async fn register_one(&self, device: &Device) -> Result<(), Failure> {
        let id = mac_id(device)?;
        match self.register_call(&id).await? {
            Answer::Done(_) => Ok(()),
            Answer::Error(word, _) if word == "mac_already_in_use" => {
                // Ours already, or another provider's? Only ours shows in checkDevice.
                match self.check_call(&id).await? {
                    Holder::Us => {
                        // The service answers no URL: register again so it is ours.
                        self.deregister_call(&id).await?;
                        match self.register_call(&id).await? {
                            Answer::Done(_) => Ok(()),
                            Answer::Error(w, _) if w == "mac_already_in_use" => {
                                Err(Failure::RegisteredElsewhere)
                            }
                            Answer::Error(w, t) => Err(refused(&w, &t)),
                        }
                    }
                    _ => Err(Failure::RegisteredElsewhere),
                }
            }
            Answer::Error(word, text) => Err(refused(&word, &text)),
        }
    }
}

#[async_trait]
impl RedirectService for Gigaset {
    fn vendor(&self) -> Vendor {
        Vendor::Gigaset
    }

    fn batch_limit(&self) -> usize {
        1
    }

    fn provisioning_url(&self) -> &str {
        &self.url
    }

    async fn register(&self, devices: &[Device]) -> Vec<Result<(), Failure>> {
        let mut results = Vec::with_capacity(devices.len());
        for d in devices {
            results.push(self.register_one(d).await);
        }
        results
    }

    async fn deregister(&self, devices: &[Device]) -> Vec<Result<(), Failure>> {
        let mut results = Vec::with_capacity(devices.len());
        for d in devices {
            let r = match mac_id(d) {
                Ok(id) => self.deregister_call(&id).await,
                Err(f) => Err(f),
            };
            results.push(r);
        }
        results
    }

    async fn check(&self, device: &Device) -> Result<Holder, Failure> {
        self.check_call(&mac_id(device)?).await
    }

    async fn list(&self) -> Result<Option<Vec<Listed>>, Failure> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_show_the_secret() {
        let settings = GigasetSettings::new("id", Secret::new("s3cr3t-value"));
        assert!(!format!("{settings:?}").contains("s3cr3t"));
        let adapter = Gigaset::new(settings, "https://p.example").unwrap();
        assert!(!format!("{adapter:?}").contains("s3cr3t"));
    }
    use crate::domain::Mac;

    fn device(code: Option<&str>) -> Device {
        Device {
            mac: Mac::parse("7c2f80e0d605").unwrap(),
            claim_code: code.map(str::to_owned),
        }
    }

    #[test]
    fn mac_id_is_mac_dash_code() {
        assert_eq!(mac_id(&device(Some("ab12"))).unwrap(), "7C2F80E0D605-AB12");
        assert!(matches!(
            mac_id(&device(None)),
            Err(Failure::Refused { .. })
        ));
        assert!(matches!(
            mac_id(&device(Some("AB1"))),
            Err(Failure::Refused { .. })
        ));
        assert!(matches!(
            mac_id(&device(Some("AB-1"))),
            Err(Failure::Refused { .. })
        ));
    }

    #[test]
    fn url_carries_the_mac_placeholder() {
        assert_eq!(
            provisioning_url("https://prov.example.com"),
            "https://prov.example.com/%MACD.xml"
        );
        assert_eq!(
            provisioning_url("https://prov.example.com/t/"),
            "https://prov.example.com/t/%MACD.xml"
        );
    }

    fn response(inner: &str) -> Vec<u8> {
        format!("<?xml version=\"1.0\"?><methodResponse><params><param><value>{inner}</value></param></params></methodResponse>").into_bytes()
    }

    #[test]
    fn answers_parse() {
        let ok = response("<array><data><value><boolean>1</boolean></value><value><string>7C2F80E0D605-AB12</string></value></data></array>");
        assert_eq!(
            parse_answer(&ok),
            Ok(Answer::Done("7C2F80E0D605-AB12".into()))
        );
        let used = response("<array><data><value><boolean>0</boolean></value><value>mac_already_in_use:7C2F80E0D605-AB12</value></data></array>");
        assert_eq!(
            parse_answer(&used),
            Ok(Answer::Error(
                "mac_already_in_use".into(),
                "mac_already_in_use:7C2F80E0D605-AB12".into()
            ))
        );
        let removed = response(
            "<array><data><value><boolean>0</boolean></value><value>ok</value></data></array>",
        );
        assert_eq!(parse_answer(&removed), Ok(Answer::Done("ok".into())));
        let fault = b"<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>401</int></value></member><member><name>faultString</name><value>Authentication failed</value></member></struct></value></fault></methodResponse>";
        assert_eq!(
            parse_answer(fault),
            Err(Failure::Refused {
                code: "401".into(),
                reason: "Authentication failed".into()
            })
        );
        assert!(matches!(
            parse_answer(b"{not xml"),
            Err(Failure::Transient { .. })
        ));
        assert!(matches!(
            parse_answer(&response("<struct></struct>")),
            Err(Failure::Transient { .. })
        ));
    }
}
