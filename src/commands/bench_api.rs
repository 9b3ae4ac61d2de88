//! `sentra bench-api`: POST /v1/query latency on the embedded store.

use std::path::PathBuf;

use anyhow::Result;

use super::shutdown::with_shutdown;

/// Arguments of `sentra bench-api`.
#[derive(clap::Args)]
pub struct Args {
    /// Embedded store directory (from `sentra replay`).
    #[arg(long, default_value = "./sentra-data")]
    data_dir: PathBuf,
    /// Tenant to ask as.
    #[arg(long)]
    tenant: String,
    /// Requests to send.
    #[arg(long, default_value_t = 400)]
    requests: usize,
}

/// `sentra bench-api`: an in-process API over the embedded store, asked a mix of questions in sequence.
pub fn run(args: Args) -> Result<()> {
    let Args {
        data_dir,
        tenant,
        requests,
    } = args;
    let tenant = tenant.as_str();
    sentra_schemas::TenantId::check(tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    anyhow::ensure!(
        data_dir.is_dir(),
        "no embedded store at {}: run `sentra replay` first",
        data_dir.display()
    );
    let key = "bench-key";
    let api_config = sentra_service::config::ApiConfig {
        listen: "127.0.0.1:0".into(),
        keys: vec![sentra_service::config::ApiKey {
            tenant: tenant.into(),
            key_sha256: sentra_schemas::hex_digest_plain(key.as_bytes()),
        }],
        rate_per_minute: u32::MAX,
    };
    let questions = [
        "how many failed logins?",
        "top 5 source IPs with failed logins",
        "which signals were high or critical?",
        "trend of failed logins per hour",
        "show the last 10 failed logins for root",
        "how many sudo events?",
        "summarize what happened",
        "how many failed logins from 203.0.113.0/24",
    ];
    with_shutdown(async |rx| {
        let api = sentra_service::api::Api::new(
            &api_config,
            sentra_queries::Store::Embedded(data_dir),
            None,
        );
        let addr = sentra_service::api::serve(&api_config.listen, api, rx).await?;
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/v1/query");
        let bar = indicatif::ProgressBar::new(requests as u64);
        let mut latencies = Vec::with_capacity(requests);
        for i in 0..requests {
            let started = std::time::Instant::now();
            let r = client
                .post(&url)
                .header("X-API-Key", key)
                .json(&serde_json::json!({"question": questions[i % questions.len()]}))
                .send()
                .await?;
            anyhow::ensure!(
                r.status().is_success(),
                "HTTP {}: {}",
                r.status(),
                r.text().await?
            );
            r.bytes().await?;
            latencies.push(started.elapsed());
            bar.inc(1);
        }
        bar.finish_and_clear();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        println!(
            "POST /v1/query on the embedded store: {} requests, {} question kinds; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            questions.len(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.95).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
        );
        Ok(())
    })
}
