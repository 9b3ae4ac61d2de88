//! Normalization: raw input (a syslog line, a shipper's JSON object, or an ECS document) → one ECS-shaped
//! [`Event`], or a [`Quarantined`] record saying why not.
//!
//! The input contract (see docs/ARCHITECTURE.md): a tenant the transport vouches for (a Kafka topic mapped to
//! one tenant) is authoritative, and input naming another is quarantined as `tenant_mismatch`; otherwise the
//! tenant comes from, in order, the transport's `tenant` header, the document's `tenant` (or ECS
//! `organization.id`), then the input's default (`--tenant`). Oversized, malformed-JSON and tenant-less input is
//! quarantined with its original bytes; lines Sentra does not understand are kept as `category: unknown`.
//! Input that is not valid UTF-8 is read lossily (U+FFFD for each invalid byte) and keeps its bytes in
//! `event.original` as `\xNN` escapes; input whose parsing panics is quarantined as `internal_error`.

pub mod auditd;
pub mod auth;
pub mod journald;
pub mod syslog;
pub mod zones;

use std::borrow::Cow;
use std::collections::BTreeSet;

use sentra_schemas::{
    event_id_into, Event, EventColumns, EventRef, QuarantineReason, Quarantined, TenantId,
};
use serde_json::Value;

pub use syslog::{YearPolicy, YearResolver};
pub use zones::Zones;

/// Normalization settings shared by every input stream.
#[derive(Debug, Clone)]
pub struct NormalizeConfig {
    /// Inputs larger than this many bytes are quarantined as `too_large`.
    pub max_message_bytes: usize,
    /// When set, only these tenants are accepted; others are quarantined as `unknown_tenant`.
    pub allowed_tenants: Option<BTreeSet<String>>,
    /// When set, at most this many distinct tenants are accepted (each costs engine state and indices);
    /// input of a further tenant is quarantined as `tenant_limit`.
    pub max_tenants: Option<usize>,
    /// How classic syslog lines get their year.
    pub year: YearPolicy,
    /// The zone each tenant's timestamps that carry none (classic syslog) are written in.
    pub zones: Zones,
    /// When no header, document field or fallback names a tenant, use the host name's first
    /// dash-separated token (`acme-web1` → `acme`). Off unless asked for.
    pub tenant_from_host: bool,
    /// Events dated more than this many seconds past the moment they were read ([`Input::read_us`]) are
    /// quarantined as `future`: a clock (or time zone) that far off would otherwise carry its tenant's
    /// watermark along and make every other event late. The same setting as the engine's
    /// `max_clock_skew_secs`.
    pub max_ahead_secs: u64,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 1 << 20,
            allowed_tenants: None,
            max_tenants: None,
            year: YearPolicy::Infer,
            zones: Zones::default(),
            tenant_from_host: false,
            max_ahead_secs: crate::detect::EngineConfig::default().max_clock_skew_secs,
        }
    }
}

/// One input record, as any source hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The payload, untouched.
    pub bytes: &'a [u8],
    /// Where it came from (`auth.log:12`, `kafka:topic:partition:offset`); part of the event id.
    pub source: &'a str,
    /// The transport's `tenant` header, if any (Kafka header).
    pub header_tenant: Option<&'a [u8]>,
    /// The tenant to use when neither header nor document names one (`--tenant`).
    pub fallback_tenant: Option<&'a str>,
    /// The tenant the transport vouches for (a Kafka topic mapped to one tenant): the input belongs to it,
    /// and one whose header or document names another tenant is quarantined as `tenant_mismatch`.
    pub pinned_tenant: Option<&'a str>,
    /// Reference time (epoch µs) for year inference, and the event time of last resort when
    /// `reference_is_event_time` (a Kafka message timestamp is; a file's wall clock is not).
    pub reference_us: i64,
    /// Whether `reference_us` may stand in for a missing event timestamp.
    pub reference_is_event_time: bool,
    /// When the input was read (epoch µs, the reader's clock), if the source knows: events dated more than
    /// `max_ahead_secs` past it are quarantined as `future`. `None` (tests, previews) checks nothing.
    pub read_us: Option<i64>,
}

impl<'a> Input<'a> {
    /// A line of a file or stream, read at `read_us` (which is also the reference for its year; `None`
    /// checks nothing against the clock), of tenant `tenant` unless it names its own.
    #[inline]
    pub fn line(
        bytes: &'a [u8],
        source: &'a str,
        tenant: Option<&'a str>,
        read_us: Option<i64>,
    ) -> Self {
        Input {
            bytes,
            source,
            header_tenant: None,
            fallback_tenant: tenant,
            pinned_tenant: None,
            reference_us: read_us.unwrap_or(0),
            reference_is_event_time: false,
            read_us,
        }
    }
}

/// A normalizer for one input stream (it tracks the year of classic syslog timestamps).
#[derive(Debug, Clone)]
pub struct Normalizer {
    config: NormalizeConfig,
    years: YearResolver,
    audit_serials: auditd::SeenSerials,
    lossy_utf8: u64,
    /// The tenants accepted so far, when their number is limited (`max_tenants`).
    tenants: std::collections::HashSet<String>,
}

/// The fields a JSON document supplies around its message.
#[derive(Default)]
struct DocFields<'a> {
    tenant: Option<&'a str>,
    host: Option<&'a str>,
    program: Option<&'a str>,
    pid: Option<u32>,
    timestamp_us: Option<i64>,
    message: Option<Cow<'a, str>>,
}

impl Normalizer {
    /// A normalizer with `config`.
    pub fn new(config: NormalizeConfig) -> Self {
        let years = YearResolver::new(config.year);
        Self {
            config,
            years,
            audit_serials: auditd::SeenSerials::default(),
            lossy_utf8: 0,
            tenants: std::collections::HashSet::new(),
        }
    }

    /// Inputs so far that were not valid UTF-8 and were decoded lossily (each invalid byte read as U+FFFD).
    pub fn lossy_utf8(&self) -> u64 {
        self.lossy_utf8
    }

    /// Normalizes one input into an owned [`Event`].
    pub fn normalize(&mut self, input: &Input<'_>) -> Result<Event, Box<Quarantined>> {
        self.normalize_with(input, |e| e.to_owned())
    }

    /// Normalizes one input straight into Arrow builders (no per-field allocation); `Ok(true)` when the
    /// event is of unknown kind.
    pub fn normalize_into(
        &mut self,
        input: &Input<'_>,
        columns: &mut EventColumns,
    ) -> Result<bool, Box<Quarantined>> {
        self.normalize_with(input, |e| {
            columns.append(&e);
            e.category == "unknown"
        })
    }

    /// Normalizes one input and hands the borrowed event to `f`.
    ///
    /// A bug that makes a parser panic costs only that input: it is quarantined as `internal_error` and the
    /// stream goes on, where an unwinding panic would stop the process and, under `sentra run`, stop it again
    /// on the same message after every restart. A panic inside `f` (a half-appended row) is not caught.
    pub fn normalize_with<R>(
        &mut self,
        input: &Input<'_>,
        f: impl FnOnce(EventRef<'_>) -> R,
    ) -> Result<R, Box<Quarantined>> {
        let handing_over = std::cell::Cell::new(false);
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(test)]
            tests::panic_on_injected_fault(input);
            self.normalize_unguarded(input, |e| {
                handing_over.set(true);
                f(e)
            })
        }));
        match parsed {
            Ok(result) => result,
            Err(panic) if !handing_over.get() => Err(internal_error(input, panic.as_ref())),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    fn normalize_unguarded<R>(
        &mut self,
        input: &Input<'_>,
        f: impl FnOnce(EventRef<'_>) -> R,
    ) -> Result<R, Box<Quarantined>> {
        let quarantine = |reason: QuarantineReason, detail: String, tenant: Option<String>| {
            Box::new(Quarantined {
                reason,
                detail,
                tenant,
                source: input.source.to_owned(),
                original: input.bytes.to_vec(),
            })
        };
        if input.bytes.len() > self.config.max_message_bytes {
            let detail = format!(
                "{} bytes is over the {}-byte limit (max_message_bytes)",
                input.bytes.len(),
                self.config.max_message_bytes
            );
            return Err(quarantine(QuarantineReason::TooLarge, detail, None));
        }
        // Not valid UTF-8: detection reads the lossy text, `original` keeps every byte (see `escape_invalid_utf8`).
        let (lossy, escaped);
        let (text, original) = match std::str::from_utf8(input.bytes) {
            Ok(text) => {
                let text = text.trim_end_matches(LINE_END);
                (text, text)
            }
            Err(_) => {
                self.lossy_utf8 += 1;
                lossy = String::from_utf8_lossy(input.bytes).into_owned();
                escaped = sentra_schemas::escape_invalid_utf8(input.bytes);
                (
                    lossy.trim_end_matches(LINE_END),
                    escaped.trim_end_matches(LINE_END),
                )
            }
        };
        let json;
        let doc = if text.as_bytes().first() == Some(&b'{') || text.trim_start().starts_with('{') {
            json = serde_json::from_str::<Value>(text).map_err(|e| {
                quarantine(
                    QuarantineReason::InvalidJson,
                    format!("not valid JSON: {e}"),
                    None,
                )
            })?;
            doc_fields(&json).map_err(|d| quarantine(QuarantineReason::InvalidJson, d, None))?
        } else {
            DocFields {
                message: Some(Cow::Borrowed(text)),
                ..DocFields::default()
            }
        };
        let message = doc.message.as_deref().unwrap_or("");
        let reference = doc.timestamp_us.unwrap_or(input.reference_us);
        let line = syslog::parse(message, &mut self.years, reference);
        let audit = match &line {
            Some(l) if auditd::is_audit_program(l.program) => auditd::parse_record(l.message),
            Some(_) => None,
            None => auditd::parse_record(message),
        };
        let audit_us = audit.as_ref().and_then(|a| a.stamp).map(|(us, _)| us);
        let host_tenant = if self.config.tenant_from_host {
            doc.host
                .or(line.as_ref().map(|l| l.host))
                .or_else(|| audit.as_ref().and_then(|a| a.node))
                .map(|h| before_byte(h, b'-'))
        } else {
            None
        };
        let tenant = self
            .resolve_tenant(input, doc.tenant, host_tenant)
            .map_err(|(r, d, t)| quarantine(r, d, t))?;
        let (timestamp_us, host, program, pid, body) = match (&line, doc.timestamp_us) {
            (Some(l), _) => (
                match (
                    audit_us,
                    self.config.zones.of(tenant).filter(|_| l.zoneless),
                ) {
                    (Some(us), _) => us,
                    (None, Some(tz)) => zones::local_to_utc(tz, l.timestamp_us),
                    (None, None) => l.timestamp_us,
                },
                doc.host.unwrap_or(l.host),
                l.program,
                l.pid.or(doc.pid),
                l.message,
            ),
            (None, ts) if ts.or(audit_us).is_some() && audit.is_some() => (
                audit_us.or(ts).unwrap_or_default(),
                doc.host
                    .or(audit.as_ref().and_then(|a| a.node))
                    .unwrap_or(""),
                doc.program.unwrap_or(""),
                doc.pid,
                message,
            ),
            // A document's message is the program's body; rsyslog's `msg` keeps the space after the tag.
            (None, Some(ts)) => (
                ts,
                doc.host.unwrap_or(""),
                doc.program.unwrap_or(""),
                doc.pid,
                message.trim_start_matches(' '),
            ),
            (None, None)
                if input.reference_is_event_time
                    && doc.message.is_some()
                    && doc.tenant.is_some() =>
            {
                (
                    input.reference_us,
                    doc.host.unwrap_or(""),
                    doc.program.unwrap_or(""),
                    doc.pid,
                    message.trim_start_matches(' '),
                )
            }
            (None, None) => {
                let detail =
                    "no syslog timestamp (classic, RFC 5424 or ISO-8601) and no timestamp field"
                        .to_owned();
                return Err(quarantine(
                    QuarantineReason::NoTimestamp,
                    detail,
                    Some(tenant.to_owned()),
                ));
            }
        };
        if let Some(read_us) = input.read_us {
            let ahead_us = timestamp_us.saturating_sub(read_us);
            if ahead_us > (self.config.max_ahead_secs as i64).saturating_mul(1_000_000) {
                let detail = format!(
                    "event time {} is {} s past the time it was read ({}), more than the {} s clocks may be \
                     off (detection.max_clock_skew_secs); fix the host's clock, set the zone its classic syslog \
                     lines are written in (tenants.timezone, or --timezone), or raise that setting if its \
                     clock is known to run ahead",
                    sentra_schemas::time::format_rfc3339_us(timestamp_us),
                    ahead_us / 1_000_000,
                    sentra_schemas::time::format_rfc3339_us(read_us),
                    self.config.max_ahead_secs
                );
                return Err(quarantine(
                    QuarantineReason::Future,
                    detail,
                    Some(tenant.to_owned()),
                ));
            }
        }
        let program = if program.is_empty() {
            doc.program.unwrap_or("")
        } else {
            program
        };
        let decoded: auditd::Decoded<'_>;
        let classified = match &audit {
            None => match line.as_ref().map_or("", |l| l.module) {
                "" => auth::classify(program, body),
                module => auth::classify_module(program, module, body),
            },
            Some(a) => {
                decoded = auditd::decode(a);
                // The first understood record of a serial is the event; the others of it are kept unknown.
                auditd::classify(a, &decoded).filter(|_| {
                    a.stamp
                        .is_none_or(|stamp| self.audit_serials.first(a.node, stamp))
                })
            }
        };
        let (program, pid, dataset) = match &audit {
            None if classified.is_some() => (program, pid, "system.auth"),
            None => (program, pid, "system.syslog"),
            // An audit record names the process it is about (`exe=`, `pid=`); a forwarder's tag does not.
            Some(a) => (
                auditd::program(a).unwrap_or(program),
                auditd::pid(a).or(pid),
                "auditd.log",
            ),
        };
        let c = classified.unwrap_or_else(auth::Classified::unknown);
        let mut id = [0u8; 32];
        let id = event_id_into(tenant, input.bytes, input.source, &mut id);
        Ok(f(EventRef {
            id,
            tenant,
            timestamp_us,
            host,
            process_name: program,
            process_pid: pid,
            dataset,
            category: c.category.as_str(),
            event_type: c.event_type,
            action: c.action,
            outcome: c.outcome.as_str(),
            user: c.user,
            target_user: c.target_user,
            group: c.group,
            source_ip: c.source_ip,
            source_port: c.source_port,
            auth_method: c.auth_method,
            command: c.command,
            message: body,
            original,
            source: input.source,
        }))
    }

    #[allow(clippy::type_complexity)]
    fn resolve_tenant<'a>(
        &mut self,
        input: &Input<'a>,
        doc_tenant: Option<&'a str>,
        host_tenant: Option<&'a str>,
    ) -> Result<&'a str, (QuarantineReason, String, Option<String>)> {
        if let Some(pinned) = input.pinned_tenant {
            return self.pinned_tenant(pinned, input.header_tenant, doc_tenant);
        }
        let (raw, from) = match (input.header_tenant, doc_tenant, input.fallback_tenant) {
            (Some(h), _, _) => match std::str::from_utf8(h) {
                Ok(h) => (h, "the `tenant` header"),
                Err(_) => {
                    let d = "the `tenant` header is not valid UTF-8".to_owned();
                    return Err((QuarantineReason::InvalidTenant, d, None));
                }
            },
            (None, Some(d), _) => (d, "the document's tenant field"),
            (None, None, Some(f)) => (f, "the input's default tenant (--tenant)"),
            (None, None, None) if host_tenant.is_some() => (
                host_tenant.unwrap_or_default(),
                "the host name's prefix (tenant_from_host)",
            ),
            (None, None, None) => {
                let d = "no tenant: send a `tenant` header, a `tenant`/`organization.id` field, or map the topic to a tenant".to_owned();
                return Err((QuarantineReason::NoTenant, d, None));
            }
        };
        self.check_tenant(raw, from)
    }

    /// `pinned` (a mapped topic's tenant), unless the header or the document names another.
    #[allow(clippy::type_complexity)]
    fn pinned_tenant<'a>(
        &mut self,
        pinned: &'a str,
        header: Option<&[u8]>,
        doc: Option<&str>,
    ) -> Result<&'a str, (QuarantineReason, String, Option<String>)> {
        let named = [
            (header.map(String::from_utf8_lossy), "the `tenant` header"),
            (
                doc.map(std::borrow::Cow::Borrowed),
                "the document's tenant field",
            ),
        ];
        for (name, from) in named {
            if let Some(name) = name.filter(|n| n.as_ref() != pinned) {
                let shown: String = name.chars().take(64).collect();
                let d = format!(
                    "{from} names {shown:?}, but this topic belongs to {pinned:?} (kafka.topic_tenants); a \
                     topic that carries several tenants goes in kafka.multi_tenant_topics instead"
                );
                return Err((QuarantineReason::TenantMismatch, d, Some(pinned.to_owned())));
            }
        }
        self.check_tenant(pinned, "the configured topic/tenant mapping")
    }

    /// `raw`, if it is a valid tenant id on the allow-list and within the tenant limit.
    #[allow(clippy::type_complexity)]
    fn check_tenant<'a>(
        &mut self,
        raw: &'a str,
        from: &str,
    ) -> Result<&'a str, (QuarantineReason, String, Option<String>)> {
        if let Err(e) = TenantId::check(raw) {
            let shown = raw.chars().take(64).collect();
            return Err((
                QuarantineReason::InvalidTenant,
                format!("{from}: {e}"),
                Some(shown),
            ));
        }
        if let Some(allowed) = &self.config.allowed_tenants {
            if !allowed.contains(raw) {
                let d = format!(
                    "tenant {raw:?} (from {from}) is not on the allow-list (tenants.allow)"
                );
                return Err((QuarantineReason::UnknownTenant, d, Some(raw.to_owned())));
            }
        }
        if let Some(max) = self.config.max_tenants {
            if !self.tenants.contains(raw) {
                if self.tenants.len() >= max {
                    let d = format!(
                        "tenant {raw:?} (from {from}) would be tenant number {} over the limit of {max} \
                         (tenants.max): raise the limit, or list the tenants you serve in tenants.allow",
                        max + 1
                    );
                    return Err((QuarantineReason::TenantLimit, d, Some(raw.to_owned())));
                }
                self.tenants.insert(raw.to_owned());
            }
        }
        Ok(raw)
    }
}

/// What ends a line, trimmed from the end of every input.
const LINE_END: [char; 2] = ['\n', '\r'];

/// The quarantine record of an input whose normalization panicked.
fn internal_error(input: &Input<'_>, panic: &(dyn std::any::Any + Send)) -> Box<Quarantined> {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    // A panic message can quote the input: printable, so the log line cannot act on a terminal.
    tracing::error!(
        source = input.source,
        "normalization panicked, input quarantined as internal_error: {}",
        sentra_schemas::text::printable(what)
    );
    Box::new(Quarantined {
        reason: QuarantineReason::InternalError,
        detail: format!(
            "normalizing this input hit a bug in Sentra ({what}); please report it with the input"
        ),
        tenant: None,
        source: input.source.to_owned(),
        original: input.bytes.to_vec(),
    })
}

/// Looks up `a.b.c` both as nested objects and as a literal dotted key.
fn path<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    if let Some(x) = v.get(dotted) {
        return Some(x);
    }
    dotted.split('.').try_fold(v, |cur, k| cur.get(k))
}

fn first_str<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| path(v, k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// A syslog tag `prog[pid]:` (or `prog:`) → (program, pid).
fn split_tag(tag: &str) -> (&str, Option<u32>) {
    let tag = tag.strip_suffix(':').unwrap_or(tag);
    match split_byte(tag, b'[') {
        Some((program, pid)) => (program, pid.strip_suffix(']').and_then(|p| p.parse().ok())),
        None => (tag, None),
    }
}

/// Fluent Bit's `date`: seconds since the epoch as a number (fractions allowed), in epoch microseconds.
fn epoch_seconds(v: &Value) -> Option<i64> {
    let secs = v.get("date")?.as_f64()?;
    let us = (secs * 1e6).round();
    (us.is_finite() && us.abs() < 1e17).then_some(us as i64)
}

/// Extracts the fields Sentra reads from a shipper's JSON object, an ECS document or a journal entry
/// (see [`journald`]).
fn doc_fields(v: &Value) -> Result<DocFields<'_>, String> {
    if !v.is_object() {
        return Err("JSON input must be an object".to_owned());
    }
    let tenant = first_str(v, &["tenant", "organization.id"]);
    if let Some(entry) = journald::journal_entry(v) {
        return Ok(DocFields {
            tenant,
            host: entry.host,
            program: entry.program,
            pid: entry.pid,
            timestamp_us: entry.timestamp_us.or_else(|| epoch_seconds(v)),
            message: Some(entry.message),
        });
    }
    let pid = [
        "process.pid",
        "log.syslog.procid",
        "syslog.pid",
        "pid",
        "procid",
    ]
    .iter()
    .find_map(|k| match path(v, k)? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    // rsyslog templates ship the whole tag (`sshd[811]:`) when they ship no program name.
    let tag = first_str(v, &["syslogtag", "syslog-tag", "tag"]).map(split_tag);
    let timestamp_us = match first_str(v, &["@timestamp", "timestamp", "time"]) {
        Some(ts) => match sentra_schemas::time::parse_iso8601_prefix(ts.as_bytes()) {
            Some((us, n)) if n == ts.len() => Some(us),
            _ => return Err(format!("timestamp {ts:?} is not ISO-8601 / RFC 3339")),
        },
        None => epoch_seconds(v),
    };
    let message = first_str(v, &["message", "msg", "log", "event.original"]);
    if message.is_none() {
        return Err(
            "JSON input has no `message` (or `msg`, `log`, `event.original`, `MESSAGE`) string"
                .to_owned(),
        );
    }
    Ok(DocFields {
        tenant,
        host: first_str(
            v,
            &[
                "host.name",
                "host.hostname",
                "host",
                "hostname",
                "log.syslog.hostname",
            ],
        ),
        program: first_str(
            v,
            &[
                "process.name",
                "log.syslog.appname",
                "syslog.identifier",
                "syslog.appname",
                "journald.process.name",
                "syslog_identifier",
                "ident",
                "appname",
                "app_name",
                "programname",
                "program",
            ],
        )
        .or(tag.map(|(program, _)| program)),
        pid: pid.or(tag.and_then(|(_, pid)| pid)),
        timestamp_us,
        message: message.map(Cow::Borrowed),
    })
}

/// `s` split around the first `byte` (ASCII). A plain byte loop: on the few bytes of a log field it is much
/// cheaper than `str::split_once`, which sets up a `memchr` search.
#[inline]
fn split_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, byte)?;
    Some((&s[..i], &s[i + 1..]))
}

/// The text of `s` before the first `byte` (ASCII), all of it when there is none; see [`split_byte`].
#[inline]
fn before_byte(s: &str, byte: u8) -> &str {
    &s[..find_byte(s, byte).unwrap_or(s.len())]
}

/// Index of the first `byte` (ASCII) in `s`; see [`split_byte`].
#[inline]
fn find_byte(s: &str, byte: u8) -> Option<usize> {
    s.bytes().position(|b| b == byte)
}

/// The outcome counters every source reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Records read from the source (blank lines excluded).
    pub read: u64,
    /// Records normalized into events.
    pub normalized: u64,
    /// Of those, events of `category: unknown`.
    pub unknown: u64,
    /// Records quarantined at normalization, all reasons.
    pub quarantined: u64,
    /// Blank lines skipped (files only).
    pub blank: u64,
    /// Records that were not valid UTF-8, decoded lossily (counted in `read` too).
    pub lossy_utf8: u64,
}

impl Counts {
    /// Counts one normalization result (`Ok(true)` for an event of unknown kind).
    pub fn count<T>(&mut self, r: &Result<T, Box<Quarantined>>, unknown: impl FnOnce(&T) -> bool) {
        self.read += 1;
        match r {
            Ok(e) => {
                self.normalized += 1;
                if unknown(e) {
                    self.unknown += 1;
                }
            }
            Err(_) => self.quarantined += 1,
        }
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;
