//! The arguments that choose and tune the detections (`replay`, `detections list|test`), and the
//! normalization settings that follow from them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use sentra_pipeline::detect::{catalog, Detection, EngineConfig, Overrides};
use sentra_pipeline::normalize::{NormalizeConfig, YearPolicy, Zones};

/// Which detections run, and how.
#[derive(clap::Args, Clone)]
pub struct DetectionArgs {
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
    /// Most entities each detection follows at once per tenant; past it the least active are dropped and a
    /// low-risk detection_degraded signal says so.
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().max_entities_per_detection as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    max_entities_per_detection: u64,
    /// How far out of time order, in seconds, an input's lines may be and still be put in order: inputs are
    /// merged by event time, and each may be this disordered (nearly sorted files, `cat *.log |`).
    #[arg(long = "reorder-window", value_name = "SECS", default_value_t = REORDER_WINDOW_SECS)]
    pub reorder_window: u64,
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
pub const REORDER_WINDOW_SECS: u64 = 60;

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
    /// The detections, engine settings and overrides these arguments select.
    pub fn load(&self) -> Result<(Vec<Detection>, EngineConfig, Overrides)> {
        let detections = catalog::load(self.detections.as_deref(), &self.disabled)
            .map_err(anyhow::Error::msg)?;
        let engine = EngineConfig {
            allowed_lateness_secs: self.allowed_lateness,
            max_clock_skew_secs: self.max_clock_skew,
            max_entities_per_detection: self.max_entities_per_detection as usize,
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
    pub fn normalize(&self, year: Option<i32>, tenant_from_host: bool) -> Result<NormalizeConfig> {
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
pub fn zones(timezone: &str, tenants: &BTreeMap<String, String>) -> Result<Zones> {
    Zones::new(timezone, tenants)
        .map_err(|e| anyhow::anyhow!("--timezone / --tenant-timezone: {e}"))
}

/// `--year`, or the year that keeps each file in the past.
pub fn year_policy(year: Option<i32>) -> YearPolicy {
    year.map_or(YearPolicy::Infer, YearPolicy::Fixed)
}
