//! The redirect services' part of the configuration: which vendors' services zerotouch
//! registers claimed phones with, with which account, and how the outbox worker paces itself.
//!
//! A vendor is configured when both its account id and its secret are given. Secrets come from
//! the file, the environment or a file path, never a flag, and are redacted wherever the
//! configuration is printed.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::values::Redacted;
use super::{Error, Knobs};
use crate::domain::{Vendor, VendorSet};

/// One operator account with one vendor's redirect service.
#[derive(Clone, Debug, Serialize)]
pub struct RedirectAccount {
    /// The service's base URL (the vendor's own unless overridden, e.g. for a test stand-in).
    pub url: String,
    /// Account or key id.
    pub id: String,
    /// The secret that signs or authenticates requests.
    pub secret: Redacted,
}

/// Every redirect knob, decided.
#[derive(Clone, Debug, Serialize)]
pub struct RedirectConfig {
    /// Yealink RPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yealink: Option<RedirectAccount>,
    /// Snom SRAPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snom: Option<RedirectAccount>,
    /// Gigaset's redirect server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gigaset: Option<RedirectAccount>,
    /// Ask the vendor before a claim and refuse a MAC held elsewhere.
    pub check_before_claim: bool,
    /// How long a claim waits for that answer.
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
    /// Time-out of one call.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// First retry wait, doubling per try.
    #[serde(with = "humantime_serde")]
    pub retry_first: Duration,
    /// Longest retry wait.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How long a node holds rows it delivers.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Outbox read interval when it was empty.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// Calls in flight at once per node.
    pub concurrency: usize,
}

impl RedirectConfig {
    /// The account configured for `vendor`.
    pub fn account(&self, vendor: Vendor) -> Option<&RedirectAccount> {
        match vendor {
            Vendor::Yealink => self.yealink.as_ref(),
            Vendor::Snom => self.snom.as_ref(),
            Vendor::Gigaset => self.gigaset.as_ref(),
        }
    }

    /// The vendors with an account.
    pub fn vendors(&self) -> VendorSet {
        Vendor::ALL
            .into_iter()
            .filter(|v| self.account(*v).is_some())
            .collect()
    }

    /// Decides the redirect knobs of a merged layer.
    pub(super) fn resolve(k: &Knobs) -> Result<RedirectConfig, Error> {
        let yealink = account(
            ("redirect_yealink_key_id", &k.redirect_yealink_key_id),
            ("redirect_yealink_secret", &k.redirect_yealink_secret),
            &k.redirect_yealink_secret_file,
            ("redirect_yealink_url", &k.redirect_yealink_url),
            crate::redirect::yealink::DEFAULT_BASE_URL,
        )?;
        let snom = account(
            ("redirect_snom_hawk_id", &k.redirect_snom_hawk_id),
            ("redirect_snom_hawk_key", &k.redirect_snom_hawk_key),
            &k.redirect_snom_hawk_key_file,
            ("redirect_snom_url", &k.redirect_snom_url),
            crate::redirect::snom::DEFAULT_BASE_URL,
        )?;
        let gigaset = account(
            ("redirect_gigaset_user", &k.redirect_gigaset_user),
            ("redirect_gigaset_password", &k.redirect_gigaset_password),
            &k.redirect_gigaset_password_file,
            ("redirect_gigaset_url", &k.redirect_gigaset_url),
            crate::redirect::gigaset::DEFAULT_URL,
        )?;
        let d = |v: &Option<super::WrittenDuration>, default: u64| {
            v.as_ref().map_or(Duration::from_secs(default), |h| h.0)
        };
        let config = RedirectConfig {
            yealink,
            snom,
            gigaset,
            check_before_claim: k.redirect_check_before_claim.unwrap_or(false),
            check_timeout: d(&k.redirect_check_timeout, 3),
            request_timeout: d(&k.redirect_request_timeout, 10),
            retry_first: d(&k.redirect_retry_first, 10),
            retry_max: d(&k.redirect_retry_max, 3600),
            lease: d(&k.redirect_lease, 60),
            poll: d(&k.redirect_poll, 1),
            concurrency: k.redirect_concurrency.unwrap_or(64),
        };
        let invalid = |key, reason: &str| Error::Invalid {
            key,
            reason: reason.to_owned(),
        };
        for (key, value) in [
            ("redirect_check_timeout", config.check_timeout),
            ("redirect_request_timeout", config.request_timeout),
            ("redirect_retry_first", config.retry_first),
            ("redirect_lease", config.lease),
            ("redirect_poll", config.poll),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be longer than zero"));
            }
        }
        if config.retry_max < config.retry_first {
            return Err(invalid(
                "redirect_retry_max",
                "must not be shorter than redirect_retry_first",
            ));
        }
        if config.lease <= config.request_timeout {
            return Err(invalid(
                "redirect_lease",
                "must be longer than redirect_request_timeout, or a slow call could be delivered twice at once",
            ));
        }
        if !(1..=1024).contains(&config.concurrency) {
            return Err(invalid("redirect_concurrency", "must be 1 to 1024"));
        }
        Ok(config)
    }
}

type Knob<'a, T> = (&'static str, &'a Option<T>);

fn account(
    id: Knob<'_, String>,
    secret: Knob<'_, String>,
    secret_file: &Option<std::path::PathBuf>,
    url: Knob<'_, String>,
    default_url: &str,
) -> Result<Option<RedirectAccount>, Error> {
    let secret_value = match (secret.1, secret_file) {
        (Some(s), _) => Some(s.trim().to_owned()),
        (None, Some(path)) => Some(read_secret(path)?),
        (None, None) => None,
    };
    let (id_value, secret_value) = match (id.1, secret_value) {
        (None, None) => return Ok(None),
        (Some(i), Some(s)) if !i.trim().is_empty() && !s.is_empty() => (i.trim().to_owned(), s),
        (Some(_), None) | (Some(_), Some(_)) => {
            return Err(Error::Invalid {
                key: secret.0,
                reason: format!("{} needs its secret too (non-empty)", id.0),
            })
        }
        (None, Some(_)) => {
            return Err(Error::Invalid {
                key: id.0,
                reason: format!("{} needs {} too", secret.0, id.0),
            })
        }
    };
    let url_value = url.1.clone().unwrap_or_else(|| default_url.to_owned());
    let ok = (url_value.starts_with("https://") || url_value.starts_with("http://"))
        && !url_value.contains(char::is_whitespace);
    if !ok {
        return Err(Error::Invalid {
            key: url.0,
            reason: "expected an http(s):// URL".into(),
        });
    }
    Ok(Some(RedirectAccount {
        url: url_value,
        id: id_value,
        secret: Redacted::new(secret_value),
    }))
}

fn read_secret(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| Error::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knobs() -> Knobs {
        Knobs {
            redirect_snom_hawk_id: Some("id".into()),
            redirect_snom_hawk_key: Some("key".into()),
            ..Knobs::default()
        }
    }

    #[test]
    fn a_vendor_is_configured_by_its_id_and_secret() {
        let c = RedirectConfig::resolve(&knobs()).unwrap();
        assert_eq!(c.vendors().iter().collect::<Vec<_>>(), [Vendor::Snom]);
        let snom = c.account(Vendor::Snom).unwrap();
        assert_eq!(snom.url, "https://secure-provisioning.snom.com/api/v1");
        assert_eq!(format!("{snom:?}").matches("key").count(), 0);
        assert_eq!(c.check_timeout, Duration::from_secs(3));
        assert!(!c.check_before_claim);
    }

    #[test]
    fn half_an_account_is_refused() {
        let k = Knobs {
            redirect_snom_hawk_key: None,
            ..knobs()
        };
        assert!(RedirectConfig::resolve(&k).is_err());
        let k = Knobs {
            redirect_gigaset_password: Some("pw".into()),
            ..Knobs::default()
        };
        assert!(RedirectConfig::resolve(&k).is_err());
        let k = Knobs {
            redirect_lease: Some("5s".parse().unwrap()),
            ..knobs()
        };
        assert!(RedirectConfig::resolve(&k).is_err());
    }
}
