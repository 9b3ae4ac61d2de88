//! Anchors for the audit chain: the chainer signs each tenant's chain head periodically (HMAC-SHA256 with
//! a key from `SENTRA_AUDIT_ANCHOR_KEY`) and appends the [`Anchor`] to a Kafka topic of its own, which the
//! store holding the chain cannot rewrite. A chain verifies on its own only as far as it goes; against its
//! anchors ([`check`]) it also shows when its newest records were deleted or the whole chain was rewritten.
//! Records chained after the newest anchor are covered once the next anchor is signed.
//!
//! The key never appears in logs, errors or `Debug` output.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use sentra_kafka::Producer;
use sentra_schemas::audit::AuditRecord;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The environment variable holding the anchor key.
pub const KEY_ENV: &str = "SENTRA_AUDIT_ANCHOR_KEY";

/// What the signature covers first, so it can never stand for another kind of message.
const DOMAIN: &[u8] = b"sentra-audit-anchor-v1";

/// The consumer name `sentra audit verify` reads anchors under.
const READER: &str = "sentra-audit-anchor-reader";

/// How long reading the anchors may wait for the broker.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The key anchors are signed with.
#[derive(Clone)]
pub struct AnchorKey(Vec<u8>);

impl AnchorKey {
    /// A key of these bytes; `None` when empty.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        let bytes = bytes.into();
        (!bytes.is_empty()).then_some(Self(bytes))
    }

    /// The key from [`KEY_ENV`], if set and not empty.
    pub fn from_env() -> Option<Self> {
        Self::new(std::env::var(KEY_ENV).ok()?)
    }

    fn mac(&self, tenant: &str, seq: u64, head: &str, at_us: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in [DOMAIN, tenant.as_bytes(), head.as_bytes()] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.update(&seq.to_le_bytes());
        mac.update(&at_us.to_le_bytes());
        mac
    }
}

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnchorKey(***)")
    }
}

/// A signed statement that a tenant's chain had `head` as the hash of record `seq` at `at_us`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The tenant whose chain it anchors.
    pub tenant: String,
    /// The seq of the chain's newest record when signed.
    pub seq: u64,
    /// That record's hash.
    pub head: String,
    /// When it was signed, epoch microseconds.
    pub at_us: i64,
    /// Hex HMAC-SHA256 over the fields above.
    pub signature: String,
}

impl Anchor {
    /// The anchor of `head` (a tenant's newest record), signed now with `key`.
    pub fn sign(key: &AnchorKey, head: &AuditRecord, at_us: i64) -> Self {
        let mac = key.mac(&head.tenant, head.seq, &head.hash, at_us);
        Self {
            tenant: head.tenant.clone(),
            seq: head.seq,
            head: head.hash.clone(),
            at_us,
            signature: const_hex::encode(mac.finalize().into_bytes()),
        }
    }

    /// Whether the signature is `key`'s over these fields (compared in constant time).
    pub fn verifies(&self, key: &AnchorKey) -> bool {
        let Ok(sig) = const_hex::decode(&self.signature) else {
            return false;
        };
        key.mac(&self.tenant, self.seq, &self.head, self.at_us)
            .verify_slice(&sig)
            .is_ok()
    }

    fn when(&self) -> String {
        sentra_schemas::time::format_rfc3339_us(self.at_us)
    }
}

/// Why a chain does not match its anchors. Each message says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorBreak {
    /// Anchors exist but no key was given to check them.
    #[error(
        "audit chain of tenant {tenant} has {count} anchor(s) but {KEY_ENV} is not set, so truncation and \
         rewriting cannot be checked: set it to the key `sentra run` signs anchors with and verify again"
    )]
    NoKey {
        /// The tenant.
        tenant: String,
        /// Its anchors.
        count: usize,
    },
    /// An anchor's signature does not verify with the key.
    #[error(
        "audit chain of tenant {tenant}: the anchor of seq {seq} signed at {at} does not verify with \
         {KEY_ENV}: the key differs from the one `sentra run` signs with, or the anchor was forged (the \
         chain may have been rewritten with it). Check the key; if it is right, treat the audit trail as \
         tampered and restore the audit table from a backup"
    )]
    Forged {
        /// The tenant.
        tenant: String,
        /// The seq the anchor claims.
        seq: u64,
        /// When it claims to have been signed.
        at: String,
    },
    /// The chain ends before the newest anchor.
    #[error(
        "audit chain of tenant {tenant} is truncated: it ends at seq {ends} but was anchored at seq \
         {anchored} at {at}, so its newest {missing} record(s) were deleted. Restore the audit table from a \
         backup (the audit topic may still hold the events) and investigate who could delete from it"
    )]
    Truncated {
        /// The tenant.
        tenant: String,
        /// The chain's last seq (0: no records).
        ends: u64,
        /// The newest anchor's seq.
        anchored: u64,
        /// When that anchor was signed.
        at: String,
        /// How many records are missing.
        missing: u64,
    },
    /// A record's hash differs from the one anchored for its seq.
    #[error(
        "audit chain of tenant {tenant} was rewritten: record {seq}'s hash is not the one anchored at {at}, \
         so the chain up to seq {seq} was replaced (or cut and continued from an earlier record). Restore \
         the audit table from a backup and investigate who could write to it"
    )]
    Rewritten {
        /// The tenant.
        tenant: String,
        /// The anchored seq whose hash differs.
        seq: u64,
        /// When that anchor was signed.
        at: String,
    },
}

/// Checks one tenant's chain (`records`, already verified on its own, in seq order) against its
/// `anchors`: each must verify with `key`; the chain must reach the newest; each anchored record must
/// carry the anchored hash. Returns the newest anchored seq (`None`: no anchors).
pub fn check(
    tenant: &str,
    records: &[AuditRecord],
    anchors: &[Anchor],
    key: Option<&AnchorKey>,
) -> Result<Option<u64>, AnchorBreak> {
    let Some(newest) = anchors.iter().max_by_key(|a| (a.seq, a.at_us)) else {
        return Ok(None);
    };
    let Some(key) = key else {
        return Err(AnchorBreak::NoKey {
            tenant: tenant.into(),
            count: anchors.len(),
        });
    };
    if let Some(bad) = anchors.iter().find(|a| !a.verifies(key)) {
        return Err(AnchorBreak::Forged {
            tenant: tenant.into(),
            seq: bad.seq,
            at: bad.when(),
        });
    }
    let ends = records.last().map_or(0, |r| r.seq);
    if ends < newest.seq {
        return Err(AnchorBreak::Truncated {
            tenant: tenant.into(),
            ends,
            anchored: newest.seq,
            at: newest.when(),
            missing: newest.seq - ends,
        });
    }
    let mut by_seq: Vec<&Anchor> = anchors.iter().collect();
    by_seq.sort_by_key(|a| a.seq);
    for a in by_seq {
        let record = a.seq.checked_sub(1).and_then(|i| records.get(i as usize));
        if record.is_none_or(|r| r.seq != a.seq || r.hash != a.head) {
            return Err(AnchorBreak::Rewritten {
                tenant: tenant.into(),
                seq: a.seq,
                at: a.when(),
            });
        }
    }
    Ok(Some(newest.seq))
}

/// Appends anchors to the anchor topic (keyed by tenant) and waits until the broker has them.
pub async fn publish(
    producer: &Producer,
    topic: &str,
    anchors: &[Anchor],
) -> Result<(), KafkaError> {
    for a in anchors {
        let payload = serde_json::to_vec(a).expect("anchors serialize");
        let record = FutureRecord::to(topic).key(&a.tenant).payload(&payload);
        producer.send(record, Duration::from_secs(30)).await?;
    }
    Ok(())
}

/// Every anchor on `topic` up to its current end, by tenant (a missing topic has none). Messages that are
/// not anchors are skipped.
pub async fn read(
    client: &ClientConfig,
    topic: &str,
) -> Result<BTreeMap<String, Vec<Anchor>>, KafkaError> {
    let consumer = sentra_kafka::consumer::from_beginning(client, READER, topic)?;
    let mut ends = BTreeMap::new();
    for p in consumer.assignment()?.elements() {
        let (low, high) = consumer.fetch_watermarks(topic, p.partition(), READ_TIMEOUT)?;
        if high > low {
            ends.insert(p.partition(), high);
        }
    }
    let mut out: BTreeMap<String, Vec<Anchor>> = BTreeMap::new();
    while !ends.is_empty() {
        let m = tokio::time::timeout(READ_TIMEOUT, consumer.recv())
            .await
            .map_err(|_| {
                KafkaError::MessageConsumption(rdkafka::types::RDKafkaErrorCode::RequestTimedOut)
            })??;
        if ends
            .get(&m.partition())
            .is_some_and(|&end| m.offset() + 1 >= end)
        {
            ends.remove(&m.partition());
        }
        if let Ok(a) = serde_json::from_slice::<Anchor>(m.payload().unwrap_or_default()) {
            out.entry(a.tenant.clone()).or_default().push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentra_schemas::audit::{chain, AuditEvent};

    fn chain_of(tenant: &str, n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let e = AuditEvent::new(
                tenant,
                i as i64,
                "sentra",
                "signal.emitted",
                &format!("s{i}"),
                serde_json::json!({ "i": i }),
            );
            out.push(chain(out.last(), e));
        }
        out
    }

    fn key() -> AnchorKey {
        AnchorKey::new("an anchor key").unwrap()
    }

    #[test]
    fn an_anchored_chain_verifies_and_a_grown_one_too() {
        let records = chain_of("acme", 5);
        let anchors = [
            Anchor::sign(&key(), &records[1], 10),
            Anchor::sign(&key(), &records[3], 20),
        ];
        assert_eq!(check("acme", &records, &anchors, Some(&key())), Ok(Some(4)));
        assert_eq!(check("acme", &records, &[], Some(&key())), Ok(None));
        assert_eq!(check("acme", &records, &[], None), Ok(None));
    }

    #[test]
    fn deleting_the_newest_records_is_truncation() {
        let records = chain_of("acme", 6);
        let anchors = [Anchor::sign(&key(), &records[5], 10)];
        // On its own, what is left still links from record 1.
        assert_eq!(sentra_schemas::audit::verify(&records[..4]), Ok(4));
        let err = check("acme", &records[..4], &anchors, Some(&key())).unwrap_err();
        assert!(matches!(
            err,
            AnchorBreak::Truncated {
                ends: 4,
                anchored: 6,
                missing: 2,
                ..
            }
        ));
        let text = err.to_string();
        assert!(
            text.contains("truncated") && text.contains("Restore"),
            "{text}"
        );
        let err = check("acme", &[], &anchors, Some(&key())).unwrap_err();
        assert!(
            matches!(err, AnchorBreak::Truncated { ends: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_rewritten_chain_does_not_match_its_anchors() {
        let records = chain_of("acme", 4);
        let anchors = [Anchor::sign(&key(), &records[3], 10)];
        // The whole chain re-computed from edited events: it verifies on its own, not against its anchor.
        let mut forged: Vec<AuditRecord> = Vec::new();
        for r in &records {
            let e = AuditEvent::new(
                "acme",
                r.at_us,
                "mallory",
                &r.action,
                &r.subject,
                serde_json::json!({}),
            );
            forged.push(chain(forged.last(), e));
        }
        assert_eq!(sentra_schemas::audit::verify(&forged), Ok(4));
        let err = check("acme", &forged, &anchors, Some(&key())).unwrap_err();
        assert!(
            matches!(err, AnchorBreak::Rewritten { seq: 4, .. }),
            "{err}"
        );
        // A longer rewritten chain is caught as well.
        let longer = chain_of("acme", 9);
        let anchors = [Anchor::sign(&key(), &forged[2], 10)];
        let err = check("acme", &longer, &anchors, Some(&key())).unwrap_err();
        assert!(
            matches!(err, AnchorBreak::Rewritten { seq: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_anchor_signed_with_another_key_or_edited_does_not_verify() {
        let records = chain_of("acme", 3);
        let other = AnchorKey::new("someone else's key").unwrap();
        let anchors = [Anchor::sign(&other, &records[2], 10)];
        let err = check("acme", &records, &anchors, Some(&key())).unwrap_err();
        assert!(matches!(err, AnchorBreak::Forged { seq: 3, .. }), "{err}");
        let mut edited = Anchor::sign(&key(), &records[2], 10);
        edited.seq = 2;
        assert!(!edited.verifies(&key()));
        let err = check("acme", &records, &[edited], None).unwrap_err();
        assert!(matches!(err, AnchorBreak::NoKey { count: 1, .. }), "{err}");
    }

    #[test]
    fn the_key_never_shows() {
        let key = AnchorKey::new("s3cret-anchor-key").unwrap();
        assert_eq!(format!("{key:?}"), "AnchorKey(***)");
        let records = chain_of("acme", 2);
        let anchor = Anchor::sign(&key, &records[1], 10);
        let other = AnchorKey::new("x").unwrap();
        let errors = [
            check(
                "acme",
                &records,
                std::slice::from_ref(&anchor),
                Some(&other),
            ),
            check(
                "acme",
                &records[..1],
                std::slice::from_ref(&anchor),
                Some(&key),
            ),
            check("acme", &records, std::slice::from_ref(&anchor), None),
        ];
        for e in errors {
            let text = format!("{:?} {}", e.clone().unwrap_err(), e.unwrap_err());
            assert!(!text.contains("s3cret"), "{text}");
        }
        assert!(!serde_json::to_string(&anchor).unwrap().contains("s3cret"));
        assert!(AnchorKey::new("").is_none());
    }
}
