//! `sentra validate`: a configuration file checked without connecting to anything.

use std::path::PathBuf;

use anyhow::Result;
use sentra_service::config::Config;

/// Arguments of `sentra validate`.
#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (TOML).
    #[arg(long, short)]
    config: PathBuf,
}

/// Checks the file and explains every problem.
pub fn run(args: Args) -> Result<()> {
    let config = args.config;
    let c = Config::load(Some(&config), std::env::vars()).map_err(|e| {
        anyhow::anyhow!(
            "{} is not usable:\n  - {}",
            config.display(),
            e.problems.join("\n  - ")
        )
    })?;
    println!(
        "{} is valid: Kafka {} (group {}, topics {}), ClickHouse {} database {}",
        config.display(),
        c.kafka.brokers,
        c.kafka.group_id,
        c.kafka.topics.join(","),
        c.clickhouse.url,
        c.clickhouse.database
    );
    Ok(())
}
