//! The domain: MACs, vendors, tenants and their settings, devices and claims.
//!
//! Pure types and parsing. Nothing here knows HTTP, Tera, SQL, metrics or async; all of it is
//! unit-testable without a runtime.

pub mod clock;
pub mod credentials;
pub mod device;
pub mod locale;
pub mod mac;
pub mod network;
pub mod partner;
pub mod sighting;
pub mod tenant;
pub mod vendor;
pub mod violation;

pub use credentials::{ClaimSecret, Ha1, PhoneCredentials};
pub use device::{
    check_claimable, ClaimCode, ClaimRefusal, ClaimableDevice, DeviceSettings,
    InvalidDeviceSetting, LineAccount, Secret,
};
pub use locale::{Language, TimeZone};
pub use mac::{Mac, MacError, Oui};
pub use network::{Network, NetworkError};
pub use partner::{CustomerFields, CustomerId, PartnerId};
pub use tenant::{
    FirmwareRule, Host, InvalidSetting, PhoneAuth, TenantName, TenantSettings, Transport,
};
pub use vendor::{OuiTable, Vendor, VendorSet};
pub use violation::{SettingRule, Violation};
