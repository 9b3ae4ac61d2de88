//! `sentra approvals list|approve|reject`: playbook runs waiting for a decision.

use std::path::PathBuf;

use anyhow::Result;
use sentra_soar::playbooks::run::RunState;

use super::load_config;

/// `sentra approvals …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Runs waiting for a decision (JSON lines); `--all` lists every run with its state and step log.
    List {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Every run, not only those awaiting approval.
        #[arg(long)]
        all: bool,
    },
    /// Approve a run: the engine then executes it.
    Approve(Decision),
    /// Reject a run: it never executes.
    Reject(Decision),
}

/// A decision on one run.
#[derive(clap::Args)]
pub struct Decision {
    /// The run id.
    id: String,
    /// Who decides (recorded in the audit trail).
    #[arg(long)]
    by: String,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    reason: String,
    /// Configuration file (TOML).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// Lists the runs, or decides one.
pub fn run(command: Command) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    match command {
        Command::List { config, all } => {
            let c = load_config(config.as_deref())?;
            let runs = rt.block_on(sentra_service::respond::runs(&c))?;
            let shown: Vec<_> = runs
                .iter()
                .filter(|r| all || r.state == RunState::AwaitingApproval)
                .collect();
            for r in &shown {
                println!("{}", serde_json::to_string(r)?);
            }
            eprintln!("{} run(s)", shown.len());
            Ok(())
        }
        Command::Approve(d) => decide(&rt, d, true),
        Command::Reject(d) => decide(&rt, d, false),
    }
}

/// `sentra approvals approve|reject`.
fn decide(rt: &tokio::runtime::Runtime, d: Decision, approve: bool) -> Result<()> {
    let c = load_config(d.config.as_deref())?;
    let run = rt.block_on(sentra_service::respond::decide(
        &c, &d.id, approve, &d.by, &d.reason,
    ))?;
    println!(
        "{} run {} (playbook {}, tenant {}, signal {}); the playbook engine acts on it",
        if approve { "approved" } else { "rejected" },
        run.id,
        run.playbook,
        run.tenant,
        run.signal.id
    );
    Ok(())
}
