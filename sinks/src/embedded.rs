//! The embedded store: everything `sentra replay` produces, kept under one data directory with no services.
//!
//! Layout (Hive-style partitions so DataFusion can register `events/` and `signals/` as tables):
//! ```text
//! <data-dir>/events/tenant=<tenant>/part-<hash>.parquet
//! <data-dir>/signals/tenant=<tenant>/part-<hash>.parquet
//! <data-dir>/quarantine/part-<hash>.jsonl
//! ```
//! A part's name is a hash of the ids it holds, so writing the same batch again (a replay of the same input)
//! replaces the file instead of duplicating it. Files are written to a temporary name and renamed, so a
//! reader never sees half a file.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sentra_schemas::{hex_digest, Event, Quarantined, Signal};

use crate::SinkError;

/// Writes events, signals and quarantined input under a data directory.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Arrow schema of the `events` table (the tenant is the partition directory).
pub fn events_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let o = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        s("event_id"),
        Field::new("timestamp", ts_type(), false),
        s("host"),
        s("process_name"),
        Field::new("process_pid", DataType::UInt32, true),
        s("dataset"),
        s("category"),
        s("event_type"),
        s("action"),
        s("outcome"),
        o("user_name"),
        o("target_user"),
        o("group_name"),
        o("source_ip"),
        Field::new("source_port", DataType::UInt16, true),
        o("auth_method"),
        o("command"),
        s("message"),
        s("original"),
        s("source"),
    ]))
}

/// Arrow schema of the `signals` table (the tenant is the partition directory; `doc` is the full JSON).
pub fn signals_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let o = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        s("signal_id"),
        s("signal"),
        Field::new("window_start", ts_type(), false),
        Field::new("window_end", ts_type(), false),
        s("severity"),
        Field::new("risk_score", DataType::Float64, false),
        Field::new("count", DataType::UInt64, false),
        o("user_name"),
        o("source_ip"),
        s("hosts"),
        s("mitre"),
        s("intent"),
        s("narrative"),
        s("recommendation"),
        s("doc"),
    ]))
}

fn events_batch(events: &[&Event]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = events.len();
    let mut strings: Vec<StringBuilder> = (0..16)
        .map(|_| StringBuilder::with_capacity(n, n * 16))
        .collect();
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut pid = UInt32Builder::with_capacity(n);
    let mut port = UInt16Builder::with_capacity(n);
    for e in events {
        ts.append_value(e.timestamp_us);
        pid.append_option(e.process_pid);
        port.append_option(e.source_port);
        let cols: [Option<&str>; 16] = [
            Some(&e.id),
            Some(&e.host),
            Some(&e.process_name),
            Some(&e.dataset),
            Some(e.category.as_str()),
            Some(&e.event_type),
            Some(&e.action),
            Some(e.outcome.as_str()),
            e.user.as_deref(),
            e.target_user.as_deref(),
            e.group.as_deref(),
            e.source_ip.as_deref(),
            e.auth_method.as_deref(),
            e.command.as_deref(),
            Some(&e.message),
            Some(&e.original),
        ];
        for (b, v) in strings.iter_mut().zip(cols) {
            b.append_option(v);
        }
    }
    let mut source = StringBuilder::with_capacity(n, n * 16);
    for e in events {
        source.append_value(&e.source);
    }
    let mut s = strings
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || s.next().expect("16 string columns");
    let columns: Vec<ArrayRef> = vec![
        next(),
        Arc::new(ts.finish()),
        next(),
        next(),
        Arc::new(pid.finish()),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        Arc::new(port.finish()),
        next(),
        next(),
        next(),
        next(),
        Arc::new(source.finish()),
    ];
    RecordBatch::try_new(events_schema(), columns)
}

fn signals_batch(signals: &[&Signal]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = signals.len();
    let mut id = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut ws = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut we = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut sev = StringBuilder::new();
    let mut risk = Float64Builder::with_capacity(n);
    let mut count = UInt64Builder::with_capacity(n);
    let mut user = StringBuilder::new();
    let mut ip = StringBuilder::new();
    let mut hosts = StringBuilder::new();
    let mut mitre = StringBuilder::new();
    let mut intent = StringBuilder::new();
    let mut narrative = StringBuilder::new();
    let mut rec = StringBuilder::new();
    let mut doc = StringBuilder::new();
    for s in signals {
        id.append_value(&s.id);
        name.append_value(&s.signal);
        ws.append_value(s.window_start);
        we.append_value(s.window_end);
        sev.append_value(s.severity.as_str());
        risk.append_value(s.risk_score);
        count.append_value(s.count);
        user.append_option(s.user.as_deref());
        ip.append_option(s.ip.as_deref());
        hosts.append_value(s.hosts.join(","));
        mitre.append_value(
            s.mitre
                .iter()
                .map(|m| m.technique.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
        intent.append_value(&s.intent);
        narrative.append_value(&s.narrative);
        rec.append_value(&s.recommendation);
        doc.append_value(serde_json::to_string(s).unwrap_or_default());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(ws.finish()),
        Arc::new(we.finish()),
        Arc::new(sev.finish()),
        Arc::new(risk.finish()),
        Arc::new(count.finish()),
        Arc::new(user.finish()),
        Arc::new(ip.finish()),
        Arc::new(hosts.finish()),
        Arc::new(mitre.finish()),
        Arc::new(intent.finish()),
        Arc::new(narrative.finish()),
        Arc::new(rec.finish()),
        Arc::new(doc.finish()),
    ];
    RecordBatch::try_new(signals_schema(), columns)
}

/// Groups items by tenant, keeping their order within each tenant.
fn by_tenant<T>(items: &[T], tenant: impl Fn(&T) -> &str) -> BTreeMap<String, Vec<&T>> {
    let mut out: BTreeMap<String, Vec<&T>> = BTreeMap::new();
    for i in items {
        out.entry(tenant(i).to_owned()).or_default().push(i);
    }
    out
}

impl EmbeddedStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Durably writes `events`, one Parquet part per tenant.
    pub fn write_events(&self, events: &[Event]) -> Result<(), SinkError> {
        for (tenant, group) in by_tenant(events, |e| e.tenant.as_str()) {
            let ids: Vec<&[u8]> = group.iter().map(|e| e.id.as_bytes()).collect();
            let batch = events_batch(&group).map_err(internal)?;
            self.write_parquet(&format!("events/tenant={tenant}"), &ids, &batch)?;
        }
        Ok(())
    }

    /// Durably writes `signals`, one Parquet part per tenant.
    pub fn write_signals(&self, signals: &[Signal]) -> Result<(), SinkError> {
        for (tenant, group) in by_tenant(signals, |s| s.tenant.as_str()) {
            let ids: Vec<&[u8]> = group.iter().map(|s| s.id.as_bytes()).collect();
            let batch = signals_batch(&group).map_err(internal)?;
            self.write_parquet(&format!("signals/tenant={tenant}"), &ids, &batch)?;
        }
        Ok(())
    }

    /// Durably writes quarantined input as JSON lines (reason, detail, source, base64 original bytes).
    pub fn write_quarantine(&self, items: &[Quarantined]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        let ids: Vec<Vec<u8>> = items
            .iter()
            .map(|q| [q.source.as_bytes(), b"\0", q.original.as_slice()].concat())
            .collect();
        let refs: Vec<&[u8]> = ids.iter().map(Vec::as_slice).collect();
        let mut body = Vec::new();
        for q in items {
            serde_json::to_writer(&mut body, q).map_err(|e| internal(e.to_string()))?;
            body.push(b'\n');
        }
        let path = self.part_path("quarantine", &refs, "jsonl");
        self.write_atomically(&path, |f| f.write_all(&body))
    }

    fn part_path(&self, dir: &str, ids: &[&[u8]], ext: &str) -> PathBuf {
        self.root
            .join(dir)
            .join(format!("part-{}.{ext}", hex_digest(ids, 24)))
    }

    fn write_parquet(
        &self,
        dir: &str,
        ids: &[&[u8]],
        batch: &RecordBatch,
    ) -> Result<(), SinkError> {
        let path = self.part_path(dir, ids, "parquet");
        self.write_atomically(&path, |f| {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build();
            let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props))
                .map_err(std::io::Error::other)?;
            w.write(batch).map_err(std::io::Error::other)?;
            w.close().map_err(std::io::Error::other)?;
            Ok(())
        })
    }

    fn write_atomically(
        &self,
        path: &Path,
        write: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
    ) -> Result<(), SinkError> {
        let dir = path.parent().expect("part paths have a directory");
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let tmp = path.with_extension("tmp");
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        write(&mut f).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))?;
        Ok(())
    }
}

fn internal(e: impl ToString) -> SinkError {
    SinkError::Rejected {
        store: "embedded store",
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use sentra_schemas::{Category, Outcome, TenantId};

    fn event(tenant: &str, id: &str) -> Event {
        Event {
            id: id.into(),
            tenant: TenantId::new(tenant).unwrap(),
            timestamp_us: 1_773_446_400_000_000,
            host: "h".into(),
            process_name: "sshd".into(),
            process_pid: Some(1),
            dataset: "system.auth".into(),
            category: Category::Authentication,
            event_type: "info".into(),
            action: "ssh_login".into(),
            outcome: Outcome::Failure,
            user: Some("root".into()),
            target_user: None,
            group: None,
            source_ip: Some("203.0.113.7".into()),
            source_port: Some(22),
            auth_method: Some("password".into()),
            command: None,
            message: "m".into(),
            original: "o".into(),
            source: "s:1".into(),
        }
    }

    fn rows(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .map(|f| {
                let f = fs::File::open(f.unwrap().path()).unwrap();
                ParquetRecordBatchReaderBuilder::try_new(f)
                    .unwrap()
                    .build()
                    .unwrap()
                    .map(|b| b.unwrap().num_rows())
                    .sum::<usize>()
            })
            .sum()
    }

    #[test]
    fn writes_per_tenant_and_rewrites_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::new(dir.path());
        let batch = vec![
            event("acme", "a1"),
            event("globex", "g1"),
            event("acme", "a2"),
        ];
        store.write_events(&batch).unwrap();
        store.write_events(&batch).unwrap();
        assert_eq!(rows(&dir.path().join("events/tenant=acme")), 2);
        assert_eq!(rows(&dir.path().join("events/tenant=globex")), 1);
        assert!(!dir
            .path()
            .join("events/tenant=acme")
            .read_dir()
            .unwrap()
            .any(|f| f.unwrap().path().extension().unwrap() == "tmp"));
    }
}
