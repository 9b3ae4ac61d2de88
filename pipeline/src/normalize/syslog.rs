//! Syslog line framing: the timestamp, host, program and pid in front of a program's message.
//!
//! Three line shapes are understood, each optionally preceded by a `<PRI>` field:
//! - classic BSD / RFC 3164 file format: `Mar 14 00:00:00 host prog[pid]: message` (no year; see
//!   [`YearResolver`]);
//! - RFC 5424: `<34>1 2026-03-14T00:00:00.123Z host prog pid msgid [sd] message`;
//! - ISO-8601 prefixed: `2026-03-14T00:00:00.123456+00:00 host prog[pid]: message` and
//!   `2026-03-14 00:00:00.123456+0000 host prog[pid]: message` (rsyslog's high-precision format and its kin).

use sentra_schemas::time::{days_from_civil, parse_iso8601_prefix};

use super::{find_byte, split_byte};

/// The framing of one syslog line; the strings borrow from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogLine<'a> {
    /// Event time, epoch microseconds UTC.
    pub timestamp_us: i64,
    /// The reporting host.
    pub host: &'a str,
    /// The program (syslog tag / RFC 5424 APP-NAME), empty when the line has none.
    pub program: &'a str,
    /// The module that wrote the line for the program, from the legacy PAM tag `sshd(pam_unix)[pid]:`
    /// (`pam_unix`); empty otherwise.
    pub module: &'a str,
    /// The process id, when given and numeric.
    pub pid: Option<u32>,
    /// The program's message.
    pub message: &'a str,
    /// The timestamp carried no zone (classic syslog, or ISO-8601 without an offset): `timestamp_us` is the
    /// writer's wall clock read as UTC.
    pub zoneless: bool,
}

/// How classic syslog timestamps, which carry no year, get one.
///
/// - `Fixed(year)`: the first line is in `year`; a jump from a late month back to an early one
///   (December → January) moves to the next year, so a file spanning New Year stays in order.
/// - `Archive`: input read after the fact, from its start: the first line takes the latest year that does
///   not put it after the reference time (the moment it was read), and later lines follow it as with `Fixed`.
///   A replay of a whole file anchors on its last line instead (see [`archive_start_year`]) and reads it
///   with `Fixed`.
/// - `Infer`: live input: each line takes the most recent year that does not put it more than 7 days after
///   the reference time (the Kafka message timestamp). A line read in January that says December lands in
///   the previous year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearPolicy {
    /// Start in this year.
    Fixed(i32),
    /// The first line in the latest year that keeps it in the past; the rest in order after it.
    Archive,
    /// Each line on its own, from the reference time.
    Infer,
}

/// Assigns years to classic syslog timestamps for one input stream (see [`YearPolicy`]).
#[derive(Debug, Clone)]
pub struct YearResolver {
    policy: YearPolicy,
    /// The year of the stream's lines so far (`Fixed`, and `Archive` once its first line is read).
    year: Option<i64>,
    last_month: u32,
}

const INFER_FUTURE_SLACK_US: i64 = 7 * 86_400 * 1_000_000;

/// How far past the moment an archive is read its newest line may seem: classic timestamps are the writer's
/// wall clock, and the furthest east a zone reaches is UTC+14; an hour more for a clock running ahead.
pub const ARCHIVE_FUTURE_SLACK_US: i64 = 15 * 3_600 * 1_000_000;

/// A classic timestamp's place in its year: (month, day, seconds of day).
pub type MonthDayTime = (u32, u32, u32);

/// Saturating: a hostile reference time (a Kafka timestamp near the end of `i64`) must not overflow.
fn at_year(year: i64, (month, day, sod): MonthDayTime) -> i64 {
    (days_from_civil(year, month, day) * 86_400 + i64::from(sod)).saturating_mul(1_000_000)
}

/// The latest of the reference year and the ones beside it that puts `stamp` no later than `limit_us`.
fn latest_year_by(stamp: MonthDayTime, limit_us: i64) -> i64 {
    let ref_year = sentra_schemas::time::civil_from_days(limit_us.div_euclid(86_400_000_000)).0;
    // The next year first: on 31 December a line already in January (a clock or zone ahead).
    [ref_year + 1, ref_year]
        .into_iter()
        .find(|&y| at_year(y, stamp) <= limit_us)
        .unwrap_or(ref_year - 1)
}

/// The year of an archive's first classic line, given its first and last ones, so that the whole file lies
/// before `now_us` (plus [`ARCHIVE_FUTURE_SLACK_US`]): the last line takes the latest year that keeps it in
/// the past, and the first is a year earlier when the file crosses a New Year (its last line falls earlier
/// in the year than its first). A file spanning more than a year cannot be told from one that does not;
/// `--year` settles it.
pub fn archive_start_year(first: MonthDayTime, last: MonthDayTime, now_us: i64) -> i32 {
    let last_year = latest_year_by(last, now_us.saturating_add(ARCHIVE_FUTURE_SLACK_US));
    let crosses_new_year = last < first;
    (last_year - i64::from(crosses_new_year)) as i32
}

/// The month, day and time of a classic syslog line's timestamp (after an optional `<PRI>`), if it has one.
pub fn classic_stamp(line: &[u8]) -> Option<MonthDayTime> {
    let b = match line.strip_prefix(b"<") {
        Some(rest) => {
            let end = rest.iter().take(4).position(|&c| c == b'>')?;
            if end == 0 || !rest[..end].iter().all(u8::is_ascii_digit) {
                return None;
            }
            &rest[end + 1..]
        }
        None => line,
    };
    parse_classic_stamp(b).map(|(month, day, sod, _)| (month, day, sod))
}

impl YearResolver {
    /// A resolver for one stream.
    pub fn new(policy: YearPolicy) -> Self {
        let year = match policy {
            YearPolicy::Fixed(y) => Some(i64::from(y)),
            YearPolicy::Archive | YearPolicy::Infer => None,
        };
        Self {
            policy,
            year,
            last_month: 0,
        }
    }

    fn resolve(&mut self, month: u32, day: u32, sod: u32, reference_us: i64) -> i64 {
        let stamp = (month, day, sod);
        if self.policy == YearPolicy::Infer {
            return at_year(
                latest_year_by(stamp, reference_us.saturating_add(INFER_FUTURE_SLACK_US)),
                stamp,
            );
        }
        let mut year = *self.year.get_or_insert_with(|| {
            latest_year_by(stamp, reference_us.saturating_add(ARCHIVE_FUTURE_SLACK_US))
        });
        if self.last_month != 0 && month + 6 <= self.last_month {
            year += 1;
            self.year = Some(year);
            self.last_month = month;
        } else if self.last_month != 0 && month >= self.last_month + 6 {
            // a straggler from the previous year, after the rollover
            year -= 1;
        } else {
            self.last_month = month;
        }
        at_year(year, stamp)
    }
}

/// Parses the framing of a syslog line. `reference_us` anchors year inference (see [`YearPolicy`]).
/// Returns `None` when the line has no recognizable timestamp.
pub fn parse<'a>(
    line: &'a str,
    years: &mut YearResolver,
    reference_us: i64,
) -> Option<SyslogLine<'a>> {
    let mut s = line;
    let mut rfc5424 = false;
    if s.starts_with('<') {
        // Found among the first bytes, not by slicing a `&str`: a multi-byte character there is not a boundary.
        let end = s.bytes().take(6).position(|c| c == b'>')?;
        if end < 2 || !s[1..end].bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s = &s[end + 1..];
        if let Some(rest) = s.strip_prefix("1 ") {
            s = rest;
            rfc5424 = true;
        }
    }
    let b = s.as_bytes();
    let (ts, rest, zoneless) = if let Some((ts, n)) = parse_iso8601_prefix(b) {
        // Past the seconds, a `Z` or a signed offset says which zone; without one it is a wall clock.
        let has_zone = b[19..n]
            .iter()
            .any(|c| matches!(c, b'Z' | b'z' | b'+' | b'-'));
        (ts, after_stamp(s.get(n..)?)?, !has_zone)
    } else if !rfc5424 {
        let (month, day, sod, n) = parse_classic_stamp(b)?;
        (
            years.resolve(month, day, sod, reference_us),
            after_stamp(s.get(n..)?)?,
            true,
        )
    } else {
        return None;
    };
    if rfc5424 {
        parse_5424_tail(ts, rest)
    } else {
        Some(parse_3164_tail(ts, zoneless, rest))
    }
}

/// The text after a timestamp: at least one space, then the rest (some writers put two spaces).
#[inline]
fn after_stamp(s: &str) -> Option<&str> {
    let rest = s.strip_prefix(' ')?;
    Some(match rest.as_bytes().first() {
        Some(b' ') => rest.trim_start_matches(' '),
        _ => rest,
    })
}

/// `Mmm dd hh:mm:ss` (day space- or zero-padded, or a single digit without padding) → (month, day,
/// seconds of day, bytes consumed).
#[inline]
fn parse_classic_stamp(b: &[u8]) -> Option<(u32, u32, u32, usize)> {
    if b.len() >= 15 && b[6] == b' ' {
        let (month, day, sod) = parse_padded_stamp(b)?;
        return Some((month, day, sod, 15));
    }
    // `Mar 4 09:14:01`: an unpadded day is read as if it were space-padded.
    if b.len() >= 14 && b[3] == b' ' && b[4] != b' ' && b[5] == b' ' {
        let mut padded = [b' '; 15];
        padded[..4].copy_from_slice(&b[..4]);
        padded[5..].copy_from_slice(&b[4..14]);
        let (month, day, sod) = parse_padded_stamp(&padded)?;
        return Some((month, day, sod, 14));
    }
    None
}

/// `Mmm dd hh:mm:ss` with the day in two places (space- or zero-padded) → (month, day, seconds of day).
#[inline]
fn parse_padded_stamp(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() < 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let month = match &b[0..3] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let digit = |c: u8| {
        if c.is_ascii_digit() {
            Some(u32::from(c - b'0'))
        } else {
            None
        }
    };
    let day = match b[4] {
        b' ' => digit(b[5])?,
        c => digit(c)? * 10 + digit(b[5])?,
    };
    let two = |i: usize| Some(digit(b[i])? * 10 + digit(b[i + 1])?);
    let (h, m, sec) = (two(7)?, two(10)?, two(13)?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((month, day, h * 3600 + m * 60 + sec))
}

/// `host tag: message` where tag is `prog[pid]` or `prog`. A line without a tag keeps its text as message.
fn parse_3164_tail(timestamp_us: i64, zoneless: bool, s: &str) -> SyslogLine<'_> {
    let (host, rest) = split_byte(s, b' ').unwrap_or((s, ""));
    let tag_end = rest
        .bytes()
        .position(|b| matches!(b, b' ' | b':' | b'['))
        .unwrap_or(rest.len());
    let (program, module) = split_module(&rest[..tag_end]);
    let mut after = &rest[tag_end..];
    let mut pid = None;
    if let Some(p) = after.strip_prefix('[') {
        if let Some(close) = find_byte(p, b']') {
            pid = p[..close].parse().ok();
            after = &p[close + 1..];
        }
    }
    match after.strip_prefix(':') {
        Some(msg) if !program.is_empty() => SyslogLine {
            timestamp_us,
            host,
            program,
            module,
            pid,
            message: msg.strip_prefix(' ').unwrap_or(msg),
            zoneless,
        },
        _ => SyslogLine {
            timestamp_us,
            host,
            program: "",
            module: "",
            pid: None,
            message: rest,
            zoneless,
        },
    }
}

/// `sshd(pam_unix)` → (`sshd`, `pam_unix`), the tag older Linux-PAM wrote for its modules; any other tag
/// is the program with no module.
fn split_module(tag: &str) -> (&str, &str) {
    match tag.strip_suffix(')').and_then(|t| split_byte(t, b'(')) {
        Some((program, module)) if !program.is_empty() && !module.is_empty() => (program, module),
        _ => (tag, ""),
    }
}

/// RFC 5424 after the timestamp: `HOST APP PROCID MSGID SD [MSG]`, `-` meaning nil.
fn parse_5424_tail(timestamp_us: i64, s: &str) -> Option<SyslogLine<'_>> {
    fn nil(v: &str) -> &str {
        if v == "-" {
            ""
        } else {
            v
        }
    }
    let mut parts = s.splitn(4, ' ');
    let host = nil(parts.next()?);
    let program = nil(parts.next()?);
    let pid = parts.next()?.parse().ok();
    let rest = parts.next()?;
    let (_msgid, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let message = skip_structured_data(rest)?;
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Some(SyslogLine {
        timestamp_us,
        host,
        program,
        module: "",
        pid,
        message,
        zoneless: false,
    })
}

/// Skips RFC 5424 STRUCTURED-DATA (`-` or one or more `[id k="v"]` with `\]`, `\"` escapes).
fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut in_quotes = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    let rest = &s[i..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAR14: i64 = 1_773_446_400_000_000; // 2026-03-14T00:00:00Z

    fn fixed() -> YearResolver {
        YearResolver::new(YearPolicy::Fixed(2026))
    }

    #[test]
    fn classic_line() {
        let l = parse(
            "Mar 14 00:00:01 web-1 sshd[42]: Failed password",
            &mut fixed(),
            0,
        )
        .unwrap();
        assert_eq!(
            l,
            SyslogLine {
                timestamp_us: MAR14 + 1_000_000,
                host: "web-1",
                program: "sshd",
                module: "",
                pid: Some(42),
                message: "Failed password",
                zoneless: true,
            }
        );
        let l = parse(
            "<38>Mar  4 10:00:00 h su: (to root) a on pts/0",
            &mut fixed(),
            0,
        )
        .unwrap();
        assert_eq!(
            (l.program, l.pid, l.message),
            ("su", None, "(to root) a on pts/0")
        );
    }

    #[test]
    fn iso_and_5424_lines() {
        let l = parse(
            "2026-03-14T01:00:00.250000+01:00 h sudo[7]: x : y",
            &mut fixed(),
            0,
        )
        .unwrap();
        assert_eq!(
            (l.timestamp_us, l.host, l.program, l.pid, l.message),
            (MAR14 + 250_000, "h", "sudo", Some(7), "x : y")
        );
        let l = parse(
            "2026-03-14 00:00:00.000001+0000 h sshd[1]: m",
            &mut fixed(),
            0,
        )
        .unwrap();
        assert_eq!((l.timestamp_us, l.message), (MAR14 + 1, "m"));
        let l = parse(
            r#"<86>1 2026-03-14T00:00:00Z h sshd 99 - [meta a="x\]y" b="]"][x@1 c="d"] Accepted password"#,
            &mut fixed(),
            0,
        )
        .unwrap();
        assert_eq!(
            (l.timestamp_us, l.program, l.pid, l.message),
            (MAR14, "sshd", Some(99), "Accepted password")
        );
        let l = parse(
            "<86>1 2026-03-14T00:00:00Z h - - - - \u{feff}hello",
            &mut fixed(),
            0,
        )
        .unwrap();
        assert_eq!((l.program, l.pid, l.message), ("", None, "hello"));
    }

    #[test]
    fn unpadded_days_extra_spaces_and_legacy_pam_tags() {
        let mar4 = MAR14 - 10 * 86_400_000_000;
        for line in [
            "Mar 4 00:00:01 h sshd(pam_unix)[19939]: authentication failure;",
            "Mar  4 00:00:01  h sshd(pam_unix)[19939]: authentication failure;",
            "<38>Mar 04 00:00:01 h sshd(pam_unix)[19939]: authentication failure;",
        ] {
            let l = parse(line, &mut fixed(), 0).unwrap();
            assert_eq!(
                (
                    l.timestamp_us,
                    l.host,
                    l.program,
                    l.module,
                    l.pid,
                    l.message
                ),
                (
                    mar4 + 1_000_000,
                    "h",
                    "sshd",
                    "pam_unix",
                    Some(19939),
                    "authentication failure;"
                ),
                "{line}"
            );
        }
        let l = parse("2026-03-14T00:00:00Z  h (sd-pam)[9]: x", &mut fixed(), 0).unwrap();
        assert_eq!((l.host, l.program, l.module), ("h", "(sd-pam)", ""));
        for bad in [
            "Mar 4 0:00:01 h p: m",
            "Mar 44 00:00:01 h p: m",
            "Mar x 00:00:01 h p: m",
        ] {
            assert!(parse(bad, &mut fixed(), 0).is_none(), "{bad}");
        }
    }

    #[test]
    fn no_timestamp_is_none() {
        for bad in [
            "",
            "hello world",
            "Foo 14 00:00:00 h p: m",
            "<x>Mar 14 00:00:00 h p: m",
            "<86>1 garbage",
        ] {
            assert!(parse(bad, &mut fixed(), 0).is_none(), "{bad}");
        }
    }

    #[test]
    fn fixed_year_rolls_over_new_year() {
        let mut y = fixed();
        let dec = parse("Dec 31 23:59:59 h p: m", &mut y, 0)
            .unwrap()
            .timestamp_us;
        let jan = parse("Jan  1 00:00:01 h p: m", &mut y, 0)
            .unwrap()
            .timestamp_us;
        assert_eq!(jan - dec, 2_000_000);
        let straggler = parse("Dec 31 23:59:58 h p: m", &mut y, 0)
            .unwrap()
            .timestamp_us;
        assert_eq!(dec - straggler, 1_000_000);
    }

    #[test]
    fn inferred_year_never_far_in_future() {
        let jan2_2027 = MAR14 + (293 * 86_400) * 1_000_000; // 2027-01-01
        let mut y = YearResolver::new(YearPolicy::Infer);
        let dec = parse("Dec 31 12:00:00 h p: m", &mut y, jan2_2027)
            .unwrap()
            .timestamp_us;
        assert!(dec < jan2_2027 && dec > jan2_2027 - 86_400_000_000);
        let mar = parse("Mar 14 00:00:00 h p: m", &mut y, MAR14 + 1)
            .unwrap()
            .timestamp_us;
        assert_eq!(mar, MAR14);
        // Read on 31 December, a line from a clock already in the new year is in the new year.
        let dec31_2026 = MAR14 + (292 * 86_400) * 1_000_000;
        let jan = parse("Jan  1 08:00:00 h p: m", &mut y, dec31_2026 + 3_600_000_000)
            .unwrap()
            .timestamp_us;
        assert_eq!(jan, dec31_2026 + 86_400_000_000 + 8 * 3_600_000_000);
    }
    #[test]
    fn archive_year_keeps_last_december_in_the_past() {
        let dec4_2026 = MAR14 + (265 * 86_400) * 1_000_000; // 2026-12-04T00:00:00Z
        assert_eq!(
            sentra_schemas::time::format_rfc3339_us(dec4_2026),
            "2026-12-04T00:00:00.000000Z"
        );
        // Read on 4 December, a file of last December: this year's 10 December is ahead, so 2025.
        let first = classic_stamp(b"Dec  1 08:00:00 h p: m").unwrap();
        let last = classic_stamp(b"<38>Dec 31 23:00:00 h p: m").unwrap();
        assert_eq!(archive_start_year(first, last, dec4_2026), 2025);
        // A file of last November to early this December is this year's.
        let first = classic_stamp(b"Nov 20 08:00:00 h p: m").unwrap();
        let last = classic_stamp(b"Dec  3 23:00:00 h p: m").unwrap();
        assert_eq!(archive_start_year(first, last, dec4_2026), 2026);
        // Today's lines written in a zone east of UTC are still this year's.
        let last = classic_stamp(b"Dec  4 13:00:00 h p: m").unwrap();
        assert_eq!(archive_start_year(first, last, dec4_2026), 2026);
        // Crossing New Year: December 2025 to January 2026 starts in 2025.
        let first = classic_stamp(b"Dec 30 08:00:00 h p: m").unwrap();
        let last = classic_stamp(b"Jan  2 23:00:00 h p: m").unwrap();
        assert_eq!(archive_start_year(first, last, dec4_2026), 2025);
        // Not classic syslog.
        assert_eq!(classic_stamp(b"2026-03-14T00:00:00Z h p: m"), None);
        assert_eq!(classic_stamp("<é>Dec  1 08:00:00 h p: m".as_bytes()), None);
    }

    #[test]
    fn archive_policy_anchors_on_the_first_line_and_rolls_over() {
        let dec4_2026 = MAR14 + (265 * 86_400) * 1_000_000;
        let mut y = YearResolver::new(YearPolicy::Archive);
        let ts = |line: &str, y: &mut YearResolver| {
            sentra_schemas::time::format_rfc3339_us(parse(line, y, dec4_2026).unwrap().timestamp_us)
        };
        // The first line, 1 December, is in the past this year: the stream is this year's and stays so.
        assert_eq!(
            ts("Dec  1 10:00:00 h p: m", &mut y),
            "2026-12-01T10:00:00.000000Z"
        );
        assert_eq!(
            ts("Dec  9 10:00:00 h p: m", &mut y),
            "2026-12-09T10:00:00.000000Z"
        );
        // A stream starting on 10 December is last year's, and follows the rollover into January.
        let mut y = YearResolver::new(YearPolicy::Archive);
        assert_eq!(
            ts("Dec 10 10:00:00 h p: m", &mut y),
            "2025-12-10T10:00:00.000000Z"
        );
        assert_eq!(
            ts("Jan  3 10:00:00 h p: m", &mut y),
            "2026-01-03T10:00:00.000000Z"
        );
        assert_eq!(
            ts("Dec 31 23:59:00 h p: m", &mut y),
            "2025-12-31T23:59:00.000000Z"
        );
    }
}
