//! Sentra's HTTP API (axum), served by `sentra run` (over ClickHouse) and `sentra serve` (over the embedded
//! store): questions, signals, approvals, liveness (`/healthz`), readiness (`/readyz`) and metrics.
//!
//! Every `/v1` call carries an API key (`Authorization: Bearer <key>` or `X-API-Key`); the key decides the
//! tenant, never the request. Keys are configured by their SHA-256 (`[api] keys`), so the file holds no
//! secret. Each tenant has its own rate limit (governor); over it, the answer is 429 with `Retry-After`.
//! Errors are JSON `{"error": "..."}` saying what to do, without internals.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sentra_queries::intent::{Filters, Intent, Subject, What};
use sentra_queries::{AskError, Store};
use sentra_schemas::{hex_digest_plain, TenantId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{ApiConfig, Config};

#[derive(Default)]
struct Metrics {
    requests: AtomicU64,
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
    queries_ok: AtomicU64,
    queries_failed: AtomicU64,
    query_micros: AtomicU64,
}

/// Shared state of the API.
pub struct Api {
    store: Store,
    keys: BTreeMap<String, TenantId>,
    limiter: DefaultKeyedRateLimiter<String>,
    config: Option<Config>,
    llm: Option<sentra_queries::llm::LlmPlanner>,
    /// Each tenant's recently loaded names, for the planner.
    vocabularies: sentra_queries::Vocabularies,
    metrics: Metrics,
    health: Arc<crate::health::Health>,
}

type Shared = Arc<Api>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

impl Api {
    /// An API answering from `store`; `config` (when `sentra run` serves it) enables approvals.
    pub fn new(api: &ApiConfig, store: Store, config: Option<Config>) -> Self {
        let per_minute = NonZeroU32::new(api.rate_per_minute.max(1)).expect("at least 1");
        Self {
            store,
            keys: api
                .keys
                .iter()
                .filter_map(|k| {
                    Some((
                        k.key_sha256.to_ascii_lowercase(),
                        TenantId::new(&k.tenant).ok()?,
                    ))
                })
                .collect(),
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            llm: config.as_ref().and_then(|c| c.query.planner()),
            vocabularies: sentra_queries::Vocabularies::new(),
            config,
            metrics: Metrics::default(),
            health: Arc::default(),
        }
    }

    /// The same API answering `/readyz` from `health` (without, it is ready whenever it answers).
    pub fn with_health(mut self, health: Arc<crate::health::Health>) -> Self {
        self.health = health;
        self
    }

    /// The caller's tenant, or the response refusing the call.
    fn tenant(&self, headers: &HeaderMap) -> Result<TenantId, Box<Response>> {
        self.metrics.requests.fetch_add(1, Ordering::Relaxed);
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
        let tenant = key.and_then(|k| self.keys.get(&hex_digest_plain(k.as_bytes())));
        let Some(tenant) = tenant else {
            self.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "missing or unknown API key: send it as `Authorization: Bearer <key>` or `X-API-Key`",
            )));
        };
        if let Err(not_until) = self.limiter.check_key(&tenant.as_str().to_owned()) {
            self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limit reached for your tenant; retry later",
            );
            r.headers_mut().insert(
                "retry-after",
                (wait.as_secs() + 1).to_string().parse().expect("digits"),
            );
            return Err(Box::new(r));
        }
        Ok(tenant.clone())
    }

    async fn run(
        &self,
        tenant: &TenantId,
        intent: Option<Intent>,
        question: &str,
        now_us: i64,
    ) -> Response {
        let started = Instant::now();
        let result = match intent {
            Some(i) => sentra_queries::answer(&self.store, tenant, i).await,
            None => {
                sentra_queries::ask_cached(
                    &self.store,
                    &self.vocabularies,
                    tenant,
                    question,
                    now_us,
                    self.llm.as_ref(),
                )
                .await
            }
        };
        self.metrics
            .query_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(a) => {
                self.metrics.queries_ok.fetch_add(1, Ordering::Relaxed);
                Json(a).into_response()
            }
            Err(AskError::Plan(e)) => {
                self.metrics.queries_failed.fetch_add(1, Ordering::Relaxed);
                error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())
            }
            Err(e) => {
                self.metrics.queries_failed.fetch_add(1, Ordering::Relaxed);
                error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
            }
        }
    }
}

#[derive(Deserialize)]
struct QueryBody {
    question: String,
    /// Reference time (RFC 3339) for relative ranges; default now.
    #[serde(default)]
    now: Option<String>,
}

async fn query(
    State(api): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<QueryBody>>,
) -> Response {
    let tenant = match api.tenant(&headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "send JSON like {\"question\": \"how many failed logins today?\"}",
        );
    };
    let now = match body.now.as_deref() {
        None => sentra_schemas::time::now_us(),
        Some(t) => match sentra_schemas::time::parse_iso8601_prefix(t.as_bytes()) {
            Some((us, n)) if n == t.len() => us,
            _ => return error(StatusCode::BAD_REQUEST, "`now` must be an RFC 3339 time"),
        },
    };
    api.run(&tenant, None, &body.question, now).await
}

#[derive(Deserialize)]
struct SignalsParams {
    severity: Option<String>,
    signal: Option<String>,
    limit: Option<usize>,
}

async fn signals(
    State(api): State<Shared>,
    headers: HeaderMap,
    Query(p): Query<SignalsParams>,
) -> Response {
    let tenant = match api.tenant(&headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let intent = Intent {
        what: What::List,
        subject: Subject::Signals,
        filters: Filters {
            severities: p.severity.map(|s| s.to_uppercase()).into_iter().collect(),
            signals: p.signal.into_iter().collect(),
            ..Default::default()
        },
        group_by: None,
        limit: p
            .limit
            .unwrap_or(50)
            .clamp(1, sentra_queries::intent::MAX_ROWS),
        signal_id: None,
        notes: vec!["GET /v1/signals".into()],
        unclear: Vec::new(),
    };
    api.run(&tenant, Some(intent), "", sentra_schemas::time::now_us())
        .await
}

async fn signal(State(api): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let tenant = match api.tenant(&headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return error(
            StatusCode::BAD_REQUEST,
            "a signal id is 12 hexadecimal characters",
        );
    }
    let intent = Intent {
        what: What::ExplainSignal,
        subject: Subject::Signals,
        filters: Filters::default(),
        group_by: None,
        limit: 1,
        signal_id: Some(id.to_ascii_lowercase()),
        notes: vec!["GET /v1/signals/{id}".into()],
        unclear: Vec::new(),
    };
    let answer = match sentra_queries::answer(&api.store, &tenant, intent).await {
        Ok(a) if a.rows.is_empty() => {
            return error(StatusCode::NOT_FOUND, "no such signal for your tenant")
        }
        Ok(a) => a,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    // Evidence events from the forensics store, when the API serves one.
    let mut evidence = Value::Null;
    if let (Some(es), Some(client)) = (api.store.elasticsearch(), api.store.clickhouse()) {
        let ids: Vec<String> = client
            .query("SELECT evidence FROM signals FINAL WHERE tenant = ? AND signal_id = ? LIMIT 1")
            .bind(tenant.as_str())
            .bind(&id)
            .fetch_optional::<Vec<String>>()
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        if let Ok(docs) = es
            .search(tenant.as_str(), json!({"terms": {"event.id": ids}}), 100)
            .await
        {
            evidence = Value::Array(docs);
        }
    }
    Json(json!({ "signal": answer.rows[0], "summary": answer.summary, "evidence": evidence }))
        .into_response()
}

async fn approvals(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let tenant = match api.tenant(&headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Some(config) = &api.config else {
        return error(
            StatusCode::NOT_FOUND,
            "approvals are served by `sentra run`",
        );
    };
    match crate::respond::runs(config).await {
        Ok(runs) => Json(
            runs.into_iter()
                .filter(|r| {
                    r.tenant == tenant.as_str()
                        && r.state == sentra_soar::playbooks::run::RunState::AwaitingApproval
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the playbook runs could not be read; try again",
        ),
    }
}

#[derive(Deserialize)]
struct DecisionBody {
    by: String,
    reason: String,
}

async fn decide(
    State(api): State<Shared>,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    body: Option<Json<DecisionBody>>,
) -> Response {
    let tenant = match api.tenant(&headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Some(config) = &api.config else {
        return error(
            StatusCode::NOT_FOUND,
            "approvals are served by `sentra run`",
        );
    };
    let approve = match verb.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "use /v1/approvals/{id}/approve or /reject",
            )
        }
    };
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "send JSON like {\"by\": \"alice\", \"reason\": \"confirmed\"}",
        );
    };
    // Another tenant's run does not exist, as far as this caller is concerned.
    match crate::respond::decide_for(
        config,
        Some(tenant.as_str()),
        &id,
        approve,
        &body.by,
        &body.reason,
    )
    .await
    {
        Ok(run) => Json(run).into_response(),
        Err(sentra_soar::playbooks::engine::EngineError::Run(
            sentra_soar::playbooks::run::RunError::Unknown(_),
        )) => error(
            StatusCode::NOT_FOUND,
            "no such playbook run for your tenant",
        ),
        Err(e) => error(StatusCode::CONFLICT, &e.to_string()),
    }
}

/// Liveness: the process answers.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 when every worker runs and every dependency answers, 503 otherwise; the details either way.
async fn readyz(State(api): State<Shared>) -> Response {
    let r = api.health.readiness().await;
    let status = match r.ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(r)).into_response()
}

async fn metrics(State(api): State<Shared>) -> String {
    let m = &api.metrics;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let requests = format!(
        "# HELP sentra_api_requests_total Authenticated /v1 requests received.\n# TYPE sentra_api_requests_total counter\nsentra_api_requests_total {}\n\
         # HELP sentra_api_unauthorized_total Requests refused for a missing or unknown key.\n# TYPE sentra_api_unauthorized_total counter\nsentra_api_unauthorized_total {}\n\
         # HELP sentra_api_rate_limited_total Requests refused by a tenant's rate limit.\n# TYPE sentra_api_rate_limited_total counter\nsentra_api_rate_limited_total {}\n\
         # HELP sentra_queries_total Questions answered, by result.\n# TYPE sentra_queries_total counter\nsentra_queries_total{{result=\"ok\"}} {}\nsentra_queries_total{{result=\"failed\"}} {}\n\
         # HELP sentra_query_seconds_sum Time spent answering questions.\n# TYPE sentra_query_seconds_sum counter\nsentra_query_seconds_sum {:.6}\n",
        get(&m.requests),
        get(&m.unauthorized),
        get(&m.rate_limited),
        get(&m.queries_ok),
        get(&m.queries_failed),
        get(&m.query_micros) as f64 / 1e6
    );
    requests + &api.health.state_shed_metrics()
}

async fn openapi() -> impl IntoResponse {
    (
        [("content-type", "application/json")],
        include_str!("api_openapi.json"),
    )
}

/// The router.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/query", post(query))
        .route("/v1/signals", get(signals))
        .route("/v1/signals/{id}", get(signal))
        .route("/v1/approvals", get(approvals))
        .route("/v1/approvals/{id}/{verb}", post(decide))
        .with_state(Arc::new(api))
}

/// Serves `api` on `listen` until `shutdown`.
pub async fn serve(
    listen: &str,
    api: Api,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = router(api);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
    });
    Ok(addr)
}
