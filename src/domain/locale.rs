//! Languages and time zones, and how each vendor spells them.
//!
//! A tenant names a language by its ISO 639-1 code and a time zone by its IANA (Olson) name;
//! each vendor wants its own words for both. These tables are the one place that knows them.
//! Knows nothing of templates or requests.

use std::fmt;

/// A display language phones can be set to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Language(&'static LanguageRow);

/// How each vendor names one language.
#[derive(PartialEq, Eq, Debug, serde::Serialize)]
pub struct LanguageRow {
    /// ISO 639-1 code, as tenants write it.
    pub code: &'static str,
    /// Yealink `lang.gui` / `lang.wui` value.
    pub yealink: &'static str,
    /// Snom `language` / `web_language` value.
    pub snom: &'static str,
    /// Gigaset N510/N720 `ucI_HTTPLANGUAGE` code (hex), where the vendor documents one.
    pub gigaset_provider_frame: Option<&'static str>,
}

const LANGUAGES: &[LanguageRow] = &[
    LanguageRow {
        code: "en",
        yealink: "English",
        snom: "English",
        gigaset_provider_frame: Some("0x1"),
    },
    LanguageRow {
        code: "de",
        yealink: "German",
        snom: "Deutsch",
        gigaset_provider_frame: Some("0x2"),
    },
    LanguageRow {
        code: "es",
        yealink: "Spanish",
        snom: "Español",
        gigaset_provider_frame: Some("0x4"),
    },
    LanguageRow {
        code: "it",
        yealink: "Italian",
        snom: "Italiano",
        gigaset_provider_frame: Some("0x7"),
    },
    LanguageRow {
        code: "fr",
        yealink: "French",
        snom: "Français",
        gigaset_provider_frame: Some("0x9"),
    },
    LanguageRow {
        code: "nl",
        yealink: "Dutch",
        snom: "Nederlands",
        gigaset_provider_frame: Some("0xa"),
    },
    LanguageRow {
        code: "tr",
        yealink: "Turkish",
        snom: "Türkçe",
        gigaset_provider_frame: Some("0x10"),
    },
    LanguageRow {
        code: "pl",
        yealink: "Polish",
        snom: "Polski",
        gigaset_provider_frame: Some("0x11"),
    },
    LanguageRow {
        code: "pt",
        yealink: "Portuguese",
        snom: "Português",
        gigaset_provider_frame: None,
    },
    LanguageRow {
        code: "ru",
        yealink: "Russian",
        snom: "Russian",
        gigaset_provider_frame: None,
    },
    LanguageRow {
        code: "cs",
        yealink: "Czech",
        snom: "Cestina",
        gigaset_provider_frame: None,
    },
    LanguageRow {
        code: "sv",
        yealink: "Swedish",
        snom: "Svenska",
        gigaset_provider_frame: None,
    },
    LanguageRow {
        code: "da",
        yealink: "Danish",
        snom: "Dansk",
        gigaset_provider_frame: None,
    },
    LanguageRow {
        code: "no",
        yealink: "Norwegian",
        snom: "Norsk",
        gigaset_provider_frame: None,
    },
    LanguageRow {
        code: "fi",
        yealink: "Finnish",
        snom: "Suomi",
        gigaset_provider_frame: None,
    },
];

/// A language code that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported language {given:?}; supported: {supported}")]
pub struct UnknownLanguage {
    /// What was given.
    pub given: String,
    /// The codes that would be accepted.
    pub supported: String,
}

impl Language {
    /// English, the default.
    pub fn english() -> Self {
        Language(&LANGUAGES[0])
    }

    /// Looks up an ISO 639-1 code (case-insensitive; a region suffix like `fr-CA` or `fr_FR` is ignored).
    pub fn parse(code: &str) -> Result<Self, UnknownLanguage> {
        let base = code.trim().split(['-', '_']).next().unwrap_or("");
        LANGUAGES
            .iter()
            .find(|row| row.code.eq_ignore_ascii_case(base))
            .map(Language)
            .ok_or_else(|| UnknownLanguage {
                given: code.to_owned(),
                supported: LANGUAGES
                    .iter()
                    .map(|r| r.code)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The vendor spellings.
    pub fn row(&self) -> &'static LanguageRow {
        self.0
    }

    /// The ISO code.
    pub fn code(&self) -> &'static str {
        self.0.code
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

/// A time zone phones can be set to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimeZone(&'static ZoneRow);

/// How each vendor names one time zone, and the country whose call-progress tones go with it.
#[derive(PartialEq, Eq, Debug)]
pub struct ZoneRow {
    /// IANA name, as tenants write it (also Gigaset Nx70's `DmGlobal.0.TimeZone` value).
    pub iana: &'static str,
    /// Standard offset from UTC, in minutes.
    pub offset_minutes: i16,
    /// Yealink `local_time.time_zone_name`.
    pub yealink_name: &'static str,
    /// Snom `timezone` code.
    pub snom: &'static str,
    /// Yealink `voice.tone.country`.
    pub yealink_tones: &'static str,
    /// Snom `tone_scheme`.
    pub snom_tones: &'static str,
}

macro_rules! zone {
    ($iana:literal, $off:expr, $yl:literal, $snom:literal, $ylt:literal, $st:literal) => {
        ZoneRow {
            iana: $iana,
            offset_minutes: $off,
            yealink_name: $yl,
            snom: $snom,
            yealink_tones: $ylt,
            snom_tones: $st,
        }
    };
}

const ZONES: &[ZoneRow] = &[
    zone!("Etc/UTC", 0, "UTC", "GMT-0", "Custom", "GBR"),
    zone!(
        "Europe/London",
        0,
        "United Kingdom(London)",
        "GBR-0",
        "Great Britain",
        "GBR"
    ),
    zone!(
        "Europe/Dublin",
        0,
        "Ireland(Dublin)",
        "IRL-0",
        "Great Britain",
        "GBR"
    ),
    zone!(
        "Europe/Lisbon",
        0,
        "Portugal(Lisboa)",
        "POR-0",
        "Portugal",
        "POR"
    ),
    zone!(
        "Europe/Paris",
        60,
        "France(Paris)",
        "FRA+1",
        "France",
        "FRA"
    ),
    zone!(
        "Europe/Berlin",
        60,
        "Germany(Berlin)",
        "GER+1",
        "Germany",
        "GER"
    ),
    zone!(
        "Europe/Madrid",
        60,
        "Spain(Madrid)",
        "ESP+1",
        "Spain",
        "ESP"
    ),
    zone!("Europe/Rome", 60, "Italy(Rome)", "ITA+1", "Italy", "ITA"),
    zone!(
        "Europe/Amsterdam",
        60,
        "Netherlands(Amsterdam)",
        "NLD+1",
        "Netherlands",
        "NLD"
    ),
    zone!(
        "Europe/Brussels",
        60,
        "Belgium(Brussels)",
        "BEL+1",
        "Belgium",
        "BEL"
    ),
    zone!(
        "Europe/Luxembourg",
        60,
        "Luxembourg(Luxembourg)",
        "LUX+1",
        "Belgium",
        "BEL"
    ),
    zone!(
        "Europe/Vienna",
        60,
        "Austria(Vienna)",
        "AUT+1",
        "Austria",
        "AUT"
    ),
    zone!(
        "Europe/Zurich",
        60,
        "Switzerland(Bern)",
        "SUI+1",
        "Switzerland",
        "SWI"
    ),
    zone!(
        "Europe/Stockholm",
        60,
        "Sweden(Stockholm)",
        "SWE+1",
        "Sweden",
        "SWE"
    ),
    zone!("Europe/Oslo", 60, "Norway(Oslo)", "NOR+1", "Norway", "NOR"),
    zone!(
        "Europe/Copenhagen",
        60,
        "Denmark(Kopenhagen)",
        "DEN+1",
        "Denmark",
        "DNK"
    ),
    zone!(
        "Europe/Warsaw",
        60,
        "Poland(Warsaw)",
        "POL+1",
        "Poland",
        "POL"
    ),
    zone!(
        "Europe/Prague",
        60,
        "Czech Republic(Prague)",
        "CZE+1",
        "Czech",
        "CZE"
    ),
    zone!(
        "Europe/Budapest",
        60,
        "Hungary(Budapest)",
        "HUN+1",
        "Hungary",
        "HUN"
    ),
    zone!(
        "Europe/Helsinki",
        120,
        "Finland(Helsinki)",
        "FIN+2",
        "Finland",
        "FIN"
    ),
    zone!(
        "Europe/Athens",
        120,
        "Greece(Athens)",
        "GRE+2",
        "Greece",
        "GRE"
    ),
    zone!(
        "Europe/Bucharest",
        120,
        "Romania(Bucharest)",
        "ROU+2",
        "Custom",
        "GBR"
    ),
    zone!(
        "Europe/Istanbul",
        180,
        "Turkey(Ankara)",
        "TUR+3",
        "Turkey",
        "TUR"
    ),
    zone!(
        "Europe/Moscow",
        180,
        "Russia(Moscow)",
        "RUS+3",
        "Russia",
        "RUS"
    ),
    zone!(
        "America/New_York",
        -300,
        "United States-Eastern Time",
        "USA-5",
        "United States",
        "USA"
    ),
    zone!(
        "America/Chicago",
        -360,
        "United States-Central Time",
        "USA-6",
        "United States",
        "USA"
    ),
    zone!(
        "America/Denver",
        -420,
        "United States-Mountain Time",
        "USA-7",
        "United States",
        "USA"
    ),
    zone!(
        "America/Los_Angeles",
        -480,
        "United States-Pacific Time",
        "USA-8",
        "United States",
        "USA"
    ),
    zone!(
        "America/Toronto",
        -300,
        "Canada(Eastern Time)",
        "CAN-5",
        "United States",
        "USA"
    ),
    zone!(
        "America/Vancouver",
        -480,
        "Canada(Pacific Time)",
        "CAN-8",
        "United States",
        "USA"
    ),
    zone!(
        "America/Sao_Paulo",
        -180,
        "Brazil(Sao Paulo)",
        "BRA-3",
        "Brazil",
        "BRA"
    ),
    zone!(
        "America/Mexico_City",
        -360,
        "Mexico(Mexico City)",
        "MEX-6",
        "Mexico",
        "MEX"
    ),
    zone!(
        "Africa/Johannesburg",
        120,
        "South Africa(Pretoria)",
        "RSA+2",
        "South Africa",
        "ZAF"
    ),
    zone!(
        "Asia/Dubai",
        240,
        "United Arab Emirates(Abu Dhabi)",
        "UAE+4",
        "United Arab Emirates",
        "GBR"
    ),
    zone!(
        "Asia/Kolkata",
        330,
        "India(Calcutta)",
        "IND+5.5",
        "India",
        "IND"
    ),
    zone!(
        "Asia/Singapore",
        480,
        "Singapore(Singapore)",
        "SIN+8",
        "Singapore",
        "GBR"
    ),
    zone!(
        "Asia/Shanghai",
        480,
        "China(Beijing)",
        "CHN+8",
        "China",
        "CHN"
    ),
    zone!(
        "Asia/Hong_Kong",
        480,
        "Hong Kong",
        "HKG+8",
        "Hong Kong",
        "GBR"
    ),
    zone!("Asia/Tokyo", 540, "Japan(Tokyo)", "JAP+9", "Japan", "JPN"),
    zone!(
        "Australia/Perth",
        480,
        "Australia(Perth)",
        "AUS+8",
        "Australia",
        "AUS"
    ),
    zone!(
        "Australia/Sydney",
        600,
        "Australia(Sydney,Melbourne,Canberra)",
        "AUS+10",
        "Australia",
        "AUS"
    ),
    zone!(
        "Pacific/Auckland",
        720,
        "New Zealand(Wellington,Auckland)",
        "NZL+12",
        "New Zealand",
        "NZL"
    ),
];

/// A time zone name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported time zone {given:?}; supported IANA names: {supported}")]
pub struct UnknownTimeZone {
    /// What was given.
    pub given: String,
    /// The names that would be accepted.
    pub supported: String,
}

impl TimeZone {
    /// UTC, the default.
    pub fn utc() -> Self {
        TimeZone(&ZONES[0])
    }

    /// Looks up an IANA name (exact, case-insensitive; `UTC` is accepted for `Etc/UTC`).
    pub fn parse(name: &str) -> Result<Self, UnknownTimeZone> {
        let name = name.trim();
        let name = if name.eq_ignore_ascii_case("UTC") {
            "Etc/UTC"
        } else {
            name
        };
        ZONES
            .iter()
            .find(|z| z.iana.eq_ignore_ascii_case(name))
            .map(TimeZone)
            .ok_or_else(|| UnknownTimeZone {
                given: name.to_owned(),
                supported: ZONES.iter().map(|z| z.iana).collect::<Vec<_>>().join(", "),
            })
    }

    /// The vendor spellings.
    pub fn row(&self) -> &'static ZoneRow {
        self.0
    }

    /// Yealink's `local_time.time_zone` form of the standard offset: `+1`, `-5`, `+5:30`.
    pub fn yealink_offset(&self) -> String {
        let m = self.0.offset_minutes;
        let sign = if m < 0 { '-' } else { '+' };
        let (h, rest) = (m.abs() / 60, m.abs() % 60);
        if rest == 0 {
            format!("{sign}{h}")
        } else {
            format!("{sign}{h}:{rest:02}")
        }
    }

    /// Gigaset N510/N720's `uiI_TIME_TIMEZONE` code for the standard offset, where documented.
    pub fn gigaset_provider_frame_code(&self) -> Option<&'static str> {
        const CODES: &[(i16, &str)] = &[
            (-720, "0x00"),
            (-660, "0x01"),
            (-600, "0x02"),
            (-540, "0x03"),
            (-480, "0x04"),
            (-420, "0x07"),
            (-360, "0x09"),
            (-300, "0x0d"),
            (-240, "0x0f"),
            (-180, "0x15"),
            (-120, "0x16"),
            (-60, "0x18"),
            (0, "0x1a"),
            (60, "0x1b"),
            (120, "0x20"),
            (180, "0x28"),
            (240, "0x2b"),
            (300, "0x2e"),
            (360, "0x33"),
            (420, "0x37"),
            (480, "0x3a"),
            (540, "0x3d"),
            (600, "0x43"),
        ];
        CODES
            .iter()
            .find(|(m, _)| *m == self.0.offset_minutes)
            .map(|(_, c)| *c)
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.iana)
    }
}

macro_rules! string_serde {
    ($ty:ty, $parse:path, $show:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($show(self))
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(Language, Language::parse, |l: &Language| l.0.code);
string_serde!(TimeZone, TimeZone::parse, |z: &TimeZone| z.0.iana);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_by_code() {
        assert_eq!(Language::parse("fr").unwrap().row().yealink, "French");
        assert_eq!(Language::parse("FR-ca").unwrap().row().snom, "Français");
        assert_eq!(Language::parse("de_DE").unwrap().code(), "de");
        assert!(Language::parse("xx")
            .unwrap_err()
            .to_string()
            .contains("fr"));
    }

    #[test]
    fn zones_by_name() {
        let paris = TimeZone::parse("Europe/Paris").unwrap();
        assert_eq!(paris.yealink_offset(), "+1");
        assert_eq!(paris.row().snom, "FRA+1");
        assert_eq!(paris.gigaset_provider_frame_code(), Some("0x1b"));
        assert_eq!(
            TimeZone::parse("Asia/Kolkata").unwrap().yealink_offset(),
            "+5:30"
        );
        assert_eq!(
            TimeZone::parse("America/New_York")
                .unwrap()
                .yealink_offset(),
            "-5"
        );
        assert_eq!(TimeZone::parse("utc").unwrap(), TimeZone::utc());
        assert!(TimeZone::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn zone_names_are_unique() {
        let mut names: Vec<_> = ZONES.iter().map(|z| z.iana).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ZONES.len());
    }
}
