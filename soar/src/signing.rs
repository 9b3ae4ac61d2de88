//! Webhook signatures: `X-Sentra-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
//! `X-Sentra-Timestamp: <unix seconds>`. A receiver recomputes the HMAC over the exact bytes it received,
//! compares in constant time, and rejects timestamps outside its tolerance (replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Sentra-Signature";
/// Header carrying the signing time (unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Sentra-Timestamp";

/// The signature header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", const_hex::encode(mac.finalize().into_bytes()))
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is not `v1=<64 hex>`.
    #[error("signature header is malformed")]
    Malformed,
    /// The HMAC does not match: wrong secret, or the body or timestamp was altered.
    #[error("signature does not match")]
    Mismatch,
    /// The timestamp is outside the tolerance: a replay, or a badly wrong clock.
    #[error("timestamp is {0} s away from now")]
    Stale(i64),
}

/// Verifies a received request (what a receiver does); `now` and `tolerance_secs` bound replays.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let hex_sig = header.strip_prefix("v1=").ok_or(VerifyError::Malformed)?;
    let sig = const_hex::decode(hex_sig).map_err(|_| VerifyError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)?;
    let skew = now - timestamp;
    if skew.abs() > tolerance_secs {
        return Err(VerifyError::Stale(skew));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_the_same_secret_body_and_time() {
        let sig = sign(b"k", 1_700_000_000, b"{\"a\":1}");
        assert_eq!(
            verify(b"k", 1_700_000_000, b"{\"a\":1}", &sig, 1_700_000_010, 300),
            Ok(())
        );
        assert_eq!(
            verify(
                b"other",
                1_700_000_000,
                b"{\"a\":1}",
                &sig,
                1_700_000_000,
                300
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", 1_700_000_000, b"{\"a\":2}", &sig, 1_700_000_000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", 1_700_000_001, b"{\"a\":1}", &sig, 1_700_000_001, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", 1_700_000_000, b"{\"a\":1}", &sig, 1_700_001_000, 300),
            Err(VerifyError::Stale(1000))
        );
        assert_eq!(
            verify(b"k", 1, b"", "sha256=00", 1, 300),
            Err(VerifyError::Malformed)
        );
    }
}
