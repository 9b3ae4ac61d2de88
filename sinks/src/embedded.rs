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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float64Builder, StringBuilder, TimestampMicrosecondBuilder,
    UInt64Builder,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sentra_schemas::{hex_digest, Quarantined, Signal};

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

/// `batch` with its string views as plain strings: event parts keep the file schema they always had, so
/// parts written before and after events became views are read as one table.
fn plain_strings(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if f.data_type() == &DataType::Utf8View {
            fields.push(Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8)));
            columns.push(cast(c, &DataType::Utf8)?);
        } else {
            fields.push(f.clone());
            columns.push(c.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
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

    /// Durably writes a batch of events (with [`sentra_schemas::events_schema`]), one Parquet part per
    /// tenant; the tenant is the partition directory, not a column in the file.
    pub fn write_events(&self, events: &RecordBatch) -> Result<(), SinkError> {
        let tenants = events.column(0).as_string_view();
        let distinct: BTreeSet<&str> = tenants.iter().flatten().collect();
        let single = distinct.len() == 1;
        for tenant in distinct {
            let part = if single {
                events.clone()
            } else {
                let mask = BooleanArray::from_iter(tenants.iter().map(|t| Some(t == Some(tenant))));
                filter_record_batch(events, &mask).map_err(internal)?
            };
            let part = part
                .project(&(1..part.num_columns()).collect::<Vec<_>>())
                .map_err(internal)?;
            let part = plain_strings(&part).map_err(internal)?;
            let ids = part.column(0).as_string::<i32>();
            let ids: Vec<&[u8]> = ids.iter().map(|i| i.unwrap_or("").as_bytes()).collect();
            self.write_parquet(&format!("events/tenant={tenant}"), &ids, &part)?;
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
        crate::durable::replace(path, write).map_err(io_err(path))
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
    use sentra_schemas::{Category, Event, EventColumns, Outcome, TenantId};

    fn batch(events: &[Event]) -> RecordBatch {
        let mut c = EventColumns::default();
        for e in events {
            c.append(&e.as_ref());
        }
        c.finish()
    }

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
        let b = batch(&[
            event("acme", "a1"),
            event("globex", "g1"),
            event("acme", "a2"),
        ]);
        store.write_events(&b).unwrap();
        store.write_events(&b).unwrap();
        assert_eq!(rows(&dir.path().join("events/tenant=acme")), 2);
        assert_eq!(rows(&dir.path().join("events/tenant=globex")), 1);
        // Parts keep plain strings whatever the batch holds, so old and new parts read as one table.
        let part = fs::read_dir(dir.path().join("events/tenant=acme"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(part.path()).unwrap());
        let schema = reader.unwrap().schema().clone();
        assert_eq!(
            schema.field_with_name("host").unwrap().data_type(),
            &DataType::Utf8
        );
        assert!(!dir
            .path()
            .join("events/tenant=acme")
            .read_dir()
            .unwrap()
            .any(|f| f.unwrap().path().extension().unwrap() == "tmp"));
    }
}
