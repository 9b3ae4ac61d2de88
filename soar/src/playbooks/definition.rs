//! Playbook files (`*.yaml` in the playbooks folder): what a playbook matches, when it needs a person's
//! approval, and its ordered steps.
//!
//! ```yaml
//! id: contain-brute-force
//! name: Contain an SSH brute force
//! match:
//!   signals: [ssh_brute_force, ssh_password_spray]
//!   min_severity: HIGH            # LOW | MEDIUM | HIGH | CRITICAL
//!   min_risk: 0.5
//!   tenants: [acme]               # empty or absent: every tenant
//!   tags: [T1110.001]             # any of the signal's MITRE techniques, intent or controls
//! requires_approval_if:
//!   severity_at_least: HIGH
//!   privileged_account: true      # root/admin-like user, or the privileged_target risk factor
//!   destructive_step: true        # any step marked destructive
//! approval_timeout_secs: 3600     # an undecided approval expires; the run never executes
//! steps:
//!   - name: open a case
//!     webhook: { destination: default }
//!   - name: tell on-call
//!     notify: { destination: slack-oncall }
//!   - name: block the source
//!     script: { path: block_ip.sh, args: ["--tenant={tenant}", "--", "{ip}"], timeout_secs: 30 }
//!     destructive: true
//!     when: { has: [ip], min_risk: 0.7 }
//! ```

use std::path::Path;

use sentra_schemas::{Severity, Signal};
use serde::Deserialize;

/// One playbook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Stable id (part of every run id).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Which signals start a run.
    #[serde(rename = "match")]
    pub matches: Match,
    /// When a run must wait for a person's decision.
    #[serde(default)]
    pub requires_approval_if: ApprovalRules,
    /// How long an approval may wait before the run expires.
    #[serde(default = "day")]
    pub approval_timeout_secs: u64,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

fn day() -> u64 {
    86_400
}

/// Which signals a playbook takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Detection names; empty: any.
    #[serde(default)]
    pub signals: Vec<String>,
    /// Lowest severity.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Lowest risk.
    #[serde(default)]
    pub min_risk: Option<f64>,
    /// Tenants; empty: any.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Any of these among the signal's MITRE techniques, intent and compliance controls; empty: any.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// When a run needs approval (any rule that holds is a reason).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRules {
    /// The signal's severity is at least this.
    #[serde(default)]
    pub severity_at_least: Option<Severity>,
    /// The signal concerns a privileged account.
    #[serde(default)]
    pub privileged_account: bool,
    /// The playbook has a destructive step.
    #[serde(default)]
    pub destructive_step: bool,
    /// Always.
    #[serde(default)]
    pub always: bool,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Shown in logs and the execution log.
    pub name: String,
    /// POST the signal's envelope to a configured SOAR destination.
    #[serde(default)]
    pub webhook: Option<DestinationRef>,
    /// Send the calm text to a configured chat destination.
    #[serde(default)]
    pub notify: Option<DestinationRef>,
    /// Run a script from the script repository.
    #[serde(default)]
    pub script: Option<Script>,
    /// Whether the step changes something that is hard to undo (blocks, disables, deletes).
    #[serde(default)]
    pub destructive: bool,
    /// Run only when these hold (otherwise skipped).
    #[serde(default)]
    pub when: Option<Condition>,
}

/// A destination by name (from `[soar]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationRef {
    /// Its name.
    pub destination: String,
}

/// A script step: a file in the script repository, run directly (never through a shell).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// File name inside the script repository (no directories).
    pub path: String,
    /// Arguments; `{ip}`, `{user}`, `{tenant}`, `{signal}`, `{signal_id}`, `{host}` are replaced by the
    /// signal's values in one pass, each staying one argument whatever it contains. A value may start an
    /// argument with `-` only after a `--` argument (`["--", "{user}"]`) or inside an option
    /// (`"--user={user}"`); otherwise the step fails without running.
    #[serde(default)]
    pub args: Vec<String>,
    /// Killed after this long.
    #[serde(default = "half_minute")]
    pub timeout_secs: u64,
}

fn half_minute() -> u64 {
    30
}

/// A step condition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Fields the signal must carry: `ip`, `user`.
    #[serde(default)]
    pub has: Vec<String>,
    /// Lowest risk.
    #[serde(default)]
    pub min_risk: Option<f64>,
}

/// Accounts treated as privileged.
const PRIVILEGED: [&str; 6] = ["root", "admin", "administrator", "toor", "sudo", "wheel"];

impl Playbook {
    /// Whether `signal` starts a run of this playbook (suppressed signals never do).
    pub fn matches(&self, s: &Signal) -> bool {
        let m = &self.matches;
        !s.suppressed
            && (m.signals.is_empty() || m.signals.contains(&s.signal))
            && m.min_severity.is_none_or(|min| s.severity >= min)
            && m.min_risk.is_none_or(|min| s.risk_score >= min)
            && (m.tenants.is_empty() || m.tenants.iter().any(|t| t == s.tenant.as_str()))
            && (m.tags.is_empty()
                || m.tags.iter().any(|t| {
                    s.mitre.iter().any(|x| &x.technique == t)
                        || &s.intent == t
                        || s.compliance.contains(t)
                }))
    }

    /// Why a run for `signal` needs approval (empty: it does not).
    pub fn approval_reasons(&self, s: &Signal) -> Vec<String> {
        let r = &self.requires_approval_if;
        let mut why = Vec::new();
        if r.always {
            why.push("this playbook always asks".to_owned());
        }
        if let Some(min) = r.severity_at_least {
            if s.severity >= min {
                why.push(format!(
                    "severity {} is at least {}",
                    s.severity.as_str(),
                    min.as_str()
                ));
            }
        }
        if r.privileged_account {
            let privileged_user = s
                .user
                .as_deref()
                .is_some_and(|u| PRIVILEGED.contains(&u.to_ascii_lowercase().as_str()));
            if privileged_user || s.risk_factors.iter().any(|f| f.name == "privileged_target") {
                why.push("it concerns a privileged account".to_owned());
            }
        }
        if r.destructive_step && self.steps.iter().any(|st| st.destructive) {
            why.push("a step is destructive".to_owned());
        }
        why
    }

    /// Every problem with the playbook (empty when valid); `destinations` are the configured names.
    pub fn problems(&self, destinations: &[&str]) -> Vec<String> {
        let mut p = Vec::new();
        let at = |what: String| format!("playbook {}: {what}", self.id);
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            p.push(at("id may only contain letters, digits, '-' and '_'".into()));
        }
        if self.steps.is_empty() {
            p.push(at("has no steps".into()));
        }
        for st in &self.steps {
            let kinds = [
                st.webhook.is_some(),
                st.notify.is_some(),
                st.script.is_some(),
            ]
            .iter()
            .filter(|k| **k)
            .count();
            if kinds != 1 {
                p.push(at(format!(
                    "step {:?} must be exactly one of webhook, notify, script",
                    st.name
                )));
            }
            for d in [&st.webhook, &st.notify].into_iter().flatten() {
                if !destinations.contains(&d.destination.as_str()) {
                    p.push(at(format!(
                        "step {:?} names unknown destination {:?}",
                        st.name, d.destination
                    )));
                }
            }
            if let Some(s) = &st.script {
                if s.path.is_empty()
                    || s.path.contains('/')
                    || s.path.contains('\\')
                    || s.path.starts_with('.')
                {
                    p.push(at(format!(
                        "step {:?}: script path must be a file name in the script repository",
                        st.name
                    )));
                }
            }
        }
        p
    }
}

/// Loads every `*.yaml` / `*.yml` playbook in `folder`, sorted by file name; lists every problem.
pub fn load(folder: &Path, destinations: &[&str]) -> Result<Vec<Playbook>, Vec<String>> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .map_err(|e| vec![format!("playbooks folder {}: {e}", folder.display())])?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out: Vec<Playbook> = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        let parsed = std::fs::read_to_string(&f)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_norway::from_str::<Playbook>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(pb) => {
                problems.extend(pb.problems(destinations));
                if out.iter().any(|o| o.id == pb.id) {
                    problems.push(format!("playbook id {} is used twice", pb.id));
                }
                out.push(pb);
            }
            Err(e) => problems.push(format!("{}: {e}", f.display())),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
