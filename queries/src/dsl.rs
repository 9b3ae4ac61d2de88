//! Compiles a raw-event listing [`Intent`] to Elasticsearch query DSL. Values from the question are JSON
//! values in `term`/`range` clauses, never query strings, so nothing in them is interpreted. The tenant is
//! not here: the Elasticsearch sink adds its index pattern and `organization.id` filter to every search.

use serde_json::{json, Map, Value};

use crate::intent::Intent;

fn any_of(clauses: Vec<Value>) -> Option<Value> {
    match clauses.len() {
        0 => None,
        1 => clauses.into_iter().next(),
        _ => Some(json!({"bool": {"should": clauses, "minimum_should_match": 1}})),
    }
}

fn terms(field: &str, values: &[String]) -> Option<Value> {
    any_of(values.iter().map(|v| json!({"term": {field: v}})).collect())
}

/// The query (to combine with the tenant filter) for `intent`'s events.
pub fn compile(intent: &Intent) -> Value {
    let f = &intent.filters;
    let mut filter: Vec<Value> = Vec::new();
    if let Some((from, to)) = f.time {
        filter.push(json!({"range": {"@timestamp": {
            "gte": sentra_schemas::time::format_rfc3339_us(from),
            "lt": sentra_schemas::time::format_rfc3339_us(to),
        }}}));
    }
    // A `term` on an `ip` field takes an address or a CIDR range.
    filter.extend(terms("source.ip", &f.ips));
    filter.extend(any_of(
        f.users
            .iter()
            .flat_map(|u| {
                [
                    json!({"term": {"user.name": u}}),
                    json!({"term": {"user.target.name": u}}),
                    json!({"term": {"user.effective.name": u}}),
                ]
            })
            .collect(),
    ));
    filter.extend(terms("host.name", &f.hosts));
    filter.extend(
        f.outcome
            .as_ref()
            .map(|o| json!({"term": {"event.outcome": o}})),
    );
    filter.extend(
        f.category
            .as_ref()
            .map(|c| json!({"term": {"event.category": c}})),
    );
    filter.extend(terms("event.action", &f.actions));
    filter.extend(terms("process.name", &f.processes));
    json!({"bool": {"filter": filter}})
}

/// An Elasticsearch document as a listing row (the columns of the SQL listing).
pub fn row(doc: &Value) -> Map<String, Value> {
    let get = |path: &str| {
        path.split('.')
            .try_fold(doc, |v, k| v.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let time = doc["@timestamp"]
        .as_str()
        .map(|t| Value::String(format!("{}Z", t.get(..19).unwrap_or(t))))
        .unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert("time".into(), time);
    out.insert("host".into(), get("host.name"));
    out.insert("action".into(), get("event.action"));
    out.insert("outcome".into(), get("event.outcome"));
    out.insert("user".into(), get("user.name"));
    // The address as logged: an IP, or the host name when only a name was.
    out.insert("ip".into(), get("source.address"));
    out.insert("message".into(), get("message"));
    out
}

/// The listing's columns, in order.
pub const COLUMNS: [&str; 7] = ["time", "host", "action", "outcome", "user", "ip", "message"];
