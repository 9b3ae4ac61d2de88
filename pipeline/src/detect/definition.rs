//! A detection as data: what events it looks at, how it groups and windows them, which DataFusion SQL
//! aggregates it computes, when it fires, and how its signal reads. Built-in detections (the `detections/`
//! folder) and users' own files use exactly this format.
//!
//! ```toml
//! name = "ssh_brute_force"
//! title = "SSH brute force from one source"
//! filter = "action IN ('ssh_login', 'ssh_invalid_user_login') AND outcome = 'failure' AND source_ip IS NOT NULL"
//! group_by = ["source_ip"]
//! window = { kind = "tumbling", size_secs = 60 }
//! aggregates = [
//!   { name = "failures", sql = "count(*)", merge = "sum" },
//!   { name = "users", sql = "array_agg(DISTINCT user_name)", merge = "union" },
//! ]
//! conditions = ["failures >= 5", "failures >= 2 * users"]
//! risk = { base = 0.4, intensity = { aggregate = "failures", threshold = 5, weight = 0.3, saturate_at = 10 }, modifiers = { privileged_target = 0.15 } }
//! mitre = [{ technique = "T1110.001", tactic = "Credential Access" }]
//! compliance = ["SOC2:CC6.1", "ISO27001:A.8.5"]
//! intent = "Credential Access"
//! narrative = "{failures} SSH logins from {source_ip} failed on {hosts} between {window_start} and {window_end} UTC."
//! recommendation = "Check whether {source_ip} is expected; if not, block it."
//! ```
//!
//! Every detection also gets these aggregates for free: `events` (matching events), `hosts` (distinct
//! hosts), `first_seen` and `last_seen` (event times).

use std::collections::BTreeMap;

use sentra_schemas::MitreTechnique;
use serde::{Deserialize, Serialize};

/// Columns a detection may group by.
pub const GROUPABLE: &[&str] = &[
    "source_ip",
    "user_name",
    "target_user",
    "group_name",
    "host",
];
/// Aggregates every detection computes.
pub const BUILTIN_AGGREGATES: &[&str] = &["events", "hosts", "first_seen", "last_seen"];
/// Risk modifiers the engine knows (their weights come from the detection).
pub const MODIFIERS: &[&str] = &[
    "privileged_target",
    "success_after_failures",
    "brute_forced_account",
    "many_distinct_users",
    "off_hours",
];
/// Intent classes.
pub const INTENTS: &[&str] = &[
    "Maintenance",
    "Identity Management",
    "Credential Access",
    "Privilege Escalation",
];

/// One detection definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detection {
    /// Stable name (`snake_case`); it is the signal's `signal` field and part of its id.
    pub name: String,
    /// One-line human title.
    pub title: String,
    /// Longer explanation.
    #[serde(default)]
    pub description: String,
    /// DataFusion SQL boolean expression over the event columns selecting the events it counts.
    pub filter: String,
    /// Entity columns (the tenant is always a key too).
    pub group_by: Vec<String>,
    /// Event-time window.
    pub window: WindowSpec,
    /// After a window fires, windows of the same entity starting within this many seconds stay quiet: a
    /// sustained attack is one signal per period, not one per window.
    #[serde(default = "default_repeat_after")]
    pub repeat_after_secs: u64,
    /// Extra aggregates, each a DataFusion SQL aggregate with how partial results merge. A `union` aggregate
    /// must be `array_agg(DISTINCT column)`, optionally with `FILTER (WHERE condition)`.
    #[serde(default)]
    pub aggregates: Vec<AggregateSpec>,
    /// All must hold for a window to fire; each may list alternatives joined by ` or `.
    pub conditions: Vec<String>,
    /// How risk is scored.
    pub risk: RiskSpec,
    /// MITRE ATT&CK techniques.
    pub mitre: Vec<MitreTechnique>,
    /// Compliance controls (e.g. `SOC2:CC6.1`, `ISO27001:A.8.5`).
    pub compliance: Vec<String>,
    /// Intent class (one of [`INTENTS`]).
    pub intent: String,
    /// Narrative template: `{name}` placeholders for aggregates, group-by columns, `tenant`,
    /// `window_start`, `window_end` and `date`.
    pub narrative: String,
    /// Recommendation template (same placeholders).
    pub recommendation: String,
}

fn default_repeat_after() -> u64 {
    3600
}

/// Event-time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum WindowSpec {
    /// Back-to-back windows of `size_secs`.
    Tumbling {
        /// Window length.
        size_secs: u64,
    },
    /// Windows of `size_secs` starting every `slide_secs` (size must be a multiple of slide).
    Sliding {
        /// Window length.
        size_secs: u64,
        /// Step between window starts.
        slide_secs: u64,
    },
}

impl WindowSpec {
    /// (size, slide) in microseconds.
    pub fn size_slide_us(&self) -> (i64, i64) {
        let (size, slide) = match *self {
            WindowSpec::Tumbling { size_secs } => (size_secs, size_secs),
            WindowSpec::Sliding {
                size_secs,
                slide_secs,
            } => (size_secs, slide_secs),
        };
        (size as i64 * 1_000_000, slide as i64 * 1_000_000)
    }
}

/// How partial aggregates of one window pane combine with another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Merge {
    /// Add (counts, sums).
    Sum,
    /// Smallest (earliest times).
    Min,
    /// Largest (latest times).
    Max,
    /// Set union (`array_agg(DISTINCT …)`); in conditions a set counts as its size.
    Union,
}

/// A named DataFusion SQL aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    /// Name used in conditions and templates.
    pub name: String,
    /// DataFusion SQL aggregate expression, e.g. `count(*) FILTER (WHERE outcome = 'success')`.
    pub sql: String,
    /// How partial results merge across panes and batches.
    pub merge: Merge,
}

/// Risk scoring: `base + intensity + Σ modifiers`, clamped to [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSpec {
    /// Base risk when the detection fires.
    pub base: f64,
    /// Extra risk growing with an aggregate, saturating.
    #[serde(default)]
    pub intensity: Option<IntensitySpec>,
    /// Named modifiers and their weights (see [`MODIFIERS`]).
    #[serde(default)]
    pub modifiers: BTreeMap<String, f64>,
}

/// `weight × clamp(ln(value / threshold) / ln(saturate_at), 0, 1)`: zero at the threshold, full weight at
/// `saturate_at` times the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntensitySpec {
    /// Aggregate (a set counts as its size).
    pub aggregate: String,
    /// Value at which intensity starts.
    pub threshold: f64,
    /// Maximum contribution.
    pub weight: f64,
    /// Multiple of the threshold at which the contribution is full.
    pub saturate_at: f64,
}

/// A comparison operator in a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// One side of a comparison: `factor × name`, or a constant when `name` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// Multiplier (or the constant).
    pub factor: f64,
    /// Aggregate name.
    pub name: Option<String>,
}

/// `lhs op rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Left side.
    pub lhs: Term,
    /// Operator.
    pub op: Op,
    /// Right side.
    pub rhs: Term,
}

/// A parsed condition: any of the comparisons holds.
pub type Condition = Vec<Comparison>;

fn parse_term(s: &str) -> Result<Term, String> {
    let s = s.trim();
    if let Ok(v) = s.parse::<f64>() {
        return Ok(Term {
            factor: v,
            name: None,
        });
    }
    let (factor, name) = match s.split_once('*') {
        Some((f, n)) => (
            f.trim()
                .parse::<f64>()
                .map_err(|_| format!("{f:?} is not a number"))?,
            n.trim(),
        ),
        None => (1.0, s),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("{name:?} is not an aggregate name"));
    }
    Ok(Term {
        factor,
        name: Some(name.to_owned()),
    })
}

/// Parses `a >= 5`, `failures >= 2 * users`, `x >= 3 or y >= 1`.
pub fn parse_condition(s: &str) -> Result<Condition, String> {
    s.split(" or ")
        .map(|alt| {
            for (tok, op) in [
                (">=", Op::Ge),
                ("<=", Op::Le),
                ("==", Op::Eq),
                ("!=", Op::Ne),
                (">", Op::Gt),
                ("<", Op::Lt),
            ] {
                if let Some((l, r)) = alt.split_once(tok) {
                    return Ok(Comparison {
                        lhs: parse_term(l)?,
                        op,
                        rhs: parse_term(r)?,
                    });
                }
            }
            Err(format!("{alt:?} has no comparison (>=, >, <=, <, ==, !=)"))
        })
        .collect()
}

/// Template placeholders (`{name}`) in `s`.
pub fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j) => {
                out.push(&after[..j]);
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

impl Detection {
    /// Parses a TOML definition; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, String> {
        let d: Detection =
            toml::from_str(text).map_err(|e| format!("{origin}: {}", e.message()))?;
        let problems = d.problems();
        if problems.is_empty() {
            Ok(d)
        } else {
            Err(format!("{origin} ({}): {}", d.name, problems.join("; ")))
        }
    }

    /// Every problem with the definition (empty when valid). The SQL itself is checked when the engine
    /// plans it.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            p.push(format!("name {:?} must be snake_case", self.name));
        }
        if self.group_by.is_empty() {
            p.push("group_by must name at least one column".into());
        }
        for (i, g) in self.group_by.iter().enumerate() {
            if !GROUPABLE.contains(&g.as_str()) {
                p.push(format!("group_by column {g:?} is not one of {GROUPABLE:?}"));
            }
            if self.group_by[..i].contains(g) {
                p.push(format!("group_by lists {g:?} twice"));
            }
        }
        let (size, slide) = self.window.size_slide_us();
        if size <= 0 || slide <= 0 || size % slide != 0 || size > 86_400_000_000 {
            p.push("window: size must be 1 s to 1 day and a multiple of slide".into());
        }
        let mut names: Vec<&str> = BUILTIN_AGGREGATES.to_vec();
        for a in &self.aggregates {
            if names.contains(&a.name.as_str()) || self.group_by.contains(&a.name) {
                p.push(format!("aggregate name {:?} is used twice", a.name));
            }
            if a.name.is_empty()
                || !a
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                p.push(format!("aggregate name {:?} must be snake_case", a.name));
            }
            if a.merge == Merge::Union && crate::detect::engine::parse_distinct(&a.sql).is_none() {
                p.push(format!(
                    "aggregate {:?}: a union must be array_agg(DISTINCT column) [FILTER (WHERE condition)]",
                    a.name
                ));
            }
            names.push(&a.name);
        }
        if self.repeat_after_secs > 7 * 86_400 {
            p.push("repeat_after_secs must be at most a week".into());
        }
        if self.conditions.is_empty() {
            p.push("conditions must not be empty".into());
        }
        for c in &self.conditions {
            match parse_condition(c) {
                Ok(cmp) => {
                    for t in cmp.iter().flat_map(|c| [&c.lhs, &c.rhs]) {
                        if let Some(n) = &t.name {
                            if !names.contains(&n.as_str()) {
                                p.push(format!("condition {c:?}: unknown aggregate {n:?}"));
                            }
                        }
                    }
                }
                Err(e) => p.push(format!("condition {c:?}: {e}")),
            }
        }
        if !(0.0..=1.0).contains(&self.risk.base) {
            p.push("risk.base must be within 0..1".into());
        }
        if let Some(i) = &self.risk.intensity {
            if !names.contains(&i.aggregate.as_str()) {
                p.push(format!(
                    "risk.intensity.aggregate {:?} is not an aggregate",
                    i.aggregate
                ));
            }
            if i.threshold <= 0.0 || i.saturate_at <= 1.0 || !(0.0..=1.0).contains(&i.weight) {
                p.push(
                    "risk.intensity needs threshold > 0, saturate_at > 1 and weight within 0..1"
                        .into(),
                );
            }
        }
        for (m, w) in &self.risk.modifiers {
            if !MODIFIERS.contains(&m.as_str()) {
                p.push(format!("risk modifier {m:?} is not one of {MODIFIERS:?}"));
            }
            if !(-1.0..=1.0).contains(w) {
                p.push(format!("risk modifier {m:?} weight must be within -1..1"));
            }
        }
        if !INTENTS.contains(&self.intent.as_str()) {
            p.push(format!(
                "intent {:?} is not one of {INTENTS:?}",
                self.intent
            ));
        }
        if self.mitre.is_empty() {
            p.push("mitre must list at least one technique".into());
        }
        for m in &self.mitre {
            let t = m.technique.as_bytes();
            let ok = t.len() >= 5
                && t[0] == b'T'
                && t[1..5].iter().all(u8::is_ascii_digit)
                && (t.len() == 5
                    || (t.len() == 9 && t[5] == b'.' && t[6..].iter().all(u8::is_ascii_digit)));
            if !ok {
                p.push(format!(
                    "MITRE technique {:?} must look like T1234 or T1234.001",
                    m.technique
                ));
            }
        }
        let fixed = ["tenant", "window_start", "window_end", "date"];
        for (field, text) in [
            ("narrative", &self.narrative),
            ("recommendation", &self.recommendation),
        ] {
            for ph in placeholders(text) {
                if !names.contains(&ph)
                    && !self.group_by.iter().any(|g| g == ph)
                    && !fixed.contains(&ph)
                {
                    p.push(format!("{field}: unknown placeholder {{{ph}}}"));
                }
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse() {
        let c = parse_condition("failures >= 2 * users or x < 3").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].op, Op::Ge);
        assert_eq!(
            c[0].rhs,
            Term {
                factor: 2.0,
                name: Some("users".into())
            }
        );
        assert_eq!(
            c[1].rhs,
            Term {
                factor: 3.0,
                name: None
            }
        );
        assert!(parse_condition("failures").is_err());
        assert!(parse_condition("a >= b; drop").is_err());
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholders("a {x} b {y_z}"), ["x", "y_z"]);
    }
}
