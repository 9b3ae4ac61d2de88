//! `sentra normalize`: log lines as normalized ECS events (JSON lines); quarantined lines to standard error.

use std::io::{self, Read, Write};

use anyhow::{Context, Result};
use sentra_pipeline::normalize::{Counts, Input, NormalizeConfig, Normalizer, YearPolicy};
use sentra_service::replay::Source;

use super::detection_args::zones;

/// Arguments of `sentra normalize`.
#[derive(clap::Args)]
pub struct Args {
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
}

/// Normalizes every line of every file.
pub fn run(args: Args) -> Result<()> {
    let Args {
        files,
        tenant,
        year,
        timezone,
    } = args;
    super::check_tenant(&tenant)?;
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
            let input = Input::line(
                line.strip_suffix(b"\r").unwrap_or(line),
                &position,
                tenant.as_deref(),
                Some(now),
            );
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
