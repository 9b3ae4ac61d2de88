//! The playbook engine and the approvals it waits for.
//!
//! The engine follows the signals topic (its own consumer group, committed after each signal's runs are
//! created and, when no approval is needed, executed) and the runs topic (read whole on start, then
//! followed), so every run's state survives a restart. Decisions are events on the runs topic written by
//! [`decide`] (the `sentra approvals` command); the engine executes a run only after it folds an approval,
//! marks it rejected on a rejection, and expires approvals nobody decided in time. Run exactly one engine
//! per deployment: a restarted engine fails runs a crash interrupted mid-step (it cannot know whether the
//! step took effect) instead of repeating them.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use sentra_schemas::audit::AuditEvent;
use sentra_schemas::Signal;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use super::definition::Playbook;
use super::run::{event_id, Change, Decision, Run, RunError, RunEvent, RunState, Runs, StepLog};
use super::steps::Executor;
use crate::audit::AuditLog;
use sentra_kafka::Producer;

/// The client name of the readers that fold the runs topic from its beginning (they join no group).
const RUNS_READER: &str = "sentra-runs-reader";

/// Why the engine or a decision failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Kafka failed.
    #[error("Kafka: {0} (check kafka.brokers and that the playbook topics exist)")]
    Kafka(#[from] KafkaError),
    /// The run cannot take this change.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A decision without a name or a reason.
    #[error("{0}")]
    Invalid(String),
}

/// Reads `consumer` until it has been quiet for `idle`, folding run events into `runs`.
async fn catch_up(
    consumer: &StreamConsumer,
    runs: &mut Runs,
    idle: Duration,
) -> Result<(), KafkaError> {
    loop {
        match tokio::time::timeout(idle, consumer.recv()).await {
            Err(_) => return Ok(()),
            Ok(m) => fold(runs, m?.payload().unwrap_or_default()),
        }
    }
}

fn fold(runs: &mut Runs, payload: &[u8]) {
    match serde_json::from_slice::<RunEvent>(payload) {
        Ok(e) => {
            if let Err(err) = runs.apply(&e) {
                warn!(run = %e.run_id, error = %err, "ignoring a run event the state machine refuses");
            }
        }
        Err(e) => warn!(error = %e, "skipping a message that is not a run event"),
    }
}

/// Every run on the runs topic (for `sentra approvals list` and decisions).
pub async fn load_runs(
    client: &ClientConfig,
    runs_topic: &str,
    idle: Duration,
) -> Result<Runs, KafkaError> {
    let consumer = sentra_kafka::consumer::from_beginning(client, RUNS_READER, runs_topic)?;
    let mut runs = Runs::default();
    catch_up(&consumer, &mut runs, idle).await?;
    Ok(runs)
}

async fn publish(producer: &Producer, topic: &str, e: &RunEvent) -> Result<(), KafkaError> {
    let payload = serde_json::to_vec(e).expect("run events serialize");
    producer
        .send(
            FutureRecord::to(topic).key(&e.run_id).payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .map(|_| ())
}

/// Records a person's decision on run `run_id` (which must be awaiting approval and not yet decided).
/// `by` and `reason` are required. With `tenant`, a run of another tenant is reported as unknown. The
/// engine acts on the decision.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    client: &ClientConfig,
    runs_topic: &str,
    audit: Option<&AuditLog>,
    tenant: Option<&str>,
    run_id: &str,
    approve: bool,
    by: &str,
    reason: &str,
) -> Result<Run, EngineError> {
    if by.trim().is_empty() || reason.trim().is_empty() {
        return Err(EngineError::Invalid(
            "a decision needs --by NAME and --reason TEXT".into(),
        ));
    }
    let mut runs = load_runs(client, runs_topic, Duration::from_secs(2)).await?;
    if tenant.is_some_and(|t| runs.get(run_id).is_some_and(|r| r.tenant != t)) {
        return Err(RunError::Unknown(run_id.into()).into());
    }
    let at_us = sentra_schemas::time::now_us();
    let event = RunEvent {
        event_id: event_id(run_id, "decided", at_us),
        run_id: run_id.into(),
        at_us,
        change: Change::Decided {
            decision: Decision {
                approve,
                by: by.into(),
                reason: reason.into(),
                at_us,
            },
        },
    };
    if let Some(run) = runs.get(run_id) {
        if run.state == RunState::AwaitingApproval && at_us > run.approval_deadline_us {
            return Err(EngineError::Invalid(format!(
                "run {run_id} is past its approval deadline; it expires without running"
            )));
        }
    }
    runs.apply(&event)?;
    let run = runs.get(run_id).expect("applied").clone();
    let producer = Producer::acknowledged(client)?;
    if let Some(audit) = audit {
        audit
            .record(&[AuditEvent::new(
                &run.tenant,
                at_us,
                by,
                "approval.decided",
                run_id,
                json!({"approve": approve, "reason": reason, "playbook": run.playbook, "signal": run.signal.id}),
            )])
            .await?;
    }
    publish(&producer, runs_topic, &event).await?;
    Ok(run)
}

/// What the engine did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Runs created.
    pub created: u64,
    /// Runs that finished `Succeeded`.
    pub succeeded: u64,
    /// Runs that finished `Failed`.
    pub failed: u64,
    /// Runs rejected.
    pub rejected: u64,
    /// Runs expired.
    pub expired: u64,
}

/// The playbook engine's settings.
pub struct EngineConfig {
    /// Kafka client settings.
    pub client: ClientConfig,
    /// Consumer group for the signals topic.
    pub group: String,
    /// Signals topic (the SOAR queue).
    pub signals_topic: String,
    /// Runs topic.
    pub runs_topic: String,
}

struct Engine {
    playbooks: Vec<Playbook>,
    executor: Executor,
    runs: Runs,
    producer: Producer,
    runs_topic: String,
    audit: Option<AuditLog>,
    stats: EngineStats,
}

impl Engine {
    async fn emit(&mut self, run_id: &str, change: Change) -> Result<(), EngineError> {
        let at_us = sentra_schemas::time::now_us();
        let e = RunEvent {
            event_id: event_id(run_id, "engine", at_us),
            run_id: run_id.into(),
            at_us,
            change,
        };
        self.runs.apply(&e)?;
        publish(&self.producer, &self.runs_topic, &e).await?;
        Ok(())
    }

    async fn audit(
        &self,
        run: &Run,
        actor: &str,
        action: &str,
        details: serde_json::Value,
    ) -> Result<(), EngineError> {
        if let Some(a) = &self.audit {
            a.record(&[AuditEvent::new(
                &run.tenant,
                sentra_schemas::time::now_us(),
                actor,
                action,
                &run.id,
                details,
            )])
            .await?;
        }
        Ok(())
    }

    async fn set_state(
        &mut self,
        run_id: &str,
        to: RunState,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.emit(
            run_id,
            Change::State {
                to,
                reason: reason.into(),
            },
        )
        .await?;
        let run = self.runs.get(run_id).expect("exists").clone();
        self.audit(
            &run,
            "sentra",
            "run.state",
            json!({"to": to, "reason": reason, "playbook": run.playbook}),
        )
        .await?;
        match to {
            RunState::Succeeded => self.stats.succeeded += 1,
            RunState::Failed => self.stats.failed += 1,
            RunState::Rejected => self.stats.rejected += 1,
            RunState::Expired => self.stats.expired += 1,
            _ => {}
        }
        Ok(())
    }

    /// Creates the runs `signal` starts and moves each as far as it can go.
    async fn on_signal(
        &mut self,
        signal: &Signal,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        let matching: Vec<Playbook> = self
            .playbooks
            .iter()
            .filter(|p| p.matches(signal))
            .cloned()
            .collect();
        for pb in matching {
            let id = format!("{}-{}", pb.id, signal.id);
            if self.runs.get(&id).is_some() {
                continue;
            }
            let now = sentra_schemas::time::now_us();
            let run = Run {
                id: id.clone(),
                playbook: pb.id.clone(),
                tenant: signal.tenant.as_str().into(),
                signal: signal.clone(),
                state: RunState::Queued,
                approval_reasons: pb.approval_reasons(signal),
                approval_deadline_us: now + pb.approval_timeout_secs as i64 * 1_000_000,
                decision: None,
                steps: Vec::new(),
                created_us: now,
                updated_us: now,
            };
            self.emit(&id, Change::Created { run: Box::new(run) })
                .await?;
            self.stats.created += 1;
            self.advance(&id, shutdown).await?;
        }
        Ok(())
    }

    /// Moves a run forward from where it is: Queued → awaiting or running; decided → running or rejected.
    async fn advance(
        &mut self,
        run_id: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        let Some(run) = self.runs.get(run_id).cloned() else {
            return Ok(());
        };
        match (run.state, &run.decision) {
            (RunState::Queued, _) if !run.approval_reasons.is_empty() => {
                self.set_state(
                    run_id,
                    RunState::AwaitingApproval,
                    &run.approval_reasons.join("; "),
                )
                .await?;
                self.audit(&run, "sentra", "approval.requested", json!({"reasons": run.approval_reasons, "playbook": run.playbook, "signal": run.signal.id})).await?;
                info!(run = run_id, "waiting for approval");
            }
            (RunState::Queued, _) => self.execute(run_id, "no approval needed", shutdown).await?,
            (RunState::AwaitingApproval, Some(d)) if d.approve => {
                let why = format!("approved by {}: {}", d.by, d.reason);
                self.execute(run_id, &why, shutdown).await?
            }
            (RunState::AwaitingApproval, Some(d)) => {
                let why = format!("rejected by {}: {}", d.by, d.reason);
                self.set_state(run_id, RunState::Rejected, &why).await?
            }
            _ => {}
        }
        Ok(())
    }

    async fn execute(
        &mut self,
        run_id: &str,
        why: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        self.set_state(run_id, RunState::Running, why).await?;
        let run = self.runs.get(run_id).expect("exists").clone();
        let Some(pb) = self
            .playbooks
            .iter()
            .find(|p| p.id == run.playbook)
            .cloned()
        else {
            return self
                .set_state(run_id, RunState::Failed, "the playbook is no longer loaded")
                .await;
        };
        for (index, step) in pb.steps.iter().enumerate() {
            let skip = step.when.as_ref().is_some_and(|w| {
                let has = |f: &str| match f {
                    "ip" => run.signal.ip.is_some(),
                    "user" => run.signal.user.is_some(),
                    _ => false,
                };
                !w.has.iter().all(|f| has(f))
                    || w.min_risk.is_some_and(|m| run.signal.risk_score < m)
            });
            let log = |status: &str, output: String, duration_ms: u64| StepLog {
                index,
                name: step.name.clone(),
                status: status.into(),
                output,
                duration_ms,
                at_us: sentra_schemas::time::now_us(),
            };
            if skip {
                self.emit(
                    run_id,
                    Change::Step {
                        log: log("skipped", "condition not met".into(), 0),
                    },
                )
                .await?;
                continue;
            }
            self.emit(
                run_id,
                Change::Step {
                    log: log("started", String::new(), 0),
                },
            )
            .await?;
            let started = std::time::Instant::now();
            let (ok, output) = self.executor.run(step, &run.signal, shutdown).await;
            let ms = started.elapsed().as_millis() as u64;
            let status = if ok { "succeeded" } else { "failed" };
            self.emit(
                run_id,
                Change::Step {
                    log: log(status, output.clone(), ms),
                },
            )
            .await?;
            let excerpt: String = output.chars().take(500).collect();
            self.audit(&run, "sentra", "step.run", json!({"step": step.name, "status": status, "duration_ms": ms, "output": excerpt, "destructive": step.destructive})).await?;
            if !ok {
                return self
                    .set_state(
                        run_id,
                        RunState::Failed,
                        &format!("step {:?} failed", step.name),
                    )
                    .await;
            }
        }
        self.set_state(run_id, RunState::Succeeded, "every step succeeded")
            .await
    }

    /// After a restart: runs a crash left mid-flight.
    async fn recover(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), EngineError> {
        let pending: Vec<(String, RunState)> = self
            .runs
            .all()
            .filter(|r| !r.state.is_final())
            .map(|r| (r.id.clone(), r.state))
            .collect();
        for (id, state) in pending {
            if state == RunState::Running {
                self.set_state(
                    &id,
                    RunState::Failed,
                    "interrupted by a restart while running; steps are not repeated",
                )
                .await?;
            } else {
                self.advance(&id, shutdown).await?;
            }
        }
        Ok(())
    }

    async fn expire(&mut self) -> Result<(), EngineError> {
        let now = sentra_schemas::time::now_us();
        let overdue: Vec<String> = self
            .runs
            .all()
            .filter(|r| {
                r.state == RunState::AwaitingApproval
                    && r.decision.is_none()
                    && now > r.approval_deadline_us
            })
            .map(|r| r.id.clone())
            .collect();
        for id in overdue {
            self.set_state(
                &id,
                RunState::Expired,
                "nobody decided before the approval deadline",
            )
            .await?;
        }
        Ok(())
    }
}

/// Runs the playbook engine until `shutdown`.
pub async fn run_engine(
    config: &EngineConfig,
    playbooks: Vec<Playbook>,
    executor: Executor,
    audit: Option<AuditLog>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<EngineStats, EngineError> {
    let runs_consumer =
        sentra_kafka::consumer::from_beginning(&config.client, RUNS_READER, &config.runs_topic)?;
    let mut engine = Engine {
        playbooks,
        executor,
        runs: Runs::default(),
        producer: Producer::acknowledged(&config.client)?,
        runs_topic: config.runs_topic.clone(),
        audit,
        stats: EngineStats::default(),
    };
    catch_up(&runs_consumer, &mut engine.runs, Duration::from_secs(1)).await?;
    engine.recover(&mut shutdown).await?;
    let signals =
        sentra_kafka::consumer::group(&config.client, &config.group, &[&config.signals_topic])?;
    info!(
        playbooks = engine.playbooks.len(),
        "playbook engine running"
    );
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            m = signals.recv() => {
                let m = m?;
                match serde_json::from_slice::<Signal>(m.payload().unwrap_or_default()) {
                    Ok(s) => engine.on_signal(&s, &mut shutdown).await?,
                    Err(e) => warn!(error = %e, "skipping a message that is not a signal"),
                }
                signals.commit_message(&m, CommitMode::Sync)?;
            }
            m = runs_consumer.recv() => {
                let m = m?;
                let payload = m.payload().unwrap_or_default();
                if let Ok(e) = serde_json::from_slice::<RunEvent>(payload) {
                    let decided = matches!(e.change, Change::Decided { .. });
                    fold(&mut engine.runs, payload);
                    if decided {
                        engine.advance(&e.run_id, &mut shutdown).await?;
                    }
                }
            }
            _ = tick.tick() => engine.expire().await?,
            _ = shutdown.changed() => break,
        }
    }
    Ok(engine.stats)
}
