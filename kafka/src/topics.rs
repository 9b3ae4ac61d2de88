//! Creating the topics Sentra writes to (quarantine, audit, SOAR queue and dead letters, playbook runs).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};

/// Creates `topic` with one partition unless it exists.
pub async fn ensure(client: &ClientConfig, topic: &str) -> KafkaResult<()> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.create_topics([&new], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}
