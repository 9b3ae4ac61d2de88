//! The planner against questions written the way analysts ask them (`tests/eval/questions.jsonl`: SOC
//! ticket phrasing, commands, fragments, typos, relative times, names from the tenant's own data), each
//! with the intent it should become. Every filter not named in a line must stay empty: an answer with an
//! extra filter answers another question.

use sentra_queries::intent::Intent;
use sentra_queries::planner::{plan, PlanError};
use sentra_queries::Vocabulary;
use sentra_schemas::time::days_from_civil;
use serde_json::{json, Map, Value};

/// Share of questions that must be understood exactly.
const REQUIRED_SHARE: f64 = 0.95;

const QUESTIONS: &str = include_str!("../eval/questions.jsonl");
const VOCABULARY: &str = include_str!("../eval/vocabulary.json");

/// `YYYY-MM-DD HH:MM` or RFC 3339 (UTC) as epoch microseconds.
fn time(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().expect("digits");
    let days = days_from_civil(n(0..4), n(5..7) as u32, n(8..10) as u32);
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000_000
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn vocabulary() -> (Vocabulary, i64) {
    let v: Value = serde_json::from_str(VOCABULARY).expect("vocabulary.json");
    let known = Vocabulary::new(
        strings(&v["users"]),
        strings(&v["hosts"]),
        strings(&v["ips"]),
    );
    (known, time(v["now"].as_str().expect("now")))
}

/// The fields of `intent` an expectation line can name, in the line's terms.
fn observed(intent: &Intent) -> Map<String, Value> {
    let f = &intent.filters;
    let mut m = Map::new();
    m.insert("what".into(), json!(intent.what));
    m.insert("subject".into(), json!(intent.subject));
    m.insert("group_by".into(), json!(intent.group_by));
    m.insert("limit".into(), json!(intent.limit));
    m.insert("signal_id".into(), json!(intent.signal_id));
    for (k, v) in [
        ("users", &f.users),
        ("hosts", &f.hosts),
        ("ips", &f.ips),
        ("signals", &f.signals),
        ("severities", &f.severities),
        ("mitre", &f.mitre),
        ("actions", &f.actions),
        ("processes", &f.processes),
    ] {
        m.insert(k.into(), json!(v));
    }
    m.insert("outcome".into(), json!(f.outcome));
    m.insert("category".into(), json!(f.category));
    m.insert("intent".into(), json!(f.intent));
    m.insert("time".into(), json!(f.time.map(|(a, b)| vec![a, b])));
    m
}

/// What `line` expects of each observed field: named ones as written, unnamed filters empty.
fn expected(line: &Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    for k in [
        "users",
        "hosts",
        "ips",
        "signals",
        "severities",
        "mitre",
        "actions",
        "processes",
    ] {
        m.insert(k.into(), line.get(k).cloned().unwrap_or(json!([])));
    }
    for k in ["outcome", "category", "intent", "what", "subject"] {
        m.insert(k.into(), line.get(k).cloned().unwrap_or(Value::Null));
    }
    for k in ["group_by", "limit", "signal_id"] {
        if let Some(v) = line.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    let range = line.get("time").map(|t| {
        let t = strings(t);
        json!([time(&t[0]), time(&t[1])])
    });
    m.insert("time".into(), range.unwrap_or(Value::Null));
    m
}

/// How one question went: `None` if right, else what differed.
fn check(line: &Map<String, Value>, result: &Result<Intent, PlanError>) -> Option<String> {
    let wants_answer = line.get("recognized") != Some(&Value::Bool(false));
    let wants_note = line.get("unclear") == Some(&Value::Bool(true));
    match result {
        Err(e) if wants_answer => Some(format!("no plan: {e}")),
        Err(PlanError::NotUnderstood(_)) | Err(PlanError::Unanswerable) if !wants_note => None,
        Err(PlanError::NotUnderstood(_)) => None,
        Err(e) => Some(format!(
            "refused without saying what was not understood: {e}"
        )),
        Ok(intent) if !wants_answer => Some(format!("planned what it should refuse: {intent:?}")),
        Ok(intent) => {
            let got = observed(intent);
            let mut diffs: Vec<String> = expected(line)
                .into_iter()
                .filter(|(k, want)| got.get(k) != Some(want))
                .map(|(k, want)| format!("{k}: want {want}, got {}", got[&k]))
                .collect();
            if wants_note && intent.unclear.is_empty() {
                diffs.push("no note on what was not understood".into());
            }
            (!diffs.is_empty()).then(|| diffs.join("; "))
        }
    }
}

#[test]
fn analyst_questions_are_understood() {
    let (known, now) = vocabulary();
    let lines: Vec<Map<String, Value>> = QUESTIONS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(lines.len() >= 150, "{} questions", lines.len());
    let mut misses = Vec::new();
    let mut silent_misses = Vec::new();
    let mut extra_notes = Vec::new();
    for line in &lines {
        let question = line["q"].as_str().expect("q");
        let result = plan(question, now, &known);
        if let (Ok(i), None) = (&result, line.get("unclear")) {
            if !i.unclear.is_empty() {
                extra_notes.push(format!("  {question:?}: {:?}", i.unclear));
            }
        }
        if let Some(diff) = check(line, &result) {
            let unclear = match &result {
                Ok(i) => i.unclear.clone(),
                Err(PlanError::NotUnderstood(u)) => u.clone(),
                Err(_) => Vec::new(),
            };
            if unclear.is_empty() {
                silent_misses.push(question.to_owned());
            }
            misses.push(format!(
                "  {question:?}\n    {diff}\n    not understood: {unclear:?}"
            ));
        }
    }
    let share = 1.0 - misses.len() as f64 / lines.len() as f64;
    println!(
        "planner evaluation: {}/{} questions answered right ({:.1} %)",
        lines.len() - misses.len(),
        lines.len(),
        share * 100.0
    );
    for m in &misses {
        println!("{m}");
    }
    if !extra_notes.is_empty() {
        println!("answered right, with a note on words left out:");
        for n in &extra_notes {
            println!("{n}");
        }
    }
    assert!(
        silent_misses.is_empty(),
        "misses without a note on what was not understood: {silent_misses:?}"
    );
    assert!(
        share >= REQUIRED_SHARE,
        "{:.1} % understood, below {:.0} %:\n{}",
        share * 100.0,
        REQUIRED_SHARE * 100.0,
        misses.join("\n")
    );
}
