//! Compiles an [`Intent`] to SQL for DataFusion (the embedded store) or ClickHouse. Every value from the
//! question is a bound parameter, never text in the SQL. The tenant is not in the intent at all: ClickHouse
//! queries get `tenant = {tenant:String}` from the caller's identity, and embedded queries only ever see
//! the caller's own partition directory.

use crate::intent::{Dim, Intent, Subject, What};

/// The SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// DataFusion over the embedded store's Parquet files (`$1` parameters).
    DataFusion,
    /// ClickHouse (`{p1:Type}` server-side parameters).
    ClickHouse,
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Str(String),
    /// A timestamp, epoch microseconds.
    Time(i64),
}

/// One query to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// What the rows are (for the summary).
    pub label: &'static str,
    /// The SQL, with placeholders.
    pub sql: String,
    /// The placeholders' values, in order (`$1`, `{p1:…}`, …).
    pub params: Vec<Param>,
}

struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Builder {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        let n = self.params.len();
        match (self.dialect, &self.params[n - 1]) {
            (Dialect::DataFusion, _) => format!("${n}"),
            (Dialect::ClickHouse, Param::Str(_)) => format!("{{p{n}:String}}"),
            (Dialect::ClickHouse, Param::Time(_)) => {
                format!("fromUnixTimestamp64Micro({{p{n}:Int64}})")
            }
        }
    }

    fn any_of(
        &mut self,
        values: &[String],
        one: impl Fn(&mut Self, &str) -> String,
    ) -> Option<String> {
        if values.is_empty() {
            return None;
        }
        let parts: Vec<String> = values.iter().map(|v| one(self, v)).collect();
        Some(format!("({})", parts.join(" OR ")))
    }

    fn eq(&mut self, column: &str, values: &[String]) -> Option<String> {
        self.any_of(values, |b, v| {
            format!("{column} = {}", b.bind(Param::Str(v.to_owned())))
        })
    }

    fn ip(&mut self, column: &str, values: &[String]) -> Option<String> {
        let dialect = self.dialect;
        self.any_of(values, |b, v| {
            let p = b.bind(Param::Str(v.to_owned()));
            match (v.contains('/'), dialect) {
                (false, _) => format!("{column} = {p}"),
                (true, Dialect::DataFusion) => format!("ip_in_cidr({column}, {p})"),
                // Short-circuit evaluation keeps rows without an IP (none, or a host name: the column holds
                // the source address as logged) away from the (throwing) function.
                (true, Dialect::ClickHouse) => format!(
                    "((isIPv4String({column}) OR isIPv6String({column})) AND isIPAddressInRange({column}, {p}))"
                ),
            }
        })
    }

    fn time_text(&self, expr: &str) -> String {
        match self.dialect {
            Dialect::DataFusion => format!("to_char({expr}, '%Y-%m-%dT%H:%M:%SZ')"),
            Dialect::ClickHouse => format!("formatDateTime({expr}, '%Y-%m-%dT%H:%i:%SZ', 'UTC')"),
        }
    }

    fn bucket(&self, column: &str, dim: Dim) -> String {
        let unit = if dim == Dim::Day { "day" } else { "hour" };
        let truncated = match self.dialect {
            Dialect::DataFusion => format!("date_trunc('{unit}', {column})"),
            Dialect::ClickHouse if unit == "day" => format!("toStartOfDay({column}, 'UTC')"),
            Dialect::ClickHouse => format!("toStartOfHour({column}, 'UTC')"),
        };
        self.time_text(&truncated)
    }
}

/// The queries answering `intent` (tenant-scoped by construction; see the module doc).
pub fn compile(intent: &Intent, dialect: Dialect) -> Vec<Compiled> {
    match intent.subject {
        Subject::Events if intent.what == What::Summarize => {
            let mut by_kind = intent.clone();
            by_kind.what = What::TopN;
            by_kind.group_by = Some(Dim::Action);
            by_kind.limit = crate::intent::MAX_ROWS;
            let mut signals = intent.clone();
            signals.subject = Subject::Signals;
            signals.what = What::List;
            signals.filters = crate::intent::Filters {
                time: intent.filters.time,
                ..Default::default()
            };
            let mut out = compile(&by_kind, dialect);
            out[0].label = "events by kind";
            out.extend(compile(&signals, dialect));
            out
        }
        Subject::Events => vec![events(intent, dialect)],
        Subject::Signals => vec![signals(intent, dialect)],
    }
}

fn finish(b: Builder, label: &'static str, sql: String) -> Compiled {
    Compiled {
        label,
        sql,
        params: b.params,
    }
}

fn where_clause(parts: Vec<Option<String>>, tenant: Option<&str>) -> String {
    let mut all: Vec<String> = tenant.map(str::to_owned).into_iter().collect();
    all.extend(parts.into_iter().flatten());
    if all.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", all.join(" AND "))
    }
}

fn events(intent: &Intent, dialect: Dialect) -> Compiled {
    let mut b = Builder {
        dialect,
        params: Vec::new(),
    };
    let f = &intent.filters;
    let time = f.time.map(|(from, to)| {
        let (a, z) = (b.bind(Param::Time(from)), b.bind(Param::Time(to)));
        format!("timestamp >= {a} AND timestamp < {z}")
    });
    let users = b.any_of(&f.users, |b, u| {
        let p = b.bind(Param::Str(u.to_owned()));
        format!("user_name = {p} OR target_user = {p}")
    });
    let parts = vec![
        time,
        b.ip("source_ip", &f.ips),
        users,
        b.eq("host", &f.hosts),
        f.outcome
            .as_ref()
            .and_then(|o| b.eq("outcome", std::slice::from_ref(o))),
        f.category
            .as_ref()
            .and_then(|c| b.eq("category", std::slice::from_ref(c))),
        b.eq("action", &f.actions),
        b.eq("process_name", &f.processes),
    ];
    let (table, tenant) = match dialect {
        Dialect::DataFusion => ("events", None),
        Dialect::ClickHouse => ("events FINAL", Some("tenant = {tenant:String}")),
    };
    let filter = where_clause(parts, tenant);
    let limit = intent.limit;
    match intent.what {
        What::Count | What::ExplainSignal => finish(
            b,
            "events",
            format!("SELECT count(*) AS events FROM {table}{filter}"),
        ),
        What::TopN | What::Summarize => {
            let dim = intent.group_by.unwrap_or(Dim::Action);
            let (col, name) = match dim {
                Dim::Ip => ("source_ip", "ip"),
                Dim::User => ("user_name", "user"),
                Dim::Host => ("host", "host"),
                Dim::Outcome => ("outcome", "outcome"),
                _ => ("action", "action"),
            };
            let sql = top_n(table, &filter, col, name, "events", limit);
            finish(b, "events", sql)
        }
        What::Trend => {
            let bucket = b.bucket("timestamp", intent.group_by.unwrap_or(Dim::Hour));
            finish(b, "events", trend(table, &filter, &bucket, "events"))
        }
        What::List => {
            let t = b.time_text("timestamp");
            finish(
                b,
                "events",
                format!(
                    "SELECT {t} AS time, host, action, outcome, user_name AS user, source_ip AS ip, message \
                     FROM {table}{filter} ORDER BY timestamp DESC, event_id ASC LIMIT {limit}"
                ),
            )
        }
    }
}

fn signals(intent: &Intent, dialect: Dialect) -> Compiled {
    let mut b = Builder {
        dialect,
        params: Vec::new(),
    };
    let f = &intent.filters;
    let time = f.time.map(|(from, to)| {
        let (a, z) = (b.bind(Param::Time(from)), b.bind(Param::Time(to)));
        format!("window_end > {a} AND window_start < {z}")
    });
    let hosts = b.any_of(&f.hosts, |b, h| match b.dialect {
        Dialect::DataFusion => format!(
            "(',' || hosts || ',') LIKE {}",
            b.bind(Param::Str(format!("%,{},%", like_escape(h))))
        ),
        Dialect::ClickHouse => format!("has(hosts, {})", b.bind(Param::Str(h.to_owned()))),
    });
    let mitre = b.any_of(&f.mitre, |b, m| match b.dialect {
        Dialect::DataFusion => format!(
            "(',' || mitre) LIKE {}",
            b.bind(Param::Str(format!("%,{}%", like_escape(m))))
        ),
        Dialect::ClickHouse => format!(
            "arrayExists(m -> startsWith(m, {}), mitre)",
            b.bind(Param::Str(m.to_owned()))
        ),
    });
    let id = intent
        .signal_id
        .as_ref()
        .filter(|_| intent.what == What::ExplainSignal)
        .and_then(|i| b.eq("signal_id", std::slice::from_ref(i)));
    let parts = vec![
        time,
        b.ip("source_ip", &f.ips),
        b.eq("user_name", &f.users),
        hosts,
        b.eq("signal", &f.signals),
        b.eq("severity", &f.severities),
        mitre,
        f.intent
            .as_ref()
            .and_then(|i| b.eq("intent", std::slice::from_ref(i))),
        id,
    ];
    let (table, tenant, hosts_col, mitre_col) = match dialect {
        Dialect::DataFusion => ("signals", None, "hosts", "mitre"),
        Dialect::ClickHouse => (
            "signals FINAL",
            Some("tenant = {tenant:String}"),
            "arrayStringConcat(hosts, ',')",
            "arrayStringConcat(mitre, ',')",
        ),
    };
    let filter = where_clause(parts, tenant);
    let limit = intent.limit;
    match intent.what {
        What::Count => finish(
            b,
            "signals",
            format!("SELECT count(*) AS signals FROM {table}{filter}"),
        ),
        What::TopN => {
            let (col, name) = match intent.group_by.unwrap_or(Dim::Signal) {
                Dim::Ip => ("source_ip", "ip"),
                Dim::User => ("user_name", "user"),
                Dim::Host => (hosts_col, "hosts"),
                Dim::Severity => ("severity", "severity"),
                _ => ("signal", "signal"),
            };
            let sql = top_n(table, &filter, col, name, "signals", limit);
            finish(b, "signals", sql)
        }
        What::Trend => {
            let bucket = b.bucket("window_start", intent.group_by.unwrap_or(Dim::Day));
            finish(b, "signals", trend(table, &filter, &bucket, "signals"))
        }
        What::List | What::Summarize => {
            let t = b.time_text("window_end");
            finish(
                b,
                "signals",
                format!(
                    "SELECT signal_id, signal, severity, risk_score, {t} AS window_end_utc, user_name AS user, \
                     source_ip AS ip, narrative FROM {table}{filter} \
                     ORDER BY risk_score DESC, window_end DESC, signal_id ASC LIMIT {limit}"
                ),
            )
        }
        What::ExplainSignal => {
            let (ts, te) = (b.time_text("window_start"), b.time_text("window_end"));
            finish(
                b,
                "signal",
                format!(
                    "SELECT signal_id, signal, severity, risk_score, {ts} AS window_start_utc, {te} AS window_end_utc, \
                     count, user_name AS user, source_ip AS ip, {hosts_col} AS hosts, {mitre_col} AS mitre, \
                     intent, narrative, recommendation FROM {table}{filter} LIMIT 1"
                ),
            )
        }
    }
}

/// The most frequent non-empty values of `col` (as `name`), counted as `count`.
fn top_n(table: &str, filter: &str, col: &str, name: &str, count: &str, limit: usize) -> String {
    let nonempty = format!("{col} IS NOT NULL AND {col} <> ''");
    let filter = if filter.is_empty() {
        format!(" WHERE {nonempty}")
    } else {
        format!("{filter} AND {nonempty}")
    };
    format!(
        "SELECT {col} AS {name}, count(*) AS {count} FROM {table}{filter} \
         GROUP BY {col} ORDER BY {count} DESC, {name} ASC LIMIT {limit}"
    )
}

/// Counts per time bucket (`bucket` is the bucket expression), counted as `count`.
fn trend(table: &str, filter: &str, bucket: &str, count: &str) -> String {
    format!(
        "SELECT {bucket} AS bucket, count(*) AS {count} FROM {table}{filter} \
         GROUP BY bucket ORDER BY bucket LIMIT {}",
        crate::intent::MAX_ROWS
    )
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
