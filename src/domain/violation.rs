//! Which rule a refused setting (or customer field) breaks, in a machine-readable form: the setting as the API
//! names it, a stable rule code from a closed set, and the bounds or models the rule names.
//!
//! The partner API sends it beside its English message so a client (the portal) can explain
//! the refusal in its user's language. Owns the closed set of rules; knows nothing of HTTP or
//! of any language but the codes.

use serde::Serialize;

/// A rule a tenant or device setting can break. Its [`SettingRule::code`] is stable: clients
/// key their translations on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingRule {
    /// The setting is required and was not given.
    Required,
    /// A number outside `min`–`max`.
    Range,
    /// A number below a vendor's minimum `min`.
    AtLeast,
    /// More than `max` items.
    AtMost,
    /// Not a whole number.
    Number,
    /// Not a host name or IP address.
    Host,
    /// Not one of the values offered.
    Choice,
    /// Phone authentication by client certificate, which no vendor documents well enough.
    MtlsNotOffered,
    /// Not a time zone zerotouch knows.
    TimeZone,
    /// Not a language zerotouch knows.
    Language,
    /// Not a supported vendor (yealink, snom, gigaset).
    Vendor,
    /// A firmware line that is not `vendor;model;version;url`.
    FirmwareLine,
    /// A firmware model that is not 1-32 letters, digits, spaces, '_' or '-'.
    FirmwareModel,
    /// A firmware version that is not 1-64 printable characters without spaces.
    FirmwareVersion,
    /// A firmware URL that is not http(s) or holds spaces or quotes.
    FirmwareUrl,
    /// Two firmware rules for one vendor and model.
    FirmwareDuplicate,
    /// A firmware version the vendor's phones compare in another form (Gigaset Nx70: 2.x.y).
    FirmwareVersionForm,
    /// An extra-key line that is not `vendor key=value`.
    VendorKeyLine,
    /// An extra key name that is not 1-128 letters, digits, '.', '_', '-', '[' or ']'.
    KeyName,
    /// A Yealink key name that is not a dotted name starting with a letter or digit.
    YealinkKeyName,
    /// A Snom setting name that is not 1-64 letters, digits or '_', starting with a letter.
    SnomKeyName,
    /// An extra key's value that is not one line of at most 1024 characters.
    KeyValue,
    /// A value holding control characters.
    ControlCharacter,
    /// A character (`character`) the vendor's format cannot carry.
    Charset,
    /// Yealink's `%NULL%`, which its phones read as an empty value.
    NullValue,
    /// A text that is not 1-128 printable characters.
    Text,
    /// Not a network in CIDR notation (or a single address).
    Cidr,
    /// A tenant cannot be renamed.
    Rename,
    /// A text that must not be empty.
    Empty,
    /// A text longer than `max` characters.
    TooLong,
    /// Not an e-mail address.
    Email,
    /// A phone number with other characters than digits, spaces and `+ - ( ) . /`.
    PhoneNumber,
    /// A time that must lie in the future (an API token's expiry).
    Future,
}

impl SettingRule {
    /// Every rule, for the tests that check each has a text in every language.
    pub const ALL: [SettingRule; 33] = [
        SettingRule::Required,
        SettingRule::Range,
        SettingRule::AtLeast,
        SettingRule::AtMost,
        SettingRule::Number,
        SettingRule::Host,
        SettingRule::Choice,
        SettingRule::MtlsNotOffered,
        SettingRule::TimeZone,
        SettingRule::Language,
        SettingRule::Vendor,
        SettingRule::FirmwareLine,
        SettingRule::FirmwareModel,
        SettingRule::FirmwareVersion,
        SettingRule::FirmwareUrl,
        SettingRule::FirmwareDuplicate,
        SettingRule::FirmwareVersionForm,
        SettingRule::VendorKeyLine,
        SettingRule::KeyName,
        SettingRule::YealinkKeyName,
        SettingRule::SnomKeyName,
        SettingRule::KeyValue,
        SettingRule::ControlCharacter,
        SettingRule::Charset,
        SettingRule::NullValue,
        SettingRule::Text,
        SettingRule::Cidr,
        SettingRule::Rename,
        SettingRule::Empty,
        SettingRule::TooLong,
        SettingRule::Email,
        SettingRule::PhoneNumber,
        SettingRule::Future,
    ];

    /// The stable code (`range`, `host`, …), as serialised.
    pub fn code(self) -> &'static str {
        match self {
            SettingRule::Required => "required",
            SettingRule::Range => "range",
            SettingRule::AtLeast => "at_least",
            SettingRule::AtMost => "at_most",
            SettingRule::Number => "number",
            SettingRule::Host => "host",
            SettingRule::Choice => "choice",
            SettingRule::MtlsNotOffered => "mtls_not_offered",
            SettingRule::TimeZone => "time_zone",
            SettingRule::Language => "language",
            SettingRule::Vendor => "vendor",
            SettingRule::FirmwareLine => "firmware_line",
            SettingRule::FirmwareModel => "firmware_model",
            SettingRule::FirmwareVersion => "firmware_version",
            SettingRule::FirmwareUrl => "firmware_url",
            SettingRule::FirmwareDuplicate => "firmware_duplicate",
            SettingRule::FirmwareVersionForm => "firmware_version_form",
            SettingRule::VendorKeyLine => "vendor_key_line",
            SettingRule::KeyName => "key_name",
            SettingRule::YealinkKeyName => "yealink_key_name",
            SettingRule::SnomKeyName => "snom_key_name",
            SettingRule::KeyValue => "key_value",
            SettingRule::ControlCharacter => "control_character",
            SettingRule::Charset => "charset",
            SettingRule::NullValue => "null_value",
            SettingRule::Text => "text",
            SettingRule::Cidr => "cidr",
            SettingRule::Rename => "rename",
            SettingRule::Empty => "empty",
            SettingRule::TooLong => "too_long",
            SettingRule::Email => "email",
            SettingRule::PhoneNumber => "phone_number",
            SettingRule::Future => "future",
        }
    }
}

/// A refused setting: which one, which rule, and what the rule names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The setting as the API names it: `sip_port`, `firmware[1]`, `lines[0].password`,
    /// `vendor_keys.yealink.features.dnd.enable`, `enrolment_networks[2]`.
    pub field: String,
    /// The rule broken.
    pub rule: SettingRule,
    /// The smallest value accepted, for `range` and `at_least`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    /// The largest value (or number of items) accepted, for `range` and `at_most`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// The vendor and models whose limit this is (`gigaset N510/N720`), for vendors' rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<&'static str>,
    /// The character refused, for `charset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub character: Option<char>,
}

impl Violation {
    /// `field` breaks `rule`; bounds, models and character are added with the setters.
    pub fn new(field: impl Into<String>, rule: SettingRule) -> Self {
        Self {
            field: field.into(),
            rule,
            min: None,
            max: None,
            models: None,
            character: None,
        }
    }

    /// With the smallest value accepted.
    pub fn min(mut self, min: u32) -> Self {
        self.min = Some(min);
        self
    }

    /// With the largest value accepted.
    pub fn max(mut self, max: u32) -> Self {
        self.max = Some(max);
        self
    }

    /// With the vendor and models whose limit this is.
    pub fn models(mut self, models: &'static str) -> Self {
        self.models = Some(models);
        self
    }

    /// With the character refused.
    pub fn character(mut self, c: char) -> Self {
        self.character = Some(c);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_what_serde_writes_and_all_are_listed() {
        // ALL lists the variants in declaration order, the last one last: a variant added at
        // the end and left out of ALL fails here (and, with ALL, the portal's test of texts).
        assert_eq!(SettingRule::ALL.len(), SettingRule::Future as usize + 1);
        for (i, rule) in SettingRule::ALL.into_iter().enumerate() {
            assert_eq!(rule as usize, i, "{rule:?}");
        }
        let mut seen = std::collections::HashSet::new();
        for rule in SettingRule::ALL {
            assert!(seen.insert(rule.code()), "duplicate {rule:?}");
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::Value::from(rule.code())
            );
        }
    }

    #[test]
    fn a_violation_serialises_only_what_its_rule_names() {
        let v = Violation::new("sip_port", SettingRule::Range)
            .min(1)
            .max(65535);
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!({"field": "sip_port", "rule": "range", "min": 1, "max": 65535})
        );
    }
}
