//! Gigaset's profile families, chosen by model.

use crate::vendors::spelling::strip_prefix_ci;

/// The profile formats Gigaset devices read.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Family {
    /// N510 IP PRO (and the C610 IP / N300 of the same platform): ISO-8859-1
    /// `<ProviderFrame>` with `BS_IP_Data1` keys, six accounts.
    N510,
    /// N720 DM/IP PRO: `<ProviderFrame>` with the `BS_VOIP_Data` / `BS_IP_Data` keys, one
    /// account per handset slot — in every firmware (build 108 added handset IPUIs, not a new
    /// scheme; SOURCES.md).
    N720,
    /// N530/N610/N670/N770/N870/N870E and an unknown model: UTF-8 `<provisioning>`.
    Nx70,
    /// Maxwell desk phones: a format of their own that zerotouch does not write.
    Maxwell,
}

impl Family {
    /// The family of a model as the User-Agent names it (`N510 IP PRO`, `Gigaset N870 IP
    /// PRO`, `N720-DM-PRO`, `Maxwell 3 PRO`). An unknown model is taken for an Nx70, the
    /// format current bases speak.
    pub fn of(model: Option<&str>) -> Self {
        let Some(model) = model else {
            return Family::Nx70;
        };
        let model = model.trim_start();
        let model = strip_prefix_ci(model, "gigaset").unwrap_or(model);
        let model = model.trim_start_matches([' ', '-']);
        // `get`, not `[..4]`: the model comes from a stranger's User-Agent, and its fourth
        // byte may fall inside a multi-byte character.
        let head = model.get(..4).unwrap_or("");
        let is = |m: &str| head.eq_ignore_ascii_case(m);
        if is("N510") || is("N300") || is("C610") {
            Family::N510
        } else if is("N720") {
            Family::N720
        } else if strip_prefix_ci(model, "maxwell").is_some() {
            Family::Maxwell
        } else {
            Family::Nx70
        }
    }

    /// The models a refusal names.
    pub const fn models(self) -> &'static str {
        match self {
            Family::N510 => "gigaset N510",
            Family::N720 => "gigaset N720",
            Family::Nx70 => "gigaset Nx70",
            Family::Maxwell => "gigaset Maxwell",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Family::*;

    #[test]
    fn families_by_model() {
        assert_eq!(Family::of(Some("N510 IP PRO")), N510);
        assert_eq!(Family::of(Some("Gigaset N720 DM PRO")), N720);
        assert_eq!(Family::of(Some("N720-DM-PRO")), N720);
        assert_eq!(Family::of(Some("N720 IP PRO")), N720);
        assert_eq!(Family::of(Some("Gigaset N870 IP PRO")), Nx70);
        assert_eq!(Family::of(Some("N670 IP PRO")), Nx70);
        assert_eq!(Family::of(Some("Maxwell 3 PRO")), Maxwell);
        assert_eq!(Family::of(None), Nx70);
        assert_eq!(Family::of(Some("Ä")), Nx70);
    }

    #[test]
    fn a_model_with_multibyte_characters() {
        // Found by the `handle` fuzz target: a User-Agent `Gigaset]g ˘:/…` made the model
        // `]g ˘:`, whose fourth byte is inside `˘`; slicing it panicked.
        assert_eq!(Family::of(Some("]g ˘:")), Nx70);
        assert_eq!(Family::of(Some("Gigaset N5˘")), Nx70);
        assert_eq!(Family::of(Some("é")), Nx70);
        assert_eq!(Family::of(Some("N510é IP PRO")), N510);
    }
}
