//! Creates the CRM topics when asked to (dev and tests; production topics are
//! provisioned by whoever runs Kafka), the permissions topic compacted; and
//! looks up a topic's partitions, for the followers that assign by hand.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::types::RDKafkaErrorCode;

use super::{BridgeContext, KafkaConfig};

pub async fn ensure_topics(
    config: &KafkaConfig,
    context: &BridgeContext,
    names: &[&str],
    partitions: i32,
) -> anyhow::Result<()> {
    create(config, context, names, partitions, &[]).await
}

/// Creates `name` with `cleanup.policy=compact`, as the CRM's permissions
/// topic is: a grant stands until its key's tombstone.
pub async fn ensure_compacted_topic(
    config: &KafkaConfig,
    context: &BridgeContext,
    name: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    create(
        config,
        context,
        &[name],
        partitions,
        &[("cleanup.policy", "compact")],
    )
    .await
}

async fn create(
    config: &KafkaConfig,
    context: &BridgeContext,
    names: &[&str],
    partitions: i32,
    topic_config: &[(&str, &str)],
) -> anyhow::Result<()> {
    let admin: AdminClient<BridgeContext> = config
        .client_config()
        .create_with_context(context.for_client("the topic creator"))?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        // -1: the broker's `default.replication.factor` (KIP-464), so a
        // cluster replicates the topics it creates as it would any other.
        .map(|name| {
            topic_config.iter().fold(
                NewTopic::new(name, partitions, TopicReplication::Fixed(-1)),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    // Bounded: a Kafka that refuses the bridge would be waited on for ever
    // (librdkafka retries), and the dev set-up would hang instead of saying why.
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(30)));
    let created = admin.create_topics(&topics, &options).await;
    let created = match (created, context.trouble().current(None)) {
        (Ok(created), _) => created,
        (Err(e), Some(refused)) => anyhow::bail!("creating topics: {e}: {refused}"),
        (Err(e), None) => return Err(e.into()),
    };
    for result in created {
        match result {
            Ok(name) => tracing::info!(topic = %name, partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// The partitions of `topic`, as the cluster's metadata lists them; an
/// error while the topic does not exist (yet) or has none.
pub fn partitions_of(
    consumer: &StreamConsumer<BridgeContext>,
    topic: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    anyhow::ensure!(
        !partitions.is_empty(),
        "topic {topic} has no partitions yet"
    );
    Ok(partitions)
}
