use serde::{Deserialize, Serialize};

/// Why an input was quarantined instead of processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineReason {
    /// No tenant in the header, the document, or the topic map.
    NoTenant,
    /// A tenant not on the configured allow-list.
    UnknownTenant,
    /// The message names a tenant other than the one its topic is mapped to (`kafka.topic_tenants`): a
    /// shipper may only write as the tenant whose topic it writes to.
    TenantMismatch,
    /// A new tenant beyond the configured number of tenants (`tenants.max`): each tenant costs engine state
    /// and store indices, so their number is bounded.
    TenantLimit,
    /// A tenant string that is not a valid identifier (e.g. path or quote characters).
    InvalidTenant,
    /// The bytes are not valid UTF-8 where text is required. Log lines are not refused for it: they are
    /// decoded lossily and keep their bytes in `event.original` (see [`crate::escape_invalid_utf8`]).
    InvalidUtf8,
    /// It looks like JSON but does not parse, or is JSON but not an object.
    InvalidJson,
    /// Larger than the configured message size limit.
    TooLarge,
    /// No recognizable timestamp, so it cannot be placed in event time.
    NoTimestamp,
    /// Older than the watermark allows (beyond the allowed lateness).
    Late,
    /// Dated further past the moment it was read than clocks may be off (`max_clock_skew_secs`), so its
    /// clock or time zone is wrong and it cannot be placed in event time.
    Future,
    /// A store rejected it (its reason is in the detail).
    Rejected,
    /// Normalizing it hit a bug in Sentra (a parser panicked): the input is kept so the bug can be reproduced,
    /// and the stream goes on.
    InternalError,
}

impl QuarantineReason {
    /// The snake_case name used in stores, headers and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::NoTenant => "no_tenant",
            QuarantineReason::UnknownTenant => "unknown_tenant",
            QuarantineReason::TenantMismatch => "tenant_mismatch",
            QuarantineReason::TenantLimit => "tenant_limit",
            QuarantineReason::InvalidTenant => "invalid_tenant",
            QuarantineReason::InvalidUtf8 => "invalid_utf8",
            QuarantineReason::InvalidJson => "invalid_json",
            QuarantineReason::TooLarge => "too_large",
            QuarantineReason::NoTimestamp => "no_timestamp",
            QuarantineReason::Late => "late",
            QuarantineReason::Future => "future",
            QuarantineReason::Rejected => "rejected",
            QuarantineReason::InternalError => "internal_error",
        }
    }

    /// Every reason, for counters and docs.
    pub const ALL: [QuarantineReason; 13] = [
        QuarantineReason::NoTenant,
        QuarantineReason::UnknownTenant,
        QuarantineReason::TenantMismatch,
        QuarantineReason::TenantLimit,
        QuarantineReason::InvalidTenant,
        QuarantineReason::InvalidUtf8,
        QuarantineReason::InvalidJson,
        QuarantineReason::TooLarge,
        QuarantineReason::NoTimestamp,
        QuarantineReason::Late,
        QuarantineReason::Future,
        QuarantineReason::Rejected,
        QuarantineReason::InternalError,
    ];
}

/// An input that was not processed, kept whole with the reason so nothing vanishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    /// Why.
    pub reason: QuarantineReason,
    /// Details for a human (never the payload itself).
    pub detail: String,
    /// The tenant, when one could be determined (it may be invalid, hence a plain string).
    pub tenant: Option<String>,
    /// Where it came from (`file:line`, `kafka:topic:partition:offset`).
    pub source: String,
    /// The original bytes, untouched.
    #[serde(with = "bytes_b64")]
    pub original: Vec<u8>,
}

/// Serializes bytes as standard base64 so any payload survives a JSON round trip.
mod bytes_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = Vec::with_capacity(s.len() / 4 * 3);
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(|| serde::de::Error::custom("invalid base64"))?;
            acc = (acc << 6) | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_bytes_round_trip_through_json() {
        for bytes in [&b""[..], b"a", b"ab", b"abc", b"\xff\xfe\x00 bad utf8"] {
            let q = Quarantined {
                reason: QuarantineReason::InvalidUtf8,
                detail: "x".into(),
                tenant: None,
                source: "t".into(),
                original: bytes.to_vec(),
            };
            let s = serde_json::to_string(&q).unwrap();
            assert_eq!(serde_json::from_str::<Quarantined>(&s).unwrap(), q);
        }
        let q = Quarantined {
            reason: QuarantineReason::TooLarge,
            detail: String::new(),
            tenant: None,
            source: String::new(),
            original: b"Man".to_vec(),
        };
        assert!(serde_json::to_string(&q).unwrap().contains("\"TWFu\""));
    }
}
