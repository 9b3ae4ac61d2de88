//! The data file is checked as a whole: every phrase can be matched, none is shadowed, every reference
//! resolves, every period is in order.

use std::collections::HashSet;

use super::*;
use crate::words::{Words, POSSESSIVE};

/// The phrases of each row of `rows`.
fn phrases<T>(rows: &[Meaning<T>]) -> Vec<&[String]> {
    rows.iter().map(|m| m.phrases.as_slice()).collect()
}

/// Problems with one table whose rows are read in order: a phrase the question's words can never be,
/// a phrase twice, or a phrase containing one of an earlier row (which would read its words first).
fn table_problems(table: &str, rows: &[&[String]]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        if row.is_empty() {
            problems.push(format!("{table}: row {i} has no phrases"));
        }
        for phrase in *row {
            let words = Words::new(phrase);
            let read: Vec<&str> = (0..words.len()).map(|k| words.get(k)).collect();
            if read.join(" ") != *phrase && phrase != POSSESSIVE {
                problems.push(format!("{table}: {phrase:?} is read as {read:?}"));
            }
            if !seen.insert(phrase) {
                problems.push(format!("{table}: {phrase:?} twice"));
            }
            let inner: Vec<&str> = phrase.split(' ').collect();
            for earlier in rows[..i].iter().copied().flatten() {
                let outer: Vec<&str> = earlier.split(' ').collect();
                if earlier != phrase && inner.windows(outer.len()).any(|w| *w == outer[..]) {
                    problems.push(format!(
                        "{table}: {phrase:?} is never read whole: {earlier:?} comes first"
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn the_lexicon_is_consistent() {
    let l = &*LEXICON;
    let (a, s, e, t) = (&l.answer, &l.signals, &l.events, &l.time);
    let detections: Vec<Vec<String>> = s
        .detection
        .iter()
        .map(|d| {
            [d.name.clone()]
                .into_iter()
                .chain(d.phrases.clone())
                .collect()
        })
        .collect();
    let periods: Vec<&[String]> = t
        .period
        .iter()
        .filter(|p| !p.together)
        .map(|p| p.phrases.as_slice())
        .collect();
    let lists: &[(&str, &Vec<String>)] = &[
        ("filler", &l.filler),
        ("answer.count", &a.count),
        ("answer.trend", &a.trend),
        ("answer.summarize", &a.summarize),
        ("answer.by_frequency", &a.by_frequency),
        ("answer.newest", &a.newest),
        ("answer.top", &a.top),
        ("answer.list", &a.list),
        ("answer.explain", &a.explain),
        ("answer.records", &a.records),
        ("answer.who", &a.who),
        ("answer.attack", &a.attack),
        ("answer.limit_before", &a.limit_before),
        ("answer.limit_after", &a.limit_after),
        ("signals.subject", &s.subject),
        ("events.failure", &e.failure),
        ("events.success", &e.success),
        ("events.login", &e.login),
        ("events.logged_in", &e.logged_in),
        ("events.password_change.nouns", &e.password_change.nouns),
        ("events.password_change.verbs", &e.password_change.verbs),
        ("names.exclude", &l.names.exclude),
        ("time.words", &t.words),
        ("time.lookback", &t.lookback),
        ("time.lookback_compact", &t.lookback_compact),
        ("time.since_date", &t.since_date),
        ("time.until_date", &t.until_date),
        ("time.date_range", &t.date_range),
    ];
    let mut problems: Vec<String> = lists
        .iter()
        .flat_map(|(table, list)| table_problems(table, &[list.as_slice()]))
        .collect();
    for (table, rows) in [
        ("answer.bucket", phrases(&a.bucket)),
        (
            "signals.detection",
            detections.iter().map(Vec::as_slice).collect(),
        ),
        ("signals.severity", phrases(&s.severity)),
        ("signals.intent", phrases(&s.intent)),
        ("events.action", phrases(&e.action)),
        ("events.process", phrases(&e.process)),
        ("group", phrases(&l.group)),
        ("names.cue", phrases(&l.names.cue)),
        ("time.unit", phrases(&t.unit)),
        ("time.period", periods),
        (
            "time.weekdays",
            t.weekdays.iter().map(Vec::as_slice).collect(),
        ),
        ("time.months", t.months.iter().map(Vec::as_slice).collect()),
    ] {
        problems.extend(table_problems(table, &rows));
    }
    let actions: Vec<&str> = e.action.iter().map(|m| m.means.as_str()).collect();
    if !actions.contains(&e.password_change.action.as_str()) {
        problems.push(format!(
            "events.password_change: no action {:?}",
            e.password_change.action
        ));
    }
    let buckets = [Dim::Hour, Dim::Day];
    if a.bucket.iter().any(|b| !buckets.contains(&b.means)) {
        problems.push("answer.bucket: a bucket is not hour or day".into());
    }
    if l.group.iter().any(|g| buckets.contains(&g.means)) {
        problems.push("group: hour and day are trend buckets, not groupings".into());
    }
    // Wednesday 2026-03-18 10:30 UTC and the six days after it.
    let week = (0..7).map(|d| 1_773_829_800_000_000 + d * super::time::DAY);
    for p in &t.period {
        if week
            .clone()
            .any(|now| crate::when::at(p.from, now) >= crate::when::at(p.to, now))
        {
            problems.push(format!(
                "time.period: {:?} ends before it starts",
                p.phrases
            ));
        }
    }
    if (t.weekdays.len(), t.months.len()) != (7, 12) {
        problems.push("time: 7 weekdays and 12 months".into());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
