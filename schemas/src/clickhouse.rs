//! The ClickHouse DDL, as files embedded in the binary, and how a file splits into statements.

/// ClickHouse DDL migrations, in the order they must be applied: (version, name, SQL).
///
/// Each file holds one statement per `;`-terminated block. Applied versions are recorded in the
/// `schema_migrations` table, so each runs once; the statements are idempotent anyway (`IF NOT EXISTS`,
/// id-keyed states), so two instances migrating at the same moment do no harm.
pub const CLICKHOUSE_MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "001_events_signals",
        include_str!("../clickhouse/001_events_signals.sql"),
    ),
    (
        2,
        "002_signal_overrides",
        include_str!("../clickhouse/002_signal_overrides.sql"),
    ),
    (
        3,
        "003_quarantine_rollups",
        include_str!("../clickhouse/003_quarantine_rollups.sql"),
    ),
    (4, "004_audit", include_str!("../clickhouse/004_audit.sql")),
];

/// Per-tenant read-only access in ClickHouse (role, grants, row policies, user), as a template:
/// `{db}`, `{tenant}` and `{password_sha256}` are filled in by `sentra migrate --tenant-access`.
pub const CLICKHOUSE_TENANT_ACCESS: &str = include_str!("../clickhouse/tenant_access.sql");

/// Splits a migration file into statements: `;` at a line end terminates one; `--` comment lines go.
pub fn clickhouse_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            let stmt = cur.trim().trim_end_matches(';').to_owned();
            out.push(stmt);
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_ddl_statements() {
        for (_, name, sql) in CLICKHOUSE_MIGRATIONS {
            let stmts = clickhouse_statements(sql);
            assert!(!stmts.is_empty(), "{name} has no statement");
            for s in &stmts {
                assert!(
                    s.starts_with("CREATE") || s.starts_with("ALTER") || s.starts_with("INSERT"),
                    "{name}: {s}"
                );
                assert!(!s.ends_with(';') && !s.contains("--"), "{name}: {s}");
            }
        }
    }
}
