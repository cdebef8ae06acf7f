//! Devices: a phone known by its MAC, its vendor, its claim code and its per-device settings.
//!
//! Owns what a device is and what may be written into one (line accounts, display name), and
//! the rules of a valid claim (MAC, vendor, Gigaset claim code). Knows nothing of storage or HTTP.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::mac::{Mac, MacError};
use super::network::Network;
use super::vendor::{OuiTable, Vendor};
use super::violation::{SettingRule, Violation};

/// A secret (SIP password) that must never reach a log line: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a phone's rendered config).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The 4-character code printed on a Gigaset label; with the MAC it forms the MAC-ID
/// (`7C2F80E0D605-AB12`). Stored upper-case; compared case-insensitively.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClaimCode([u8; 4]);

impl ClaimCode {
    /// Accepts exactly 4 ASCII letters or digits, either case.
    pub fn parse(s: &str) -> Result<Self, ClaimRefusal> {
        let b = s.trim().as_bytes();
        if b.len() != 4 || !b.iter().all(u8::is_ascii_alphanumeric) {
            return Err(ClaimRefusal::MalformedClaimCode);
        }
        Ok(Self([
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
            b[2].to_ascii_uppercase(),
            b[3].to_ascii_uppercase(),
        ]))
    }

    /// The code, upper-case.
    pub fn as_str(&self) -> &str {
        // Invariant: parse admits ASCII alphanumerics only.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    /// The MAC-ID Gigaset phones use as their Digest password: `<MAC>-<code>`, upper-case.
    pub fn mac_id(&self, mac: Mac) -> String {
        format!("{}-{}", mac.to_upper_hex(), self.as_str())
    }
}

impl fmt::Debug for ClaimCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClaimCode(***)")
    }
}

impl TryFrom<String> for ClaimCode {
    type Error = ClaimRefusal;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ClaimCode> for String {
    fn from(c: ClaimCode) -> String {
        c.as_str().to_owned()
    }
}

/// One SIP account written into a phone.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineAccount {
    /// SIP user (the account's user part).
    pub user: String,
    /// Authentication user, when it differs from `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_user: Option<String>,
    /// SIP password. Write-only: stored for rendering, never returned by the API or logged.
    pub password: Secret,
    /// Caller name shown on the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Per-device settings a partner may set.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceSettings {
    /// Name shown on the phone's idle screen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// SIP accounts, line 1 first (at most 16).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineAccount>,
    /// Networks this phone may enrol from; empty: its tenant's list decides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enrolment_networks: Vec<Network>,
}

/// A device setting that cannot be written into a phone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDeviceSetting {
    /// Too many lines.
    #[error("at most {MAX_LINES} line accounts per device")]
    TooManyLines,
    /// A text field that is empty, too long, or holds control characters.
    #[error("{field} must be 1-128 printable characters")]
    Text {
        /// The field, as the API names it (`lines[0].user`).
        field: String,
    },
    /// A value the device's vendor cannot carry unchanged (checked by the vendor's rules).
    #[error("{}: {} {reason}", violation.field, violation.models.unwrap_or(""))]
    NotRepresentable {
        /// The setting (`lines[0].password`), the rule, and the vendor and models concerned.
        violation: Violation,
        /// What they cannot carry.
        reason: String,
    },
}

/// The most line accounts a device may have.
pub const MAX_LINES: usize = 16;

impl InvalidDeviceSetting {
    /// The setting and rule, for clients that explain a refusal in their own words.
    pub fn violation(&self) -> Violation {
        match self {
            InvalidDeviceSetting::TooManyLines => {
                // MAX_LINES is a small constant: the conversion cannot truncate.
                Violation::new("lines", SettingRule::AtMost).max(MAX_LINES as u32)
            }
            InvalidDeviceSetting::Text { field } => {
                Violation::new(field.clone(), SettingRule::Text)
            }
            InvalidDeviceSetting::NotRepresentable { violation, .. } => violation.clone(),
        }
    }
}

impl DeviceSettings {
    /// Checks lengths and that no value holds control characters (line breaks would let a
    /// value inject settings into key=value formats; the renderer escapes too).
    pub fn validate(&self) -> Result<(), InvalidDeviceSetting> {
        if self.lines.len() > MAX_LINES {
            return Err(InvalidDeviceSetting::TooManyLines);
        }
        let text = |field: String, v: &str| {
            if v.is_empty() || v.chars().count() > 128 || v.chars().any(char::is_control) {
                Err(InvalidDeviceSetting::Text { field })
            } else {
                Ok(())
            }
        };
        if let Some(name) = &self.display_name {
            text("display_name".into(), name)?;
        }
        for (i, line) in self.lines.iter().enumerate() {
            text(format!("lines[{i}].user"), &line.user)?;
            text(format!("lines[{i}].password"), line.password.expose())?;
            if let Some(v) = &line.auth_user {
                text(format!("lines[{i}].auth_user"), v)?;
            }
            if let Some(v) = &line.display_name {
                text(format!("lines[{i}].display_name"), v)?;
            }
        }
        Ok(())
    }
}

/// Why a MAC cannot be claimed. Each is reported to the partner as "could not be registered"
/// with this reason, except [`ClaimRefusal::ClaimCodeMismatch`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefusal {
    /// Malformed, zero, broadcast or multicast.
    #[error("{0}")]
    Mac(#[from] MacError),
    /// Not a supported vendor's prefix.
    #[error("MAC prefix {0} is not a supported vendor's (yealink, snom, gigaset)")]
    UnsupportedVendor(String),
    /// A Gigaset device claimed without the code from its label.
    #[error(
        "Gigaset devices are claimed with the 4-character code printed on the label (claim_code)"
    )]
    MissingClaimCode,
    /// A code that is not 4 letters or digits.
    #[error("claim_code must be the 4 letters or digits printed on the label")]
    MalformedClaimCode,
    /// The code differs from the one the device was claimed with.
    #[error("claim_code does not match the device's label")]
    ClaimCodeMismatch,
}

/// A MAC that passed the claim rules: well-formed, assignable, a supported vendor's, and for
/// Gigaset carrying its label code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimableDevice {
    /// The normalised MAC.
    pub mac: Mac,
    /// The vendor from its OUI.
    pub vendor: Vendor,
    /// The label code (Gigaset; ignored for others).
    pub claim_code: Option<ClaimCode>,
}

/// Applies the claim rules to a MAC as typed by a partner and an optional label code.
pub fn check_claimable(
    mac: &str,
    claim_code: Option<&str>,
    ouis: &OuiTable,
) -> Result<ClaimableDevice, ClaimRefusal> {
    let mac = Mac::parse(mac)?;
    mac.check_assignable()?;
    let vendor = ouis
        .vendor_of(mac)
        .ok_or_else(|| ClaimRefusal::UnsupportedVendor(mac.oui().to_string()))?;
    let claim_code = match (vendor, claim_code.map(str::trim).filter(|c| !c.is_empty())) {
        (Vendor::Gigaset, None) => return Err(ClaimRefusal::MissingClaimCode),
        (Vendor::Gigaset, Some(code)) => Some(ClaimCode::parse(code)?),
        (_, _) => None,
    };
    Ok(ClaimableDevice {
        mac,
        vendor,
        claim_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_rules() {
        let t = OuiTable::default();
        let ok = check_claimable("80:5E:C0:17:DE:13", None, &t).unwrap();
        assert_eq!(ok.vendor, Vendor::Yealink);
        assert!(ok.claim_code.is_none());
        assert!(matches!(
            check_claimable("zz", None, &t),
            Err(ClaimRefusal::Mac(MacError::Syntax))
        ));
        assert!(matches!(
            check_claimable("001122334455", None, &t),
            Err(ClaimRefusal::UnsupportedVendor(_))
        ));
        assert_eq!(
            check_claimable("7C2F80E0D605", None, &t),
            Err(ClaimRefusal::MissingClaimCode)
        );
        assert_eq!(
            check_claimable("7C2F80E0D605", Some("AB1"), &t),
            Err(ClaimRefusal::MalformedClaimCode)
        );
        let g = check_claimable("7C2F80E0D605", Some("ab12"), &t).unwrap();
        assert_eq!(g.claim_code.unwrap().mac_id(g.mac), "7C2F80E0D605-AB12");
        assert!(matches!(
            check_claimable("FF:FF:FF:FF:FF:FF", None, &t),
            Err(ClaimRefusal::Mac(MacError::Multicast))
        ));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let line = LineAccount {
            user: "100".into(),
            auth_user: None,
            password: Secret::new("hunter2"),
            display_name: None,
        };
        assert!(!format!("{line:?}").contains("hunter2"));
        assert!(!format!("{:?}", ClaimCode::parse("AB12").unwrap()).contains("AB12"));
    }

    #[test]
    fn device_settings_refuse_control_characters() {
        let s = DeviceSettings {
            display_name: Some("Reception\naccount.1.password = x".into()),
            lines: vec![],
            ..DeviceSettings::default()
        };
        assert!(s.validate().is_err());
        let s = DeviceSettings {
            display_name: Some("Réception <1>".into()),
            lines: vec![],
            ..DeviceSettings::default()
        };
        assert!(s.validate().is_ok());
    }
}
