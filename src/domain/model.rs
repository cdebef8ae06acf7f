//! Phone models: Yealink's per-model file codes and Gigaset's two profile families.
//!
//! Tables from the vendors' documents (vendors.md). Knows nothing of requests or rendering.

/// Yealink's per-model common file is `y000000000<code>.cfg`; the code comes from this table,
/// never from the firmware number (T4xS models share firmware 66.x but use codes 65–68).
pub const YEALINK_MODEL_CODES: &[(&str, u16)] = &[
    ("T46G", 28),
    ("T42G", 29),
    ("T48G", 35),
    ("T41P", 36),
    ("W52P", 25),
    ("W56P", 25),
    ("T21P", 52),
    ("T19P", 53),
    ("T40P", 54),
    ("T56A", 56),
    ("T58A", 58),
    ("T58V", 58),
    ("T48S", 65),
    ("T46S", 66),
    ("T42S", 67),
    ("T41S", 68),
    ("T27G", 69),
    ("T54S", 70),
    ("T52S", 74),
    ("T40G", 76),
    ("W60B", 77),
    ("T53", 95),
    ("T53W", 95),
    ("T54W", 96),
    ("T57W", 97),
    ("T43U", 107),
    ("T46U", 108),
    ("T48U", 109),
    ("T42U", 116),
    ("T31G", 123),
    ("T33G", 124),
    ("W70B", 146),
    ("T58W", 150),
    ("T34W", 171),
    ("T31W", 172),
    ("T44W", 174),
    ("W80", 175),
    ("T73W", 183),
    ("T74W", 184),
    ("T73U", 186),
    ("T74U", 187),
    ("T77U", 188),
    ("T88V", 192),
    ("T88W", 192),
    ("T85W", 196),
    ("T87W", 197),
];

/// The common-file code of a Yealink model named as in its User-Agent (`T46S`, `SIP-T46S`,
/// `T19P_E2`, `W80` for the W80B/W80DM family), if the model is in the table.
pub fn yealink_code(model: &str) -> Option<u16> {
    let model = model
        .strip_prefix("SIP-")
        .or_else(|| model.strip_prefix("sip-"))
        .unwrap_or(model);
    // Hardware revisions (`T19P_E2`) share their model's code.
    let base = model.split('_').next().unwrap_or(model);
    YEALINK_MODEL_CODES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(base))
        .map(|&(_, code)| code)
        .or_else(|| {
            // DECT families append a letter for the base variant (W80B, W80DM).
            YEALINK_MODEL_CODES
                .iter()
                .filter(|(name, _)| name.starts_with('W'))
                .find(|(name, _)| {
                    base.len() > name.len()
                        && base[..name.len()].eq_ignore_ascii_case(name)
                        && !base.as_bytes()[name.len()].is_ascii_digit()
                })
                .map(|&(_, code)| code)
        })
}

/// The first model listed for a common-file code (`066` → `T46S`), when the path is all we know.
pub fn yealink_model_for_code(code: u16) -> Option<&'static str> {
    YEALINK_MODEL_CODES
        .iter()
        .find(|&&(_, c)| c == code)
        .map(|&(name, _)| name)
}

/// The two Gigaset profile formats.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum GigasetFamily {
    /// N510 IP PRO and N720 DM/IP PRO: ISO-8859-1 `<ProviderFrame>` with `SYMB_ITEM`s.
    ProviderFrame,
    /// N670/N870/N870E/N610/N770 and later: UTF-8 `<provisioning>` with `<nvm><param>`s.
    Nvm,
}

impl GigasetFamily {
    /// The family of a model as the User-Agent names it (`N510 IP PRO`, `Gigaset N870 IP PRO`,
    /// `N720-DM-PRO`). Models other than N510/N720 use the current `<provisioning>` format,
    /// which is also the answer when the model is unknown: it is what current bases speak.
    pub fn of_model(model: Option<&str>) -> Self {
        let Some(model) = model else {
            return GigasetFamily::Nvm;
        };
        let model = model.trim_start();
        let model = strip_prefix_ignore_case(model, "gigaset").unwrap_or(model);
        let model = model.trim_start_matches([' ', '-']);
        let legacy = ["N510", "N720", "N300"]
            .iter()
            // `get`, not `[..4]`: the model comes from a stranger's User-Agent, and its fourth
            // byte may fall inside a multi-byte character.
            .any(|m| {
                model
                    .get(..4)
                    .is_some_and(|head| head.eq_ignore_ascii_case(m))
            });
        if legacy {
            GigasetFamily::ProviderFrame
        } else {
            GigasetFamily::Nvm
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s.is_char_boundary(prefix.len()))
        .then(|| s.split_at(prefix.len()))
        .filter(|(head, _)| head.eq_ignore_ascii_case(prefix))
        .map(|(_, tail)| tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yealink_codes_come_from_the_table() {
        assert_eq!(yealink_code("T46S"), Some(66));
        assert_eq!(yealink_code("SIP-T46S"), Some(66));
        assert_eq!(yealink_code("t41s"), Some(68));
        assert_eq!(yealink_code("T19P_E2"), Some(53));
        assert_eq!(yealink_code("W80B"), Some(175));
        assert_eq!(yealink_code("W60B"), Some(77));
        assert_eq!(yealink_code("T30"), None);
        assert_eq!(yealink_model_for_code(66), Some("T46S"));
        assert_eq!(yealink_model_for_code(999), None);
    }

    #[test]
    fn codes_are_unique_per_model_name() {
        let mut names: Vec<_> = YEALINK_MODEL_CODES.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), YEALINK_MODEL_CODES.len());
    }

    #[test]
    fn gigaset_family_of_a_model_with_multibyte_characters() {
        // Found by the `handle` fuzz target: a User-Agent `Gigaset]g ˘:/…` made the model
        // `]g ˘:`, whose fourth byte is inside `˘`; slicing it panicked.
        assert_eq!(GigasetFamily::of_model(Some("]g ˘:")), GigasetFamily::Nvm);
        assert_eq!(
            GigasetFamily::of_model(Some("Gigaset N5˘")),
            GigasetFamily::Nvm
        );
        assert_eq!(GigasetFamily::of_model(Some("é")), GigasetFamily::Nvm);
        assert_eq!(
            GigasetFamily::of_model(Some("N510é IP PRO")),
            GigasetFamily::ProviderFrame
        );
    }

    #[test]
    fn gigaset_families() {
        use GigasetFamily::*;
        assert_eq!(GigasetFamily::of_model(Some("N510 IP PRO")), ProviderFrame);
        assert_eq!(
            GigasetFamily::of_model(Some("Gigaset N720 DM PRO")),
            ProviderFrame
        );
        assert_eq!(GigasetFamily::of_model(Some("N720-DM-PRO")), ProviderFrame);
        assert_eq!(GigasetFamily::of_model(Some("Gigaset N870 IP PRO")), Nvm);
        assert_eq!(GigasetFamily::of_model(Some("N670 IP PRO")), Nvm);
        assert_eq!(GigasetFamily::of_model(None), Nvm);
        assert_eq!(GigasetFamily::of_model(Some("Ä")), Nvm);
    }
}
