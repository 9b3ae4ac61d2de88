//! One module per `sentra` command, each with its arguments and the one function that runs it, plus what
//! several commands share.

pub mod approvals;
pub mod audit;
pub mod bench;
pub mod bench_api;
pub mod detections;
pub mod migrate;
pub mod normalize;
pub mod playbooks;
pub mod query;
pub mod replay;
pub mod run;
pub mod serve;
pub mod soar;
pub mod validate;

mod detection_args;
mod files;
mod shutdown;

use std::path::Path;

use anyhow::{Context, Result};
use sentra_service::config::Config;

/// Loads and validates the configuration, listing every problem.
fn load_config(path: Option<&Path>) -> Result<Config> {
    Config::load(path, std::env::vars()).map_err(|e| {
        anyhow::anyhow!(
            "configuration is not usable:\n  - {}",
            e.problems.join("\n  - ")
        )
    })
}

/// Refuses a `--tenant` that is not a valid tenant id.
fn check_tenant(tenant: &Option<String>) -> Result<()> {
    if let Some(t) = tenant {
        sentra_schemas::TenantId::new(t)
            .with_context(|| format!("--tenant {t:?} is not a valid tenant"))?;
    }
    Ok(())
}

/// `2026-03-01` or an RFC 3339 time, as epoch microseconds.
fn parse_time(s: &str) -> Result<i64> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    match sentra_schemas::time::parse_iso8601_prefix(full.as_bytes()) {
        Some((us, n)) if n == full.len() => Ok(us),
        _ => anyhow::bail!(
            "{s:?} is not a date (2026-03-01) or an RFC 3339 time (2026-03-01T12:00:00Z)"
        ),
    }
}
