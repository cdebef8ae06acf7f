//! Languages and time zones as tenants name them: ISO 639-1 codes and IANA (Olson) names.
//!
//! The lists here are the languages and zones zerotouch accepts; how each vendor spells them
//! (and whether it can) is each vendor's business (`crate::vendors`), checked when a tenant is
//! saved. Knows nothing of templates or requests.

use std::fmt;

/// A display language phones can be set to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Language(&'static LanguageRow);

/// One accepted language.
#[derive(PartialEq, Eq, Debug)]
pub struct LanguageRow {
    /// ISO 639-1 code, as tenants write it.
    pub code: &'static str,
    /// Its English name, for people.
    pub name: &'static str,
}

const LANGUAGES: &[LanguageRow] = &[
    LanguageRow {
        code: "en",
        name: "English",
    },
    LanguageRow {
        code: "de",
        name: "German",
    },
    LanguageRow {
        code: "es",
        name: "Spanish",
    },
    LanguageRow {
        code: "it",
        name: "Italian",
    },
    LanguageRow {
        code: "fr",
        name: "French",
    },
    LanguageRow {
        code: "nl",
        name: "Dutch",
    },
    LanguageRow {
        code: "tr",
        name: "Turkish",
    },
    LanguageRow {
        code: "pl",
        name: "Polish",
    },
    LanguageRow {
        code: "pt",
        name: "Portuguese",
    },
    LanguageRow {
        code: "ru",
        name: "Russian",
    },
    LanguageRow {
        code: "cs",
        name: "Czech",
    },
    LanguageRow {
        code: "sv",
        name: "Swedish",
    },
    LanguageRow {
        code: "da",
        name: "Danish",
    },
    LanguageRow {
        code: "no",
        name: "Norwegian",
    },
    LanguageRow {
        code: "fi",
        name: "Finnish",
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

    /// Every accepted language.
    pub fn all() -> impl Iterator<Item = Language> {
        LANGUAGES.iter().map(Language)
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

    /// The ISO code.
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// The English name.
    pub fn name(&self) -> &'static str {
        self.0.name
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

/// One accepted time zone.
#[derive(PartialEq, Eq, Debug)]
pub struct ZoneRow {
    /// IANA name, as tenants write it.
    pub iana: &'static str,
    /// Standard (winter) offset from UTC, in minutes.
    pub offset_minutes: i16,
    /// Its daylight-saving rule today.
    pub dst: DaylightSaving,
}

/// The daylight-saving rules of the accepted zones, as they stand since the last change of
/// law in each (Brazil 2019, Mexico 2022, Turkey 2016, Russia 2014 have none).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DaylightSaving {
    /// No daylight saving.
    None,
    /// European Union: last Sunday of March to last Sunday of October, at 01:00 UTC.
    Europe,
    /// United States and Canada: second Sunday of March to first Sunday of November, at 02:00
    /// local time.
    NorthAmerica,
    /// New South Wales, Victoria, ACT: first Sunday of October to first Sunday of April, at
    /// 02:00 standard time.
    AustraliaSouthEast,
    /// New Zealand: last Sunday of September to first Sunday of April, at 02:00 standard time.
    NewZealand,
}

/// When a daylight-saving period starts or ends: a weekday of a week of a month, at a wall-clock
/// hour (the clock as it reads just before the change).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Transition {
    /// Month, 1–12.
    pub month: u8,
    /// Week of the month, 1–4, or 5 for the last.
    pub week: u8,
    /// Day of the week, 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    /// Wall-clock hour, 0–23.
    pub hour: u8,
}

/// A daylight-saving period: its start and end and how far clocks move.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DstPeriod {
    /// Clocks go forward.
    pub start: Transition,
    /// Clocks go back.
    pub end: Transition,
    /// By how much, in minutes.
    pub save_minutes: u16,
}

const ZONES: &[ZoneRow] = &[
    ZoneRow {
        iana: "Etc/UTC",
        offset_minutes: 0,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Europe/London",
        offset_minutes: 0,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Dublin",
        offset_minutes: 0,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Lisbon",
        offset_minutes: 0,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Paris",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Berlin",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Madrid",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Rome",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Amsterdam",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Brussels",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Luxembourg",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Vienna",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Zurich",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Stockholm",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Oslo",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Copenhagen",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Warsaw",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Prague",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Budapest",
        offset_minutes: 60,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Helsinki",
        offset_minutes: 120,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Athens",
        offset_minutes: 120,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Bucharest",
        offset_minutes: 120,
        dst: DaylightSaving::Europe,
    },
    ZoneRow {
        iana: "Europe/Istanbul",
        offset_minutes: 180,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Europe/Moscow",
        offset_minutes: 180,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "America/New_York",
        offset_minutes: -300,
        dst: DaylightSaving::NorthAmerica,
    },
    ZoneRow {
        iana: "America/Chicago",
        offset_minutes: -360,
        dst: DaylightSaving::NorthAmerica,
    },
    ZoneRow {
        iana: "America/Denver",
        offset_minutes: -420,
        dst: DaylightSaving::NorthAmerica,
    },
    ZoneRow {
        iana: "America/Los_Angeles",
        offset_minutes: -480,
        dst: DaylightSaving::NorthAmerica,
    },
    ZoneRow {
        iana: "America/Toronto",
        offset_minutes: -300,
        dst: DaylightSaving::NorthAmerica,
    },
    ZoneRow {
        iana: "America/Vancouver",
        offset_minutes: -480,
        dst: DaylightSaving::NorthAmerica,
    },
    ZoneRow {
        iana: "America/Sao_Paulo",
        offset_minutes: -180,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "America/Mexico_City",
        offset_minutes: -360,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Africa/Johannesburg",
        offset_minutes: 120,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Asia/Dubai",
        offset_minutes: 240,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Asia/Kolkata",
        offset_minutes: 330,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Asia/Singapore",
        offset_minutes: 480,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Asia/Shanghai",
        offset_minutes: 480,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Asia/Hong_Kong",
        offset_minutes: 480,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Asia/Tokyo",
        offset_minutes: 540,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Australia/Perth",
        offset_minutes: 480,
        dst: DaylightSaving::None,
    },
    ZoneRow {
        iana: "Australia/Sydney",
        offset_minutes: 600,
        dst: DaylightSaving::AustraliaSouthEast,
    },
    ZoneRow {
        iana: "Pacific/Auckland",
        offset_minutes: 720,
        dst: DaylightSaving::NewZealand,
    },
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

    /// Every accepted time zone.
    pub fn all() -> impl Iterator<Item = TimeZone> {
        ZONES.iter().map(TimeZone)
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.iana
    }

    /// Standard (winter) offset from UTC, in minutes.
    pub fn offset_minutes(&self) -> i16 {
        self.0.offset_minutes
    }

    /// Its daylight-saving rule.
    pub fn dst(&self) -> DaylightSaving {
        self.0.dst
    }

    /// Its daylight-saving period, in local wall-clock terms; `None` where clocks do not change.
    pub fn dst_period(&self) -> Option<DstPeriod> {
        let at = |month, week, hour| Transition {
            month,
            week,
            weekday: 7,
            hour,
        };
        let hour = |minutes: i16| u8::try_from(minutes.div_euclid(60).rem_euclid(24)).unwrap_or(0);
        let (start, end) = match self.0.dst {
            DaylightSaving::None => return None,
            // 01:00 UTC, read on the local standard clock (start) and summer clock (end).
            DaylightSaving::Europe => (
                at(3, 5, hour(60 + self.0.offset_minutes)),
                at(10, 5, hour(120 + self.0.offset_minutes)),
            ),
            DaylightSaving::NorthAmerica => (at(3, 2, 2), at(11, 1, 2)),
            DaylightSaving::AustraliaSouthEast => (at(10, 1, 2), at(4, 1, 3)),
            DaylightSaving::NewZealand => (at(9, 5, 2), at(4, 1, 3)),
        };
        Some(DstPeriod {
            start,
            end,
            save_minutes: 60,
        })
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
        assert_eq!(Language::parse("fr").unwrap().name(), "French");
        assert_eq!(Language::parse("FR-ca").unwrap().code(), "fr");
        assert_eq!(Language::parse("de_DE").unwrap().code(), "de");
        assert!(Language::parse("xx")
            .unwrap_err()
            .to_string()
            .contains("fr"));
    }

    #[test]
    fn daylight_saving_periods_in_local_time() {
        let paris = TimeZone::parse("Europe/Paris")
            .unwrap()
            .dst_period()
            .unwrap();
        assert_eq!(
            (paris.start.month, paris.start.week, paris.start.hour),
            (3, 5, 2)
        );
        assert_eq!(
            (paris.end.month, paris.end.week, paris.end.hour),
            (10, 5, 3)
        );
        let london = TimeZone::parse("Europe/London")
            .unwrap()
            .dst_period()
            .unwrap();
        assert_eq!((london.start.hour, london.end.hour), (1, 2));
        let athens = TimeZone::parse("Europe/Athens")
            .unwrap()
            .dst_period()
            .unwrap();
        assert_eq!((athens.start.hour, athens.end.hour), (3, 4));
        let ny = TimeZone::parse("America/New_York")
            .unwrap()
            .dst_period()
            .unwrap();
        assert_eq!(
            (ny.start.month, ny.start.week, ny.end.month, ny.end.week),
            (3, 2, 11, 1)
        );
        assert!(TimeZone::parse("Asia/Tokyo")
            .unwrap()
            .dst_period()
            .is_none());
        assert!(TimeZone::parse("Europe/Istanbul")
            .unwrap()
            .dst_period()
            .is_none());
    }

    #[test]
    fn zones_by_name() {
        let paris = TimeZone::parse("Europe/Paris").unwrap();
        assert_eq!(paris.offset_minutes(), 60);
        assert_eq!(
            TimeZone::parse("Asia/Kolkata").unwrap().offset_minutes(),
            330
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
