//! Partners (resellers) and their customers (the businesses that own tenant instances).
//!
//! Owns what a valid partner name and customer record are. Knows nothing of tokens, storage
//! or HTTP.

use serde::{Deserialize, Serialize};

use super::violation::{SettingRule, Violation};

/// A partner's row id.
pub type PartnerId = i64;

/// A customer's row id.
pub type CustomerId = i64;

/// A field outside what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// The field.
    pub field: &'static str,
    /// Why.
    pub reason: &'static str,
    /// The rule broken (with its bound in [`InvalidField::max`]).
    pub rule: SettingRule,
    /// The most characters accepted, for [`SettingRule::TooLong`].
    pub max: Option<u32>,
}

impl InvalidField {
    fn new(field: &'static str, rule: SettingRule, reason: &'static str) -> Self {
        Self {
            field,
            reason,
            rule,
            max: None,
        }
    }

    /// The field and rule, for clients that explain a refusal in their own words.
    pub fn violation(&self) -> Violation {
        let v = Violation::new(self.field, self.rule);
        match self.max {
            Some(max) => v.max(max),
            None => v,
        }
    }
}

/// Checks a free-text field: 1..=max characters, no control characters.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), InvalidField> {
    if value.trim().is_empty() {
        return Err(InvalidField::new(
            field,
            SettingRule::Empty,
            "must not be empty",
        ));
    }
    if value.chars().count() > max {
        return Err(InvalidField {
            // Field limits are a few hundred characters.
            max: u32::try_from(max).ok(),
            ..InvalidField::new(field, SettingRule::TooLong, "too long")
        });
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidField::new(
            field,
            SettingRule::ControlCharacter,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A partner name: 1-100 printable characters.
pub fn check_partner_name(name: &str) -> Result<(), InvalidField> {
    check_text("name", name, 100)
}

/// A customer as a partner describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerFields {
    /// Company name (required).
    pub company: String,
    /// Contact person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl CustomerFields {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check_text("company", &self.company, 200)?;
        for (field, value, max) in [
            ("contact", &self.contact, 200),
            ("address", &self.address, 500),
            ("phone", &self.phone, 50),
            ("email", &self.email, 254),
        ] {
            if let Some(v) = value {
                check_text(field, v, max)?;
            }
        }
        if let Some(email) = &self.email {
            let ok = email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
            });
            if !ok {
                return Err(InvalidField::new(
                    "email",
                    SettingRule::Email,
                    "not an e-mail address",
                ));
            }
        }
        if let Some(phone) = &self.phone {
            if !phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-()./".contains(c))
            {
                return Err(InvalidField::new(
                    "phone",
                    SettingRule::PhoneNumber,
                    "digits, spaces and + - ( ) . / only",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_fields() {
        let mut c = CustomerFields {
            company: "Acme".into(),
            email: Some("it@acme.example".into()),
            phone: Some("+33 1 23 45 67 89".into()),
            ..CustomerFields::default()
        };
        assert_eq!(c.validate(), Ok(()));
        c.email = Some("nope".into());
        assert_eq!(c.validate().unwrap_err().field, "email");
        c.email = None;
        c.company = " ".into();
        assert_eq!(c.validate().unwrap_err().field, "company");
        c.company = "Acme\nInc".into();
        assert!(c.validate().is_err());
    }
}
