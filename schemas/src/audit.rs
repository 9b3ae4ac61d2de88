//! The audit trail: every write Sentra makes on a tenant's behalf (signal emitted, override applied, delivery
//! attempt, approval requested or decided, playbook step run) becomes an append-only record, and each
//! tenant's records form a SHA-256 hash chain: a record's hash covers its contents and the previous
//! record's hash. Editing, removing or reordering any record breaks the chain at that record.
//!
//! Writers emit [`AuditEvent`]s; a single chainer per tenant (see the `soar` crate) turns them into
//! [`AuditRecord`]s in order with [`chain`]; [`verify`] checks a tenant's records.

use serde::{Deserialize, Serialize};

use crate::ids::hex_digest;

/// The `prev_hash` of a tenant's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something that happened, before it is chained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique id of the event (so a re-sent event is chained once).
    pub record_id: String,
    /// The tenant whose chain it joins.
    pub tenant: String,
    /// When, epoch microseconds.
    pub at_us: i64,
    /// Who: `sentra` (the engine), a destination, or the approving person.
    pub actor: String,
    /// What, e.g. `signal.emitted`, `delivery.attempt`, `approval.decided`.
    pub action: String,
    /// What it was done to: a signal id, a playbook run id.
    pub subject: String,
    /// Details as JSON text (canonical: written once, hashed as is).
    pub details: String,
}

impl AuditEvent {
    /// An event with a record id derived from its contents, so emitting the same fact twice (a re-read
    /// batch) yields the same id.
    pub fn new(
        tenant: &str,
        at_us: i64,
        actor: &str,
        action: &str,
        subject: &str,
        details: serde_json::Value,
    ) -> Self {
        let details = details.to_string();
        let record_id = hex_digest(
            &[
                tenant.as_bytes(),
                &at_us.to_le_bytes(),
                actor.as_bytes(),
                action.as_bytes(),
                subject.as_bytes(),
                details.as_bytes(),
            ],
            32,
        );
        Self {
            record_id,
            tenant: tenant.into(),
            at_us,
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            details,
        }
    }
}

/// A chained audit record as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The tenant whose chain this is.
    pub tenant: String,
    /// Position in the tenant's chain, from 1.
    pub seq: u64,
    /// The event's id.
    pub record_id: String,
    /// When, epoch microseconds.
    pub at_us: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// Details (JSON text).
    pub details: String,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 over the previous hash and every field above.
    pub hash: String,
}

fn record_hash(prev_hash: &str, seq: u64, e: &AuditEvent) -> String {
    hex_digest(
        &[
            prev_hash.as_bytes(),
            &seq.to_le_bytes(),
            e.tenant.as_bytes(),
            e.record_id.as_bytes(),
            &e.at_us.to_le_bytes(),
            e.actor.as_bytes(),
            e.action.as_bytes(),
            e.subject.as_bytes(),
            e.details.as_bytes(),
        ],
        64,
    )
}

/// Appends `event` after `prev` (the tenant's last record, or `None` for its first).
pub fn chain(prev: Option<&AuditRecord>, event: AuditEvent) -> AuditRecord {
    let (seq, prev_hash) = prev.map_or((1, GENESIS.to_owned()), |p| (p.seq + 1, p.hash.clone()));
    let hash = record_hash(&prev_hash, seq, &event);
    AuditRecord {
        tenant: event.tenant,
        seq,
        record_id: event.record_id,
        at_us: event.at_us,
        actor: event.actor,
        action: event.action,
        subject: event.subject,
        details: event.details,
        prev_hash,
        hash,
    }
}

/// Where and why a tenant's chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain of tenant {tenant} is broken at record {position} (seq {seq}, id {record_id}): {reason}")]
pub struct ChainBreak {
    /// The tenant.
    pub tenant: String,
    /// 1-based position in the records as read (ordered by seq).
    pub position: usize,
    /// The seq the record carries.
    pub seq: u64,
    /// The record's id.
    pub record_id: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks one tenant's records, ordered by `seq`: consecutive from 1, each linked to the previous hash,
/// each hash matching its contents. Returns how many records verified.
pub fn verify(records: &[AuditRecord]) -> Result<usize, ChainBreak> {
    let mut prev_hash = GENESIS;
    for (i, r) in records.iter().enumerate() {
        let broken = |reason: String| ChainBreak {
            tenant: r.tenant.clone(),
            position: i + 1,
            seq: r.seq,
            record_id: r.record_id.clone(),
            reason,
        };
        let want_seq = i as u64 + 1;
        if r.seq != want_seq {
            return Err(broken(format!(
                "expected seq {want_seq}: a record before it was removed or the records were reordered"
            )));
        }
        if r.prev_hash != prev_hash {
            return Err(broken(
                "its prev_hash is not the previous record's hash: a record before it was removed, \
                 altered or reordered"
                    .into(),
            ));
        }
        let event = AuditEvent {
            record_id: r.record_id.clone(),
            tenant: r.tenant.clone(),
            at_us: r.at_us,
            actor: r.actor.clone(),
            action: r.action.clone(),
            subject: r.subject.clone(),
            details: r.details.clone(),
        };
        if record_hash(&r.prev_hash, r.seq, &event) != r.hash {
            return Err(broken(
                "its hash does not match its contents: the record was edited".into(),
            ));
        }
        prev_hash = &r.hash;
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let e = AuditEvent::new(
                "acme",
                i as i64,
                "sentra",
                "signal.emitted",
                &format!("s{i}"),
                serde_json::json!({"risk": 0.6}),
            );
            let r = chain(out.last(), e);
            out.push(r);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain_of(5)), Ok(5));
        assert_eq!(verify(&[]), Ok(0));
    }

    #[test]
    fn edits_removals_and_reorderings_are_found_where_they_are() {
        let mut edited = chain_of(5);
        edited[2].actor = "mallory".into();
        let e = verify(&edited).unwrap_err();
        assert_eq!((e.position, e.seq), (3, 3));
        assert!(e.reason.contains("edited"), "{e}");

        let mut removed = chain_of(5);
        removed.remove(1);
        let e = verify(&removed).unwrap_err();
        assert_eq!((e.position, e.seq), (2, 3));

        let mut reordered = chain_of(5);
        reordered.swap(3, 4);
        assert_eq!(verify(&reordered).unwrap_err().position, 4);

        // Rewriting a record and its seq still breaks the link to the next one.
        let mut forged = chain_of(5);
        forged[1].details = "{}".into();
        forged[1].hash = record_hash(
            &forged[1].prev_hash,
            2,
            &AuditEvent {
                record_id: forged[1].record_id.clone(),
                tenant: "acme".into(),
                at_us: forged[1].at_us,
                actor: forged[1].actor.clone(),
                action: forged[1].action.clone(),
                subject: forged[1].subject.clone(),
                details: "{}".into(),
            },
        );
        assert_eq!(verify(&forged).unwrap_err().position, 3);
    }
}
