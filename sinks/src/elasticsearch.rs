//! Elasticsearch (or OpenSearch) sink: the forensics store. Normalized events are indexed as ECS documents
//! with the raw line (`event.original`), one index per tenant and month (`<prefix>-<tenant>@YYYY.MM`), with
//! `_id` = event id so a replay overwrites instead of duplicating.
//!
//! Indexing is selective (Elasticsearch is far slower than the rest of the pipeline): the caller chooses the
//! events, by category and as evidence of signals. Bulk requests are gzip-compressed and bounded in size
//! and in flight; a
//! document Elasticsearch refuses is returned with its reason (for quarantine) while its neighbours are
//! stored, and overload (429, 5xx, timeouts) is reported as retryable.

use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, StatusCode};
use elasticsearch::indices::IndicesPutIndexTemplateParts;
use elasticsearch::Elasticsearch;
use futures::stream::{self, StreamExt, TryStreamExt};
use sentra_schemas::{Elastic, EventRef};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::SinkError;

const STORE: &str = "Elasticsearch";

/// Connection and selection settings for the forensics store (`[elasticsearch]` in `sentra.toml`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElasticsearchConfig {
    /// Base URL, e.g. `http://127.0.0.1:9200`; empty disables the forensics store.
    pub url: String,
    /// User for basic authentication (with `password`).
    pub user: String,
    /// Password (never logged); prefer `SENTRA_ELASTICSEARCH_PASSWORD`.
    pub password: String,
    /// API key, either `id:secret` or the encoded form Kibana shows (never logged); prefer
    /// `SENTRA_ELASTICSEARCH_API_KEY`. Takes precedence over user/password.
    pub api_key: String,
    /// Index name prefix: indices are `<prefix>-<tenant>@YYYY.MM`, the template matches `<prefix>-*`.
    pub index_prefix: String,
    /// Event categories indexed in full (evidence of a signal is indexed whatever its category).
    pub categories: Vec<String>,
    /// Most documents per bulk request.
    pub bulk_max_docs: usize,
    /// Most bytes per bulk request.
    pub bulk_max_bytes: usize,
    /// Most bulk requests in flight at once.
    pub max_in_flight: usize,
    /// Request timeout, seconds (a store that does not answer in time counts as unavailable).
    pub timeout_secs: u64,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            user: String::new(),
            password: String::new(),
            api_key: String::new(),
            index_prefix: "sentra-events".into(),
            categories: ["authentication", "iam", "process"]
                .map(String::from)
                .to_vec(),
            bulk_max_docs: 2000,
            bulk_max_bytes: 5 << 20,
            max_in_flight: 2,
            timeout_secs: 30,
        }
    }
}

impl std::fmt::Debug for ElasticsearchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "***" };
        f.debug_struct("ElasticsearchConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("api_key", &hidden(&self.api_key))
            .field("index_prefix", &self.index_prefix)
            .field("categories", &self.categories)
            .field("bulk_max_docs", &self.bulk_max_docs)
            .field("bulk_max_bytes", &self.bulk_max_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl ElasticsearchConfig {
    /// Whether the forensics store is configured.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// Every problem with the values (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.enabled() {
            return p;
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            p.push(format!(
                "elasticsearch.url {:?} must start with http:// or https://",
                self.url
            ));
        }
        let prefix_ok = !self.index_prefix.is_empty()
            && self.index_prefix.len() <= 100
            && !self.index_prefix.starts_with(['-', '_', '+', '.'])
            && self.index_prefix.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !prefix_ok {
            p.push(format!(
                "elasticsearch.index_prefix {:?} must be lowercase letters, digits, '-', '_' or '.', not starting with a symbol",
                self.index_prefix
            ));
        }
        if self.bulk_max_docs == 0 || self.bulk_max_bytes < 1024 || self.max_in_flight == 0 {
            p.push("elasticsearch.bulk_max_docs and max_in_flight must be at least 1, bulk_max_bytes at least 1024".into());
        }
        if self.timeout_secs == 0 {
            p.push("elasticsearch.timeout_secs must be at least 1".into());
        }
        p
    }

    /// Whether events of `category` are indexed in full.
    pub fn indexes_category(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }
}

/// One document to index.
#[derive(Debug, Clone)]
pub struct Document {
    /// Target index.
    pub index: String,
    /// `_id`: the event id.
    pub id: String,
    /// The ECS document.
    pub source: Value,
}

/// A document Elasticsearch refused, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedDoc {
    /// Position in the list given to [`ElasticsearchSink::index`].
    pub position: usize,
    /// HTTP status of the item.
    pub status: u16,
    /// `error.type: error.reason` (and the cause, when given).
    pub detail: String,
}

/// Writes documents to Elasticsearch.
#[derive(Clone)]
pub struct ElasticsearchSink {
    client: Elasticsearch,
    config: ElasticsearchConfig,
}

#[derive(Deserialize)]
struct BulkResponse {
    errors: bool,
    items: Vec<std::collections::HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

fn unavailable(detail: impl Into<String>) -> SinkError {
    SinkError::Unavailable {
        store: STORE,
        detail: detail.into(),
    }
}

fn rejected(detail: impl Into<String>) -> SinkError {
    SinkError::Rejected {
        store: STORE,
        detail: detail.into(),
    }
}

/// `type: reason (caused by type: reason)` from an Elasticsearch error object.
fn describe(error: &Value) -> String {
    let one = |e: &Value| {
        let t = e.get("type").and_then(Value::as_str).unwrap_or("error");
        let r = e.get("reason").and_then(Value::as_str).unwrap_or("");
        format!("{t}: {r}")
    };
    match error.get("caused_by") {
        Some(c) => format!("{} (caused by {})", one(error), one(c)),
        None => one(error),
    }
}

/// The tenant as it may appear in an index name: index names are lowercase, so an upper-case letter is
/// written as `+` and its lower-case form (tenants cannot contain `+`, so `Acme` and `acme` never share an
/// index).
pub fn index_tenant(tenant: &str) -> String {
    let mut out = String::with_capacity(tenant.len() + 4);
    for c in tenant.chars() {
        if c.is_ascii_uppercase() {
            out.push('+');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl ElasticsearchSink {
    /// A sink for `config` (no I/O yet).
    pub fn new(config: ElasticsearchConfig) -> Result<Self, SinkError> {
        let url = elasticsearch::http::Url::parse(&config.url)
            .map_err(|e| rejected(format!("elasticsearch.url is not a URL: {e}")))?;
        let mut transport = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(Duration::from_secs(config.timeout_secs))
            .request_body_compression(true)
            .disable_proxy();
        if !config.api_key.is_empty() {
            transport = transport.auth(match config.api_key.split_once(':') {
                Some((id, secret)) => Credentials::ApiKey(id.into(), secret.into()),
                None => Credentials::EncodedApiKey(config.api_key.clone()),
            });
        } else if !config.user.is_empty() {
            transport = transport.auth(Credentials::Basic(
                config.user.clone(),
                config.password.clone(),
            ));
        }
        let transport = transport
            .build()
            .map_err(|e| rejected(format!("cannot set up the client: {e}")))?;
        Ok(Self {
            client: Elasticsearch::new(transport),
            config,
        })
    }

    /// The settings this sink was made with.
    pub fn config(&self) -> &ElasticsearchConfig {
        &self.config
    }

    /// The index for an event of `tenant` at `timestamp_us`: `<prefix>-<tenant>@YYYY.MM`.
    pub fn index_name(&self, tenant: &str, timestamp_us: i64) -> String {
        let days = timestamp_us.div_euclid(86_400_000_000);
        let (year, month, _) = sentra_schemas::time::civil_from_days(days);
        format!(
            "{}-{}@{year:04}.{month:02}",
            self.config.index_prefix,
            index_tenant(tenant),
        )
    }

    /// The pattern matching every index of `tenant` (for tenant-scoped searches), and no other tenant's:
    /// `@` cannot occur in a tenant id, so `acme@*` never matches `acme-eu@2026.03`.
    pub fn tenant_pattern(&self, tenant: &str) -> String {
        format!("{}-{}@*", self.config.index_prefix, index_tenant(tenant))
    }

    /// Installs (or updates) the index template with Sentra's ECS mapping, so every monthly index gets it.
    pub async fn ensure_template(&self) -> Result<(), SinkError> {
        let prefix = &self.config.index_prefix;
        let body = json!({
            "index_patterns": [format!("{prefix}-*")],
            "priority": 200,
            "_meta": { "managed_by": "sentra", "description": "Sentra normalized security events (ECS)" },
            "template": {
                "settings": { "number_of_shards": 1 },
                "mappings": ecs_mapping(),
            }
        });
        let response = self
            .client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(prefix))
            .body(body)
            .send()
            .await;
        reply(response, "index template").await.map(|_| ())
    }

    /// Indexes `docs` in bounded bulk requests. Returns the documents Elasticsearch refused (with its
    /// reasons); all others are stored when this returns `Ok`. Overload or an unreachable cluster is a
    /// retryable error: re-sending the same documents is harmless (`_id` = event id).
    pub async fn index(&self, docs: &[Document]) -> Result<Vec<RejectedDoc>, SinkError> {
        let chunks = self.chunks(docs)?;
        let results: Vec<Vec<RejectedDoc>> = stream::iter(chunks)
            .map(|(first, body)| self.send_bulk(first, body))
            .buffer_unordered(self.config.max_in_flight)
            .try_collect()
            .await?;
        let mut refused: Vec<RejectedDoc> = results.into_iter().flatten().collect();
        refused.sort_by_key(|r| r.position);
        Ok(refused)
    }

    /// Splits `docs` into NDJSON bulk bodies within the size limits: (position of the first doc, body).
    fn chunks(&self, docs: &[Document]) -> Result<Vec<(usize, Vec<u8>)>, SinkError> {
        let mut chunks = Vec::new();
        let mut body = Vec::new();
        let mut first = 0;
        let mut count = 0;
        for (i, d) in docs.iter().enumerate() {
            let mut line = serde_json::to_vec(&json!({"index": {"_index": d.index, "_id": d.id}}))
                .map_err(|e| rejected(e.to_string()))?;
            line.push(b'\n');
            serde_json::to_writer(&mut line, &d.source).map_err(|e| rejected(e.to_string()))?;
            line.push(b'\n');
            if count > 0
                && (count >= self.config.bulk_max_docs
                    || body.len() + line.len() > self.config.bulk_max_bytes)
            {
                chunks.push((first, std::mem::take(&mut body)));
                first = i;
                count = 0;
            }
            body.extend_from_slice(&line);
            count += 1;
        }
        if count > 0 {
            chunks.push((first, body));
        }
        Ok(chunks)
    }

    async fn send_bulk(&self, first: usize, body: Vec<u8>) -> Result<Vec<RejectedDoc>, SinkError> {
        let mut headers = elasticsearch::http::headers::HeaderMap::new();
        headers.insert(
            elasticsearch::http::headers::CONTENT_TYPE,
            elasticsearch::http::headers::HeaderValue::from_static("application/x-ndjson"),
        );
        let response = self
            .client
            .send(
                Method::Post,
                "/_bulk",
                headers,
                None::<&()>,
                Some(body),
                None,
            )
            .await;
        let text = reply_text(response, "bulk request").await?;
        let parsed: BulkResponse = serde_json::from_str(&text).map_err(|e| {
            rejected(format!(
                "bulk response is not Elasticsearch's ({e}): {}",
                excerpt(&text)
            ))
        })?;
        let mut refused = Vec::new();
        if !parsed.errors {
            return Ok(refused);
        }
        for (i, item) in parsed.items.iter().enumerate() {
            let Some(result) = item.values().next() else {
                continue;
            };
            if (200..300).contains(&result.status) {
                continue;
            }
            let detail = result
                .error
                .as_ref()
                .map_or_else(|| "no reason given".into(), describe);
            if result.status == 429 || result.status >= 500 {
                return Err(unavailable(format!(
                    "document refused with HTTP {}: {detail}",
                    result.status
                )));
            }
            refused.push(RejectedDoc {
                position: first + i,
                status: result.status,
                detail,
            });
        }
        Ok(refused)
    }

    /// Searches `tenant`'s documents: `query` (Elasticsearch query DSL) is combined with the tenant filter,
    /// never trusted to carry it. Returns up to `size` hits' `_source`, newest first.
    pub async fn search(
        &self,
        tenant: &str,
        query: Value,
        size: usize,
    ) -> Result<Vec<Value>, SinkError> {
        self.search_sorted(tenant, query, size, json!([{"@timestamp": "desc"}]))
            .await
    }

    async fn search_sorted(
        &self,
        tenant: &str,
        query: Value,
        size: usize,
        sort: Value,
    ) -> Result<Vec<Value>, SinkError> {
        let body = json!({
            "size": size,
            "sort": sort,
            "query": {"bool": {
                "filter": [{"term": {"organization.id": tenant}}],
                "must": [query],
            }},
        });
        let response = self
            .client
            .search(elasticsearch::SearchParts::Index(&[
                &self.tenant_pattern(tenant)
            ]))
            .allow_no_indices(true)
            .ignore_unavailable(true)
            .body(body)
            .send()
            .await;
        let body = reply(response, "search").await?;
        Ok(body["hits"]["hits"]
            .as_array()
            .map(|hits| hits.iter().map(|h| h["_source"].clone()).collect())
            .unwrap_or_default())
    }

    /// Lists `tenant`'s documents matching `query` (combined with the tenant filter), newest first with
    /// ties in event-id order, up to `size`.
    pub async fn list(
        &self,
        tenant: &str,
        query: Value,
        size: usize,
    ) -> Result<Vec<Value>, SinkError> {
        self.search_sorted(
            tenant,
            query,
            size,
            json!([{"@timestamp": "desc"}, {"event.id": "asc"}]),
        )
        .await
    }

    /// Whether the cluster answers: `GET /`, within `elasticsearch.timeout_secs`.
    pub async fn ping(&self) -> Result<(), SinkError> {
        let response = self.client.ping().send().await;
        reply_text(response, "ping").await.map(|_| ())
    }

    /// Counts the documents of `tenant` (every query Sentra issues is tenant-scoped: by index pattern and
    /// by `organization.id`).
    pub async fn count(&self, tenant: &str) -> Result<u64, SinkError> {
        let response = self
            .client
            .count(elasticsearch::CountParts::Index(&[
                &self.tenant_pattern(tenant)
            ]))
            .allow_no_indices(true)
            .body(json!({"query": {"term": {"organization.id": tenant}}}))
            .send()
            .await;
        let body = reply(response, "count").await?;
        Ok(body["count"].as_u64().unwrap_or(0))
    }
}

/// The JSON body of a successful reply (`null` when it is not JSON); errors as [`reply_text`].
async fn reply(
    sent: Result<elasticsearch::http::response::Response, elasticsearch::Error>,
    what: &str,
) -> Result<Value, SinkError> {
    let text = reply_text(sent, what).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The body of a successful reply; transport trouble, 429 and 5xx are retryable, other statuses are
/// rejections (each error says which request, the status and an excerpt of the body).
async fn reply_text(
    sent: Result<elasticsearch::http::response::Response, elasticsearch::Error>,
    what: &str,
) -> Result<String, SinkError> {
    let response = sent.map_err(|e| unavailable(e.to_string()))?;
    let status = response.status_code();
    let text = response
        .text()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if !status.is_success() {
        let detail = format!("{what}: HTTP {status}: {}", excerpt(&text));
        return Err(if retryable(status) {
            unavailable(detail)
        } else {
            rejected(detail)
        });
    }
    Ok(text)
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn excerpt(text: &str) -> &str {
    let end = text.char_indices().nth(500).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// The document for one event: Sentra's ECS rendering (with the raw line as `event.original`).
pub fn document(sink: &ElasticsearchSink, e: &EventRef<'_>) -> Document {
    Document {
        index: sink.index_name(e.tenant, e.timestamp_us),
        id: e.id.to_owned(),
        source: e.to_owned().to_ecs_json(),
    }
}

/// The ECS mapping of Sentra's event documents, built from [`sentra_schemas::ecs_fields`]. `dynamic: false`
/// keeps any field a newer Sentra adds in `_source` without failing the document.
pub fn ecs_mapping() -> Value {
    let mut properties = Map::new();
    for (field, elastic) in sentra_schemas::ecs_fields() {
        insert_mapping(&mut properties, field, elastic);
    }
    json!({"dynamic": false, "properties": properties})
}

/// Adds the mapping of the ECS field at dotted `path` below `properties`.
fn insert_mapping(properties: &mut Map<String, Value>, path: &str, elastic: Elastic) {
    let Some((object, rest)) = path.split_once('.') else {
        let mapping = match elastic {
            Elastic::Date => json!({"type": "date"}),
            Elastic::Keyword => json!({"type": "keyword"}),
            Elastic::Unindexed => json!({"type": "keyword", "index": false, "doc_values": false}),
            Elastic::Text => json!({"type": "text"}),
            Elastic::Ip => json!({"type": "ip"}),
            Elastic::Long => json!({"type": "long"}),
        };
        properties.insert(path.to_owned(), mapping);
        return;
    };
    let object = properties
        .entry(object)
        .or_insert_with(|| json!({"properties": {}}));
    let inner = object["properties"]
        .as_object_mut()
        .expect("an object's mapping");
    insert_mapping(inner, rest, elastic);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                leaves(&format!("{prefix}{k}."), v, out);
            }
        } else {
            out.push(prefix.trim_end_matches('.').to_owned());
        }
    }

    #[test]
    fn mapping_covers_every_field_of_a_full_event() {
        let event = sentra_schemas::Event {
            id: "e1".into(),
            tenant: sentra_schemas::TenantId::new("acme").unwrap(),
            timestamp_us: 1_773_446_400_000_000,
            host: "h".into(),
            process_name: "sudo".into(),
            process_pid: Some(1),
            dataset: "sudo".into(),
            category: sentra_schemas::Category::Process,
            event_type: "start".into(),
            action: "sudo-command".into(),
            outcome: sentra_schemas::Outcome::Success,
            user: Some("alice".into()),
            target_user: Some("root".into()),
            group: Some("wheel".into()),
            source_ip: Some("10.0.0.1".into()),
            source_port: Some(22),
            auth_method: Some("password".into()),
            command: Some("/bin/ls".into()),
            message: "m".into(),
            original: "o".into(),
            source: "f:1".into(),
        };
        let mut fields = Vec::new();
        leaves("", &event.to_ecs_json(), &mut fields);
        let mapping = ecs_mapping();
        for f in fields {
            let mut node = &mapping;
            for part in f.split('.') {
                node = &node["properties"][part];
            }
            assert!(node.get("type").is_some(), "{f} is not mapped");
        }
    }

    #[test]
    fn tenants_differing_in_case_get_different_indices() {
        assert_eq!(index_tenant("acme"), "acme");
        assert_eq!(index_tenant("Acme"), "+acme");
        assert_ne!(index_tenant("xAcme"), index_tenant("x_acme"));
        let sink = ElasticsearchSink::new(ElasticsearchConfig {
            url: "http://127.0.0.1:9".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            sink.index_name("Acme.Corp", 1_773_446_400_000_000),
            "sentra-events-+acme.+corp@2026.03"
        );
    }

    /// Elasticsearch's `*` wildcard, for checking index patterns.
    fn matches(pattern: &str, name: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == name,
            Some((head, tail)) => {
                name.starts_with(head)
                    && (0..=name.len() - head.len()).any(|i| matches(tail, &name[head.len() + i..]))
            }
        }
    }

    #[test]
    fn no_tenants_pattern_matches_another_tenants_index() {
        let sink = ElasticsearchSink::new(ElasticsearchConfig {
            url: "http://127.0.0.1:9".into(),
            ..Default::default()
        })
        .unwrap();
        let tenants = [
            "acme",
            "acme-eu",
            "acme-eu-2",
            "acme.eu",
            "Acme",
            "acme_2026",
            "a",
            "a-2026.03",
        ];
        for t in tenants {
            for other in tenants {
                let index = sink.index_name(other, 1_773_446_400_000_000);
                assert_eq!(
                    matches(&sink.tenant_pattern(t), &index),
                    t == other,
                    "{t}'s pattern against {index}"
                );
            }
        }
    }

    #[test]
    fn bulk_bodies_respect_both_limits() {
        let sink = ElasticsearchSink::new(ElasticsearchConfig {
            url: "http://127.0.0.1:9".into(),
            bulk_max_docs: 3,
            bulk_max_bytes: 1024,
            ..Default::default()
        })
        .unwrap();
        let docs: Vec<Document> = (0..10)
            .map(|i| Document {
                index: "i".into(),
                id: i.to_string(),
                source: json!({"m": "x".repeat(if i == 5 { 2000 } else { 10 })}),
            })
            .collect();
        let chunks = sink.chunks(&docs).unwrap();
        let firsts: Vec<usize> = chunks.iter().map(|c| c.0).collect();
        assert_eq!(firsts, vec![0, 3, 5, 6, 9]);
        for (_, body) in &chunks {
            assert!(body.ends_with(b"\n"));
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = ElasticsearchConfig {
            password: "hunter2".into(),
            api_key: "id:s3cret".into(),
            ..Default::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"));
    }
}
