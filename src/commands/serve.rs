//! `sentra serve`: the HTTP API over the embedded store of `sentra replay`.

use std::path::PathBuf;

use anyhow::Result;

use super::load_config;
use super::shutdown::with_shutdown;

/// Arguments of `sentra serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Embedded store directory.
    #[arg(long, default_value = "./sentra-data")]
    data_dir: PathBuf,
    /// Configuration file with the `[api]` section.
    #[arg(long, short)]
    config: PathBuf,
}

/// Serves until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> Result<()> {
    let Args { data_dir, config } = args;
    let c = load_config(Some(&config))?;
    anyhow::ensure!(
        !c.api.listen.is_empty(),
        "set [api] listen (e.g. \"127.0.0.1:8080\") and keys in {}",
        config.display()
    );
    anyhow::ensure!(
        data_dir.is_dir(),
        "no embedded store at {}: run `sentra replay` first",
        data_dir.display()
    );
    with_shutdown(async |rx| {
        let api =
            sentra_service::api::Api::new(&c.api, sentra_queries::Store::Embedded(data_dir), None);
        let mut done = rx.clone();
        let addr = sentra_service::api::serve(&c.api.listen, api, rx).await?;
        eprintln!("serving the embedded store on http://{addr} (Ctrl-C to stop)");
        let _ = done.changed().await;
        Ok(())
    })
}
