//! A preview of what a device will be served, for the partner who owns it: the phone's own
//! recognition, template choice and render, with the access decision left out and every
//! secret masked. A preview is not a fetch: it reads the registry and the templates in use,
//! and touches no render cache, sighting, throttle, credential or phone metric.
//!
//! Knows nothing of who asks (the partner API checks that the device is the caller's).

use bytes::Bytes;

use super::origin::{directory_of, Origin};
use super::{render, template_for, Provisioner};
use crate::domain::{DeviceSettings, Mac, PhoneAuth, Secret, Vendor};
use crate::vendors::{self, FileKind};

/// What stands in the preview for every SIP password.
pub const MASKED: &str = "********";

/// What stands for the provisioning credentials a phone is handed at its first fetch.
pub const ISSUED_AT_FIRST_FETCH: &str = "<issued-at-first-fetch>";

/// The file a vendor's phone asks for itself, the one that carries its accounts.
pub fn device_file(vendor: Vendor, mac: Mac) -> String {
    match vendor {
        Vendor::Yealink => format!("/{}.cfg", mac.to_lower_hex()),
        _ => format!("/{}.xml", mac.to_upper_hex()),
    }
}

/// The answer to a preview.
#[derive(Debug)]
pub enum Preview {
    /// The config, as the phone would receive it but for the masked secrets.
    Config {
        /// The path previewed.
        path: String,
        /// Its media type.
        content_type: &'static str,
        /// The rendered file.
        body: Bytes,
        /// Whether the file would carry provisioning credentials (shown as placeholders).
        credentials: bool,
    },
    /// No such device in the registry.
    UnknownDevice,
    /// The path is not a file this device's phone asks for, or one the server never serves.
    NotServed(String),
    /// The phone (by its model or firmware) cannot be given its tenant's or device's settings.
    Unsupported(String),
    /// The template could not be rendered (the server logs why).
    RenderFailed,
}

impl Provisioner {
    /// What `mac`'s phone would be served for `path` (its per-device file when `None`) with
    /// `user_agent`, its secrets masked. `phones_origin` stands for the Host header a phone
    /// would send, when no `public_url` is configured.
    pub fn preview(
        &self,
        mac: Mac,
        path: Option<&str>,
        user_agent: Option<&str>,
        phones_origin: &str,
    ) -> Preview {
        let Some((device, tenant)) = self.registry.lookup(mac) else {
            return Preview::UnknownDevice;
        };
        let path = match path {
            None => device_file(device.vendor, mac),
            Some(p) if p.starts_with('/') => p.to_owned(),
            Some(p) => format!("/{p}"),
        };
        let agent = user_agent.and_then(vendors::parse_user_agent);
        let Some(request) = vendors::recognise_parsed(&path, agent, &self.ouis) else {
            return Preview::NotServed(format!(
                "{path} is not a file any supported phone asks for"
            ));
        };
        if request.vendor != device.vendor {
            return Preview::NotServed(format!(
                "{path} is a {} file and this device is a {}",
                request.vendor, device.vendor
            ));
        }
        if !request.file.is_served() {
            return Preview::NotServed(format!(
                "{path} is a file phones may ask for and are answered 404 (not found)"
            ));
        }
        if request.mac().is_some_and(|m| m != mac) {
            return Preview::NotServed(format!(
                "{path} (with this User-Agent) names another device"
            ));
        }
        let template = match template_for(&request) {
            Ok(t) => t,
            Err(refusal) => {
                return Preview::Unsupported(format!("{} {}", refusal.models, refusal.reason))
            }
        };
        let origin =
            Origin::Configured(self.settings.public_url.as_deref().unwrap_or(phones_origin));
        let provisioning_url = origin.url(directory_of(&path));
        let masked = device.settings.as_deref().map(masked);
        // Credentials go into the device file that hands them out: the next one a device
        // gets when its tenant issues per-device credentials and none are bound yet.
        let credentials = request.file == FileKind::Device
            && tenant.settings.phone_auth != PhoneAuth::Mac
            && device.claim_secret.is_none()
            && device.credentials.as_ref().is_none_or(|c| c.pending);
        let rendered = self.renderer().render(
            request.vendor,
            template,
            &render::Input {
                phone: render::Phone {
                    mac,
                    model: request.model(),
                    firmware: request.firmware(),
                },
                tenant: &tenant.name,
                settings: &tenant.settings,
                device: masked.as_ref(),
                provisioning_url: &provisioning_url,
                credentials: credentials.then_some(render::Credentials {
                    username: ISSUED_AT_FIRST_FETCH,
                    password: ISSUED_AT_FIRST_FETCH,
                }),
            },
        );
        match rendered {
            Ok(body) => Preview::Config {
                path,
                content_type: template.content_type(),
                body,
                credentials,
            },
            Err(render::RenderError::Unsupported(refusal)) => {
                Preview::Unsupported(format!("{} {}", refusal.models, refusal.reason))
            }
            Err(e) => {
                tracing::error!(%mac, tenant = %tenant.name, error = %e, "cannot render a config preview");
                Preview::RenderFailed
            }
        }
    }
}

/// The device's settings with every SIP password replaced by [`MASKED`].
fn masked(settings: &DeviceSettings) -> DeviceSettings {
    let mut copy = settings.clone();
    for line in &mut copy.lines {
        line.password = Secret::new(MASKED);
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LineAccount;

    #[test]
    fn every_password_is_masked_and_nothing_else_changes() {
        let line = |user: &str, password: &str| LineAccount {
            user: user.into(),
            auth_user: None,
            password: Secret::new(password),
            display_name: None,
        };
        let settings = DeviceSettings {
            display_name: Some("Reception".into()),
            lines: vec![line("201", "s3cret"), line("202", "other")],
            enrolment_networks: Vec::new(),
        };
        let copy = masked(&settings);
        assert!(copy.lines.iter().all(|l| l.password.expose() == MASKED));
        assert_eq!(copy.lines[1].user, "202");
        assert_eq!(copy.display_name, settings.display_name);
        assert_eq!(settings.lines[0].password.expose(), "s3cret");
    }

    #[test]
    fn the_device_file_is_the_vendors_own_name() {
        let mac = Mac::parse("80:5e:c0:12:34:56").expect("valid");
        assert_eq!(device_file(Vendor::Yealink, mac), "/805ec0123456.cfg");
        assert_eq!(device_file(Vendor::Snom, mac), "/805EC0123456.xml");
    }
}
