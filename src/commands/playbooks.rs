//! `sentra playbooks run|check`: the playbook engine, and a check of the playbook files.

use std::path::PathBuf;

use anyhow::Result;
use sentra_schemas::text::printable;

use super::load_config;
use super::shutdown::with_shutdown;

/// `sentra playbooks …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Run the playbook engine: follow signals and decisions, execute runs, expire old approvals.
    Run {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check the playbook files in soar.playbooks_dir and list them.
    Check {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Runs the engine until stopped, or checks and lists the playbooks.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Run { config } => {
            let c = load_config(config.as_deref())?;
            let stats =
                with_shutdown(
                    async |rx| Ok(sentra_service::respond::run_playbooks(&c, rx).await?),
                )?;
            eprintln!("{}", serde_json::to_string(&stats)?);
            Ok(())
        }
        Command::Check { config } => {
            let c = load_config(config.as_deref())?;
            let playbooks = sentra_service::respond::load_playbooks(&c)?;
            for p in &playbooks {
                println!(
                    "{}\t{}\t{} step(s)",
                    printable(&p.id),
                    printable(&p.name),
                    p.steps.len()
                );
            }
            eprintln!("{} playbook(s) valid", playbooks.len());
            Ok(())
        }
    }
}
