//! The Docker platform (`docker/`) cannot be started here (no Docker engine), so it is checked for what
//! can go wrong without one: the compose file's shape and pins, Sentra's configuration inside it, and every
//! dashboard query, run against the real ClickHouse engine over Sentra's own schema.

use std::path::Path;

use clickhouse::Client;
use sentra_service::config::Config;
use sentra_sinks::clickhouse::{ClickHouseConfig, ClickHouseSink};
use serde_json::Value;

use crate::support::{service, unique};

fn docker(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docker")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose() -> Value {
    serde_norway::from_str(&docker("docker-compose.yml")).expect("compose file is YAML")
}

/// `${NAME:-default}` as compose resolves it with NAME unset.
fn resolve(v: &str) -> String {
    match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner.split_once(":-").map_or("", |(_, d)| d).to_owned(),
        None => v.to_owned(),
    }
}

#[test]
fn compose_brings_up_the_whole_platform_pinned_and_on_loopback_only() {
    let c = compose();
    let services = c["services"].as_object().expect("services");
    for name in ["kafka", "clickhouse", "elasticsearch", "grafana", "sentra"] {
        assert!(services.contains_key(name), "no {name} service");
    }
    for (name, s) in services {
        if let Some(image) = s["image"].as_str() {
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            assert!(
                !tag.is_empty() && tag != "latest" && !tag.contains('/'),
                "{name}: image {image} is not pinned"
            );
        }
        for port in s["ports"].as_array().into_iter().flatten() {
            let port = port.as_str().unwrap();
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} publishes {port} beyond loopback"
            );
        }
        for dep in s["depends_on"]
            .as_object()
            .into_iter()
            .flat_map(|d| d.keys())
        {
            assert!(
                services.contains_key(dep),
                "{name} depends on unknown {dep}"
            );
        }
        for volume in s["volumes"].as_array().into_iter().flatten() {
            let host = volume.as_str().unwrap().split(':').next().unwrap();
            if let Some(rel) = host.strip_prefix("./") {
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("docker")
                    .join(rel);
                assert!(path.exists(), "{name} mounts missing {}", path.display());
            } else {
                assert!(
                    c["volumes"].get(host).is_some(),
                    "{name} uses undeclared volume {host}"
                );
            }
        }
    }
    let build = &services["sentra"]["build"];
    let dockerfile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(build["dockerfile"].as_str().unwrap());
    assert!(dockerfile.exists(), "{}", dockerfile.display());
    assert_eq!(build["context"], "..");
}

#[test]
fn sentra_config_in_compose_is_valid_with_its_environment() {
    let c = compose();
    let env: Vec<(String, String)> = c["services"]["sentra"]["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), resolve(v.as_str().unwrap())))
        .collect();
    let config =
        Config::from_toml(&docker("sentra.toml"), env).expect("docker/sentra.toml is valid");
    assert_eq!(config.kafka.brokers, "kafka:19092");
    assert_eq!(config.clickhouse.url, "http://clickhouse:8123");
    assert_eq!(config.clickhouse.user, "sentra");
    assert!(!config.clickhouse.password.is_empty());
    assert!(config.elasticsearch.enabled());
    let topics = c["services"]["kafka-init"]["command"].to_string();
    for t in config
        .kafka
        .topics
        .iter()
        .chain([&config.kafka.quarantine_topic])
    {
        assert!(
            topics.contains(t.as_str()),
            "kafka-init does not create {t}"
        );
    }
}

/// The dashboard's SQL with Grafana's macros expanded as the ClickHouse plugin does, over `database`.
fn expand(sql: &str, database: &str) -> String {
    let (from, to) = ("toDateTime(1773446400)", "toDateTime(1773532800)");
    let mut out = sql
        .replace("sentra.", &format!("{database}."))
        .replace("${tenant}", "acme")
        .replace("$__fromTime", from)
        .replace("$__toTime", to)
        .replace("$__interval_s", "60");
    for (macro_name, template) in [
        ("$__timeFilter(", "{c} >= {from} AND {c} <= {to}"),
        (
            "$__timeInterval(",
            "toStartOfInterval({c}, INTERVAL 60 second)",
        ),
    ] {
        while let Some(at) = out.find(macro_name) {
            let rest = &out[at + macro_name.len()..];
            let end = rest.find(')').unwrap();
            let column = &rest[..end];
            let expanded = template
                .replace("{c}", column)
                .replace("{from}", from)
                .replace("{to}", to);
            out = format!("{}{expanded}{}", &out[..at], &rest[end + 1..]);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_on_sentras_schema() {
    let dashboard: Value =
        serde_json::from_str(&docker("grafana/dashboards/sentra-overview.json")).unwrap();
    let datasource: Value =
        serde_norway::from_str(&docker("grafana/provisioning/datasources/clickhouse.yaml"))
            .unwrap();
    let uid = datasource["datasources"][0]["uid"].as_str().unwrap();

    let database = unique("grafana");
    let url = service("SENTRA_TEST_CLICKHOUSE_URL");
    ClickHouseSink::new(ClickHouseConfig {
        url: url.clone(),
        database: database.clone(),
        ..Default::default()
    })
    .migrate()
    .await
    .unwrap();
    let ch = Client::default().with_url(&url).with_database(&database);
    ch.query(
        "INSERT INTO events (tenant, timestamp, event_id, host, category, action, outcome, user_name) VALUES \
         ('acme', '2026-03-14 09:00:01', 'a1', 'web-1', 'authentication', 'ssh_login', 'failure', 'root'), \
         ('acme', '2026-03-14 09:00:02', 'a2', 'web-1', 'authentication', 'ssh_login', 'failure', 'root'), \
         ('globex', '2026-03-14 09:00:03', 'g1', 'db-1', 'authentication', 'ssh_login', 'failure', 'bob')",
    )
    .execute()
    .await
    .unwrap();
    ch.query(
        "INSERT INTO signals (tenant, signal_id, signal, window_start, window_end, severity, risk_score, count) \
         VALUES ('acme', 's1', 'ssh_brute_force', '2026-03-14 09:00:00', '2026-03-14 09:05:00', 'HIGH', 0.6, 2)",
    )
    .execute()
    .await
    .unwrap();

    ch.query(
        "INSERT INTO quarantine (tenant, quarantine_id, received_at, reason, detail, source, original) \
         VALUES ('acme', 'q1', '2026-03-14 09:00:00', 'invalid_json', 'not JSON', 'kafka:t:0:1', '{')",
    )
    .execute()
    .await
    .unwrap();

    let mut queries = vec![(
        "tenant variable".to_owned(),
        dashboard["templating"]["list"][0]["query"]
            .as_str()
            .unwrap()
            .to_owned(),
    )];
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], uid, "{}", panel["title"]);
            queries.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["rawSql"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert!(queries.len() >= 6);
    for (title, sql) in &queries {
        assert!(
            title == "tenant variable" || sql.contains("tenant = '${tenant}'"),
            "{title} is not tenant-scoped"
        );
        let sql = expand(sql, &database);
        let rows = ch
            .query(&format!("SELECT count() FROM ({sql})"))
            .fetch_one::<u64>()
            .await
            .unwrap_or_else(|e| panic!("{title}: {e}\n{sql}"));
        assert!(rows > 0, "{title} returned nothing:\n{sql}");
    }
    let (_, events) = queries.iter().find(|(t, _)| t == "Events").unwrap();
    let events: u64 = ch
        .query(&expand(events, &database))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(events, 2, "only acme's events are counted");
}
