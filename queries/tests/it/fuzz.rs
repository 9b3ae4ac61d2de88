//! The planner never panics, whatever the question: analyst-like questions built from real phrasings,
//! then mutated (letters dropped, inserted, swapped, case flipped) and mixed with multi-byte, look-alike
//! and control characters, plus arbitrary text. Cases follow `PROPTEST_CASES` (default 2,000, a few
//! seconds in a dev build); `scripts/fuzz.sh` runs a million.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sentra_queries::intent::{MAX_RANGE_US, MAX_ROWS};
use sentra_queries::planner::{plan, PlanError};
use sentra_queries::Vocabulary;

/// Pieces of questions as analysts type them.
const PIECES: &[&str] = &[
    "how many",
    "failed",
    "logins",
    "show me",
    "list",
    "top 5",
    "source IPs",
    "for user",
    "alice",
    "root",
    "ci",
    "did",
    "have",
    "who logged in as",
    "on",
    "web-1",
    "host",
    "from",
    "203.0.113.7",
    "10.0.0.0/8",
    "2001:db8::1",
    "since monday",
    "last 24 hours",
    "past week",
    "this morning",
    "yesterday afternoon",
    "between 2026-03-13 and 2026-03-14",
    "march 14th",
    "on 2026-03-14",
    "3 hours ago",
    "last 3",
    "24h",
    "T1110.001",
    "T1110",
    "3f2a9c1b0d4e",
    "explain",
    "brute force",
    "password spray",
    "signals",
    "alerts",
    "high",
    "critical",
    "sudo",
    "su to root",
    "new accounts",
    "password changes",
    "excluding",
    "tenant globex",
    "per hour",
    "daily",
    "trend",
    "summarize",
    "what happened",
    "user=",
    "src_ip=",
    "'s",
    "?",
    ",",
    "by host",
    "which users",
    "faild",
    "froce",
    "weekend",
    "over the",
    "and",
    "or",
    "not",
    "who",
    "most",
    "first 50",
    "limit 1000000000000",
];

/// Words that have crashed planners: multi-byte letters where ASCII is expected, case changes that
/// change length, look-alikes, controls, numbers out of range, dates that do not exist.
const ODD: &[&str] = &[
    "Tééé",
    "T12é4",
    "T١٢٣٤",
    "tééééééé",
    "é",
    "日本語",
    "ｆａｉｌｅｄ",
    "\u{202e}nimdag",
    "🔥🔥",
    "İstanbul",
    "ﬁle",
    "e\u{301}",
    "ß",
    "\u{0}",
    "\u{7}",
    "\t",
    "\u{85}",
    "\u{2028}",
    "\u{feff}",
    "’s",
    "‘root’",
    "-",
    "--",
    "'",
    "'''",
    "..",
    "/",
    "::",
    "=",
    "==",
    "9999999999999999999999",
    "-1",
    "0x1f",
    "T",
    "T1",
    "T11101",
    "T1110.",
    "T1110.0001",
    "T1110.00é",
    "2026-13-45",
    "2026-02-31",
    "2026/03/14",
    "2026-é3-14",
    "20é6-03-14",
    "31st",
    "0th",
    "99th",
    "mar 0",
    "1e9",
    "NaN",
    "last 0 days",
    "last 99999999999 weeks",
    "ééé-é-éé",
    "éé-éé-é",
    "a\u{300}\u{301}\u{302}",
    "Ⅻ",
    "ǅ",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(PIECES).prop_map(str::to_owned),
        3 => proptest::sample::select(ODD).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
        1 => any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

/// A change to one piece: none, a character inserted, one dropped, two swapped, case flipped.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    Insert(usize, char),
    Drop(usize),
    Swap(usize),
    Upper,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        8 => Just(Mutation::None),
        1 => (any::<usize>(), any::<char>()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        1 => any::<usize>().prop_map(Mutation::Drop),
        1 => any::<usize>().prop_map(Mutation::Swap),
        1 => Just(Mutation::Upper),
    ]
}

fn mutate(s: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    match *m {
        Mutation::None => {}
        Mutation::Insert(i, c) => chars.insert(i % (n + 1), c),
        Mutation::Drop(i) if n > 0 => {
            chars.remove(i % n);
        }
        Mutation::Swap(i) if n > 1 => chars.swap(i % (n - 1), i % (n - 1) + 1),
        Mutation::Upper => return s.to_uppercase(),
        _ => {}
    }
    chars.into_iter().collect()
}

fn question() -> impl Strategy<Value = String> {
    let built = proptest::collection::vec(
        (
            piece(),
            mutation(),
            proptest::sample::select(&[" ", " ", " ", "", "  ", ",", "\n"][..]),
        ),
        0..24,
    )
    .prop_map(|parts| {
        parts
            .iter()
            .map(|(p, m, sep)| format!("{}{sep}", mutate(p, m)))
            .collect::<String>()
    });
    prop_oneof![9 => built, 1 => any::<String>()]
}

fn vocabulary() -> Vocabulary {
    let users = [
        "root", "alice", "ci", "josé", "Tééé", "日本", "user", "info", "ß",
    ];
    let hosts = ["web-1", "bastion-1", "ééé-é-éé", "db01"];
    Vocabulary::new(
        users.map(str::to_owned),
        hosts.map(str::to_owned),
        ["203.0.113.7".to_owned()],
    )
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// Years 1970 to 9999, in microseconds.
const LATEST_NOW: i64 = 253_402_300_799_000_000;

#[test]
fn fuzz_planner_never_panics() {
    let known = vocabulary();
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config.clone());
    runner
        .run(&(question(), 0..LATEST_NOW), |(q, now)| {
            match plan(&q, now, &known) {
                Ok(intent) => {
                    prop_assert!((1..=MAX_ROWS).contains(&intent.limit));
                    if let Some((from, to)) = intent.filters.time {
                        prop_assert!(from <= to && to - from <= MAX_RANGE_US, "{from} {to}");
                    }
                }
                Err(PlanError::TooLong) => prop_assert!(q.chars().count() > 500),
                Err(_) => {}
            }
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz_planner_never_panics: {} cases in {:.1} s, no panic",
        config.cases,
        started.elapsed().as_secs_f64()
    );
}

/// Questions that crashed the planner before its words were read by character rather than by byte.
#[test]
fn multi_byte_words_where_ids_and_dates_are_expected_do_not_panic() {
    let known = vocabulary();
    for q in [
        "T123é",
        "signals tagged T1234éé",
        "T1é€ alerts",
        "Tééé",
        "signals tagged Tééé",
        "T12é4 alerts",
        "tééééééé",
        "failed logins on 2026-é3-14",
        "since 20é6-03-14",
        "ééé-é-éé failed logins",
        "İİİİİ logins",
        "failed logins for user Tééé",
        "\u{0}\u{7}failed\u{85}logins\u{2028}",
    ] {
        let _ = plan(q, 1_773_829_800_000_000, &known);
    }
    let i = plan("failed logins on ééé-é-éé", 1_773_829_800_000_000, &known).unwrap();
    assert!(i.filters.hosts.is_empty() || i.filters.hosts == ["ééé-é-éé"]);
}
