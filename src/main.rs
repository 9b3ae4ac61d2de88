//! `sentra`: one binary, one subcommand per job. Thin by design: it parses arguments, sets up logging and
//! progress, and calls the pipeline crate.

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sentra_pipeline::config::Config;
use sentra_pipeline::detect::definition::WindowSpec;
use sentra_pipeline::detect::{catalog, Detection, EngineConfig, Overrides};
use sentra_pipeline::normalize::{Counts, Input, NormalizeConfig, Normalizer, YearPolicy, Zones};
use sentra_pipeline::replay::ReplaySummary;
use sentra_pipeline::replay::{self, ReplayOptions, Source};
use sentra_schemas::text::printable;

/// mimalloc: the engine's window state and DataFusion's batches allocate and free many small objects, where
/// the system allocator spent about 15 % of replay time.
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
    Replay {
        /// Syslog text, JSON-lines or journald JSON files, plain or gzip-compressed, merged by event time
        /// (`-` for standard input).
        #[arg(required = true)]
        files: Vec<String>,
        /// Tenant for lines that do not name one.
        #[arg(long)]
        tenant: Option<String>,
        /// Take the tenant from the host name's first dash-separated token when a line names none.
        #[arg(long)]
        tenant_from_host: bool,
        /// Year of the first classic syslog timestamp (which carry none); default: the year that keeps each
        /// file in the past, its last line no later than now.
        #[arg(long)]
        year: Option<i32>,
        /// Embedded store directory.
        #[arg(long, default_value = "./sentra-data")]
        data_dir: PathBuf,
        /// Keep nothing on disk (only print signals).
        #[arg(long, conflicts_with = "data_dir")]
        no_store: bool,
        /// Write signals here instead of standard output.
        #[arg(long)]
        signals_out: Option<PathBuf>,
        #[command(flatten)]
        detection: DetectionArgs,
    },
    /// List the detections, or try them on log files.
    Detections {
        #[command(subcommand)]
        command: DetectionsCommand,
    },
    /// Measure the replay path on a log file, by stage: normalization alone (read, parse, ECS, ids, Arrow),
    /// then the full path with the built-in catalog; prints lines/s and lines per CPU-second of each. Make
    /// the standard workload with ../shared/bench/gen_sshd.py.
    Bench {
        /// The workload file.
        file: PathBuf,
        /// Tenant for lines that name none (default: the host name's prefix, as in the workload).
        #[arg(long)]
        tenant: Option<String>,
        /// Year of classic syslog timestamps.
        #[arg(long, default_value_t = 2026)]
        year: i32,
    },
    /// Print normalized ECS events as JSON lines (quarantined lines go to stderr with their reason).
    Normalize {
        /// Files to read (`-` for standard input).
        #[arg(required = true)]
        files: Vec<String>,
        /// Tenant for lines that do not name one.
        #[arg(long)]
        tenant: Option<String>,
        /// Year of classic syslog timestamps; default: inferred from the clock.
        #[arg(long)]
        year: Option<i32>,
        /// The time zone (IANA name) classic syslog timestamps, which carry none, are written in.
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// Apply the ClickHouse schema (versioned, idempotent; `run` does it on start too), or print the SQL
    /// giving one tenant read-only, row-policy-scoped access.
    Migrate {
        /// Configuration file (TOML); SENTRA_<SECTION>_<KEY> environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print the access SQL for this tenant (role, grants, row policies) instead of migrating.
        #[arg(long, value_name = "TENANT")]
        tenant_access: Option<String>,
    },
    /// The SOAR hand-off: inspect and re-send signals that could not be delivered.
    Soar {
        #[command(subcommand)]
        command: SoarCommand,
    },
    /// Playbooks: run the engine (exactly one per deployment), or check the playbook files.
    Playbooks {
        #[command(subcommand)]
        command: PlaybooksCommand,
    },
    /// Decide playbook runs waiting for approval.
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// The tamper-evident audit trail: verify the hash chains, or bundle a period for auditors.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Ask a question in plain English, answered for one tenant from ClickHouse (with --config) or the
    /// embedded store of `sentra replay` (--data-dir).
    Query {
        /// The question, e.g. "top 5 source IPs with failed logins yesterday".
        question: String,
        /// Your tenant: every answer is scoped to it, whatever the question says.
        #[arg(long)]
        tenant: String,
        /// `table` (default) or `json` (engine, intent, query, rows, summary).
        #[arg(long, default_value = "table")]
        format: String,
        /// Embedded store directory (the default store).
        #[arg(long, default_value = "./sentra-data")]
        data_dir: PathBuf,
        /// Configuration file: answer from its ClickHouse instead of the embedded store.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Reference time for "today", "last 24 hours" (RFC 3339; default: now).
        #[arg(long)]
        now: Option<String>,
    },
    /// Serve the HTTP API (questions, signals) over the embedded store of `sentra replay`; keys and the
    /// listen address come from `[api]` in the config.
    Serve {
        /// Embedded store directory.
        #[arg(long, default_value = "./sentra-data")]
        data_dir: PathBuf,
        /// Configuration file with the `[api]` section.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Measure POST /v1/query latency on the embedded store (in-process server, sequential requests);
    /// prints p50/p95/p99.
    BenchApi {
        /// Embedded store directory (from `sentra replay`).
        #[arg(long, default_value = "./sentra-data")]
        data_dir: PathBuf,
        /// Tenant to ask as.
        #[arg(long)]
        tenant: String,
        /// Requests to send.
        #[arg(long, default_value_t = 400)]
        requests: usize,
    },
    /// Consume Kafka, normalize, detect, and store in ClickHouse, committing offsets only after storage.
    Run {
        /// Configuration file (TOML); SENTRA_<SECTION>_<KEY> environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and explain every problem, without connecting to anything.
    Validate {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// Which detections run, and how.
#[derive(clap::Args, Clone)]
struct DetectionArgs {
    /// A folder of detection files (*.toml) replacing built-ins of the same name or adding new ones.
    #[arg(long)]
    detections: Option<PathBuf>,
    /// Built-in detections to switch off (repeatable).
    #[arg(long = "disable", value_name = "NAME")]
    disabled: Vec<String>,
    /// Events more than this many seconds behind the newest event of their tenant's slowest host in step are
    /// late.
    #[arg(long, default_value_t = EngineConfig::default().allowed_lateness_secs)]
    allowed_lateness: u64,
    /// How far clocks may be off, in seconds: hosts of a tenant within this of its newest event hold its
    /// watermark together (a host further behind stops holding it), and an event dated more than this past
    /// the moment it is read is quarantined as `future`.
    #[arg(long, default_value_t = EngineConfig::default().max_clock_skew_secs)]
    max_clock_skew: u64,
    /// How far out of time order, in seconds, an input's lines may be and still be put in order: inputs are
    /// merged by event time, and each may be this disordered (nearly sorted files, `cat *.log |`).
    #[arg(long = "reorder-window", value_name = "SECS", default_value_t = REORDER_WINDOW_SECS)]
    reorder_window: u64,
    /// Analyst overrides (overrides.json): suppress or downgrade matching signals, with a reason.
    #[arg(long)]
    overrides: Option<PathBuf>,
    /// The time zone (IANA name, e.g. Europe/Berlin) classic syslog timestamps, which carry none, are written
    /// in; the off-hours risk modifier follows it too.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// One tenant's own time zone, as TENANT=ZONE (repeatable); other tenants use --timezone.
    #[arg(long = "tenant-timezone", value_name = "TENANT=ZONE", value_parser = tenant_zone)]
    tenant_timezones: Vec<(String, String)>,
}

/// The default of `--reorder-window`: a minute, twice the engine's allowed lateness. Lines written to one file
/// by several processes are seconds apart at most; the window's last minute of each batch is held back (and
/// copied into the next), so a longer default costs every replay.
const REORDER_WINDOW_SECS: u64 = 60;

/// Parses `TENANT=ZONE`.
fn tenant_zone(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((t, z)) if !t.is_empty() && !z.is_empty() => Ok((t.to_owned(), z.to_owned())),
        _ => Err(format!(
            "{s:?} is not TENANT=ZONE (e.g. acme=Europe/Berlin)"
        )),
    }
}

impl DetectionArgs {
    fn load(&self) -> Result<(Vec<Detection>, EngineConfig, Overrides)> {
        let detections = catalog::load(self.detections.as_deref(), &self.disabled)
            .map_err(anyhow::Error::msg)?;
        let engine = EngineConfig {
            allowed_lateness_secs: self.allowed_lateness,
            max_clock_skew_secs: self.max_clock_skew,
            timezone: self.timezone.clone(),
            tenant_timezones: self.tenant_timezones.iter().cloned().collect(),
            ..EngineConfig::default()
        };
        let overrides = match &self.overrides {
            Some(p) => Overrides::load(p).map_err(anyhow::Error::msg)?,
            None => Overrides::default(),
        };
        Ok((detections, engine, overrides))
    }

    /// Normalization settings for files read with these arguments.
    fn normalize(&self, year: Option<i32>, tenant_from_host: bool) -> Result<NormalizeConfig> {
        Ok(NormalizeConfig {
            year: year_policy(year),
            zones: zones(
                &self.timezone,
                &self.tenant_timezones.iter().cloned().collect(),
            )?,
            tenant_from_host,
            max_ahead_secs: self.max_clock_skew,
            ..NormalizeConfig::default()
        })
    }
}

/// The zones of `--timezone` and `--tenant-timezone`.
fn zones(timezone: &str, tenants: &std::collections::BTreeMap<String, String>) -> Result<Zones> {
    Zones::new(timezone, tenants)
        .map_err(|e| anyhow::anyhow!("--timezone / --tenant-timezone: {e}"))
}

#[derive(Subcommand)]
enum DetectionsCommand {
    /// Show every detection: name, window, keys, MITRE techniques, intent.
    List {
        #[command(flatten)]
        detection: DetectionArgs,
    },
    /// Run the detections on log files and report what fired, per detection.
    Test {
        /// Log files (`-` for standard input).
        #[arg(required = true)]
        files: Vec<String>,
        /// Tenant for lines that name none.
        #[arg(long, default_value = "test")]
        tenant: String,
        /// Year of classic syslog timestamps; default: inferred from the clock.
        #[arg(long)]
        year: Option<i32>,
        #[command(flatten)]
        detection: DetectionArgs,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SENTRA_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(io::stderr)
        .init();
    match dispatch(Cli::parse()) {
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

fn year_policy(year: Option<i32>) -> YearPolicy {
    year.map_or(YearPolicy::Infer, YearPolicy::Fixed)
}

fn check_tenant(tenant: &Option<String>) -> Result<()> {
    if let Some(t) = tenant {
        sentra_schemas::TenantId::new(t)
            .with_context(|| format!("--tenant {t:?} is not a valid tenant"))?;
    }
    Ok(())
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Replay {
            files,
            tenant,
            tenant_from_host,
            year,
            data_dir,
            no_store,
            signals_out,
            detection,
        } => {
            check_tenant(&tenant)?;
            let normalize = detection.normalize(year, tenant_from_host)?;
            let (detections, engine, overrides) = detection.load()?;
            let sources = sources(&files)?;
            let opts = ReplayOptions {
                sources,
                reorder_secs: detection.reorder_window,
                tenant,
                normalize,
                detections,
                engine,
                overrides,
                data_dir: (!no_store).then_some(data_dir.clone()),
            };
            let mut out: Box<dyn Write + Send> = match &signals_out {
                Some(p) => Box::new(io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(io::BufWriter::new(io::stdout())),
            };
            let (summary, secs) = replay_with_progress(&opts, &mut out)?;
            print_summary(&summary, secs);
            if !no_store {
                eprintln!("stored under {}", data_dir.display());
            }
            Ok(())
        }
        Command::Detections {
            command: DetectionsCommand::List { detection },
        } => {
            let (detections, _, _) = detection.load()?;
            println!(
                "{:<34} {:<22} {:<22} {:<22} INTENT",
                "NAME", "WINDOW", "PER", "MITRE"
            );
            for d in &detections {
                let window = match d.window {
                    WindowSpec::Tumbling { size_secs } => format!("tumbling {size_secs}s"),
                    WindowSpec::Sliding {
                        size_secs,
                        slide_secs,
                    } => format!("sliding {size_secs}s/{slide_secs}s"),
                };
                let mitre: Vec<&str> = d.mitre.iter().map(|m| m.technique.as_str()).collect();
                println!(
                    "{:<34} {:<22} {:<22} {:<22} {}",
                    d.name,
                    window,
                    d.group_by.join("+"),
                    mitre.join(","),
                    d.intent
                );
            }
            Ok(())
        }
        Command::Detections {
            command:
                DetectionsCommand::Test {
                    files,
                    tenant,
                    year,
                    detection,
                },
        } => {
            check_tenant(&Some(tenant.clone()))?;
            let normalize = detection.normalize(year, false)?;
            let (detections, engine, overrides) = detection.load()?;
            let names: Vec<String> = detections.iter().map(|d| d.name.clone()).collect();
            let opts = ReplayOptions {
                sources: sources(&files)?,
                reorder_secs: detection.reorder_window,
                tenant: Some(tenant),
                normalize,
                detections,
                engine,
                overrides,
                data_dir: None,
            };
            let mut signals = Vec::new();
            let (summary, secs) = replay_with_progress(&opts, &mut signals)?;
            let signals: Vec<sentra_schemas::Signal> = signals
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(serde_json::from_slice)
                .collect::<Result<_, _>>()?;
            for name in &names {
                let fired: Vec<&sentra_schemas::Signal> =
                    signals.iter().filter(|s| &s.signal == name).collect();
                println!("{name}: {} signal(s)", fired.len());
                for s in fired.iter().take(3) {
                    println!(
                        "  {} {} risk {:.3} — {}",
                        printable(&s.id),
                        s.severity.as_str(),
                        s.risk_score,
                        printable(&s.narrative)
                    );
                }
            }
            print_summary(&summary, secs);
            Ok(())
        }
        Command::Bench { file, tenant, year } => bench(&file, tenant, year),
        Command::Normalize {
            files,
            tenant,
            year,
            timezone,
        } => {
            check_tenant(&tenant)?;
            let zones = zones(&timezone, &Default::default())?;
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            let mut counts = Counts::default();
            for f in &files {
                let source = Source::parse(f);
                let cannot_read = || format!("cannot read {f}");
                let mut text = Vec::new();
                source
                    .open(Default::default())
                    .and_then(|mut r| r.read_to_end(&mut text))
                    .with_context(cannot_read)?;
                let name = source.name();
                let now = sentra_schemas::time::now_us();
                let year = match year {
                    Some(y) => YearPolicy::Fixed(y),
                    None => source.archive_year(now).with_context(cannot_read)?,
                };
                let mut n = Normalizer::new(NormalizeConfig {
                    year,
                    zones: zones.clone(),
                    ..NormalizeConfig::default()
                });
                for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let position = format!("{name}:{}", i + 1);
                    let input = Input {
                        bytes: line.strip_suffix(b"\r").unwrap_or(line),
                        source: &position,
                        header_tenant: None,
                        fallback_tenant: tenant.as_deref(),
                        reference_us: now,
                        reference_is_event_time: false,
                        read_us: Some(now),
                    };
                    let r = n.normalize(&input);
                    counts.count(&r, |e| e.category == sentra_schemas::Category::Unknown);
                    match r {
                        Ok(e) => {
                            serde_json::to_writer(&mut out, &e.to_ecs_json())?;
                            out.write_all(b"\n")?;
                        }
                        Err(q) => eprintln!("{}", serde_json::to_string(&q)?),
                    }
                }
            }
            out.flush()?;
            Ok(())
        }
        Command::Validate { config } => {
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
        Command::Migrate {
            config,
            tenant_access,
        } => {
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
        Command::Soar {
            command: SoarCommand::Dlq { command },
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            match command {
                DlqCommand::List { config } => {
                    let c = load_config(config.as_deref())?;
                    let letters = rt.block_on(sentra_pipeline::run::soar_dlq_list(&c))?;
                    for l in &letters {
                        println!("{}", serde_json::to_string(l)?);
                    }
                    eprintln!("{} pending dead letter(s)", letters.len());
                    Ok(())
                }
                DlqCommand::Replay { config } => {
                    let c = load_config(config.as_deref())?;
                    let (tx, rx) = tokio::sync::watch::channel(false);
                    let (delivered, failed) = rt.block_on(async {
                        tokio::spawn(async move {
                            shutdown_signal().await;
                            let _ = tx.send(true);
                        });
                        sentra_pipeline::run::soar_dlq_replay(&c, rx).await
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
        Command::Playbooks { command } => match command {
            PlaybooksCommand::Run { config } => {
                let c = load_config(config.as_deref())?;
                let stats = with_shutdown(async |rx| {
                    Ok(sentra_pipeline::respond::run_playbooks(&c, rx).await?)
                })?;
                eprintln!("{}", serde_json::to_string(&stats)?);
                Ok(())
            }
            PlaybooksCommand::Check { config } => {
                let c = load_config(config.as_deref())?;
                let playbooks = sentra_pipeline::respond::load_playbooks(&c)?;
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
        },
        Command::Approvals { command } => {
            let rt = tokio::runtime::Runtime::new()?;
            match command {
                ApprovalsCommand::List { config, all } => {
                    let c = load_config(config.as_deref())?;
                    let runs = rt.block_on(sentra_pipeline::respond::runs(&c))?;
                    let shown: Vec<_> = runs
                        .iter()
                        .filter(|r| {
                            all || r.state
                                == sentra_soar::playbooks::run::RunState::AwaitingApproval
                        })
                        .collect();
                    for r in &shown {
                        println!("{}", serde_json::to_string(r)?);
                    }
                    eprintln!("{} run(s)", shown.len());
                    Ok(())
                }
                ApprovalsCommand::Approve {
                    id,
                    by,
                    reason,
                    config,
                } => decide(&rt, config, &id, true, &by, &reason),
                ApprovalsCommand::Reject {
                    id,
                    by,
                    reason,
                    config,
                } => decide(&rt, config, &id, false, &by, &reason),
            }
        }
        Command::Audit { command } => {
            let rt = tokio::runtime::Runtime::new()?;
            match command {
                AuditCommand::Verify { config, tenant } => {
                    let c = load_config(config.as_deref())?;
                    for line in rt.block_on(sentra_pipeline::respond::audit_verify(&c, &tenant))? {
                        println!("{}", printable(&line));
                    }
                    Ok(())
                }
                AuditCommand::Bundle {
                    config,
                    tenant,
                    from,
                    to,
                    out,
                } => {
                    let c = load_config(config.as_deref())?;
                    let (from, to) = (parse_time(&from)?, parse_time(&to)?);
                    anyhow::ensure!(from < to, "--from must be before --to");
                    let path = rt.block_on(sentra_pipeline::respond::audit_bundle(
                        &c, &tenant, from, to, &out,
                    ))?;
                    println!("{}", path.display());
                    Ok(())
                }
            }
        }
        Command::Query {
            question,
            tenant,
            format,
            data_dir,
            config,
            now,
        } => {
            let tenant = sentra_schemas::TenantId::new(&tenant)
                .map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            anyhow::ensure!(
                format == "table" || format == "json",
                "--format must be table or json"
            );
            let now_us = match now {
                Some(t) => parse_time(&t)?,
                None => sentra_schemas::time::now_us(),
            };
            let mut llm = None;
            let store = match config {
                Some(path) => {
                    let c = load_config(Some(&path))?;
                    llm = c.query.planner();
                    let es = c
                        .elasticsearch
                        .enabled()
                        .then(|| {
                            sentra_sinks::elasticsearch::ElasticsearchSink::new(
                                c.elasticsearch.clone(),
                            )
                        })
                        .transpose()?;
                    sentra_queries::Store::services(
                        sentra_sinks::clickhouse::ClickHouseSink::new(c.clickhouse)
                            .client()
                            .clone(),
                        es,
                    )
                }
                None => {
                    anyhow::ensure!(
                        data_dir.is_dir(),
                        "no embedded store at {}: run `sentra replay` first, or pass --data-dir or --config",
                        data_dir.display()
                    );
                    sentra_queries::Store::Embedded(data_dir)
                }
            };
            let rt = tokio::runtime::Runtime::new()?;
            let answer = rt.block_on(sentra_queries::ask_with(
                &store,
                &tenant,
                &question,
                now_us,
                llm.as_ref(),
            ))?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print_table(&answer.columns, &answer.rows);
                println!(
                    "\n{}\n(engine: {} — {})",
                    printable(&answer.summary),
                    answer.engine,
                    printable(&answer.why)
                );
            }
            Ok(())
        }
        Command::Serve { data_dir, config } => {
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
                let api = sentra_pipeline::api::Api::new(
                    &c.api,
                    sentra_queries::Store::Embedded(data_dir),
                    None,
                );
                let mut done = rx.clone();
                let addr = sentra_pipeline::api::serve(&c.api.listen, api, rx).await?;
                eprintln!("serving the embedded store on http://{addr} (Ctrl-C to stop)");
                let _ = done.changed().await;
                Ok(())
            })
        }
        Command::BenchApi {
            data_dir,
            tenant,
            requests,
        } => bench_api(data_dir, &tenant, requests),
        Command::Run { config } => {
            let c = load_config(config.as_deref())?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let (tx, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    shutdown_signal().await;
                    let _ = tx.send(true);
                });
                let stats = sentra_pipeline::run::run(&c, rx).await?;
                eprintln!("{}", serde_json::to_string(&stats)?);
                Ok(())
            })
        }
    }
}

/// `sentra soar …`
#[derive(Subcommand)]
enum SoarCommand {
    /// The dead-letter queue: signals a destination did not accept within the retry budget.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

/// `sentra soar dlq …`
#[derive(Subcommand)]
enum DlqCommand {
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

/// `sentra playbooks …`
#[derive(Subcommand)]
enum PlaybooksCommand {
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

/// `sentra approvals …`
#[derive(Subcommand)]
enum ApprovalsCommand {
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
    Approve {
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
    },
    /// Reject a run: it never executes.
    Reject {
        /// The run id.
        id: String,
        /// Who decides.
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// `sentra audit …`
#[derive(Subcommand)]
enum AuditCommand {
    /// Re-compute every tenant's hash chain (or the named ones); exits non-zero at the first broken record.
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

/// `sentra approvals approve|reject`.
fn decide(
    rt: &tokio::runtime::Runtime,
    config: Option<PathBuf>,
    id: &str,
    approve: bool,
    by: &str,
    reason: &str,
) -> Result<()> {
    let c = load_config(config.as_deref())?;
    let run = rt.block_on(sentra_pipeline::respond::decide(
        &c, id, approve, by, reason,
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

/// A runtime with Ctrl-C/SIGTERM turned into a shutdown signal.
fn with_shutdown<T>(
    f: impl AsyncFnOnce(tokio::sync::watch::Receiver<bool>) -> Result<T>,
) -> Result<T> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(true);
        });
        f(rx).await
    })
}

/// `sentra bench-api`: an in-process API over the embedded store, asked a mix of questions in sequence.
fn bench_api(data_dir: PathBuf, tenant: &str, requests: usize) -> Result<()> {
    sentra_schemas::TenantId::check(tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    anyhow::ensure!(
        data_dir.is_dir(),
        "no embedded store at {}: run `sentra replay` first",
        data_dir.display()
    );
    let key = "bench-key";
    let api_config = sentra_pipeline::api::ApiConfig {
        listen: "127.0.0.1:0".into(),
        keys: vec![sentra_pipeline::api::ApiKey {
            tenant: tenant.into(),
            key_sha256: sentra_schemas::hex_digest_plain(key.as_bytes()),
        }],
        rate_per_minute: u32::MAX,
    };
    let questions = [
        "how many failed logins?",
        "top 5 source IPs with failed logins",
        "which signals were high or critical?",
        "trend of failed logins per hour",
        "show the last 10 failed logins for root",
        "how many sudo events?",
        "summarize what happened",
        "how many failed logins from 203.0.113.0/24",
    ];
    with_shutdown(async |rx| {
        let api = sentra_pipeline::api::Api::new(
            &api_config,
            sentra_queries::Store::Embedded(data_dir),
            None,
        );
        let addr = sentra_pipeline::api::serve(&api_config.listen, api, rx).await?;
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/v1/query");
        let bar = indicatif::ProgressBar::new(requests as u64);
        let mut latencies = Vec::with_capacity(requests);
        for i in 0..requests {
            let started = std::time::Instant::now();
            let r = client
                .post(&url)
                .header("X-API-Key", key)
                .json(&serde_json::json!({"question": questions[i % questions.len()]}))
                .send()
                .await?;
            anyhow::ensure!(
                r.status().is_success(),
                "HTTP {}: {}",
                r.status(),
                r.text().await?
            );
            r.bytes().await?;
            latencies.push(started.elapsed());
            bar.inc(1);
        }
        bar.finish_and_clear();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        println!(
            "POST /v1/query on the embedded store: {} requests, {} question kinds; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            questions.len(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.95).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
        );
        Ok(())
    })
}

/// Prints rows as an aligned text table. Values come from log lines, so each goes through [`printable`]: a
/// user name holding `ESC [2J` or a carriage return shows as escapes instead of acting on the terminal.
fn print_table(columns: &[String], rows: &[serde_json::Map<String, serde_json::Value>]) {
    let cell = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => printable(s).chars().take(80).collect(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => printable(&v.to_string()).into_owned(),
    };
    let columns: Vec<String> = columns.iter().map(|c| printable(c).into_owned()).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(r.get(c))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: &[String]| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(&columns));
    for r in &cells {
        println!("{}", line(r));
    }
}

/// Loads and validates the configuration, listing every problem.
fn load_config(path: Option<&std::path::Path>) -> Result<Config> {
    Config::load(path, std::env::vars()).map_err(|e| {
        anyhow::anyhow!(
            "configuration is not usable:\n  - {}",
            e.problems.join("\n  - ")
        )
    })
}

/// Checks the inputs exist and turns them into sources.
fn sources(files: &[String]) -> Result<Vec<Source>> {
    files
        .iter()
        .map(|f| {
            let s = Source::parse(f);
            if let Source::Path(p) = &s {
                if !p.is_file() {
                    bail!("{} is not a readable file", p.display());
                }
            }
            Ok(s)
        })
        .collect()
}

/// Runs a replay with a progress bar on a terminal; returns the summary and the wall time.
fn replay_with_progress(
    opts: &ReplayOptions,
    out: &mut (dyn Write + Send),
) -> Result<(ReplaySummary, f64)> {
    let total: u64 = opts
        .sources
        .iter()
        .map(|s| match s {
            Source::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Stdin => 0,
        })
        .sum();
    let bar = progress_bar(total);
    let started = std::time::Instant::now();
    let summary = replay::replay(opts, out, &mut |n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok((summary, started.elapsed().as_secs_f64()))
}

fn print_summary(summary: &ReplaySummary, secs: f64) {
    let c = &summary.counts;
    eprintln!(
        "read {} lines in {secs:.2}s: {} events ({} unknown kind), {} quarantined, {} blank, {} late; {} signals",
        c.read + c.blank,
        c.normalized,
        c.unknown,
        c.quarantined,
        c.blank,
        summary.late,
        summary.signals
    );
    if c.lossy_utf8 > 0 {
        eprintln!("  not valid UTF-8, read lossily: {}", c.lossy_utf8);
    }
    for (reason, n) in &summary.quarantined_by_reason {
        eprintln!("  quarantined {reason}: {n}");
    }
    if summary.out_of_order > 0 {
        eprintln!(
            "  out of order beyond the reorder window: {}",
            summary.out_of_order
        );
    }
    for (detection, n) in &summary.signals_by_detection {
        eprintln!("  signals {detection}: {n}");
    }
    for hint in &summary.hints {
        eprintln!("hint: {hint}");
    }
}

/// CPU seconds (user + system) used by this process so far, and its peak resident set in KiB.
fn cpu_and_peak_rss() -> (f64, i64) {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(u.ru_utime) + t(u.ru_stime), u.ru_maxrss)
}

fn bench(file: &std::path::Path, tenant: Option<String>, year: i32) -> Result<()> {
    check_tenant(&tenant)?;
    let tenant_from_host = tenant.is_none();
    let opts = |detections| ReplayOptions {
        sources: vec![Source::Path(file.to_owned())],
        reorder_secs: REORDER_WINDOW_SECS,
        tenant: tenant.clone(),
        normalize: NormalizeConfig {
            year: YearPolicy::Fixed(year),
            tenant_from_host,
            ..NormalizeConfig::default()
        },
        detections,
        engine: EngineConfig::default(),
        overrides: Overrides::default(),
        data_dir: None,
    };
    // Normalization first: the peak resident set only grows, so each stage's peak reads right after it.
    let stages = [("normalize", Vec::new()), ("full path", catalog::builtin())];
    struct Figures {
        stage: &'static str,
        summary: ReplaySummary,
        wall: f64,
        cpu: f64,
        peak_rss_kib: i64,
    }
    let mut figures = Vec::new();
    for (stage, detections) in stages {
        let (cpu0, _) = cpu_and_peak_rss();
        let (summary, wall) = replay_with_progress(&opts(detections), &mut io::sink())?;
        let (cpu1, peak_rss_kib) = cpu_and_peak_rss();
        figures.push(Figures {
            stage,
            summary,
            wall,
            cpu: cpu1 - cpu0,
            peak_rss_kib,
        });
    }
    let (normalize, full) = (&figures[0], &figures[1]);
    let lines = (full.summary.counts.read + full.summary.counts.blank) as f64;
    println!("workload        {}", file.display());
    println!("lines           {lines:.0}");
    println!("events          {}", full.summary.counts.normalized);
    println!("signals         {}", full.summary.signals);
    let row = |name: &str, value: &dyn Fn(&Figures) -> String| {
        let cells: String = figures
            .iter()
            .map(|f| format!("{:>14}", value(f)))
            .collect();
        println!("{name:<16}{cells}");
    };
    row("stage", &|f| f.stage.to_owned());
    row("wall seconds", &|f| format!("{:.3}", f.wall));
    row("cpu seconds", &|f| format!("{:.3}", f.cpu));
    row("lines/s", &|f| format!("{:.0}", lines / f.wall));
    row("lines/cpu-s", &|f| format!("{:.0}", lines / f.cpu));
    row("peak rss MiB", &|f| {
        format!("{:.1}", f.peak_rss_kib as f64 / 1024.0)
    });
    // What the detections add on top of normalization, as their own rate.
    let detect_cpu = full.cpu - normalize.cpu;
    if detect_cpu > 0.0 {
        println!(
            "detection alone {:>14.0} lines/cpu-s (full path − normalize)",
            lines / detect_cpu
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn progress_bar(total: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
