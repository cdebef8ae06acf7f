//! Configuration: every knob, its documented default, and how the layers combine.
//!
//! Layers, later winning: defaults embedded here → the TOML file (`--config`) → environment
//! variables (`ZEROTOUCH_*`) → command-line flags. Every knob has the same name in all three
//! (`--phones-addr`, `phones_addr`, `ZEROTOUCH_PHONES_ADDR`). Values are parsed into real types
//! (socket addresses, durations like `30s`); unknown file keys are refused. Loading binds
//! nothing and opens nothing, so `check-config` can print the effective configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::domain::{Network, OuiTable, Vendor};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The config file is not valid TOML for these keys.
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// Which key and why, from the TOML parser.
        reason: String,
    },
    /// A value outside what zerotouch accepts.
    #[error("{key}: {reason}")]
    Invalid {
        /// The knob.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

mod knobs;
mod redirect;
mod values;

pub use knobs::Knobs;
pub use redirect::{RedirectAccount, RedirectConfig};
pub use values::{
    mask_password, DatabaseUrl, ExtraOui, Listen, LogFormat, Names, Networks, Redacted,
    WrittenDuration,
};

/// The effective configuration, every value decided.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The flags and environment this configuration was loaded with, so a reload can read the
    /// file again under them (`None`: built from one merged layer, nothing to re-read).
    #[serde(skip)]
    pub layers: Option<Layers>,
    /// Database and generated certificate live here.
    pub data_dir: PathBuf,
    /// Shared PostgreSQL (None: SQLite in `data_dir`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<DatabaseUrl>,
    /// PostgreSQL pool size.
    pub database_pool_size: usize,
    /// Phones' HTTPS listener.
    pub phones_addr: Option<SocketAddr>,
    /// Phones' plain-HTTP listener.
    pub http_addr: Option<SocketAddr>,
    /// Partner API listener.
    pub api_addr: Option<SocketAddr>,
    /// The administrator's token (never printed).
    pub admin_token: Option<Redacted>,
    /// Metrics listener.
    pub metrics_addr: Option<SocketAddr>,
    /// Configured certificate and key (None: self-signed).
    pub tls_cert: Option<PathBuf>,
    /// Key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Second (RSA) certificate.
    pub tls_rsa_cert: Option<PathBuf>,
    /// Key of `tls_rsa_cert`.
    pub tls_rsa_key: Option<PathBuf>,
    /// TLS 1.3 tickets per handshake.
    pub tls_tickets: usize,
    /// How often the certificate files are checked for changes (zero: never).
    #[serde(with = "humantime_serde")]
    pub tls_reload_poll: Duration,
    /// ACME: the CA's directory URL (None: no ACME).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_directory: Option<String>,
    /// ACME: the account's contact URIs (`mailto:`).
    pub acme_contact: Vec<String>,
    /// ACME: the names the certificate is for.
    pub acme_domains: Vec<String>,
    /// ACME: the root the directory's HTTPS is checked against (None: the system's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_ca_root: Option<PathBuf>,
    /// ACME: renew this long before expiry at most.
    #[serde(with = "humantime_serde")]
    pub acme_renew_before: Duration,
    /// ACME: how often the stored certificate is read and renewal considered.
    #[serde(with = "humantime_serde")]
    pub acme_check_every: Duration,
    /// Template override directory.
    pub templates: Option<PathBuf>,
    /// Provisioning URL origin.
    pub public_url: Option<String>,
    /// Render cache size.
    pub render_cache_bytes: u64,
    /// Connection cap per listener.
    pub max_connections: usize,
    /// TLS handshake timeout.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Header read / idle timeout.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Header size cap.
    pub max_header_bytes: usize,
    /// Drain time on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Change feed poll interval.
    #[serde(with = "humantime_serde")]
    pub change_poll: Duration,
    /// Status write interval.
    #[serde(with = "humantime_serde")]
    pub status_flush: Duration,
    /// A portal session ends after this long without a request.
    #[serde(with = "humantime_serde")]
    pub portal_idle_timeout: Duration,
    /// A portal session ends this long after its login.
    #[serde(with = "humantime_serde")]
    pub portal_session_lifetime: Duration,
    /// Where partners reach the portal, for set-password links (`None`: from the API address).
    pub portal_url: Option<String>,
    /// Miss throttle: bucket size.
    pub throttle_budget: u32,
    /// Miss throttle: misses forgiven per minute.
    pub throttle_refill_per_minute: u32,
    /// Miss throttle: block duration.
    #[serde(with = "humantime_serde")]
    pub throttle_cooldown: Duration,
    /// Miss throttle: sources tracked.
    pub throttle_max_sources: usize,
    /// Digest nonce lifetime.
    #[serde(with = "humantime_serde")]
    pub nonce_lifetime: Duration,
    /// Digest nonces remembered at most.
    pub nonce_memory: usize,
    /// Connection cap per client address.
    pub max_connections_per_address: usize,
    /// Connection cap per IPv4 /24.
    pub max_connections_per_ipv4_network: usize,
    /// Connection cap per IPv6 /64.
    pub max_connections_per_ipv6_network: usize,
    /// Answers in a row serving nothing before a phone's connection is closed.
    pub max_unserved_per_connection: u32,
    /// Balancers' networks, whose connections start with a PROXY header.
    #[serde(serialize_with = "values::networks_as_strings")]
    pub proxy_protocol_from: Vec<Network>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Extra OUIs per vendor.
    pub extra_ouis: BTreeMap<Vendor, Vec<String>>,
    /// The vendors' redirect services.
    pub redirect: RedirectConfig,
    #[serde(skip)]
    ouis: Vec<ExtraOui>,
}

/// The command line and environment layer a configuration was loaded with. Its `Debug` shows
/// nothing: it may hold the administrator's token.
#[derive(Clone)]
pub struct Layers(Knobs);

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Layers(..)")
    }
}

impl Config {
    /// Combines the file named by `cli.config` (if any) under `cli` (flags and environment)
    /// over the defaults, and checks the result. The administrator's token is read from
    /// `ZEROTOUCH_ADMIN_TOKEN` here, the one place that reads the environment by hand.
    pub fn load(mut cli: Knobs) -> Result<Config, Error> {
        let file = match &cli.config {
            Some(path) => Knobs::from_file(path)?,
            None => Knobs::default(),
        };
        let from_env = |name: &str| std::env::var(name).ok().filter(|t| !t.is_empty());
        if cli.admin_token.is_none() {
            cli.admin_token = from_env("ZEROTOUCH_ADMIN_TOKEN");
        }
        if cli.redirect_yealink_secret.is_none() {
            cli.redirect_yealink_secret = from_env("ZEROTOUCH_REDIRECT_YEALINK_SECRET");
        }
        if cli.redirect_snom_hawk_key.is_none() {
            cli.redirect_snom_hawk_key = from_env("ZEROTOUCH_REDIRECT_SNOM_HAWK_KEY");
        }
        if cli.redirect_gigaset_password.is_none() {
            cli.redirect_gigaset_password = from_env("ZEROTOUCH_REDIRECT_GIGASET_PASSWORD");
        }
        let mut config = Config::resolve(file.merged_with(cli.clone()))?;
        config.layers = Some(Layers(cli));
        Ok(config)
    }

    /// This configuration loaded again: the file read afresh under the same flags and
    /// environment (a reload). `None` when it was not loaded from layers.
    pub fn reloaded(&self) -> Option<Result<Config, Error>> {
        self.layers.as_ref().map(|l| Config::load(l.0.clone()))
    }

    /// Applies defaults to a merged layer and validates it.
    pub fn resolve(k: Knobs) -> Result<Config, Error> {
        let invalid = |key, reason: &str| Error::Invalid {
            key,
            reason: reason.to_owned(),
        };
        if k.tls_cert.is_some() != k.tls_key.is_some() {
            return Err(invalid("tls_cert", "tls_cert and tls_key go together"));
        }
        if k.tls_rsa_cert.is_some() != k.tls_rsa_key.is_some() {
            return Err(invalid(
                "tls_rsa_cert",
                "tls_rsa_cert and tls_rsa_key go together",
            ));
        }
        if k.tls_rsa_cert.is_some() && k.tls_cert.is_none() {
            return Err(invalid(
                "tls_rsa_cert",
                "configure tls_cert/tls_key first; the RSA pair is the fallback",
            ));
        }
        if let Some(url) = &k.public_url {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() <= 255
                && !url.contains(char::is_whitespace)
                && !url.contains(['"', '<', '>', '\'', '?', '#']);
            if !ok {
                return Err(invalid(
                    "public_url",
                    "expected scheme://host[:port] such as https://prov.example.com",
                ));
            }
        }
        let redirect = RedirectConfig::resolve(&k)?;
        if !redirect.vendors().is_empty() && k.public_url.is_none() {
            return Err(invalid(
                "public_url",
                "the redirect services need the phones' public URL (public_url) to register",
            ));
        }
        let ouis = k.extra_ouis.clone();
        OuiTable::with_extra(ouis.iter().map(|e| (e.0, e.1)))
            .map_err(|e| invalid("extra_ouis", &e.to_string()))?;
        let mut extra: BTreeMap<Vendor, Vec<String>> = BTreeMap::new();
        for ExtraOui(v, o) in &ouis {
            extra.entry(*v).or_default().push(o.to_string());
        }
        let admin_token = match (&k.admin_token, &k.admin_token_file) {
            (Some(token), _) => Some(token.trim().to_owned()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| Error::Read {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if admin_token
            .as_ref()
            .is_some_and(|t| t.len() < 16 || t.chars().any(char::is_whitespace))
        {
            return Err(invalid(
                "admin_token",
                "the administrator's token must be at least 16 characters without spaces",
            ));
        }
        let max_connections = k.max_connections.unwrap_or(10_000);
        if max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        let database_pool_size = k.database_pool_size.unwrap_or(16);
        if database_pool_size == 0 {
            return Err(invalid("database_pool_size", "must be at least 1"));
        }
        let acme_domains: Vec<String> = k
            .acme_domains
            .clone()
            .unwrap_or_default()
            .0
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        let acme_contact: Vec<String> = k
            .acme_contact
            .clone()
            .unwrap_or_default()
            .0
            .into_iter()
            .map(|c| {
                if c.starts_with("mailto:") {
                    c
                } else {
                    format!("mailto:{c}")
                }
            })
            .collect();
        let config = Config {
            layers: None,
            data_dir: k.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            database_url: k.database_url,
            database_pool_size,
            phones_addr: k
                .phones_addr
                .unwrap_or(Listen(Some(SocketAddr::from(([0, 0, 0, 0], 8443)))))
                .0,
            http_addr: k.http_addr.unwrap_or(Listen(None)).0,
            api_addr: k
                .api_addr
                .unwrap_or(Listen(Some(SocketAddr::from(([0, 0, 0, 0], 9443)))))
                .0,
            admin_token: admin_token.map(Redacted::new),
            metrics_addr: k
                .metrics_addr
                .unwrap_or(Listen(Some(SocketAddr::from(([127, 0, 0, 1], 9898)))))
                .0,
            tls_cert: k.tls_cert,
            tls_key: k.tls_key,
            tls_rsa_cert: k.tls_rsa_cert,
            tls_rsa_key: k.tls_rsa_key,
            tls_tickets: k.tls_tickets.unwrap_or(1),
            tls_reload_poll: k.tls_reload_poll.map_or(Duration::from_secs(5), |h| h.0),
            acme_directory: k.acme_directory,
            acme_contact,
            acme_domains,
            acme_ca_root: k.acme_ca_root,
            acme_renew_before: k
                .acme_renew_before
                .map_or(Duration::from_secs(30 * 86_400), |h| h.0),
            acme_check_every: k.acme_check_every.map_or(Duration::from_secs(60), |h| h.0),
            templates: k.templates,
            public_url: k.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            render_cache_bytes: k.render_cache_bytes.unwrap_or(64 * 1024 * 1024),
            max_connections,
            handshake_timeout: k.handshake_timeout.map_or(Duration::from_secs(10), |h| h.0),
            header_read_timeout: k
                .header_read_timeout
                .map_or(Duration::from_secs(15), |h| h.0),
            max_header_bytes: k.max_header_bytes.unwrap_or(16 * 1024),
            shutdown_grace: k.shutdown_grace.map_or(Duration::from_secs(10), |h| h.0),
            change_poll: k.change_poll.map_or(Duration::from_secs(1), |h| h.0),
            status_flush: k.status_flush.map_or(Duration::from_secs(1), |h| h.0),
            portal_idle_timeout: k
                .portal_idle_timeout
                .map_or(Duration::from_secs(30 * 60), |h| h.0),
            portal_session_lifetime: k
                .portal_session_lifetime
                .map_or(Duration::from_secs(12 * 3600), |h| h.0),
            portal_url: k.portal_url.map(|u| u.trim_end_matches('/').to_owned()),
            throttle_budget: k.throttle_budget.unwrap_or(100),
            throttle_refill_per_minute: k.throttle_refill_per_minute.unwrap_or(30),
            throttle_cooldown: k
                .throttle_cooldown
                .map_or(Duration::from_secs(600), |h| h.0),
            throttle_max_sources: k.throttle_max_sources.unwrap_or(100_000),
            nonce_lifetime: k.nonce_lifetime.map_or(Duration::from_secs(300), |h| h.0),
            nonce_memory: k.nonce_memory.unwrap_or(1_000_000),
            max_connections_per_address: k.max_connections_per_address.unwrap_or(1024),
            max_connections_per_ipv4_network: k.max_connections_per_ipv4_network.unwrap_or(2048),
            max_connections_per_ipv6_network: k.max_connections_per_ipv6_network.unwrap_or(1024),
            max_unserved_per_connection: k.max_unserved_per_connection.unwrap_or(8),
            proxy_protocol_from: k.proxy_protocol_from.unwrap_or_default().0,
            log_format: k.log_format.unwrap_or_default(),
            log_level: k.log_level.unwrap_or_else(|| "info".to_owned()),
            extra_ouis: extra,
            redirect,
            ouis,
        };
        if config.throttle_budget == 0
            || config.throttle_max_sources == 0
            || config.nonce_memory == 0
            || config.max_connections_per_address == 0
        {
            return Err(invalid("throttle_budget", "throttle_budget, throttle_max_sources, nonce_memory and max_connections_per_address must be at least 1"));
        }
        if config.max_connections_per_ipv4_network == 0
            || config.max_connections_per_ipv6_network == 0
            || config.max_unserved_per_connection == 0
        {
            return Err(invalid(
                "max_connections_per_ipv4_network",
                "max_connections_per_ipv4_network, max_connections_per_ipv6_network and max_unserved_per_connection must be at least 1",
            ));
        }
        if config.max_header_bytes < 1024 {
            return Err(invalid("max_header_bytes", "must be at least 1024"));
        }
        if config.portal_idle_timeout.is_zero() || config.portal_session_lifetime.is_zero() {
            return Err(invalid(
                "portal_idle_timeout",
                "portal session expiries must be longer than zero",
            ));
        }
        if config
            .portal_url
            .as_deref()
            .is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            return Err(invalid(
                "portal_url",
                "must start with https:// (or http:// behind a TLS-terminating proxy)",
            ));
        }
        if config.change_poll.is_zero() || config.status_flush.is_zero() {
            return Err(invalid("change_poll", "intervals must be longer than zero"));
        }
        config.check_acme()?;
        Ok(config)
    }

    /// ACME needs a directory and names together, the plain listener for HTTP-01, and no
    /// certificate files it would replace.
    fn check_acme(&self) -> Result<(), Error> {
        let bad = |key, reason: &str| Error::Invalid {
            key,
            reason: reason.to_owned(),
        };
        let Some(directory) = &self.acme_directory else {
            if !self.acme_domains.is_empty() {
                return Err(bad("acme_domains", "set acme_directory too"));
            }
            return Ok(());
        };
        if !directory.starts_with("https://") {
            return Err(bad("acme_directory", "must be an https:// URL"));
        }
        if self.acme_domains.is_empty() {
            return Err(bad(
                "acme_domains",
                "ACME needs the names the certificate is for",
            ));
        }
        if let Some(name) = self.acme_domains.iter().find(|d| {
            d.starts_with("*.")
                || d.len() > 253
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }) {
            return Err(bad(
                "acme_domains",
                &format!("{name:?} is not a DNS name HTTP-01 can prove (no wildcards)"),
            ));
        }
        if self.tls_cert.is_some() {
            return Err(bad(
                "acme_directory",
                "ACME provides the certificate tls_cert/tls_key would: set one or the other",
            ));
        }
        if self.http_addr.is_none() {
            return Err(bad(
                "acme_directory",
                "ACME answers the CA's HTTP-01 challenge on the plain listener: set http_addr (the CA connects to port 80 of every name)",
            ));
        }
        if self.acme_check_every.is_zero() {
            return Err(bad("acme_check_every", "must be longer than zero"));
        }
        Ok(())
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("zerotouch.db")
    }

    /// The OUI table: shipped prefixes plus configured ones.
    pub fn oui_table(&self) -> OuiTable {
        // resolve() already checked the combination.
        OuiTable::with_extra(self.ouis.iter().map(|e| (e.0, e.1))).unwrap_or_default()
    }

    /// The effective configuration as TOML, for `check-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::resolve(Knobs::default()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.phones_addr, Some("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(c.http_addr, None);
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9898".parse().unwrap()));
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
    }

    #[test]
    fn later_layers_win_and_unset_keys_fall_through() {
        let file: Knobs = toml::from_str(
            r#"
            data_dir = "/var/lib/zerotouch"
            phones_addr = "0.0.0.0:443"
            http_addr = "0.0.0.0:80"
            shutdown_grace = "30s"
            extra_ouis = ["snom=00:11:22"]
            "#,
        )
        .unwrap();
        let cli = Knobs {
            phones_addr: Some("127.0.0.1:0".parse().unwrap()),
            http_addr: Some("off".parse().unwrap()),
            ..Knobs::default()
        };
        let c = Config::resolve(file.merged_with(cli)).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/zerotouch"));
        assert_eq!(c.phones_addr, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(c.http_addr, None);
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert_eq!(
            c.oui_table()
                .vendor_of(crate::domain::Mac::parse("001122334455").unwrap()),
            Some(Vendor::Snom)
        );
    }

    #[test]
    fn unknown_and_malformed_keys_are_refused_with_their_name() {
        let err = toml::from_str::<Knobs>("phone_addr = \"0.0.0.0:1\"").unwrap_err();
        assert!(err.to_string().contains("phone_addr"), "{err}");
        let err = toml::from_str::<Knobs>("shutdown_grace = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
        let err = toml::from_str::<Knobs>("phones_addr = \"localhost\"").unwrap_err();
        assert!(err.to_string().contains("localhost"), "{err}");
    }

    #[test]
    fn acme_needs_its_names_the_plain_listener_and_no_certificate_files() {
        let acme = |tweak: &dyn Fn(&mut Knobs)| {
            let mut k = Knobs {
                acme_directory: Some("https://ca.example/dir".to_owned()),
                acme_domains: Some("Prov.Example.com, b.example.com".parse().unwrap()),
                acme_contact: Some("ops@example.com,mailto:noc@example.com".parse().unwrap()),
                http_addr: Some("0.0.0.0:80".parse().unwrap()),
                ..Knobs::default()
            };
            tweak(&mut k);
            Config::resolve(k)
        };
        let c = acme(&|_| {}).unwrap();
        assert_eq!(c.acme_domains, ["prov.example.com", "b.example.com"]);
        assert_eq!(
            c.acme_contact,
            ["mailto:ops@example.com", "mailto:noc@example.com"]
        );
        assert_eq!(c.acme_renew_before, Duration::from_secs(30 * 86_400));
        assert_eq!(c.acme_check_every, Duration::from_secs(60));
        let refused = |tweak: &dyn Fn(&mut Knobs), key: &str| {
            let err = acme(tweak).unwrap_err().to_string();
            assert!(err.starts_with(key), "{err}");
        };
        refused(&|k| k.acme_domains = None, "acme_domains");
        refused(&|k| k.acme_directory = None, "acme_domains");
        refused(
            &|k| k.acme_directory = Some("http://ca.example/dir".to_owned()),
            "acme_directory",
        );
        refused(
            &|k| k.acme_domains = Some("*.example.com".parse().unwrap()),
            "acme_domains",
        );
        refused(
            &|k| k.acme_domains = Some(" , ".parse().unwrap()),
            "acme_domains",
        );
        refused(
            &|k| k.http_addr = Some("off".parse().unwrap()),
            "acme_directory",
        );
        refused(
            &|k| {
                k.tls_cert = Some("c.pem".into());
                k.tls_key = Some("k.pem".into());
            },
            "acme_directory",
        );
        refused(
            &|k| k.acme_check_every = Some("0s".parse().unwrap()),
            "acme_check_every",
        );
    }

    #[test]
    fn invalid_combinations() {
        let k = Knobs {
            tls_cert: Some("c.pem".into()),
            ..Knobs::default()
        };
        assert!(Config::resolve(k).is_err());
        let k = Knobs {
            public_url: Some("prov.example".into()),
            ..Knobs::default()
        };
        assert!(Config::resolve(k).is_err());
        let k = Knobs {
            extra_ouis: vec!["snom=00:15:65".parse().unwrap()],
            ..Knobs::default()
        };
        assert!(
            Config::resolve(k).is_err(),
            "a Yealink prefix cannot be given to Snom"
        );
    }

    #[test]
    fn effective_config_prints_without_secrets() {
        let c = Config::resolve(Knobs {
            admin_token: Some("a-very-secret-admin-token".into()),
            ..Knobs::default()
        })
        .unwrap();
        let text = c.to_toml();
        assert!(text.contains("phones_addr = \"0.0.0.0:8443\""), "{text}");
        assert!(text.contains("api_addr = \"0.0.0.0:9443\""), "{text}");
        assert!(!text.contains("a-very-secret"), "{text}");
        assert!(!format!("{c:?}").contains("a-very-secret"));
    }

    #[test]
    fn database_url_is_never_printed_with_its_password() {
        let file: Knobs = toml::from_str(
            r#"database_url = "postgres://zt:s3cret@db.example:5432/zerotouch?sslmode=disable""#,
        )
        .unwrap();
        let c = Config::resolve(file).unwrap();
        let url = c.database_url.as_ref().unwrap();
        assert_eq!(
            url.expose(),
            "postgres://zt:s3cret@db.example:5432/zerotouch?sslmode=disable"
        );
        assert_eq!(
            url.to_string(),
            "postgres://zt:***@db.example:5432/zerotouch?sslmode=disable"
        );
        assert!(!c.to_toml().contains("s3cret"), "{}", c.to_toml());
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(
            mask_password("postgres://u:p@ss@h/db?password=x&user=u"),
            "postgres://u:***@h/db?password=***&user=u"
        );
        assert_eq!(mask_password("postgres://u@h/db"), "postgres://u@h/db");
        let err = "mysql://a:b@c/d".parse::<DatabaseUrl>().unwrap_err();
        assert!(!err.contains(":b@"), "{err}");
    }

    #[test]
    fn connection_knobs_and_balancer_networks() {
        let c = Config::resolve(Knobs::default()).unwrap();
        assert_eq!(
            (
                c.max_connections_per_ipv4_network,
                c.max_connections_per_ipv6_network,
                c.max_unserved_per_connection
            ),
            (2048, 1024, 8)
        );
        assert!(c.proxy_protocol_from.is_empty());
        assert_eq!(c.tls_reload_poll, Duration::from_secs(5));

        let file: Knobs =
            toml::from_str(r#"proxy_protocol_from = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]"#)
                .unwrap();
        let c = Config::resolve(file.clone()).unwrap();
        let written: Vec<String> = c
            .proxy_protocol_from
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(written, ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]);
        assert!(c.to_toml().contains(r#""10.0.0.0/8""#), "{}", c.to_toml());
        // A later layer's empty list switches it off.
        let cli = Knobs {
            proxy_protocol_from: Some("none".parse().unwrap()),
            ..Knobs::default()
        };
        assert!(Config::resolve(file.merged_with(cli))
            .unwrap()
            .proxy_protocol_from
            .is_empty());

        let err = toml::from_str::<Knobs>(r#"proxy_protocol_from = ["10.0.0.1/8"]"#).unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/8"), "{err}");
        assert!("10.0.0.0/8,,".parse::<Networks>().is_err());
        let zero = Knobs {
            max_unserved_per_connection: Some(0),
            ..Knobs::default()
        };
        assert!(Config::resolve(zero).is_err());
    }

    #[test]
    fn without_a_database_url_the_store_is_sqlite_in_the_data_dir() {
        let c = Config::resolve(Knobs::default()).unwrap();
        assert!(c.database_url.is_none());
        assert_eq!(c.database_path(), PathBuf::from("./data/zerotouch.db"));
        assert!(!c.to_toml().contains("database_url"));
    }

    #[test]
    fn admin_token_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin");
        std::fs::write(&file, "file-admin-token-0123456789\n").unwrap();
        let c = Config::resolve(Knobs {
            admin_token_file: Some(file),
            ..Knobs::default()
        })
        .unwrap();
        assert_eq!(
            c.admin_token.unwrap().expose(),
            "file-admin-token-0123456789"
        );
        let short = Config::resolve(Knobs {
            admin_token: Some("short".into()),
            ..Knobs::default()
        });
        assert!(short.is_err());
    }
}
