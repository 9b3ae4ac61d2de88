//! The `sentra` command line: argument parsing, and one function per command (in [`commands`]).

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sentra_schemas::text::printable;

mod commands;

/// mimalloc: the engine's window state and DataFusion's batches allocate and free many small objects, where
/// the system allocator spends about 15 % of replay time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sentra turns floods of tenant-tagged Linux security events into a handful of calm, explainable signals.
#[derive(Parser)]
#[command(name = "sentra", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on log files with no services: signals to stdout, everything kept under --data-dir.
    Replay(commands::replay::Args),
    /// List the detections, or try them on log files.
    Detections {
        #[command(subcommand)]
        command: commands::detections::Command,
    },
    /// Measure the replay path on a log file, by stage: normalization alone (read, parse, ECS, ids, Arrow),
    /// then the full path with the built-in catalog; prints lines/s and lines per CPU-second of each. Make
    /// the standard workload with ../shared/bench/gen_sshd.py.
    Bench(commands::bench::Args),
    /// Print normalized ECS events as JSON lines (quarantined lines go to stderr with their reason).
    Normalize(commands::normalize::Args),
    /// Apply the ClickHouse schema (versioned, idempotent; `run` does it on start too), or print the SQL
    /// giving one tenant read-only, row-policy-scoped access.
    Migrate(commands::migrate::Args),
    /// The SOAR hand-off: inspect and re-send signals that could not be delivered.
    Soar {
        #[command(subcommand)]
        command: commands::soar::Command,
    },
    /// Playbooks: run the engine (exactly one per deployment), or check the playbook files.
    Playbooks {
        #[command(subcommand)]
        command: commands::playbooks::Command,
    },
    /// Decide playbook runs waiting for approval.
    Approvals {
        #[command(subcommand)]
        command: commands::approvals::Command,
    },
    /// The tamper-evident audit trail: verify the hash chains, or bundle a period for auditors.
    Audit {
        #[command(subcommand)]
        command: commands::audit::Command,
    },
    /// Ask a question in plain English, answered for one tenant from ClickHouse (with --config) or the
    /// embedded store of `sentra replay` (--data-dir).
    Query(commands::query::Args),
    /// Serve the HTTP API (questions, signals) over the embedded store of `sentra replay`; keys and the
    /// listen address come from `[api]` in the config.
    Serve(commands::serve::Args),
    /// Measure POST /v1/query latency on the embedded store (in-process server, sequential requests);
    /// prints p50/p95/p99.
    BenchApi(commands::bench_api::Args),
    /// Consume Kafka, normalize, detect, and store in ClickHouse, committing offsets only after storage.
    Run(commands::run::Args),
    /// Check a configuration file and explain every problem, without connecting to anything.
    Validate(commands::validate::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SENTRA_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(io::stderr)
        .init();
    let done = match Cli::parse().command {
        Command::Replay(args) => commands::replay::run(args),
        Command::Detections { command } => commands::detections::run(command),
        Command::Bench(args) => commands::bench::run(args),
        Command::Normalize(args) => commands::normalize::run(args),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Soar { command } => commands::soar::run(command),
        Command::Playbooks { command } => commands::playbooks::run(command),
        Command::Approvals { command } => commands::approvals::run(command),
        Command::Audit { command } => commands::audit::run(command),
        Command::Query(args) => commands::query::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::BenchApi(args) => commands::bench_api::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Validate(args) => commands::validate::run(args),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`sentra normalize … | head`) is the reader's choice, not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let message = format!("{e:#}");
            let lines: Vec<_> = message.split('\n').map(printable).collect();
            eprintln!("error: {}", lines.join("\n"));
            ExitCode::FAILURE
        }
    }
}
