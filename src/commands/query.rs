//! `sentra query`: a question in plain English, answered for one tenant.

use std::path::PathBuf;

use anyhow::Result;
use sentra_schemas::text::printable;

use super::{load_config, parse_time};

/// Arguments of `sentra query`.
#[derive(clap::Args)]
pub struct Args {
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
}

/// Answers the question from ClickHouse (with `--config`) or the embedded store, as a table or JSON.
pub fn run(args: Args) -> Result<()> {
    let Args {
        question,
        tenant,
        format,
        data_dir,
        config,
        now,
    } = args;
    let tenant =
        sentra_schemas::TenantId::new(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
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
                    sentra_sinks::elasticsearch::ElasticsearchSink::new(c.elasticsearch.clone())
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
