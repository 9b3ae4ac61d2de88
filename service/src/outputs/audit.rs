//! The audit trail's record of every emitted signal and every override applied to one, put on the audit
//! topic (and chained into ClickHouse by the audit chainer).

use sentra_schemas::audit::AuditEvent;
use sentra_schemas::Signal;
use sentra_soar::audit::AuditLog;

use super::{Output, OutputError, Written};

/// The audit output.
pub struct Audit {
    /// Where audit events go.
    pub log: AuditLog,
    /// The audit topic.
    pub topic: String,
    /// The topic the chainer appends anchors to.
    pub anchor_topic: String,
    /// Settings to create the topic with.
    pub client: sentra_kafka::ClientConfig,
}

#[async_trait::async_trait]
impl Output for Audit {
    fn name(&self) -> &'static str {
        "the audit topic"
    }

    async fn prepare(&self) -> Result<(), OutputError> {
        super::create_topics(
            &self.client,
            [self.topic.as_str(), self.anchor_topic.as_str()],
        )
        .await
    }

    /// A repeated write is harmless: the chainer links each record id once.
    async fn write_signals(&self, signals: &[Signal]) -> Result<Written, OutputError> {
        let events = signal_audit(signals);
        self.log
            .record(&events)
            .await
            .map_err(|e| super::kafka_failure(self.name().to_owned(), &e))?;
        Ok(Written::stored(events.len()))
    }
}

/// Audit events for emitted signals (and the overrides applied to them). Their time is the signal's window
/// end, so a batch re-read after a crash yields the same record ids and is chained once.
fn signal_audit(signals: &[Signal]) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    for s in signals {
        out.push(AuditEvent::new(
            s.tenant.as_str(),
            s.window_end,
            "sentra",
            "signal.emitted",
            &s.id,
            serde_json::json!({"signal": s.signal, "risk_score": s.risk_score, "severity": s.severity.as_str(), "suppressed": s.suppressed}),
        ));
        if let Some(o) = &s.override_applied {
            out.push(AuditEvent::new(
                s.tenant.as_str(),
                s.window_end,
                "sentra",
                "override.applied",
                &s.id,
                serde_json::json!({"override": o.id, "action": o.action, "reason": o.reason}),
            ));
        }
    }
    out
}
