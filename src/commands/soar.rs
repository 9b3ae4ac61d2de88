//! `sentra soar dlq list|replay`: the signals a destination did not accept within the retry budget.

use std::path::PathBuf;

use anyhow::Result;

use super::load_config;
use super::shutdown::with_shutdown;

/// `sentra soar …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// The dead-letter queue: signals a destination did not accept within the retry budget.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

/// `sentra soar dlq …`
#[derive(clap::Subcommand)]
pub enum DlqCommand {
    /// List the dead letters not yet replayed (JSON lines).
    List {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Re-send every pending dead letter to its destination; ones that fail again are queued again.
    Replay {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Lists or re-sends the dead letters.
pub fn run(command: Command) -> Result<()> {
    let Command::Dlq { command } = command;
    match command {
        DlqCommand::List { config } => {
            let c = load_config(config.as_deref())?;
            let rt = tokio::runtime::Runtime::new()?;
            let letters = rt.block_on(sentra_service::respond::soar_dlq_list(&c))?;
            for l in &letters {
                println!("{}", serde_json::to_string(l)?);
            }
            eprintln!("{} pending dead letter(s)", letters.len());
            Ok(())
        }
        DlqCommand::Replay { config } => {
            let c = load_config(config.as_deref())?;
            let (delivered, failed) = with_shutdown(async |rx| {
                Ok(sentra_service::respond::soar_dlq_replay(&c, rx).await?)
            })?;
            println!("replayed: {delivered} delivered, {failed} failed again (still in the dead-letter queue)");
            if failed > 0 {
                anyhow::bail!(
                    "{failed} signal(s) could not be delivered; see `sentra soar dlq list`"
                );
            }
            Ok(())
        }
    }
}
