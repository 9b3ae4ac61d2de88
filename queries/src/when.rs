//! Time phrases: "last 24 hours", "past week", "since monday", "yesterday afternoon", "this morning",
//! "on 2026-03-14", "march 14th", "between … and …", "2 hours ago", "over the weekend". Times are UTC; a
//! range is `[from, to)` in epoch microseconds. The phrase's words are read off the question. The words
//! and named periods are the `[time]` tables of `lexicon.toml`; dates and amounts are read here.

use sentra_schemas::time::{civil_from_days, days_from_civil};

pub(crate) use crate::lexicon::time::DAY;
use crate::lexicon::time::{Anchor, Moment, MINUTE};
use crate::lexicon::LEXICON;
use crate::words::Words;

/// `moment` for a question asked at `now_us`.
pub(crate) fn at(moment: Moment, now_us: i64) -> i64 {
    let today = midnight(now_us);
    let anchor = match moment.anchor {
        Anchor::Now => now_us,
        Anchor::Today => today,
        Anchor::Week => last_weekday(now_us, 0),
        Anchor::Weekend => last_weekday(now_us, 5),
        Anchor::Month => {
            let (y, m, _) = civil_from_days(today / DAY);
            days_from_civil(y, m, 1) * DAY
        }
    };
    anchor + moment.offset
}

/// A unit word ("hours", "h", "days") as microseconds.
fn unit(word: &str) -> Option<i64> {
    LEXICON
        .time
        .unit
        .iter()
        .find(|u| u.phrases.iter().any(|p| p == word))
        .map(|u| u.means.0)
}

/// The position of the row of `table` that has `word`.
fn row_with(table: &[Vec<String>], word: &str) -> Option<usize> {
    table
        .iter()
        .position(|names| names.iter().any(|n| n == word))
}

/// `24h`, `7d`, `30m`, `2wks`: an amount and its unit in one word.
fn amount_with_unit(word: &str) -> Option<i64> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits == word.len() {
        return None;
    }
    let n: i64 = word.get(..digits)?.parse().ok()?;
    Some(n.clamp(1, 10_000) * unit(word.get(digits..)?)?)
}

/// A number word: digits or a small number written out.
fn number(word: &str) -> Option<i64> {
    let written = LEXICON.time.numbers.get(word).copied();
    written.or_else(|| word.parse::<u32>().ok().map(i64::from))
}

/// `YYYY-MM-DD` (or `YYYY/MM/DD`) as epoch microseconds of its midnight UTC.
pub(crate) fn iso_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || !s.is_ascii() || b[4] != b[7] || !matches!(b[4], b'-' | b'/') {
        return None;
    }
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let m: u32 = s.get(5..7)?.parse().ok()?;
    let d: u32 = s.get(8..10)?.parse().ok()?;
    civil(y, m, d)
}

fn civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY)
}

fn month(word: &str) -> Option<u32> {
    row_with(&LEXICON.time.months, word).map(|i| i as u32 + 1)
}

/// `14`, `14th`, `1st`, `2nd`, `3rd` as a day of the month.
fn day_of_month(word: &str) -> Option<u32> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = word.get(digits..)?;
    if digits == 0 || !["", "st", "nd", "rd", "th"].contains(&rest) {
        return None;
    }
    word.get(..digits)?
        .parse()
        .ok()
        .filter(|d| (1..=31).contains(d))
}

/// Midnight UTC of the day containing `us`.
pub(crate) fn midnight(us: i64) -> i64 {
    us.div_euclid(DAY) * DAY
}

/// Monday = 0 … Sunday = 6, of the day containing `us`.
fn weekday(us: i64) -> i64 {
    (us.div_euclid(DAY) + 3).rem_euclid(7)
}

/// `YYYY-MM-DD HH:MM` of `us`, for notes.
pub(crate) fn describe(us: i64) -> String {
    let (y, m, d) = civil_from_days(us.div_euclid(DAY));
    let minutes = us.rem_euclid(DAY) / MINUTE;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

/// Reads dates written out: `2026-03-14`, `march 14`, `mar 14th 2026`, `14 march`. Returns each date's
/// midnight and the position of its first word.
fn dates(w: &mut Words, now_us: i64) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    let (this_year, _, _) = civil_from_days(now_us.div_euclid(DAY));
    for i in 0..w.len() {
        if w.is_used(i) {
            continue;
        }
        if let Some(d) = iso_date(w.get(i)) {
            w.take(i);
            out.push((i, d));
            continue;
        }
        let (m, d, len) = match (month(w.get(i)), day_of_month(w.get(i + 1))) {
            (Some(m), Some(d)) if !w.is_used(i + 1) => (m, d, 2),
            _ => match (day_of_month(w.get(i)), month(w.get(i + 1))) {
                (Some(d), Some(m)) if !w.is_used(i + 1) => (m, d, 2),
                _ => continue,
            },
        };
        let year = w
            .get(i + len)
            .parse::<i64>()
            .ok()
            .filter(|y| (1970..=9999).contains(y));
        let at = match year {
            Some(y) => civil(y, m, d),
            None => civil(this_year, m, d)
                .filter(|d| *d <= now_us)
                .or_else(|| civil(this_year - 1, m, d)),
        };
        if let Some(at) = at {
            let used = len + usize::from(year.is_some());
            (i..i + used).for_each(|k| w.take(k));
            out.push((i, at));
        }
    }
    out
}

/// The most recent `wd` (Monday = 0) on or before the day of `now_us`, as its midnight.
fn last_weekday(now_us: i64, wd: i64) -> i64 {
    midnight(now_us) - (weekday(now_us) - wd).rem_euclid(7) * DAY
}

fn weekday_at(w: &Words, i: usize) -> Option<i64> {
    let word = w.get(i);
    let word = word
        .strip_suffix('s')
        .filter(|s| s.ends_with("day"))
        .unwrap_or(word);
    row_with(&LEXICON.time.weekdays, word).map(|p| p as i64)
}

/// Reads the time phrase of the question, if it has one.
pub(crate) fn read(w: &mut Words, now_us: i64) -> Option<(i64, i64)> {
    let time = &LEXICON.time;
    let today = midnight(now_us);
    let dates = dates(w, now_us);
    let after =
        |w: &Words, i: usize, words: &[String]| i > 0 && words.iter().any(|x| x == w.get(i - 1));
    match dates.as_slice() {
        [(_, a), (_, b), ..] => {
            w.take_any(&time.date_range);
            return Some(((*a).min(*b), (*a).max(*b) + DAY));
        }
        [(i, d)] => {
            if after(w, *i, &time.since_date) {
                w.take(i - 1);
                return Some((*d, now_us));
            }
            if after(w, *i, &time.until_date) {
                w.take(i - 1);
                return Some((d - 30 * DAY, *d));
            }
            return Some((*d, d + DAY));
        }
        [] => {}
    }
    // "last 24 hours", "past 7 days", "previous 2 weeks", "last 24h", "2 hours ago", "last couple of days".
    for i in 0..w.len() {
        if w.is_used(i) {
            continue;
        }
        if time.lookback.iter().any(|x| x == w.get(i)) {
            if let Some(span) = amount_with_unit(w.get(i + 1)) {
                (i..=i + 1).for_each(|k| w.take(k));
                return Some((now_us - span, now_us));
            }
            let skip = usize::from(w.get(i + 2) == "of");
            if let (Some(n), Some(u)) = (number(w.get(i + 1)), unit(w.get(i + 2 + skip))) {
                if w.get(i + 1) != "a" && w.get(i + 1) != "an" {
                    (i..=i + 2 + skip).for_each(|k| w.take(k));
                    return Some((now_us - n.clamp(1, 10_000) * u, now_us));
                }
            }
        }
        if let Some(span) = amount_with_unit(w.get(i)) {
            if w.get(i + 1) == "ago" || after(w, i, &time.lookback_compact) {
                w.take(i);
                if w.get(i + 1) == "ago" {
                    w.take(i + 1);
                }
                return Some((now_us - span, now_us));
            }
        }
        if let (Some(n), Some(u)) = (number(w.get(i)), unit(w.get(i + 1))) {
            if w.get(i + 2) == "ago" {
                (i..=i + 2).for_each(|k| w.take(k));
                return Some((now_us - n.clamp(1, 10_000) * u, now_us));
            }
        }
    }
    // "yesterday afternoon", "last night", "this week", "over the weekend".
    for period in &time.period {
        let all_there = !period.together || period.phrases.iter().all(|p| w.has(p));
        if all_there && w.take_any(&period.phrases) {
            return Some((at(period.from, now_us), at(period.to, now_us)));
        }
    }
    // "since monday", "on tuesday", "last friday", "monday".
    for i in 0..w.len() {
        if w.is_used(i) {
            continue;
        }
        let Some(wd) = weekday_at(w, i) else { continue };
        let day = last_weekday(now_us, wd);
        w.take(i);
        if i > 0 && w.get(i - 1) == "since" {
            w.take(i - 1);
            return Some((day, now_us));
        }
        if i > 0 && w.get(i - 1) == "last" {
            w.take(i - 1);
            let day = if day == today { day - 7 * DAY } else { day };
            return Some((day, day + DAY));
        }
        if i > 0 && w.get(i - 1) == "on" {
            w.take(i - 1);
        }
        return Some((day, day + DAY));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wednesday 2026-03-18 10:30 UTC.
    const NOW: i64 = 1_773_829_800_000_000;

    fn at(question: &str) -> Option<(String, String)> {
        let mut w = Words::new(question);
        read(&mut w, NOW).map(|(a, b)| (describe(a), describe(b)))
    }

    fn range(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.to_owned(), b.to_owned()))
    }

    #[test]
    fn relative_phrases_read_as_analysts_mean_them() {
        let cases = [
            (
                "in the last 2 hours",
                range("2026-03-18 08:30", "2026-03-18 10:30"),
            ),
            ("last 24h", range("2026-03-17 10:30", "2026-03-18 10:30")),
            ("past week", range("2026-03-11 10:30", "2026-03-18 10:30")),
            (
                "since monday",
                range("2026-03-16 00:00", "2026-03-18 10:30"),
            ),
            (
                "this morning",
                range("2026-03-18 00:00", "2026-03-18 12:00"),
            ),
            (
                "yesterday afternoon",
                range("2026-03-17 12:00", "2026-03-17 18:00"),
            ),
            ("last night", range("2026-03-17 18:00", "2026-03-18 06:00")),
            (
                "on march 14th",
                range("2026-03-14 00:00", "2026-03-15 00:00"),
            ),
            ("dec 31", range("2025-12-31 00:00", "2026-01-01 00:00")),
            ("3 hours ago", range("2026-03-18 07:30", "2026-03-18 10:30")),
            ("last friday", range("2026-03-13 00:00", "2026-03-14 00:00")),
            (
                "over the weekend",
                range("2026-03-14 00:00", "2026-03-16 00:00"),
            ),
            (
                "between 2026-03-13 and 2026-03-14",
                range("2026-03-13 00:00", "2026-03-15 00:00"),
            ),
            ("failed logins", None),
            ("last 3 failed logins", None),
        ];
        for (q, want) in cases {
            assert_eq!(at(q), want, "{q}");
        }
    }
}
