//! Yealink's per-model common-file codes: `y000000000<code>.cfg`. A table, never derived from
//! the firmware number (the T4xS models share firmware 66.x but use codes 65–68). Sources:
//! `vendor-templates/yealink/SOURCES.md`, "Model codes".

/// Model → common-file code.
pub const MODEL_CODES: &[(&str, u16)] = &[
    ("T46G", 28),
    ("T42G", 29),
    ("T48G", 35),
    ("T41P", 36),
    ("W52P", 25),
    ("W56P", 25),
    ("T21P", 52),
    ("T23P", 44),
    ("T23G", 44),
    ("T27P", 45),
    ("T29G", 46),
    ("CP860", 37),
    ("CP920", 78),
    ("CP960", 73),
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

/// The common-file code of a model named as in its User-Agent (`T46S`, `SIP-T46S`,
/// `T19P_E2`, `W80` for the W80B/W80DM family), if the model is in the table.
pub fn code(model: &str) -> Option<u16> {
    let model = model
        .strip_prefix("SIP-")
        .or_else(|| model.strip_prefix("sip-"))
        .unwrap_or(model);
    // Hardware revisions (`T19P_E2`) share their model's code.
    let base = model.split('_').next().unwrap_or(model);
    MODEL_CODES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(base))
        .map(|&(_, code)| code)
        .or_else(|| {
            // DECT families append a letter for the base variant (W80B, W80DM).
            MODEL_CODES
                .iter()
                .filter(|(name, _)| name.starts_with('W'))
                .find(|(name, _)| {
                    base.len() > name.len()
                        && base.is_char_boundary(name.len())
                        && base[..name.len()].eq_ignore_ascii_case(name)
                        && !base.as_bytes()[name.len()].is_ascii_digit()
                })
                .map(|&(_, code)| code)
        })
}

/// The first model listed for a common-file code (`66` → `T46S`), when the path is all we know.
pub fn model_for_code(code: u16) -> Option<&'static str> {
    MODEL_CODES
        .iter()
        .find(|&&(_, c)| c == code)
        .map(|&(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_the_table() {
        assert_eq!(code("T46S"), Some(66));
        assert_eq!(code("SIP-T46S"), Some(66));
        assert_eq!(code("t41s"), Some(68));
        assert_eq!(code("T19P_E2"), Some(53));
        assert_eq!(code("W80B"), Some(175));
        assert_eq!(code("W60B"), Some(77));
        assert_eq!(code("T30"), None);
        assert_eq!(code("W8˘"), None);
        assert_eq!(model_for_code(66), Some("T46S"));
        assert_eq!(model_for_code(999), None);
    }

    #[test]
    fn every_code_is_in_sources() {
        let listed = crate::vendors::source_list(
            include_str!("../../../vendor-templates/yealink/SOURCES.md"),
            "model codes",
        );
        for (model, code) in MODEL_CODES {
            let line = format!("{model} {code:03}");
            assert!(listed.contains(&line), "{line}");
        }
    }

    #[test]
    fn codes_are_unique_per_model_name() {
        let mut names: Vec<_> = MODEL_CODES.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MODEL_CODES.len());
    }
}
