//! `sentra run`: Kafka in, ClickHouse (and Elasticsearch, SOAR) out, offsets committed after storage.

use std::path::PathBuf;

use anyhow::Result;

use super::load_config;
use super::shutdown::with_shutdown;

/// Arguments of `sentra run`.
#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (TOML); SENTRA_<SECTION>_<KEY> environment variables override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// Runs until Ctrl-C or SIGTERM, then prints what the run did (JSON) to standard error.
pub fn run(args: Args) -> Result<()> {
    let c = load_config(args.config.as_deref())?;
    let stats = with_shutdown(async |rx| Ok(sentra_service::run::run(&c, rx).await?))?;
    eprintln!("{}", serde_json::to_string(&stats)?);
    Ok(())
}
