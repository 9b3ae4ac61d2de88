//! Whether this process can do its work. Liveness (`/healthz`) is the process answering at all; readiness
//! (`/readyz`) is every background worker running and every dependency answering, with the details as JSON.
//!
//! Background workers run under [`supervise`]: one that fails is restarted with backoff, and shows as down,
//! with its error, from the failure until it runs again.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentra_pipeline::detect::ShedTotals;
use sentra_retry::Backoff;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

/// How long a dependency may take to answer a readiness check.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How a failed worker is restarted: after a backoff that grows while it keeps failing, and starts over once
/// it ran `healthy_run` before failing.
#[derive(Debug, Clone, Copy)]
struct Restarts {
    backoff: Backoff,
    healthy_run: Duration,
}

/// Workers' restarts: 1 s doubling to a minute; a minute of running counts as healthy.
const RESTARTS: Restarts = Restarts {
    backoff: Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
    },
    healthy_run: Duration::from_secs(60),
};

/// A dependency whose reachability decides readiness.
#[async_trait::async_trait]
pub trait Dependency: Send + Sync {
    /// Its name in the report.
    fn name(&self) -> &'static str;
    /// Ok when it answers; otherwise what went wrong.
    async fn check(&self) -> Result<(), String>;
}

/// One line of the readiness report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// Whether this part is ready.
    pub ok: bool,
    /// What is wrong, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a worker: how often it was restarted after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
}

/// The readiness report: ready when every check is ok.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// Whether every check is ok.
    pub ready: bool,
    /// Each dependency (`kafka`, `clickhouse`, `elasticsearch`) and worker (`worker:<name>`).
    pub checks: BTreeMap<String, Check>,
}

/// The process's health: its supervised workers, the dependencies it probes, and how much state the
/// detections shed.
#[derive(Default)]
pub struct Health {
    workers: Mutex<BTreeMap<String, Check>>,
    dependencies: Vec<Box<dyn Dependency>>,
    /// Entities each detection dropped per tenant at its limit, as the run loop last reported them.
    state_shed: Mutex<ShedTotals>,
}

impl Health {
    /// Health that probes `dependencies` on each readiness check.
    pub fn new(dependencies: Vec<Box<dyn Dependency>>) -> Self {
        Self {
            workers: Mutex::default(),
            dependencies,
            state_shed: Mutex::default(),
        }
    }

    /// Records the engine's counts of entities dropped per tenant and detection.
    pub fn set_state_shed(&self, totals: &ShedTotals) {
        *self.state_shed.lock().unwrap_or_else(|e| e.into_inner()) = totals.clone();
    }

    /// Those counts as Prometheus text: `sentra_detection_state_shed_total{tenant, detection}`.
    pub fn state_shed_metrics(&self) -> String {
        use std::fmt::Write as _;
        let label = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let mut text = String::from(
            "# HELP sentra_detection_state_shed_total Entities a detection dropped for a tenant at \
             detection.max_entities_per_detection.\n# TYPE sentra_detection_state_shed_total counter\n",
        );
        let totals = self.state_shed.lock().unwrap_or_else(|e| e.into_inner());
        for (tenant, detections) in totals.iter() {
            for (detection, n) in detections {
                let (t, d) = (label(tenant), label(detection));
                let _ = writeln!(
                    text,
                    "sentra_detection_state_shed_total{{tenant=\"{t}\",detection=\"{d}\"}} {n}"
                );
            }
        }
        text
    }

    fn set(&self, worker: &str, ok: bool, error: Option<String>) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let w = workers.entry(worker.to_owned()).or_insert(Check {
            ok,
            error: None,
            restarts: Some(0),
        });
        if !ok {
            w.restarts = w.restarts.map(|r| r + 1);
        }
        w.ok = ok;
        w.error = error;
    }

    /// Probes every dependency (concurrently, each within a few seconds) and reports them with the workers.
    pub async fn readiness(&self) -> Readiness {
        let probes = self.dependencies.iter().map(|d| async move {
            let r = match tokio::time::timeout(PROBE_TIMEOUT, d.check()).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
            };
            (d.name().to_owned(), r)
        });
        let mut checks: BTreeMap<String, Check> = futures::future::join_all(probes)
            .await
            .into_iter()
            .map(|(name, r)| {
                let check = Check {
                    ok: r.is_ok(),
                    error: r.err(),
                    restarts: None,
                };
                (name, check)
            })
            .collect();
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for (name, w) in workers.iter() {
            checks.insert(format!("worker:{name}"), w.clone());
        }
        Readiness {
            ready: checks.values().all(|c| c.ok),
            checks,
        }
    }
}

#[async_trait::async_trait]
impl Dependency for sentra_sinks::clickhouse::ClickHouseSink {
    fn name(&self) -> &'static str {
        "clickhouse"
    }
    async fn check(&self) -> Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl Dependency for sentra_sinks::elasticsearch::ElasticsearchSink {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }
    async fn check(&self) -> Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl Dependency for sentra_kafka::reachable::Brokers {
    fn name(&self) -> &'static str {
        "kafka"
    }
    async fn check(&self) -> Result<(), String> {
        self.reachable(PROBE_TIMEOUT)
            .await
            .map_err(|e| format!("no broker answered: {e}"))
    }
}

/// Runs the worker `start` makes until it ends without error (at shutdown), restarting it each time it
/// fails: after 1 s, doubling to a minute while it keeps failing, and after 1 s again once it had run a minute.
/// `health` shows it up while it runs and down, with the error, from a failure to its restart. Returns its
/// result, or `None` when shutdown came while it waited to restart.
pub async fn supervise<T, E: Display, F: Future<Output = Result<T, E>>>(
    health: Arc<Health>,
    name: String,
    shutdown: watch::Receiver<bool>,
    start: impl FnMut() -> F,
) -> Option<T> {
    supervise_with(RESTARTS, health, name, shutdown, start).await
}

/// [`supervise`] with its restart policy given.
async fn supervise_with<T, E: Display, F: Future<Output = Result<T, E>>>(
    restarts: Restarts,
    health: Arc<Health>,
    name: String,
    mut shutdown: watch::Receiver<bool>,
    mut start: impl FnMut() -> F,
) -> Option<T> {
    let mut failures = 0;
    loop {
        health.set(&name, true, None);
        let began = std::time::Instant::now();
        let e = match start().await {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        failures = if began.elapsed() >= restarts.healthy_run {
            1
        } else {
            failures + 1
        };
        let wait = restarts.backoff.delay(failures);
        warn!(worker = %name, error = %e, failures, ?wait, "worker failed; restarting it after the wait");
        health.set(&name, false, Some(e.to_string()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => info!(worker = %name, "restarting worker"),
            _ = shutdown.wait_for(|stop| *stop) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn state_shed_is_a_counter_per_tenant_and_detection() {
        let health = Health::default();
        let mut totals = ShedTotals::new();
        totals
            .entry("acme".into())
            .or_default()
            .insert("ssh_brute_force".into(), 95_000);
        totals
            .entry("acme".into())
            .or_default()
            .insert("odd\"name".into(), 1);
        health.set_state_shed(&totals);
        let text = health.state_shed_metrics();
        assert!(
            text.contains("# TYPE sentra_detection_state_shed_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("sentra_detection_state_shed_total{tenant=\"acme\",detection=\"ssh_brute_force\"} 95000\n"),
            "{text}"
        );
        assert!(text.contains("detection=\"odd\\\"name\"} 1\n"), "{text}");
    }

    struct Fixed(&'static str, Result<(), String>);

    #[async_trait::async_trait]
    impl Dependency for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        async fn check(&self) -> Result<(), String> {
            self.1.clone()
        }
    }

    struct Hung;

    #[async_trait::async_trait]
    impl Dependency for Hung {
        fn name(&self) -> &'static str {
            "hung"
        }
        async fn check(&self) -> Result<(), String> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn ready_only_when_every_dependency_answers() {
        let all_up = Health::new(vec![Box::new(Fixed("kafka", Ok(())))]);
        assert!(all_up.readiness().await.ready);
        let one_down = Health::new(vec![
            Box::new(Fixed("kafka", Ok(()))),
            Box::new(Fixed("clickhouse", Err("connection refused".into()))),
        ]);
        let r = one_down.readiness().await;
        assert!(!r.ready);
        assert_eq!(
            r.checks["clickhouse"].error.as_deref(),
            Some("connection refused")
        );
        assert!(r.checks["kafka"].ok);
    }

    #[tokio::test]
    async fn a_hung_dependency_is_not_ready_and_does_not_hang_the_check() {
        let h = Health::new(vec![Box::new(Hung), Box::new(Fixed("kafka", Ok(())))]);
        let r = h.readiness().await;
        assert!(!r.ready && r.checks["kafka"].ok);
        assert!(r.checks["hung"]
            .error
            .as_deref()
            .unwrap()
            .contains("no answer"));
    }

    #[tokio::test]
    async fn a_failing_worker_is_restarted_and_unready_until_it_runs_again() {
        let health = Arc::new(Health::default());
        let (stop, shutdown) = watch::channel(false);
        let starts = Arc::new(AtomicU32::new(0));
        let (release, released) = watch::channel(false);
        let worker = {
            let (starts, health) = (Arc::clone(&starts), Arc::clone(&health));
            tokio::spawn(supervise(health, "chainer".into(), shutdown, move || {
                let n = starts.fetch_add(1, Ordering::SeqCst) + 1;
                let mut released = released.clone();
                async move {
                    if n <= 2 {
                        return Err(format!("broker gone ({n})"));
                    }
                    // The third start runs until released, as a healthy worker does until shutdown.
                    let _ = released.wait_for(|r| *r).await;
                    Ok::<u32, String>(n)
                }
            }))
        };
        // Between the first failure and its restart the worker is down, with the error.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = health.readiness().await;
        assert!(!r.ready);
        assert_eq!(
            r.checks["worker:chainer"].error.as_deref(),
            Some("broker gone (1)")
        );
        // After the backoff (about 1 s, then 2 s) it runs again and is ready.
        let waited = std::time::Instant::now();
        while starts.load(Ordering::SeqCst) < 3 {
            assert!(waited.elapsed() < Duration::from_secs(10), "not restarted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = health.readiness().await;
        assert!(r.ready, "{r:?}");
        assert_eq!(r.checks["worker:chainer"].restarts, Some(2));
        release.send(true).unwrap();
        assert_eq!(worker.await.unwrap(), Some(3));
        drop(stop);
    }

    #[tokio::test]
    async fn the_restart_backoff_starts_over_after_a_healthy_run() {
        let restarts = Restarts {
            backoff: Backoff {
                initial: Duration::from_millis(20),
                max: Duration::from_secs(5),
            },
            healthy_run: Duration::from_millis(300),
        };
        // Six quick failures, one long healthy run that then fails, one more quick failure, then it runs.
        let runs = [0u64, 0, 0, 0, 0, 0, 400, 0];
        let starts = Arc::new(Mutex::new(Vec::new()));
        let (_stop, shutdown) = watch::channel(false);
        let recorded = Arc::clone(&starts);
        let worker = supervise_with(restarts, Arc::default(), "w".into(), shutdown, move || {
            let mut s = recorded.lock().unwrap();
            s.push(std::time::Instant::now());
            let n = s.len();
            async move {
                match runs.get(n - 1) {
                    Some(&ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Err(format!("failure {n}"))
                    }
                    None => Ok(n),
                }
            }
        });
        let ran = tokio::time::timeout(Duration::from_secs(20), worker).await;
        assert_eq!(ran.expect("the worker ends").unwrap(), runs.len() + 1);
        let starts = starts.lock().unwrap();
        let gap = |i: usize| starts[i] - starts[i - 1];
        // After six quick failures the wait had grown to 320-640 ms; after the healthy run it is 10-20 ms again.
        assert!(gap(6) >= Duration::from_millis(320), "{:?}", gap(6));
        let after_healthy = gap(7) - Duration::from_millis(400);
        assert!(
            after_healthy < Duration::from_millis(200),
            "{after_healthy:?}"
        );
    }
}
