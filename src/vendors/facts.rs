//! What each vendor's config sets, per model family: the facts README's table "What each
//! vendor's config sets" is generated from (a test regenerates it and checks every key named
//! here against the golden files, so the table can neither drift nor name a key never written).

/// One row of the table: a tenant or device setting.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Setting {
    /// Registrar host and port.
    Registrar,
    /// SIP transport.
    Transport,
    /// Registration expiry.
    Expiry,
    /// NAT keep-alive.
    KeepAlive,
    /// SIP accounts.
    Accounts,
    /// NTP server, time zone and daylight saving.
    Time,
    /// Display language and call-progress tones.
    LanguageAndTones,
    /// Where and how often the phone re-checks its configuration.
    Recheck,
    /// Firmware (only when the tenant's policy names the phone's model).
    Firmware,
    /// The phone's own provisioning credentials, handed out once.
    Credentials,
}

impl Setting {
    /// Every row, in table order.
    pub const ALL: [Setting; 10] = [
        Setting::Registrar,
        Setting::Transport,
        Setting::Expiry,
        Setting::KeepAlive,
        Setting::Accounts,
        Setting::Time,
        Setting::LanguageAndTones,
        Setting::Recheck,
        Setting::Firmware,
        Setting::Credentials,
    ];

    /// The row's heading.
    pub const fn label(self) -> &'static str {
        match self {
            Setting::Registrar => "registrar, port",
            Setting::Transport => "transport",
            Setting::Expiry => "expiry",
            Setting::KeepAlive => "NAT keep-alive",
            Setting::Accounts => "accounts",
            Setting::Time => "NTP, time zone",
            Setting::LanguageAndTones => "language, tones",
            Setting::Recheck => "re-check",
            Setting::Firmware => "firmware",
            Setting::Credentials => "provisioning credentials",
        }
    }
}

/// What one model family's config sets.
#[derive(Debug)]
pub struct FamilyFacts {
    /// Column heading (`Yealink`, `Gigaset N510`).
    pub name: &'static str,
    /// The golden file whose content shows these keys (`yealink/device.cfg`).
    pub golden: &'static str,
    /// One cell per setting: the keys in backticks, then notes.
    pub cells: &'static [(Setting, &'static str)],
}

/// The Markdown table of every vendor's families.
pub fn table() -> String {
    let families: Vec<&FamilyFacts> = crate::domain::Vendor::ALL
        .into_iter()
        .flat_map(|v| super::profile(v).facts())
        .collect();
    let mut out = String::from("| setting |");
    for f in &families {
        out.push_str(&format!(" {} |", f.name));
    }
    out.push_str("\n| --- |");
    out.push_str(&" --- |".repeat(families.len()));
    out.push('\n');
    for setting in Setting::ALL {
        out.push_str(&format!("| {} |", setting.label()));
        for f in &families {
            let cell = f
                .cells
                .iter()
                .find(|(s, _)| *s == setting)
                .map_or("not written", |(_, c)| c);
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

/// The keys a cell names: its backticked words that look like setting names (a trailing
/// `.*` stands for the keys under it; `…` abbreviations are skipped).
pub fn keys(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter(|k| (k.contains('.') || k.contains('_')) && !k.starts_with('…'))
        .map(|k| k.trim_end_matches(".*"))
}
