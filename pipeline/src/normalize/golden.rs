//! The golden corpus: real-world lines of each format family (`pipeline/tests/golden/<family>.log` or
//! `.jsonl`, one input a line) and, beside each, `<family>.expected.jsonl` with the ECS fields that matter
//! for every line, reviewed by hand against what ECS prescribes.
//!
//! Each expectation lists exactly the [`CHECKED`] fields the event must have: a field missing, different,
//! or present when the expectation leaves it out is a mismatch naming the file, the line and the field.
//! `UPDATE_GOLDEN=1` rewrites the expectations from the current output, for review before committing.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::*;

/// The ECS fields compared, as dotted paths of [`Event::to_ecs_json`]'s document.
const CHECKED: &[&str] = &[
    "@timestamp",
    "host.name",
    "process.name",
    "process.pid",
    "event.category",
    "event.type",
    "event.action",
    "event.outcome",
    "user.name",
    "user.target.name",
    "user.effective.name",
    "group.name",
    "source.address",
    "source.ip",
    "source.domain",
    "source.port",
    "sentra.command",
];

/// Where the corpus lives.
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The inputs of the corpus: every file that is not an expectation, in name order.
fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the golden corpus directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| !p.to_string_lossy().ends_with(".expected.jsonl"))
        .collect();
    files.sort();
    files
}

/// `legacy_pam.log` → `legacy_pam.expected.jsonl`.
fn expected_path(input: &Path) -> PathBuf {
    let name = input.file_name().unwrap_or_default().to_string_lossy();
    let family = name.split('.').next().unwrap_or_default();
    input.with_file_name(format!("{family}.expected.jsonl"))
}

/// The value at `dotted` in `doc`.
fn at<'a>(doc: &'a Value, dotted: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(dotted) {
        return Some(v);
    }
    dotted.split('.').try_fold(doc, |v, k| v.get(k))
}

/// The [`CHECKED`] fields of `doc`, flat.
fn checked_fields(doc: &Value) -> Map<String, Value> {
    CHECKED
        .iter()
        .filter_map(|&k| at(doc, k).map(|v| (k.to_owned(), v.clone())))
        .collect()
}

/// Normalizes every line of `input` with one normalizer (the stream's state, years and audit serials, carries
/// from line to line) and returns the checked fields of each, or the quarantine reason.
fn normalize_file(input: &Path) -> Vec<(String, Map<String, Value>)> {
    let text = std::fs::read_to_string(input).expect("a readable corpus file");
    let mut n = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        ..NormalizeConfig::default()
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let source = format!("{}:{}", input.display(), i + 1);
            let input = Input::line(line.as_bytes(), &source, Some("acme"), None);
            let fields = match n.normalize(&input) {
                Ok(e) => checked_fields(&e.to_ecs_json()),
                Err(q) => {
                    let mut m = Map::new();
                    m.insert(
                        "quarantined".into(),
                        Value::String(format!("{:?}", q.reason)),
                    );
                    m
                }
            };
            (line.to_owned(), fields)
        })
        .collect()
}

#[test]
fn every_corpus_line_normalizes_to_its_reviewed_ecs_fields() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = corpus_files();
    assert!(files.len() >= 7, "the corpus has its families: {files:?}");
    let mut mismatches = Vec::new();
    for input in files {
        let actual = normalize_file(&input);
        let expected_path = expected_path(&input);
        let name = input.file_name().unwrap_or_default().to_string_lossy();
        if update {
            let out: String = actual
                .iter()
                .map(|(_, f)| format!("{}\n", Value::Object(f.clone())))
                .collect();
            std::fs::write(&expected_path, out).expect("write the expectations");
            continue;
        }
        let expected: Vec<Map<String, Value>> = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()))
            .lines()
            .map(|l| serde_json::from_str(l).expect("an expectation is a JSON object"))
            .collect();
        assert_eq!(
            expected.len(),
            actual.len(),
            "{name}: one expectation per input line"
        );
        for (i, ((line, got), want)) in actual.iter().zip(&expected).enumerate() {
            let mut keys: Vec<&String> = got.keys().chain(want.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                if got.get(k) != want.get(k) {
                    mismatches.push(format!(
                        "{name}:{} field {k}: expected {}, got {}\n    {line}",
                        i + 1,
                        want.get(k).map_or("(absent)".into(), Value::to_string),
                        got.get(k).map_or("(absent)".into(), Value::to_string),
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

#[test]
fn every_prefix_and_suffix_of_a_corpus_line_normalizes_without_panicking() {
    let mut n = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        ..NormalizeConfig::default()
    });
    let mut tried = 0;
    for input in corpus_files() {
        let text = std::fs::read_to_string(&input).expect("a readable corpus file");
        for line in text.lines() {
            let cuts = (0..=line.len()).filter(|&i| line.is_char_boundary(i));
            for i in cuts {
                for part in [&line[..i], &line[i..]] {
                    let input = Input {
                        bytes: part.as_bytes(),
                        source: "cut",
                        header_tenant: None,
                        fallback_tenant: Some("acme"),
                        pinned_tenant: None,
                        reference_us: 0,
                        reference_is_event_time: true,
                        read_us: None,
                    };
                    let _ = n.normalize(&input);
                    tried += 1;
                }
            }
        }
    }
    assert!(tried > 10_000, "{tried}");
}
