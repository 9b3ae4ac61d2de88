//! `sentra.toml`: parsed, then overridden from `SENTRA_<SECTION>_<KEY>` environment variables, then
//! validated (pure, no I/O) so `sentra validate` can explain every problem at once.
//!
//! ```toml
//! [kafka]
//! brokers = "127.0.0.1:9092"
//! group_id = "sentra"
//! topics = ["security-events", "acme-logs"]
//! multi_tenant_topics = ["security-events"]   # each message names its tenant
//! [kafka.topic_tenants]          # one tenant per topic, authoritative
//! "acme-logs" = "acme"
//! [clickhouse]
//! url = "http://127.0.0.1:8123"
//! database = "sentra"
//! [elasticsearch]                # optional forensics store
//! url = "http://127.0.0.1:9200"
//! [tenants]
//! allow = ["acme", "globex"]     # optional allow-list
//! [detection]
//! allowed_lateness_secs = 30
//! folder = "/etc/sentra/detections"   # your own or replacement detections
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use sentra_schemas::TenantId;
use serde::Deserialize;

use sentra_sinks::clickhouse::ClickHouseConfig;
use sentra_sinks::elasticsearch::ElasticsearchConfig;
use sentra_soar::SoarConfig;

use sentra_pipeline::detect::EngineConfig;
use sentra_pipeline::normalize::Zones;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka source and quarantine topic.
    pub kafka: KafkaConfig,
    /// ClickHouse sink (analytics).
    pub clickhouse: ClickHouseConfig,
    /// Elasticsearch sink (forensics); disabled while its `url` is empty.
    pub elasticsearch: ElasticsearchConfig,
    /// Hand-off of high-risk signals to SOAR webhooks and chat; disabled without destinations.
    pub soar: SoarConfig,
    /// The audit trail.
    pub audit: AuditConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Question planning.
    pub query: QueryConfig,
    /// Tenant policy.
    pub tenants: TenantsConfig,
    /// Detection settings.
    pub detection: DetectionConfig,
    /// Normalization limits.
    pub input: InputConfig,
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to listen on (`127.0.0.1:8080`); empty: no API.
    pub listen: String,
    /// API keys by their SHA-256, each mapped to one tenant.
    pub keys: Vec<ApiKey>,
    /// Requests per minute per tenant.
    pub rate_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: String::new(),
            keys: Vec::new(),
            rate_per_minute: 120,
        }
    }
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The tenant whose data the key reads.
    pub tenant: String,
    /// Lower-case hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`).
    pub key_sha256: String,
}

impl ApiConfig {
    /// Every problem with the values (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.listen.is_empty() {
            return p;
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            p.push(format!(
                "api.listen {:?} must be an address like 127.0.0.1:8080",
                self.listen
            ));
        }
        for k in &self.keys {
            if let Err(e) = TenantId::check(&k.tenant) {
                p.push(format!("api.keys: {e}"));
            }
            if k.key_sha256.len() != 64 || !k.key_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                p.push(format!(
                    "api.keys for {}: key_sha256 must be 64 hex characters",
                    k.tenant
                ));
            }
        }
        if self.rate_per_minute == 0 {
            p.push("api.rate_per_minute must be at least 1".into());
        }
        p
    }
}

/// `[kafka]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// Consumer group; run several `sentra run` with the same group to share partitions.
    pub group_id: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Topics that belong to one tenant each. The mapping is authoritative: every message on such a topic is
    /// that tenant's, and one whose `tenant` header or field names another is quarantined as
    /// `tenant_mismatch`, so a shipper cannot write as a tenant whose topic it does not write to.
    pub topic_tenants: BTreeMap<String, String>,
    /// Topics that carry several tenants, each message naming its own (`tenant` header or field). Every topic
    /// of `topics` is either here or in `topic_tenants`.
    pub multi_tenant_topics: Vec<String>,
    /// Where quarantined messages go, with the reason in headers.
    pub quarantine_topic: String,
    /// Consumer session timeout.
    pub session_timeout_ms: u64,
    /// Most messages handled as one batch: one detection step and one ClickHouse insert (ClickHouse wants
    /// inserts of thousands of rows; larger batches also spread each step's fixed cost further).
    pub batch_max_messages: usize,
    /// A batch takes no more messages once their payloads add up to this many bytes, so one batch holds at
    /// most this plus one message (`input.max_message_bytes`), however large the messages are.
    pub batch_max_bytes: usize,
    /// Longest wait to fill a batch, milliseconds.
    pub batch_max_wait_ms: u64,
    /// Extra librdkafka properties (e.g. `security.protocol`, `sasl.*`), passed as given.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            group_id: "sentra".into(),
            topics: vec!["security-events".into()],
            topic_tenants: BTreeMap::new(),
            multi_tenant_topics: vec!["security-events".into()],
            quarantine_topic: "sentra.quarantine".into(),
            session_timeout_ms: 6000,
            batch_max_messages: 20_000,
            batch_max_bytes: 16 << 20,
            batch_max_wait_ms: 500,
            properties: BTreeMap::new(),
        }
    }
}

/// `[query]`: the optional LLM planner (any OpenAI-compatible endpoint); off while `llm_base_url` is empty.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// e.g. `https://api.openai.com/v1`.
    pub llm_base_url: String,
    /// Model name.
    pub llm_model: String,
    /// API key (never logged); prefer `SENTRA_QUERY_LLM_API_KEY`.
    pub llm_api_key: String,
}

impl std::fmt::Debug for QueryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryConfig")
            .field("llm_base_url", &self.llm_base_url)
            .field("llm_model", &self.llm_model)
            .field(
                "llm_api_key",
                &if self.llm_api_key.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .finish()
    }
}

impl QueryConfig {
    /// The LLM planner, when configured.
    pub fn planner(&self) -> Option<sentra_queries::llm::LlmPlanner> {
        (!self.llm_base_url.is_empty()).then(|| {
            sentra_queries::llm::LlmPlanner::new(
                &self.llm_base_url,
                &self.llm_api_key,
                &self.llm_model,
            )
        })
    }
}

/// `[audit]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Kafka topic carrying audit events to the chainer (one partition keeps each tenant's order simple).
    pub topic: String,
    /// Kafka topic the chainer appends signed chain heads to (anchors), out of the audit table's reach.
    pub anchor_topic: String,
    /// How often the chainer signs the heads that changed, seconds.
    pub anchor_interval_secs: u64,
    /// The anchor signing key (`SENTRA_AUDIT_ANCHOR_KEY`; never in the file); empty: no anchors.
    pub anchor_key: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            topic: "sentra.audit".into(),
            anchor_topic: "sentra.audit.anchors".into(),
            anchor_interval_secs: 60,
            anchor_key: String::new(),
        }
    }
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("topic", &self.topic)
            .field("anchor_topic", &self.anchor_topic)
            .field("anchor_interval_secs", &self.anchor_interval_secs)
            .field(
                "anchor_key",
                &if self.anchor_key.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .finish()
    }
}

impl AuditConfig {
    /// The anchor key, if one is set.
    pub fn key(&self) -> Option<sentra_soar::anchor::AnchorKey> {
        sentra_soar::anchor::AnchorKey::new(self.anchor_key.as_bytes())
    }

    /// How the chainer anchors, when a key is set.
    pub fn anchoring(&self) -> Option<sentra_soar::audit::Anchoring> {
        Some(sentra_soar::audit::Anchoring {
            key: self.key()?,
            topic: self.anchor_topic.clone(),
            every: std::time::Duration::from_secs(self.anchor_interval_secs.max(1)),
        })
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.topic.trim().is_empty()
            || self.anchor_topic.trim().is_empty()
            || self.topic == self.anchor_topic
        {
            p.push("audit.topic and audit.anchor_topic must be set and differ".into());
        }
        if self.anchor_interval_secs == 0 {
            p.push("audit.anchor_interval_secs must be at least 1".into());
        }
        p
    }
}

/// `[tenants]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantsConfig {
    /// When set, only these tenants are accepted.
    pub allow: Option<Vec<String>>,
    /// Most distinct tenants `sentra run` accepts (each costs window state and an Elasticsearch index per
    /// month); input of a further tenant is quarantined as `tenant_limit`.
    pub max: usize,
    /// Each tenant's time zone, an IANA name (`acme = "Europe/Berlin"`): its classic syslog timestamps, which
    /// carry none, are read in it, and the off-hours risk modifier follows it. Default: `input.timezone`.
    pub timezone: BTreeMap<String, String>,
    /// A fixed UTC offset in minutes for the off-hours modifier, for tenants without a `timezone`.
    pub utc_offset_minutes: BTreeMap<String, i32>,
}

impl Default for TenantsConfig {
    fn default() -> Self {
        Self {
            allow: None,
            max: 1000,
            timezone: BTreeMap::new(),
            utc_offset_minutes: BTreeMap::new(),
        }
    }
}

/// `[detection]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// How far behind the newest event of its tenant's slowest host in step an event may be and still
    /// count, seconds.
    pub allowed_lateness_secs: u64,
    /// How far clocks may be off, seconds: between one tenant's hosts (see `EngineConfig`), and between a
    /// host and the reader (events further ahead of their read time are quarantined as `future`).
    pub max_clock_skew_secs: u64,
    /// Most entities with open window state each detection holds per tenant; past it the least active are
    /// dropped, counted and reported by a `detection_degraded` signal (`max_entities_per_tenant` is read as
    /// this too).
    #[serde(alias = "max_entities_per_tenant")]
    pub max_entities_per_detection: usize,
    /// A folder of detection files (`*.toml`) that replace built-ins of the same name or add new ones.
    pub folder: Option<std::path::PathBuf>,
    /// Built-in detections to switch off, by name.
    pub disabled: Vec<String>,
    /// Where `sentra run` keeps its checkpoint (window state + offsets).
    pub checkpoint_path: std::path::PathBuf,
    /// How often `sentra run` saves its checkpoint and commits the offsets it covers, milliseconds (0: after
    /// every batch). The state is saved whole, so saving it per batch would cost more than detecting; a crash
    /// re-reads at most this much input, whose writes are idempotent.
    pub checkpoint_interval_ms: u64,
    /// Analyst overrides file (`overrides.json`).
    pub overrides_path: Option<std::path::PathBuf>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        let e = EngineConfig::default();
        Self {
            allowed_lateness_secs: e.allowed_lateness_secs,
            max_clock_skew_secs: e.max_clock_skew_secs,
            max_entities_per_detection: e.max_entities_per_detection,
            folder: None,
            disabled: Vec::new(),
            checkpoint_path: "sentra-checkpoint.json".into(),
            checkpoint_interval_ms: 5000,
            overrides_path: None,
        }
    }
}

/// `[input]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Messages larger than this are quarantined.
    pub max_message_bytes: usize,
    /// The zone classic syslog timestamps (which carry none) are written in, for tenants without a
    /// `tenants.timezone`: an IANA name.
    pub timezone: String,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 1 << 20,
            timezone: "UTC".into(),
        }
    }
}

/// Why a configuration cannot be used; lists every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    /// One line per problem, each saying what to change.
    pub problems: Vec<String>,
}

const SECTIONS: &[&str] = &[
    "kafka",
    "clickhouse",
    "elasticsearch",
    "soar",
    "audit",
    "api",
    "query",
    "tenants",
    "input",
];

impl Config {
    /// The librdkafka settings of `[kafka]`, shared by every Kafka client Sentra builds from this
    /// configuration.
    pub fn kafka_client(&self) -> sentra_kafka::ClientConfig {
        sentra_kafka::client(&self.kafka.brokers, &self.kafka.properties)
    }

    /// [`Config::kafka_client`] for consumer-group members: with `kafka.session_timeout_ms`, so a member
    /// that died is replaced that soon.
    pub fn kafka_consumer_client(&self) -> sentra_kafka::ClientConfig {
        let mut c = self.kafka_client();
        c.set(
            "session.timeout.ms",
            self.kafka.session_timeout_ms.to_string(),
        );
        c
    }

    /// Reads `path` (if given), applies `env` overrides, and validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| ConfigError {
                problems: vec![format!("cannot read config file {}: {e}", p.display())],
            })?,
            None => String::new(),
        };
        Self::from_toml(&text, env)
    }

    /// Parses TOML text, applies `env` overrides, and validates.
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let one = |p: String| ConfigError { problems: vec![p] };
        let mut doc: toml::Table =
            toml::from_str(text).map_err(|e| one(format!("config is not valid TOML: {e}")))?;
        let mut problems = Vec::new();
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("SENTRA_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, field)) = rest.split_once('_') else {
                continue;
            };
            if !SECTIONS.contains(&section) {
                continue;
            }
            // Typed values (numbers, lists) parse as TOML; anything else is a plain string.
            // Credentials and names stay strings even when they look like numbers.
            let always_text = matches!(
                field,
                "password"
                    | "api_key"
                    | "user"
                    | "url"
                    | "database"
                    | "webhook"
                    | "signing_secret"
                    | "llm_api_key"
                    | "anchor_key"
            );
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .filter(|_| !always_text)
                .unwrap_or_else(|| toml::Value::String(value.clone()));
            let parsed = match (field, parsed) {
                (
                    "topics" | "multi_tenant_topics" | "allow" | "categories",
                    toml::Value::String(s),
                ) => toml::Value::Array(
                    s.split(',')
                        .map(|t| toml::Value::String(t.trim().to_owned()))
                        .collect(),
                ),
                (_, v) => v,
            };
            match doc
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            {
                toml::Value::Table(t) => {
                    t.insert(field.to_owned(), parsed);
                }
                _ => problems.push(format!(
                    "{key}: [{section}] is not a table in the config file"
                )),
            }
        }
        let config: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| one(format!("config: {}", e.message())))?;
        problems.extend(config.problems());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Every problem with the values (empty when valid). Pure: no network, no files.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let k = &self.kafka;
        if k.brokers.trim().is_empty() {
            p.push(
                "kafka.brokers is empty: set it to host:port[,host:port] (or SENTRA_KAFKA_BROKERS)"
                    .into(),
            );
        }
        if k.group_id.trim().is_empty() {
            p.push("kafka.group_id is empty".into());
        }
        if k.topics.is_empty() || k.topics.iter().any(|t| t.trim().is_empty()) {
            p.push("kafka.topics must list at least one non-empty topic".into());
        }
        if k.quarantine_topic.trim().is_empty() || k.topics.contains(&k.quarantine_topic) {
            p.push("kafka.quarantine_topic must be set and must not be one of kafka.topics".into());
        }
        for (topic, tenant) in &k.topic_tenants {
            if let Err(e) = TenantId::new(tenant) {
                p.push(format!("kafka.topic_tenants.{topic:?}: {e}"));
            }
        }
        for topic in &k.topics {
            match (k.topic_tenants.contains_key(topic), k.multi_tenant_topics.contains(topic)) {
                (false, false) => p.push(format!(
                    "kafka.topics: {topic:?} names no tenant: map it to its one tenant in \
                     [kafka.topic_tenants], or list it in kafka.multi_tenant_topics if each message names \
                     its own tenant"
                )),
                (true, true) => p.push(format!(
                    "kafka.topics: {topic:?} is both in kafka.topic_tenants and in \
                     kafka.multi_tenant_topics; keep one"
                )),
                _ => {}
            }
        }
        if k.batch_max_messages == 0 || k.batch_max_messages > 1_000_000 {
            p.push("kafka.batch_max_messages must be between 1 and 1000000".into());
        }
        if k.batch_max_bytes < 1024 || k.batch_max_bytes > 1 << 30 {
            p.push("kafka.batch_max_bytes must be between 1024 and 1073741824 (1 GiB)".into());
        }
        if k.session_timeout_ms < 1000 {
            p.push("kafka.session_timeout_ms must be at least 1000".into());
        }
        let c = &self.clickhouse;
        if c.timeout_secs == 0 {
            p.push("clickhouse.timeout_secs must be at least 1".into());
        }
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            p.push(format!(
                "clickhouse.url {:?} must start with http:// or https://",
                c.url
            ));
        }
        if c.database.is_empty()
            || !c
                .database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            p.push(format!(
                "clickhouse.database {:?} may only contain letters, digits and '_'",
                c.database
            ));
        }
        p.extend(self.elasticsearch.problems());
        p.extend(self.soar.problems());
        p.extend(self.audit.problems());
        p.extend(self.api.problems());
        if self.soar.enabled()
            && [&self.soar.topic, &self.soar.dlq_topic]
                .iter()
                .any(|t| k.topics.contains(t) || **t == k.quarantine_topic)
        {
            p.push(
                "soar.topic and soar.dlq_topic must differ from the input and quarantine topics"
                    .into(),
            );
        }
        if let Some(allow) = &self.tenants.allow {
            for t in allow {
                if let Err(e) = TenantId::new(t) {
                    p.push(format!("tenants.allow: {e}"));
                }
            }
            for (topic, tenant) in &k.topic_tenants {
                if !allow.contains(tenant) {
                    p.push(format!(
                        "kafka.topic_tenants.{topic:?} = {tenant:?} is not in tenants.allow"
                    ));
                }
            }
        }
        if self.input.max_message_bytes < 64 {
            p.push("input.max_message_bytes must be at least 64".into());
        }
        if self.detection.allowed_lateness_secs > 86_400 {
            p.push("detection.allowed_lateness_secs must be at most 86400".into());
        }
        if self.detection.max_clock_skew_secs > 86_400 {
            p.push("detection.max_clock_skew_secs must be at most 86400".into());
        }
        if self.detection.checkpoint_interval_ms > 3_600_000 {
            p.push("detection.checkpoint_interval_ms must be at most 3600000 (an hour)".into());
        }
        if self.tenants.max == 0 {
            p.push("tenants.max must be at least 1".into());
        }
        if self.detection.max_entities_per_detection == 0 {
            p.push("detection.max_entities_per_detection must be at least 1".into());
        }
        for (t, m) in &self.tenants.utc_offset_minutes {
            if m.abs() > 14 * 60 {
                p.push(format!(
                    "tenants.utc_offset_minutes.{t} must be within ±840"
                ));
            }
            if self.tenants.timezone.contains_key(t) {
                p.push(format!(
                    "tenant {t:?} has both tenants.timezone and tenants.utc_offset_minutes; keep the timezone"
                ));
            }
        }
        if let Err(e) = self.zones() {
            p.push(format!("{e} (input.timezone / tenants.timezone)"));
        }
        p
    }

    /// The zones classic syslog timestamps are read in (`input.timezone`, `tenants.timezone`).
    pub fn zones(&self) -> Result<Zones, String> {
        Zones::new(&self.input.timezone, &self.tenants.timezone)
    }

    /// The detection engine's settings.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            allowed_lateness_secs: self.detection.allowed_lateness_secs,
            max_clock_skew_secs: self.detection.max_clock_skew_secs,
            max_entities_per_detection: self.detection.max_entities_per_detection,
            tenant_utc_offsets_min: self.tenants.utc_offset_minutes.clone(),
            timezone: self.input.timezone.clone(),
            tenant_timezones: self.tenants.timezone.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml("", env(&[])).unwrap();
        assert_eq!(c.kafka.quarantine_topic, "sentra.quarantine");
        assert_eq!(c.kafka.session_timeout_ms, 6000);
    }

    #[test]
    fn env_overrides_file_values() {
        let c = Config::from_toml(
            "[kafka]\nbrokers = \"a:1\"\n[clickhouse]\ndatabase = \"x\"\n",
            env(&[
                ("SENTRA_KAFKA_BROKERS", "b:2"),
                ("SENTRA_KAFKA_TOPICS", "t1, t2"),
                ("SENTRA_KAFKA_MULTI_TENANT_TOPICS", "t1, t2"),
                ("SENTRA_KAFKA_BATCH_MAX_MESSAGES", "10"),
                ("SENTRA_CLICKHOUSE_PASSWORD", "s3cret"),
                ("SENTRA_SOAR_WEBHOOK", "https://tines.example/webhook/t0ken"),
                ("SENTRA_SOAR_API_KEY", "12345"),
                ("SENTRA_AUDIT_ANCHOR_KEY", "4nch0r"),
                ("SENTRA_NOPE_X", "ignored: not a section of this config"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.brokers, "b:2");
        assert_eq!(c.kafka.topics, ["t1", "t2"]);
        assert_eq!(c.kafka.batch_max_messages, 10);
        assert_eq!(c.clickhouse.database, "x");
        assert_eq!(c.clickhouse.password, "s3cret");
        assert_eq!(c.soar.webhook, "https://tines.example/webhook/t0ken");
        assert_eq!(
            c.soar.api_key, "12345",
            "secrets stay text even when numeric"
        );
        assert_eq!(c.audit.anchor_key, "4nch0r");
        assert!(c.audit.anchoring().is_some());
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("t0ken") && !shown.contains("12345"));
        assert!(!shown.contains("4nch0r"), "{shown}");
    }

    #[test]
    fn every_topic_is_declared_as_one_tenants_or_as_carrying_several() {
        let problems = |toml: &str| match Config::from_toml(toml, env(&[])) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        let undeclared = problems("[kafka]\ntopics = [\"logs\"]\n");
        assert!(
            undeclared.contains("\"logs\" names no tenant")
                && undeclared.contains("multi_tenant_topics"),
            "{undeclared}"
        );
        let both = problems(
            "[kafka]\ntopics = [\"logs\"]\nmulti_tenant_topics = [\"logs\"]\n[kafka.topic_tenants]\nlogs = \"acme\"\n",
        );
        assert!(both.contains("keep one"), "{both}");
        for fine in [
            "[kafka]\ntopics = [\"logs\"]\nmulti_tenant_topics = [\"logs\"]\n",
            "[kafka]\ntopics = [\"logs\"]\n[kafka.topic_tenants]\nlogs = \"acme\"\n",
            "",
        ] {
            assert_eq!(problems(fine), "", "{fine}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_toml(
            "[kafka]\ntopics = []\nbatch_max_bytes = 100\n[kafka.topic_tenants]\nx = \"../evil\"\n[clickhouse]\nurl = \"ftp://x\"\ndatabase = \"a;drop\"\n[detection]\nmax_entities_per_tenant = 0\n",
            env(&[]),
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "kafka.topics",
            "kafka.batch_max_bytes",
            "topic_tenants",
            "clickhouse.url",
            "clickhouse.database",
            "max_entities_per_detection",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }

    #[test]
    fn time_zones_reach_normalization_and_the_engine() {
        let c = Config::from_toml(
            "[input]\ntimezone = \"Europe/Berlin\"\n[tenants]\ntimezone = { acme = \"Asia/Tokyo\" }\n",
            env(&[]),
        )
        .unwrap();
        let zones = c.zones().unwrap();
        assert_eq!(zones.of("acme"), Some(chrono_tz::Tz::Asia__Tokyo));
        assert_eq!(zones.of("globex"), Some(chrono_tz::Tz::Europe__Berlin));
        let e = c.engine();
        assert_eq!(
            (e.timezone.as_str(), e.tenant_timezones["acme"].as_str()),
            ("Europe/Berlin", "Asia/Tokyo")
        );
    }

    #[test]
    fn unknown_keys_and_bad_types_are_named() {
        let e = Config::from_toml("[kafka]\nbrokerz = \"x\"\n", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("brokerz"), "{e}");
        let e = Config::from_toml("", env(&[("SENTRA_CLICKHOUSE_PASWORD", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("paswor"), "{e}");
        let e = Config::from_toml("[kafka]\nbatch_max_messages = \"many\"\n", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("batch_max_messages") || e.contains("invalid type"),
            "{e}"
        );
        let e = Config::from_toml("[clickhouse]\ncompression = \"zstd\"\n", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("zstd") && e.contains("lz4"), "{e}");
    }

    #[test]
    fn clickhouse_inserts_are_compressed_unless_told_not_to() {
        use sentra_sinks::clickhouse::Compression;
        let c = Config::from_toml("", env(&[])).unwrap();
        assert_eq!(c.clickhouse.compression, Compression::Lz4);
        let c = Config::from_toml("[clickhouse]\ncompression = \"none\"\n", env(&[])).unwrap();
        assert_eq!(c.clickhouse.compression, Compression::None);
    }
}
