//! The store schemas kept as files agree with [`EVENT_FIELDS`]: a field added, removed or retyped in one of
//! them, or in the declaration, alone fails here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{ecs_fields, EVENT_FIELDS};
use crate::{clickhouse_statements, CLICKHOUSE_MIGRATIONS, EVENT_JSON_SCHEMA};

/// `sql` without whitespace, so `DateTime64(6, 'UTC')` and `DateTime64(6,'UTC')` compare equal.
fn compact(sql: &str) -> String {
    sql.split_whitespace().collect()
}

/// The parts of `sql` between the commas outside parentheses and quotes.
fn split_top_level(sql: &str) -> Vec<&str> {
    let (mut parts, mut start, mut depth, mut quoted) = (Vec::new(), 0, 0, false);
    for (i, c) in sql.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(sql[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(sql[start..].trim());
    parts
}

/// What `sql` holds between its first `(` and the `)` closing it.
fn parenthesized(sql: &str) -> &str {
    let open = sql.find('(').expect("a column list");
    let mut depth = 0;
    for (i, c) in sql[open..].char_indices() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth == 0 {
            return &sql[open + 1..open + i];
        }
    }
    panic!("unbalanced parentheses in {sql}")
}

/// A column definition (`name Type [DEFAULT …]`) as its name and compacted type.
fn column(definition: &str) -> (String, String) {
    let mut words = definition.split_whitespace();
    let name = words
        .next()
        .unwrap_or_default()
        .trim_matches('`')
        .to_owned();
    let clause = [
        "DEFAULT",
        "MATERIALIZED",
        "ALIAS",
        "CODEC",
        "TTL",
        "COMMENT",
        "AFTER",
        "FIRST",
    ];
    let ty: String = words.take_while(|w| !clause.contains(w)).collect();
    (name, ty)
}

/// What follows `<verb> [IF NOT EXISTS] events` in `statement`, when it is that statement on `events`.
fn on_events<'s>(statement: &'s str, verb: &str) -> Option<&'s str> {
    let rest = statement.strip_prefix(verb)?.trim_start();
    let rest = rest
        .strip_prefix("IF NOT EXISTS")
        .unwrap_or(rest)
        .trim_start();
    let rest = rest.strip_prefix("events")?;
    rest.starts_with(|c: char| c.is_whitespace() || c == '(')
        .then_some(rest)
}

/// The columns the migrations, applied in order, leave in the `events` table: name → compacted type.
fn clickhouse_event_columns() -> BTreeMap<String, String> {
    let mut columns = BTreeMap::new();
    for (_, _, sql) in CLICKHOUSE_MIGRATIONS {
        for statement in clickhouse_statements(sql) {
            if let Some(table) = on_events(&statement, "CREATE TABLE") {
                columns = split_top_level(parenthesized(table))
                    .into_iter()
                    .map(column)
                    .collect();
            }
            let Some(actions) = on_events(&statement, "ALTER TABLE") else {
                continue;
            };
            for action in split_top_level(actions) {
                let words: Vec<&str> = action.split_whitespace().collect();
                let (verb, definition) = match words.as_slice() {
                    [verb, "COLUMN", "IF", "NOT", "EXISTS", rest @ ..]
                    | [verb, "COLUMN", "IF", "EXISTS", rest @ ..]
                    | [verb, "COLUMN", rest @ ..] => (*verb, rest.join(" ")),
                    _ => continue,
                };
                let (name, ty) = column(&definition);
                match verb {
                    "ADD" | "MODIFY" => columns.insert(name, ty),
                    "DROP" => columns.remove(&name),
                    _ => panic!("a column action the test does not follow: {action}"),
                };
            }
        }
    }
    columns
}

#[test]
fn the_clickhouse_migrations_leave_the_declared_events_table() {
    let declared: BTreeMap<String, String> = EVENT_FIELDS
        .iter()
        .map(|f| (f.column.to_owned(), compact(f.clickhouse)))
        .collect();
    assert_eq!(clickhouse_event_columns(), declared);
}

/// Each leaf of a JSON Schema: its dotted path, its schema and whether it is required all the way down.
fn json_leaves(schema: &Value) -> Vec<(String, &Value, bool)> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return vec![(String::new(), schema, true)];
    };
    let required = |name: &str| {
        let names = schema.get("required").and_then(Value::as_array);
        names.is_some_and(|names| names.iter().any(|n| n == name))
    };
    let mut leaves = Vec::new();
    for (name, property) in properties {
        for (path, leaf, below) in json_leaves(property) {
            let path = match path.as_str() {
                "" => name.clone(),
                path => format!("{name}.{path}"),
            };
            leaves.push((path, leaf, below && required(name)));
        }
    }
    leaves
}

/// The JSON type of a leaf's values: its `type`, or `string` for an `enum` of strings.
fn json_type(leaf: &Value) -> Option<&str> {
    if let Some(ty) = leaf.get("type") {
        return ty.as_str();
    }
    let values = leaf.get("enum").and_then(Value::as_array)?;
    values.iter().all(Value::is_string).then_some("string")
}

#[test]
fn the_json_schema_describes_the_declared_ecs_fields() {
    let schema: Value = serde_json::from_str(EVENT_JSON_SCHEMA).expect("JSON");
    let leaves = json_leaves(&schema);
    let described: BTreeSet<&str> = leaves.iter().map(|(path, ..)| path.as_str()).collect();
    let declared: BTreeSet<&str> = ecs_fields().map(|(path, _)| path).collect();
    assert_eq!(described, declared);
    for field in EVENT_FIELDS {
        for (path, _) in field.ecs {
            let (_, leaf, required) = leaves.iter().find(|(p, ..)| p == path).expect("described");
            assert_eq!(json_type(leaf), Some(field.field_type.json()), "{path}");
            assert_eq!(
                *required, !field.nullable,
                "{path} is required unless absent values are"
            );
        }
    }
}
