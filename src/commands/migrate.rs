//! `sentra migrate`: the ClickHouse schema applied, or one tenant's access SQL printed.

use std::path::PathBuf;

use anyhow::Result;

use super::load_config;

/// Arguments of `sentra migrate`.
#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (TOML); SENTRA_<SECTION>_<KEY> environment variables override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print the access SQL for this tenant (role, grants, row policies) instead of migrating.
    #[arg(long, value_name = "TENANT")]
    tenant_access: Option<String>,
}

/// Migrates (versioned, idempotent), or prints the access SQL.
pub fn run(args: Args) -> Result<()> {
    let Args {
        config,
        tenant_access,
    } = args;
    let c = load_config(config.as_deref())?;
    if let Some(tenant) = tenant_access {
        let tenant = sentra_schemas::TenantId::new(&tenant)
            .map_err(|e| anyhow::anyhow!("--tenant-access: {e}"))?;
        print!(
            "{}",
            sentra_sinks::clickhouse::tenant_access_sql(
                &tenant,
                &c.clickhouse.database,
                &c.clickhouse.user
            )
        );
        return Ok(());
    }
    let sink = sentra_sinks::clickhouse::ClickHouseSink::new(c.clickhouse.clone());
    let rt = tokio::runtime::Runtime::new()?;
    let applied = rt.block_on(sink.migrate()).map_err(|e| {
        anyhow::anyhow!(
            "{e}\n(ClickHouse at {}, database {}: check clickhouse.url and the credentials)",
            c.clickhouse.url,
            c.clickhouse.database
        )
    })?;
    if applied.is_empty() {
        println!(
            "ClickHouse schema is current (database {}).",
            c.clickhouse.database
        );
    } else {
        println!(
            "Applied to database {}: {}",
            c.clickhouse.database,
            applied.join(", ")
        );
    }
    Ok(())
}
