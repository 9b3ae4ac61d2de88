//! The detection cases: `tests/data/detections/<case>/` at the repository root holds an input, as systems write
//! it (`input.log`, syslog lines, or `input.jsonl`, one JSON document a line), and `expected.jsonl`, the
//! signals the built-in catalog emits on it, one a line, reviewed by hand. A case may add `case.toml` (its
//! `[engine]` settings) and `overrides.json` (analyst overrides applied to its signals).
//!
//! Each case is normalized (tenant `acme` unless a document names one, year 2026) into one batch, run through
//! one engine, then end of input. A signal is compared by [`comparable`] fields and matched by its id, so a
//! mismatch names the case, the signal and the field. Every detection in `detections/` must fire in some
//! case: none is added without one. `UPDATE_GOLDEN=1` rewrites the expectations from the current output, for
//! review before committing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};
use sentra_schemas::{EventColumns, Signal};
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::normalize::{Input, NormalizeConfig, Normalizer, YearPolicy};

/// A case's `case.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Engine settings; the defaults where left out.
    #[serde(default)]
    engine: EngineConfig,
}

/// `path` from the repository root.
fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Every case folder, in name order.
fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repository("tests/data/detections"))
        .expect("the detection cases folder")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The folder's name.
fn name(dir: &Path) -> String {
    dir.file_name().unwrap_or_default().to_string_lossy().into()
}

/// The case's input, with its file name.
fn input(case: &Path) -> (String, String) {
    ["input.log", "input.jsonl"]
        .into_iter()
        .find_map(|file| {
            Some((
                file.to_owned(),
                std::fs::read_to_string(case.join(file)).ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("{}: no input.log or input.jsonl", name(case)))
}

/// The case's input as one batch, and the input line number of each event id.
fn normalize(case: &Path) -> (RecordBatch, BTreeMap<String, usize>) {
    let (file, text) = input(case);
    let mut normalizer = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        ..NormalizeConfig::default()
    });
    let mut columns = EventColumns::default();
    let mut numbers = Vec::new();
    for (number, line) in (1..).zip(text.lines()) {
        if line.trim().is_empty() {
            continue;
        }
        let source = format!("{}/{file}:{number}", name(case));
        let input = Input::line(line.as_bytes(), &source, Some("acme"), None);
        if let Err(q) = normalizer.normalize_into(&input, &mut columns) {
            panic!("{source} is not an event: {:?} {}", q.reason, q.detail);
        }
        numbers.push(number);
    }
    let batch = columns.finish();
    let ids = batch
        .column_by_name("event_id")
        .expect("an event_id column")
        .as_string_view();
    let lines = ids
        .iter()
        .flatten()
        .map(str::to_owned)
        .zip(numbers)
        .collect();
    (batch, lines)
}

/// The signals the built-in catalog emits on the case, its overrides applied.
fn detect(case: &Path, batch: &RecordBatch) -> Vec<Signal> {
    let settings: Settings = match std::fs::read_to_string(case.join("case.toml")) {
        Ok(text) => {
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}/case.toml: {e}", name(case)))
        }
        Err(_) => Settings::default(),
    };
    let path = case.join("overrides.json");
    let overrides = if path.exists() {
        Overrides::load(&path).unwrap_or_else(|e| panic!("{e}"))
    } else {
        Overrides::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut engine = runtime
        .block_on(Engine::new(catalog::builtin(), settings.engine))
        .unwrap_or_else(|e| panic!("{}: {e}", name(case)));
    let outcome = runtime
        .block_on(engine.process(batch))
        .expect("the batch runs");
    assert!(
        outcome.late_rows.is_empty(),
        "{}: a case's events are on time",
        name(case)
    );
    let mut signals = outcome.signals;
    signals.extend(engine.finish());
    for s in &mut signals {
        overrides.apply(s);
    }
    signals
}

/// What a case records of a signal: every field but the recommendation and compliance controls (the
/// detection's own text), with the evidence as input line numbers.
fn comparable(s: &Signal, lines: &BTreeMap<String, usize>) -> Value {
    let mut doc = serde_json::to_value(s).expect("a signal serializes");
    let fields = doc.as_object_mut().expect("a signal is an object");
    fields.remove("recommendation");
    fields.remove("compliance");
    fields.remove("evidence");
    let mut evidence: Vec<usize> = s.evidence.iter().map(|id| lines[id]).collect();
    evidence.sort_unstable();
    fields.insert("evidence_lines".into(), json!(evidence));
    doc
}

/// The case's signals as [`comparable`] documents, by window start, detection and id; their risk factors
/// must add up to their scores.
fn run(case: &Path) -> Vec<Value> {
    let (batch, lines) = normalize(case);
    let mut signals = detect(case, &batch);
    for s in &signals {
        let sum: f64 = s.risk_factors.iter().map(|f| f.contribution).sum();
        assert!(
            (sum.clamp(0.0, 1.0) - s.risk_score).abs() < 1e-9,
            "{}: the risk factors of {} {} do not add up to its score",
            name(case),
            s.signal,
            s.id
        );
    }
    signals.sort_by(|a, b| {
        (a.window_start, &a.signal, &a.id).cmp(&(b.window_start, &b.signal, &b.id))
    });
    signals.iter().map(|s| comparable(s, &lines)).collect()
}

/// The signals of an `expected.jsonl`.
fn read_expected(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("an expected signal is a JSON object"))
        .collect()
}

/// How `got` differs from `want`, a line each: signals matched by id, then field by field.
fn differences(case: &str, want: &[Value], got: &[Value]) -> Vec<String> {
    let by_id = |signals: &[Value]| -> BTreeMap<String, Value> {
        signals
            .iter()
            .map(|s| (s["id"].as_str().unwrap_or_default().to_owned(), s.clone()))
            .collect()
    };
    let (want, got) = (by_id(want), by_id(got));
    let mut out = Vec::new();
    for (id, w) in &want {
        let Some(g) = got.get(id) else {
            out.push(format!("{case}: missing {w}"));
            continue;
        };
        let keys: BTreeSet<&String> = (w.as_object().into_iter().flatten())
            .chain(g.as_object().into_iter().flatten())
            .map(|(k, _)| k)
            .collect();
        for k in keys {
            if w.get(k) != g.get(k) {
                out.push(format!(
                    "{case}: {} {id} field {k}: expected {}, got {}",
                    w["signal"].as_str().unwrap_or_default(),
                    w.get(k).map_or("(absent)".into(), Value::to_string),
                    g.get(k).map_or("(absent)".into(), Value::to_string),
                ));
            }
        }
    }
    for (id, g) in &got {
        if !want.contains_key(id) {
            out.push(format!("{case}: unexpected {g}"));
        }
    }
    out
}

#[test]
fn every_case_emits_its_expected_signals() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for case in cases() {
        let got = run(&case);
        let path = case.join("expected.jsonl");
        if update {
            let text: String = got.iter().map(|s| format!("{s}\n")).collect();
            std::fs::write(&path, text).expect("write the expectations");
        } else {
            mismatches.extend(differences(&name(&case), &read_expected(&path), &got));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

#[test]
fn every_detection_fires_in_a_case() {
    let fired: BTreeSet<String> = cases()
        .iter()
        .map(|case| case.join("expected.jsonl"))
        .filter(|path| path.exists())
        .flat_map(|path| read_expected(&path))
        .filter_map(|s| s["signal"].as_str().map(str::to_owned))
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repository("detections"))
        .expect("the detections folder")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the catalog has detections");
    let caseless: Vec<String> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("a readable detection");
            Detection::from_toml(&text, &f.display().to_string()).expect("a valid detection")
        })
        .filter(|d| !fired.contains(&d.name))
        .map(|d| d.name)
        .collect();
    assert!(
        caseless.is_empty(),
        "no case in tests/data/detections/ expects a signal of {caseless:?}: add a case folder whose \
         expected.jsonl holds one"
    );
}
