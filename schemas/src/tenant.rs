use std::fmt;

use serde::{Deserialize, Serialize};

/// Maximum length of a tenant identifier, in bytes.
pub const MAX_TENANT_LEN: usize = 64;

/// A validated tenant identifier: 1–64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or
/// digit, never `..`.
///
/// Tenants are a security boundary: they become ClickHouse predicates, Elasticsearch index names and
/// embedded-store directory names, so anything that could escape those contexts is rejected here, once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

/// Why a string is not a valid tenant identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// The tenant is empty.
    #[error("tenant is empty")]
    Empty,
    /// The tenant is longer than [`MAX_TENANT_LEN`].
    #[error("tenant is longer than {MAX_TENANT_LEN} bytes")]
    TooLong,
    /// The tenant has a character outside `[A-Za-z0-9._-]`, starts with a symbol, or contains `..`.
    #[error("tenant {0:?} may only contain letters, digits, '-', '_' and '.', start with a letter or digit, and not contain '..'")]
    BadChars(String),
}

impl TenantId {
    /// Validates `s` as a tenant identifier.
    pub fn new(s: &str) -> Result<Self, TenantError> {
        Self::check(s)?;
        Ok(Self(s.to_owned()))
    }

    /// Checks `s` without allocating.
    pub fn check(s: &str) -> Result<(), TenantError> {
        if s.is_empty() {
            return Err(TenantError::Empty);
        }
        if s.len() > MAX_TENANT_LEN {
            return Err(TenantError::TooLong);
        }
        let b = s.as_bytes();
        let ok = b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && !b.windows(2).any(|w| w == b"..");
        if !ok {
            let shown: String = s.chars().take(MAX_TENANT_LEN).collect();
            return Err(TenantError::BadChars(shown));
        }
        Ok(())
    }

    /// The identifier as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_tenants() {
        for t in ["acme", "globex-eu", "t_1", "a.b", "0"] {
            assert_eq!(TenantId::new(t).unwrap().as_str(), t);
        }
    }

    #[test]
    fn rejects_escapes_and_injection() {
        for t in [
            "",
            "../etc",
            "a/b",
            "a..b",
            "-x",
            "a b",
            "a'b",
            "acme' OR 1=1",
            "é",
            &"x".repeat(65),
        ] {
            assert!(TenantId::new(t).is_err(), "{t:?} accepted");
        }
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<TenantId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"../x\"").is_err());
    }
}
