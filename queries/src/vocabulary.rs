//! What one tenant's own data has seen: its users, hosts and source addresses. The planner recognises a
//! name by being one of these ("did ci have", "on web-1"), not only after a keyword. A vocabulary is
//! loaded per tenant with bounded, tenant-scoped queries and never shared between tenants: one tenant's
//! names must not shape, or show up in, another tenant's answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentra_schemas::TenantId;

use crate::sql::{Compiled, Dialect};

/// Most distinct values of each kind loaded per tenant.
pub const VOCABULARY_LIMIT: usize = 10_000;

/// How long a loaded vocabulary is reused.
pub const VOCABULARY_TTL: Duration = Duration::from_secs(30);

/// The users, hosts and source addresses one tenant's data has seen, looked up case-insensitively and
/// answered in the spelling the data uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    users: HashMap<String, String>,
    hosts: HashMap<String, String>,
    ips: HashMap<String, String>,
}

fn by_lowercase(values: impl IntoIterator<Item = String>) -> HashMap<String, String> {
    values
        .into_iter()
        .filter(|v| !v.is_empty())
        .take(VOCABULARY_LIMIT)
        .map(|v| (v.to_lowercase(), v))
        .collect()
}

impl Vocabulary {
    /// A vocabulary of these users, hosts and source addresses.
    pub fn new(
        users: impl IntoIterator<Item = String>,
        hosts: impl IntoIterator<Item = String>,
        ips: impl IntoIterator<Item = String>,
    ) -> Self {
        Vocabulary {
            users: by_lowercase(users),
            hosts: by_lowercase(hosts),
            ips: by_lowercase(ips),
        }
    }

    /// The user spelled `word` (any case), as the data spells it.
    pub fn user(&self, word: &str) -> Option<&str> {
        self.users.get(word).map(String::as_str)
    }

    /// The host spelled `word` (any case), as the data spells it.
    pub fn host(&self, word: &str) -> Option<&str> {
        self.hosts.get(word).map(String::as_str)
    }

    /// Whether the data has seen source address `ip`.
    pub fn has_ip(&self, ip: &str) -> bool {
        self.ips.contains_key(ip)
    }

    /// Whether nothing is known (an empty store, or one that could not be read).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.hosts.is_empty() && self.ips.is_empty()
    }
}

/// What a vocabulary query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `user_name` and `target_user`.
    User,
    /// `host`.
    Host,
    /// `source_ip`.
    Ip,
}

/// The queries that load a tenant's vocabulary: distinct non-empty values, at most [`VOCABULARY_LIMIT`]
/// each. ClickHouse queries carry `tenant = {tenant:String}` (bound from the caller's identity); embedded
/// queries only ever see the caller's own partition.
pub(crate) fn queries(dialect: Dialect) -> Vec<(Kind, Compiled)> {
    let (table, tenant) = match dialect {
        Dialect::DataFusion => ("events", ""),
        Dialect::ClickHouse => ("events", "tenant = {tenant:String} AND "),
    };
    let distinct = |column: &str| {
        format!(
            "SELECT DISTINCT {column} AS value FROM {table} WHERE {tenant}{column} IS NOT NULL \
             AND {column} <> '' LIMIT {VOCABULARY_LIMIT}"
        )
    };
    [
        (Kind::User, "user_name"),
        (Kind::User, "target_user"),
        (Kind::Host, "host"),
        (Kind::Ip, "source_ip"),
    ]
    .into_iter()
    .map(|(kind, column)| {
        (
            kind,
            Compiled {
                label: "vocabulary",
                sql: distinct(column),
                params: Vec::new(),
            },
        )
    })
    .collect()
}

/// Recently loaded vocabularies of one store, per tenant. Keep one per store: the cache does not know
/// which store a vocabulary came from.
#[derive(Debug, Default)]
pub struct Vocabularies {
    loaded: Mutex<HashMap<TenantId, (Instant, Arc<Vocabulary>)>>,
}

impl Vocabularies {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// `tenant`'s vocabulary if it was loaded less than [`VOCABULARY_TTL`] ago.
    pub fn fresh(&self, tenant: &TenantId) -> Option<Arc<Vocabulary>> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .get(tenant)
            .filter(|(at, _)| at.elapsed() < VOCABULARY_TTL)
            .map(|(_, v)| v.clone())
    }

    /// Keeps `vocabulary` as `tenant`'s.
    pub fn keep(&self, tenant: &TenantId, vocabulary: Arc<Vocabulary>) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.retain(|_, (at, _)| at.elapsed() < VOCABULARY_TTL);
        loaded.insert(tenant.clone(), (Instant::now(), vocabulary));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_in_any_case_and_answered_as_the_data_spells_them() {
        let v = Vocabulary::new(
            ["Administrator".to_owned(), "ci".to_owned()],
            ["WEB-1".to_owned()],
            ["203.0.113.7".to_owned()],
        );
        assert_eq!(v.user("administrator"), Some("Administrator"));
        assert_eq!(v.host("web-1"), Some("WEB-1"));
        assert!(v.has_ip("203.0.113.7") && v.user("web-1").is_none());
    }

    #[test]
    fn clickhouse_vocabulary_queries_are_tenant_bound_and_bounded() {
        for (_, q) in queries(Dialect::ClickHouse) {
            assert!(q.sql.contains("tenant = {tenant:String}"), "{}", q.sql);
            assert!(q.sql.ends_with(&format!("LIMIT {VOCABULARY_LIMIT}")));
        }
    }

    #[test]
    fn one_tenants_cached_vocabulary_is_never_anothers() {
        let cache = Vocabularies::new();
        let (acme, globex) = (
            TenantId::new("acme").unwrap(),
            TenantId::new("globex").unwrap(),
        );
        let gadmin = Vocabulary::new(["gadmin".to_owned()], [], []);
        cache.keep(&globex, Arc::new(gadmin));
        assert!(cache.fresh(&acme).is_none());
        assert_eq!(cache.fresh(&globex).unwrap().user("gadmin"), Some("gadmin"));
    }
}
