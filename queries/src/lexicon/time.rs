//! The `[time]` tables of `lexicon.toml`, typed: the words of time phrases, units, named periods and the
//! moments that bound them, as written in the file.

use std::collections::HashMap;

use serde::Deserialize;

use super::Meaning;

/// One hour in microseconds.
pub(crate) const HOUR: i64 = 3_600_000_000;
/// One day in microseconds.
pub(crate) const DAY: i64 = 24 * HOUR;
pub(crate) const MINUTE: i64 = 60_000_000;

/// The time tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeWords {
    /// Words the time reader knows, offered for typo correction.
    pub words: Vec<String>,
    /// Words before an amount of time that count it back from now ("last 24 hours").
    pub lookback: Vec<String>,
    /// Words before an amount written as one word that count it back from now ("in 24h").
    pub lookback_compact: Vec<String>,
    /// Words before a date that start the range there ("since march 3").
    pub since_date: Vec<String>,
    /// Words before a date that end the range there ("before march 3").
    pub until_date: Vec<String>,
    /// Words around two dates ("between march 3 and march 5").
    pub date_range: Vec<String>,
    /// The names of each weekday, Monday first.
    pub weekdays: Vec<Vec<String>>,
    /// The names of each month, January first.
    pub months: Vec<Vec<String>>,
    /// Units of time and their length.
    pub unit: Vec<Meaning<Length>>,
    /// Named periods, in the order they are looked for.
    pub period: Vec<Period>,
    /// Amounts written as words.
    pub numbers: HashMap<String, i64>,
}

/// A length of time in microseconds, written `30m`, `6h` or `7d`.
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Length(pub i64);

impl TryFrom<String> for Length {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let unit = match &text[digits..] {
            "m" => MINUTE,
            "h" => HOUR,
            "d" => DAY,
            _ => return Err(format!("{text:?} is not a length like 30m, 6h or 7d")),
        };
        let n: i64 = text[..digits]
            .parse()
            .map_err(|_| format!("{text:?} has no amount"))?;
        Ok(Length(n * unit))
    }
}

/// A period a phrase names: `[from, to)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Period {
    /// The phrases that name it.
    pub phrases: Vec<String>,
    /// Whether it takes every phrase, anywhere in the question, rather than any one of them.
    #[serde(default)]
    pub together: bool,
    /// Where it starts.
    pub from: Moment,
    /// Where it ends.
    pub to: Moment,
}

/// A moment relative to the time of the question: an anchor moved by lengths, written `today - 1d + 18h`.
#[derive(Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Moment {
    /// Where it is counted from.
    pub anchor: Anchor,
    /// How far from there, in microseconds.
    pub offset: i64,
}

/// Where a [`Moment`] is counted from.
#[derive(Clone, Copy)]
pub(crate) enum Anchor {
    /// The time of the question.
    Now,
    /// Midnight starting today.
    Today,
    /// Midnight starting this week's Monday.
    Week,
    /// Midnight starting the most recent Saturday.
    Weekend,
    /// Midnight starting the 1st of this month.
    Month,
}

impl TryFrom<String> for Moment {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let mut parts = text.split(' ');
        let anchor = match parts.next() {
            Some("now") => Anchor::Now,
            Some("today") => Anchor::Today,
            Some("week") => Anchor::Week,
            Some("weekend") => Anchor::Weekend,
            Some("month") => Anchor::Month,
            _ => {
                return Err(format!(
                    "{text:?} starts with none of now, today, week, weekend, month"
                ))
            }
        };
        let mut offset = 0;
        while let Some(sign) = parts.next() {
            let sign = match sign {
                "+" => 1,
                "-" => -1,
                _ => return Err(format!("{text:?}: {sign:?} is not + or -")),
            };
            offset += sign * Length::try_from(parts.next().unwrap_or_default().to_owned())?.0;
        }
        Ok(Moment { anchor, offset })
    }
}
