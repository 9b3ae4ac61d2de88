//! Playbook runs: a checked state machine, and the events that record them on the runs topic.
//!
//! ```text
//! Queued ──▶ Running ──▶ Succeeded | Failed
//!   │           ▲
//!   └─▶ AwaitingApproval ──▶ Rejected | Expired
//! ```
//!
//! Nothing skips a state: a run needing approval can only reach `Running` from `AwaitingApproval` through an
//! approval, and `Rejected`/`Expired` runs never execute a step. A run's history is the sequence of
//! [`RunEvent`]s on the runs topic; [`Runs::apply`] folds them into the current state, ignoring repeats
//! (by event id) and refusing transitions the machine does not allow.

use std::collections::{BTreeMap, BTreeSet};

use sentra_schemas::Signal;
use serde::{Deserialize, Serialize};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    /// Created, not yet started.
    Queued,
    /// Waiting for a person's decision.
    AwaitingApproval,
    /// Executing its steps.
    Running,
    /// Every step ran (or was skipped by its condition) and none failed.
    Succeeded,
    /// A step failed; later steps did not run.
    Failed,
    /// A person rejected it; no step ran.
    Rejected,
    /// Nobody decided in time; no step ran.
    Expired,
}

impl RunState {
    /// Whether the machine allows `self → to`.
    pub fn can_become(self, to: RunState) -> bool {
        use RunState::*;
        matches!(
            (self, to),
            (Queued, AwaitingApproval)
                | (Queued, Running)
                | (AwaitingApproval, Running)
                | (AwaitingApproval, Rejected)
                | (AwaitingApproval, Expired)
                | (Running, Succeeded)
                | (Running, Failed)
        )
    }

    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Rejected | RunState::Expired
        )
    }
}

/// A person's decision on an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Approved (true) or rejected.
    pub approve: bool,
    /// Who decided.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When, epoch microseconds.
    pub at_us: i64,
}

/// One step's execution record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Position in the playbook, from 0.
    pub index: usize,
    /// The step's name.
    pub name: String,
    /// `started`, `succeeded`, `failed` or `skipped`.
    pub status: String,
    /// Output or result (truncated).
    pub output: String,
    /// Duration, milliseconds (0 when started or skipped).
    pub duration_ms: u64,
    /// When, epoch microseconds.
    pub at_us: i64,
}

/// A run as the fold sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `<playbook id>-<signal id>`: the same signal never starts the same playbook twice.
    pub id: String,
    /// The playbook.
    pub playbook: String,
    /// The signal's tenant.
    pub tenant: String,
    /// The signal that started it.
    pub signal: Signal,
    /// Current state.
    pub state: RunState,
    /// Why approval is needed (empty when it is not).
    pub approval_reasons: Vec<String>,
    /// When an undecided approval expires, epoch microseconds.
    pub approval_deadline_us: i64,
    /// The decision, once made.
    pub decision: Option<Decision>,
    /// Execution log, in order.
    pub steps: Vec<StepLog>,
    /// Created, epoch microseconds.
    pub created_us: i64,
    /// Last change, epoch microseconds.
    pub updated_us: i64,
}

/// What happened to a run (one message on the runs topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    /// Unique id (repeats are ignored).
    pub event_id: String,
    /// The run.
    pub run_id: String,
    /// When, epoch microseconds.
    pub at_us: i64,
    /// What.
    pub change: Change,
}

/// The kinds of [`RunEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A run was created (in `Queued`).
    Created {
        /// The new run.
        run: Box<Run>,
    },
    /// The run moved to another state.
    State {
        /// New state.
        to: RunState,
        /// Why.
        reason: String,
    },
    /// A person decided (the engine then moves the run).
    Decided {
        /// The decision.
        decision: Decision,
    },
    /// A step started, finished or was skipped.
    Step {
        /// The record.
        log: StepLog,
    },
}

/// Why an event was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The run does not exist.
    #[error("no playbook run {0}")]
    Unknown(String),
    /// The state machine forbids it.
    #[error("run {run} is {from:?}; it cannot become {to:?}")]
    Forbidden {
        /// The run.
        run: String,
        /// Its state.
        from: RunState,
        /// The refused state.
        to: RunState,
    },
    /// A decision on a run that is not waiting for one.
    #[error("run {run} is {state:?}, not awaiting approval")]
    NotAwaiting {
        /// The run.
        run: String,
        /// Its state.
        state: RunState,
    },
}

/// Every run, folded from the runs topic.
#[derive(Debug, Default)]
pub struct Runs {
    runs: BTreeMap<String, Run>,
    seen: BTreeSet<String>,
}

impl Runs {
    /// Applies `e` unless it was applied before. Returns whether it changed anything.
    pub fn apply(&mut self, e: &RunEvent) -> Result<bool, RunError> {
        if self.seen.contains(&e.event_id) {
            return Ok(false);
        }
        match &e.change {
            Change::Created { run } => {
                if self.runs.contains_key(&e.run_id) {
                    self.seen.insert(e.event_id.clone());
                    return Ok(false);
                }
                self.runs.insert(e.run_id.clone(), (**run).clone());
            }
            Change::State { to, .. } => {
                let run = self
                    .runs
                    .get_mut(&e.run_id)
                    .ok_or_else(|| RunError::Unknown(e.run_id.clone()))?;
                if !run.state.can_become(*to) {
                    return Err(RunError::Forbidden {
                        run: run.id.clone(),
                        from: run.state,
                        to: *to,
                    });
                }
                run.state = *to;
                run.updated_us = e.at_us;
            }
            Change::Decided { decision } => {
                let run = self
                    .runs
                    .get_mut(&e.run_id)
                    .ok_or_else(|| RunError::Unknown(e.run_id.clone()))?;
                if run.state != RunState::AwaitingApproval || run.decision.is_some() {
                    return Err(RunError::NotAwaiting {
                        run: run.id.clone(),
                        state: run.state,
                    });
                }
                run.decision = Some(decision.clone());
                run.updated_us = e.at_us;
            }
            Change::Step { log } => {
                let run = self
                    .runs
                    .get_mut(&e.run_id)
                    .ok_or_else(|| RunError::Unknown(e.run_id.clone()))?;
                run.steps.push(log.clone());
                run.updated_us = e.at_us;
            }
        }
        self.seen.insert(e.event_id.clone());
        Ok(true)
    }

    /// A run by id.
    pub fn get(&self, id: &str) -> Option<&Run> {
        self.runs.get(id)
    }

    /// Every run, by id.
    pub fn all(&self) -> impl Iterator<Item = &Run> {
        self.runs.values()
    }
}

/// A new event id (unique per process and time).
pub fn event_id(run_id: &str, what: &str, at_us: i64) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sentra_schemas::hex_digest(
        &[
            run_id.as_bytes(),
            what.as_bytes(),
            &at_us.to_le_bytes(),
            &n.to_le_bytes(),
            &std::process::id().to_le_bytes(),
        ],
        32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_allows_only_its_edges() {
        use RunState::*;
        let all = [
            Queued,
            AwaitingApproval,
            Running,
            Succeeded,
            Failed,
            Rejected,
            Expired,
        ];
        let allowed: Vec<(RunState, RunState)> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            [
                (Queued, AwaitingApproval),
                (Queued, Running),
                (AwaitingApproval, Running),
                (AwaitingApproval, Rejected),
                (AwaitingApproval, Expired),
                (Running, Succeeded),
                (Running, Failed),
            ]
        );
        for s in [Succeeded, Failed, Rejected, Expired] {
            assert!(s.is_final() && all.iter().all(|t| !s.can_become(*t)));
        }
    }
}
