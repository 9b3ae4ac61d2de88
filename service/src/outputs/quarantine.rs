//! The quarantine topic: each quarantined record's original bytes, with why and where from in headers, so
//! an operator can inspect, fix and re-send it.
//!
//! A record always fits the producer's `message.max.bytes`: an original too large to fit is cut, and the
//! headers keep its full size and SHA-256 (`sentra.original_bytes`, `sentra.original_sha256`,
//! `sentra.truncated`), so the whole message can still be identified in ClickHouse's quarantine table, which
//! keeps it whole. Header values taken from the input (the tenant) are cut too.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use sentra_kafka::Producer;
use sentra_schemas::Quarantined;
use sha2::{Digest, Sha256};

use super::{Output, OutputError, Written};

/// Room left in every record for its headers, key and the protocol's framing.
const HEADROOM: usize = 16 << 10;

/// The longest header value taken from the input.
const MAX_HEADER_VALUE: usize = 256;

/// The quarantine topic output.
pub struct QuarantineTopic {
    /// The producer, shared with the other Kafka outputs.
    pub producer: Producer,
    /// The topic.
    pub topic: String,
    /// Settings the producer was made with (its `message.max.bytes`) and the topic is created with.
    pub client: sentra_kafka::ClientConfig,
}

impl QuarantineTopic {
    /// The most original bytes one record carries.
    fn max_payload(&self) -> usize {
        sentra_kafka::message_max_bytes(&self.client).saturating_sub(HEADROOM)
    }
}

#[async_trait::async_trait]
impl Output for QuarantineTopic {
    fn name(&self) -> &'static str {
        "the quarantine topic"
    }

    async fn prepare(&self) -> Result<(), OutputError> {
        super::create_topics(&self.client, [self.topic.as_str()]).await
    }

    /// Waits for the broker to acknowledge every record. A send that may succeed later is transient (the
    /// records are still ours until delivered, and a retried write may send some of them twice: the headers
    /// name each one's source offset); one the broker or client refuses for good is permanent.
    async fn write_quarantine(&self, items: &[Quarantined]) -> Result<Written, OutputError> {
        let max_payload = self.max_payload();
        for q in items {
            let record = Record::of(q, max_payload);
            let sent = self
                .producer
                .send(
                    FutureRecord::<[u8], [u8]>::to(&self.topic)
                        .payload(record.payload)
                        .headers(record.headers()),
                    Duration::from_secs(30),
                )
                .await;
            if let Err(e) = sent {
                let what = format!("{} cannot take the record from {}", self.name(), q.source);
                return Err(super::kafka_failure(what, &e));
            }
        }
        Ok(Written::stored(items.len()))
    }
}

/// One quarantine record as it goes to the topic.
struct Record<'a> {
    q: &'a Quarantined,
    payload: &'a [u8],
    source_topic: &'a str,
    partition: &'a str,
    offset: &'a str,
    digest: Option<String>,
}

impl<'a> Record<'a> {
    /// `q`'s record, its original cut to `max_payload` bytes.
    fn of(q: &'a Quarantined, max_payload: usize) -> Self {
        // `kafka:<topic>:<partition>:<offset>`; topics may contain ':' only in theory, so split from the right.
        let mut parts = q.source.rsplitn(3, ':');
        let offset = parts.next().unwrap_or_default();
        let partition = parts.next().unwrap_or_default();
        let source_topic = parts
            .next()
            .unwrap_or_default()
            .strip_prefix("kafka:")
            .unwrap_or_default();
        let cut = q.original.len() > max_payload;
        Record {
            q,
            payload: &q.original[..q.original.len().min(max_payload)],
            source_topic,
            partition,
            offset,
            digest: cut.then(|| const_hex::encode(Sha256::digest(&q.original))),
        }
    }

    /// The record's headers: why, where from, and for a cut original its full size and digest.
    fn headers(&self) -> OwnedHeaders {
        let size = self.q.original.len().to_string();
        let mut headers = OwnedHeaders::new();
        let cut = self.digest.as_deref().map(|digest| {
            [
                ("sentra.truncated", "true"),
                ("sentra.original_bytes", size.as_str()),
                ("sentra.original_sha256", digest),
            ]
        });
        for (key, value) in [
            ("sentra.reason", self.q.reason.as_str()),
            ("sentra.detail", self.q.detail.as_str()),
            ("sentra.source_topic", self.source_topic),
            ("sentra.source_partition", self.partition),
            ("sentra.source_offset", self.offset),
        ]
        .into_iter()
        .chain(self.q.tenant.as_deref().map(|t| ("sentra.tenant", t)))
        .chain(cut.into_iter().flatten())
        {
            headers = headers.insert(Header {
                key,
                value: Some(prefix(value, MAX_HEADER_VALUE)),
            });
        }
        headers
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;
    use sentra_schemas::QuarantineReason;

    fn quarantined(original: Vec<u8>, tenant: &str) -> Quarantined {
        Quarantined {
            reason: QuarantineReason::InvalidJson,
            detail: "not valid JSON".into(),
            tenant: Some(tenant.into()),
            source: "kafka:events:0:42".into(),
            original,
        }
    }

    fn header<'h>(h: &'h OwnedHeaders, key: &str) -> Option<&'h str> {
        h.iter()
            .find(|x| x.key == key)
            .and_then(|x| std::str::from_utf8(x.value?).ok())
    }

    #[test]
    fn a_record_that_fits_goes_whole_without_a_digest() {
        let q = quarantined(b"{broken".to_vec(), "acme");
        let r = Record::of(&q, 1000);
        assert_eq!(r.payload, b"{broken");
        let h = r.headers();
        assert_eq!(header(&h, "sentra.source_offset"), Some("42"));
        assert_eq!(header(&h, "sentra.truncated"), None);
    }

    #[test]
    fn an_original_over_the_cap_is_cut_and_keeps_its_size_and_digest() {
        let original = vec![b'x'; 1_040_000];
        let q = quarantined(original.clone(), &"é".repeat(1000));
        let r = Record::of(&q, 983_616);
        assert_eq!(r.payload.len(), 983_616);
        let h = r.headers();
        assert_eq!(header(&h, "sentra.truncated"), Some("true"));
        assert_eq!(header(&h, "sentra.original_bytes"), Some("1040000"));
        assert_eq!(
            header(&h, "sentra.original_sha256"),
            Some(const_hex::encode(Sha256::digest(&original)).as_str())
        );
        assert!(header(&h, "sentra.tenant").unwrap().len() <= MAX_HEADER_VALUE);
    }
}
