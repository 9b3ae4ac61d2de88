//! Shared helpers: service addresses, unique names, the `sentra` binary.

use std::process::{Command, Output};

/// The address of a service the test harness started, or a panic saying how to start it.
///
/// Opt-in real servers: `CLICKHOUSE_URL` (e.g. `http://user:password@host:8123`) replaces the chDB front
/// end and `ES_URL` replaces osmem in every test that uses the shared instances (the outage test always
/// starts its own private chDB and osmem, since it stops them).
pub fn service(var: &str) -> String {
    let real = match var {
        "SENTRA_TEST_CLICKHOUSE_URL" => std::env::var("CLICKHOUSE_URL").ok(),
        "SENTRA_TEST_ES_URL" => std::env::var("ES_URL").ok(),
        _ => None,
    };
    if let Some(url) = real.filter(|u| !u.is_empty()) {
        return url;
    }
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with scripts/test.sh (or `eval \"$(scripts/services.sh up)\"` first)")
    })
}

/// Credentials for opt-in real servers, as the pipeline reads them (`SENTRA_CLICKHOUSE_USER`,
/// `SENTRA_CLICKHOUSE_PASSWORD`, `SENTRA_ELASTICSEARCH_USER`, `SENTRA_ELASTICSEARCH_PASSWORD`,
/// `SENTRA_ELASTICSEARCH_API_KEY`); empty with the local test services.
pub fn credentials() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("SENTRA_CLICKHOUSE_") || k.starts_with("SENTRA_ELASTICSEARCH_")
        })
        .collect()
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Runs the `sentra` binary with `args`.
pub fn sentra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentra"))
        .args(args)
        .env("SENTRA_LOG", "warn")
        .output()
        .expect("run sentra")
}

/// `sentra replay --tenant TENANT --year 2026 --data-dir DATA FILE`: a log of the samples' year, replayed into
/// an embedded store.
pub fn replay_stored(tenant: &str, data: &std::path::Path, file: &str) -> Output {
    sentra(&[
        "replay",
        "--tenant",
        tenant,
        "--year",
        "2026",
        "--data-dir",
        data.to_str().unwrap(),
        file,
    ])
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An in-process API configuration on a free loopback port with `(tenant, key)` pairs.
pub fn api_config(
    keys: &[(&str, &str)],
    rate_per_minute: u32,
) -> sentra_service::config::ApiConfig {
    sentra_service::config::ApiConfig {
        listen: "127.0.0.1:0".into(),
        keys: keys
            .iter()
            .map(|(tenant, key)| sentra_service::config::ApiKey {
                tenant: (*tenant).into(),
                key_sha256: sentra_schemas::hex_digest_plain(key.as_bytes()),
            })
            .collect(),
        rate_per_minute,
    }
}

/// `GET url` with an API key, as JSON (panics on transport or JSON errors).
pub async fn get_json(http: &reqwest::Client, url: &str, key: &str) -> serde_json::Value {
    http.get(url)
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The current time on a wall clock `hours` east of UTC, as a classic syslog stamp (`Nov  2 21:09:03`).
pub fn classic_stamp_now(hours: i64) -> String {
    classic_stamp(sentra_schemas::time::now_us() / 1_000_000 + hours * 3600)
}

/// `secs` since the epoch as a classic syslog stamp (`Nov  2 21:09:03`).
pub fn classic_stamp(secs: i64) -> String {
    let (_, month, day) = sentra_schemas::time::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {day:2} {:02}:{:02}:{:02}",
        months[month as usize - 1],
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Sends the pipeline's logs (level from `SENTRA_LOG`, default warn) to the test's captured output.
pub fn log_to_test_output() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SENTRA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
