//! Event time: epoch microseconds, their RFC 3339 text and civil dates, and parsing ISO-8601 timestamps.

/// The current time, epoch microseconds (0 if the clock is before 1970).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Formats microseconds since the epoch as RFC 3339 UTC with microseconds, e.g.
/// `2026-03-14T00:00:00.000000Z`.
pub fn format_rfc3339_us(us: i64) -> String {
    match rfc3339_us_bytes(us) {
        Some(b) => String::from_utf8(b.to_vec()).expect("digits and ASCII punctuation"),
        None => format_rfc3339_us_slow(us),
    }
}

/// [`format_rfc3339_us`]'s text in a stack buffer, for years 0 to 9999 (`None` outside). Digits are
/// written by hand: `format!` with seven padded numbers cost ~3,000 instructions, and every signal
/// formats several times.
fn rfc3339_us_bytes(us: i64) -> Option<[u8; 27]> {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000) as u32;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&y) {
        return None;
    }
    let sod = secs.rem_euclid(86_400) as u32;
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |end: usize, mut v: u32, width: usize| {
        for i in (end - width..end).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(4, y as u32, 4);
    put(7, m, 2);
    put(10, d, 2);
    put(13, sod / 3600, 2);
    put(16, sod / 60 % 60, 2);
    put(19, sod % 60, 2);
    put(26, micros, 6);
    Some(b)
}

/// The general form, for years a 4-digit field cannot hold.
fn format_rfc3339_us_slow(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// Parses an ISO-8601 / RFC 3339 timestamp prefix of `s`:
/// `YYYY-MM-DD[T| ]hh:mm:ss[.fraction][Z|±hh:mm|±hhmm]`, with no offset meaning UTC.
///
/// Returns microseconds since the epoch (UTC) and the number of bytes consumed, or `None` if `s` does
/// not start with such a timestamp. Fractions beyond microseconds are truncated.
pub fn parse_iso8601_prefix(s: &[u8]) -> Option<(i64, usize)> {
    fn num(s: &[u8], at: usize, len: usize) -> Option<u32> {
        let d = s.get(at..at + len)?;
        let mut v = 0u32;
        for &c in d {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    }
    let year = num(s, 0, 4)?;
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') || !matches!(s.get(10), Some(b'T' | b' '))
    {
        return None;
    }
    let (month, day) = (num(s, 5, 2)?, num(s, 8, 2)?);
    if s.get(13) != Some(&b':') || s.get(16) != Some(&b':') {
        return None;
    }
    let (h, mi, sec) = (num(s, 11, 2)?, num(s, 14, 2)?, num(s, 17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if s.get(i) == Some(&b'.') || s.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let mut offset_secs = 0i64;
    match s.get(i) {
        Some(b'Z' | b'z') => i += 1,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(s, i + 1, 2)?;
            let (om, used) = if s.get(i + 3) == Some(&b':') {
                (num(s, i + 4, 2)?, 6)
            } else if let Some(m) = num(s, i + 3, 2) {
                (m, 5)
            } else {
                (0, 3)
            };
            if oh > 23 || om > 59 {
                return None;
            }
            offset_secs = i64::from(oh * 3600 + om * 60) * if sign == b'-' { -1 } else { 1 };
            i += used;
        }
        _ => {}
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_secs;
    Some((secs * 1_000_000 + micros, i))
}

/// Serde adapter: an `i64` of epoch microseconds as an RFC 3339 UTC string.
pub mod rfc3339_us {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `us` as `YYYY-MM-DDThh:mm:ss.ffffffZ`.
    pub fn serialize<S: Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
        match super::rfc3339_us_bytes(*us) {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).expect("ASCII")),
            None => s.serialize_str(&super::format_rfc3339_us_slow(*us)),
        }
    }

    /// Reads any timestamp [`super::parse_iso8601_prefix`] accepts, in full.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        match super::parse_iso8601_prefix(s.as_bytes()) {
            Some((us, n)) if n == s.len() => Ok(us),
            _ => Err(serde::de::Error::custom(format!(
                "not an RFC 3339 timestamp: {s:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 19_000, 20_526, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2026, 3, 14), 20_526);
        assert_eq!(
            format_rfc3339_us(1_773_446_400_000_001),
            "2026-03-14T00:00:00.000001Z"
        );
    }

    #[test]
    fn fast_formatting_matches_the_general_form() {
        let day = 86_400_000_000i64;
        let mut checked = 0;
        for base in [
            -62_167_219_200_000_000, // 0000-01-01
            -1,
            0,
            951_782_400_000_000,     // 2000-02-29
            1_773_446_400_000_000,   // 2026-03-14
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // 10000-01-01, the general form
            -62_167_219_200_000_001, // before year 0, the general form
        ] {
            for step in [
                0,
                1,
                999_999,
                1_000_000,
                59_999_999,
                3_599_999_999,
                day - 1,
                day,
                40 * day,
            ] {
                for us in [base + step, base - step] {
                    assert_eq!(format_rfc3339_us(us), format_rfc3339_us_slow(us), "{us}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100);
        assert_eq!(format_rfc3339_us(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339_us_bytes(253_402_300_800_000_000), None);
    }

    #[test]
    fn parses_iso_variants() {
        let base = 1_773_446_400_000_000i64; // 2026-03-14T00:00:00Z
        let cases: &[(&str, i64, usize)] = &[
            ("2026-03-14T00:00:00Z rest", base, 20),
            ("2026-03-14T00:00:00 host", base, 19),
            ("2026-03-14 01:00:00.123456+0100 h", base + 123_456, 31),
            ("2026-03-14T01:00:00.5+01:00 h", base + 500_000, 27),
            ("2026-03-13T19:00:00.123456789-05:00", base + 123_456, 35),
        ];
        for (s, us, n) in cases {
            assert_eq!(parse_iso8601_prefix(s.as_bytes()), Some((*us, *n)), "{s}");
        }
        for bad in [
            "2026-13-14T00:00:00Z",
            "Mar 14 00:00:00",
            "2026-03-14T0:00:00",
            "2026-03-14T00:00:00.",
        ] {
            assert_eq!(parse_iso8601_prefix(bad.as_bytes()), None, "{bad}");
        }
    }
}
