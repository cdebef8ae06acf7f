//! The values knobs take, parsed into real types: listen addresses (or `off`), durations as
//! people write them, extra OUIs, lists of networks, the log format, a database URL (its
//! password never shown) and secrets redacted wherever they are printed.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{Network, Oui, Vendor};

/// A listen address, or `off` to disable a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "off" | "none" => Ok(Listen(None)),
            a => a.parse().map(|a| Listen(Some(a))).map_err(|e| {
                format!("{a:?} is not an address like 0.0.0.0:8443 or [::]:8443 (or off): {e}")
            }),
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("off"),
        }
    }
}

/// A duration as people write it in the configuration: `30s`, `500ms`, `2m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenDuration(pub Duration);

impl FromStr for WrittenDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(WrittenDuration)
            .map_err(|e| format!("{s:?} is not a duration like 30s or 500ms: {e}"))
    }
}

/// An extra OUI: `vendor=AA:BB:CC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtraOui(pub Vendor, pub Oui);

impl FromStr for ExtraOui {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (vendor, oui) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected vendor=AA:BB:CC"))?;
        Ok(ExtraOui(
            vendor.parse().map_err(|e| format!("{s:?}: {e}"))?,
            oui.parse().map_err(|e| format!("{s:?}: {e}"))?,
        ))
    }
}

/// A list of networks: comma-separated on the command line and in the environment
/// (`10.0.0.0/8,192.0.2.7`; empty or `none` for no network), an array of strings in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<Network>);

impl FromStr for Networks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "none" => Ok(Networks(Vec::new())),
            list => list
                .split(',')
                .map(|n| n.parse::<Network>().map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()
                .map(Networks),
        }
    }
}

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|n| n.parse::<Network>().map_err(serde::de::Error::custom))
            .collect::<Result<_, _>>()
            .map(Networks)
    }
}

/// A list of names (DNS names, e-mail addresses): comma-separated on the command line and in
/// the environment, an array of strings in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names(pub Vec<String>);

impl FromStr for Names {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Names(
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Names(
            Vec::<String>::deserialize(d)?
                .into_iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
        ))
    }
}

/// Writes networks as their CIDR strings (for `check-config`).
pub fn networks_as_strings<S: serde::Serializer>(
    networks: &[Network],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(networks.iter().map(ToString::to_string))
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

macro_rules! string_deserialize {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_deserialize!(Listen, WrittenDuration, ExtraOui, DatabaseUrl);

/// A PostgreSQL connection URL. `Display`, `Debug` and `Serialize` mask its password, so the
/// URL can appear in logs, errors and `check-config` without leaking the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with the password replaced by `***`.
    pub fn masked(&self) -> String {
        mask_password(&self.0)
    }
}

/// `url` with the password of its `user:password@` part replaced by `***`; a `password=`
/// query parameter is masked too.
pub fn mask_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            // The userinfo ends at the last '@' before the path (a password may contain '@').
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => format!("{scheme}://{userinfo}@{host}{path}"),
                },
                None => format!("{scheme}://{authority}{path}"),
            }
        }
        None => base.to_owned(),
    };
    if let Some(q) = query {
        let masked: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&masked.join("&"));
    }
    out
}

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl(s.to_owned()))
        } else {
            Err(format!(
                "{:?} is not a URL like postgres://USER:PASS@HOST:PORT/DB",
                mask_password(s)
            ))
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.masked())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

/// A secret from the configuration: printed as `***` by `Debug` and `check-config`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret read from the configuration.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Redacted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}
