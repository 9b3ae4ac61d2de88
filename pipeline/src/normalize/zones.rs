//! Time zones for timestamps written without one (classic syslog, ISO-8601 without an offset): they are read
//! in their tenant's zone (default UTC), which the off-hours risk modifier follows too.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, LocalResult, Offset, TimeZone};
use chrono_tz::Tz;

/// The zone each tenant's wall-clock timestamps are written in: one default, and per tenant. UTC unless set.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    default: Option<Tz>,
    tenants: HashMap<String, Tz>,
}

impl Zones {
    /// Zones from IANA names (`Europe/Berlin`); `default` covers tenants not in `tenants`. Names a zone it
    /// does not know.
    pub fn new(default: &str, tenants: &BTreeMap<String, String>) -> Result<Self, String> {
        let zone = |name: &str, what: &str| {
            name.parse::<Tz>().map_err(|_| {
                format!("{what} {name:?} is not an IANA time zone name (e.g. \"Europe/Berlin\", \"UTC\")")
            })
        };
        let utc_as_none = |tz: Tz| (tz != Tz::UTC).then_some(tz);
        Ok(Self {
            default: utc_as_none(zone(default, "time zone")?),
            tenants: tenants
                .iter()
                .map(|(t, name)| {
                    Ok((
                        t.clone(),
                        zone(name, &format!("time zone of tenant {t:?}:"))?,
                    ))
                })
                .collect::<Result<_, String>>()?,
        })
    }

    /// The zone of `tenant`'s wall-clock timestamps; `None` for UTC (nothing to convert).
    pub fn of(&self, tenant: &str) -> Option<Tz> {
        if self.tenants.is_empty() {
            return self.default;
        }
        match self.tenants.get(tenant) {
            Some(&tz) => (tz != Tz::UTC).then_some(tz),
            None => self.default,
        }
    }
}

/// The UTC time (epoch µs) of a wall-clock time in `tz`, given as if that wall clock were UTC. In the hour
/// repeated when clocks go back, the first of the two (the earlier instant); in the hour skipped when they go
/// forward (which a zone-aware clock never writes), the offset in force at that instant read as UTC.
pub fn local_to_utc(tz: Tz, local_us: i64) -> i64 {
    let Some(naive) = DateTime::from_timestamp(local_us.div_euclid(1_000_000), 0) else {
        return local_us;
    };
    let naive = naive.naive_utc();
    let offset = match tz.offset_from_local_datetime(&naive) {
        LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => o,
        LocalResult::None => tz.offset_from_utc_datetime(&naive),
    };
    local_us - i64::from(offset.fix().local_minus_utc()) * 1_000_000
}

/// `tz`'s offset from UTC at `utc_us`, minutes.
pub fn offset_minutes(tz: Tz, utc_us: i64) -> i32 {
    DateTime::from_timestamp(utc_us.div_euclid(1_000_000), 0).map_or(0, |t| {
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
            / 60
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentra_schemas::time::parse_iso8601_prefix;

    fn at(s: &str) -> i64 {
        parse_iso8601_prefix(s.as_bytes()).unwrap().0
    }

    #[test]
    fn wall_clock_times_become_utc_with_the_offset_in_force() {
        // (zone, wall clock written as if UTC, the UTC instant it is)
        let cases = [
            // Winter (CET, +1) and summer (CEST, +2).
            (
                "Europe/Berlin",
                "2026-01-15T10:00:00Z",
                "2026-01-15T09:00:00Z",
            ),
            (
                "Europe/Berlin",
                "2026-07-15T10:00:00.5Z",
                "2026-07-15T08:00:00.5Z",
            ),
            // 2026-10-25 02:30 happens twice in Berlin: the first, still summer time.
            (
                "Europe/Berlin",
                "2026-10-25T02:30:00Z",
                "2026-10-25T00:30:00Z",
            ),
            // 2026-03-29 02:30 does not exist in Berlin; read with the offset in force at 02:30 UTC (+2).
            (
                "Europe/Berlin",
                "2026-03-29T02:30:00Z",
                "2026-03-29T00:30:00Z",
            ),
            (
                "America/New_York",
                "2026-01-15T22:00:00Z",
                "2026-01-16T03:00:00Z",
            ),
        ];
        for (zone, wall, utc) in cases {
            let tz: Tz = zone.parse().unwrap();
            assert_eq!(local_to_utc(tz, at(wall)), at(utc), "{zone} {wall}");
        }
        let new_york: Tz = "America/New_York".parse().unwrap();
        assert_eq!(offset_minutes(new_york, at("2026-07-01T00:00:00Z")), -240);
        assert_eq!(
            offset_minutes(Tz::Europe__Berlin, at("2026-01-01T00:00:00Z")),
            60
        );
    }

    #[test]
    fn tenants_get_their_zone_or_the_default_and_unknown_names_are_refused() {
        let tenants = BTreeMap::from([
            ("acme".to_owned(), "Asia/Tokyo".to_owned()),
            ("initech".to_owned(), "UTC".to_owned()),
        ]);
        let zones = Zones::new("Europe/Berlin", &tenants).unwrap();
        assert_eq!(zones.of("acme"), Some(Tz::Asia__Tokyo));
        assert_eq!(zones.of("initech"), None);
        assert_eq!(zones.of("globex"), Some(Tz::Europe__Berlin));
        assert_eq!(Zones::new("UTC", &BTreeMap::new()).unwrap().of("x"), None);
        let e = Zones::new("Mars/Olympus", &BTreeMap::new()).unwrap_err();
        assert!(e.contains("Mars/Olympus"), "{e}");
        let bad = BTreeMap::from([("acme".to_owned(), "CEST+2".to_owned())]);
        let e = Zones::new("UTC", &bad).unwrap_err();
        assert!(e.contains("acme") && e.contains("CEST+2"), "{e}");
    }
}
