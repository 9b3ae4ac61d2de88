//! `sentra audit verify|bundle`: the tamper-evident audit trail, checked or bundled for auditors.

use std::path::PathBuf;

use anyhow::Result;
use sentra_schemas::text::printable;

use super::{load_config, parse_time};

/// `sentra audit …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Re-compute every tenant's hash chain (or the named ones) and check it against its signed anchors
    /// (key: SENTRA_AUDIT_ANCHOR_KEY); exits non-zero when a record was edited, removed or reordered, the
    /// newest records were deleted, the chain was rewritten, or the anchors do not verify.
    Verify {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only these tenants.
        #[arg(long)]
        tenant: Vec<String>,
    },
    /// Write a zip for auditors: signals, decisions, playbook runs, audit records and their verification.
    Bundle {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Start (UTC), e.g. 2026-03-01 or 2026-03-01T00:00:00Z.
        #[arg(long)]
        from: String,
        /// End (UTC, exclusive).
        #[arg(long)]
        to: String,
        /// Folder for the zip.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// Verifies the chains, or writes the bundle.
pub fn run(command: Command) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    match command {
        Command::Verify { config, tenant } => {
            let c = load_config(config.as_deref())?;
            for line in rt.block_on(sentra_service::respond::audit_verify(&c, &tenant))? {
                println!("{}", printable(&line));
            }
            Ok(())
        }
        Command::Bundle {
            config,
            tenant,
            from,
            to,
            out,
        } => {
            let c = load_config(config.as_deref())?;
            let (from, to) = (parse_time(&from)?, parse_time(&to)?);
            anyhow::ensure!(from < to, "--from must be before --to");
            let path = rt.block_on(sentra_service::respond::audit_bundle(
                &c, &tenant, from, to, &out,
            ))?;
            println!("{}", path.display());
            Ok(())
        }
    }
}
