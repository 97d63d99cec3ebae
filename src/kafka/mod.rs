//! Kafka at the edge: configuration, topic creation for dev, the live
//! consumer that feeds decoded events to a [`Deliver`] sink, the
//! dead-letter topic it parks undecodable records in, the follower of the
//! CRM's permissions topic, and the consumer lag and readiness the
//! operational endpoints report.
//!
//! Scaling: every bridge node must see every event its own clients may
//! receive, so each node is its own consumer group (`<group_prefix>-<node_id>`)
//! and reads all partitions of the CRM topics. Nodes are added behind a load
//! balancer; Kafka fans the log out to all of them.

mod admin;
mod assignment;
mod config;
mod consumer;
mod context;
mod dead_letter;
mod grants;
mod positions;
mod producer;
mod readiness;
mod recent;
mod topic_ids;
mod watermarks;

pub use admin::{ensure_compacted_topic, ensure_topics, partitions_of};
pub use config::{KafkaConfig, KafkaProperties, LibrdkafkaBuild, TopicNames, librdkafka_build};
pub use consumer::{ConsumerHandle, Deliver, spawn_consumer};
pub use context::{BridgeContext, ConnectionTrouble, Refusal};
pub use grants::{GrantSources, follow_grants};
pub use positions::LivePositions;
pub use producer::PolledProducer;
pub use readiness::PartitionLag;
pub use recent::{RecentChunk, RecentRecords};

/// The live consumer: like every client the bridge makes, with the
/// bridge's callbacks (`context.rs`).
type LiveConsumer = rdkafka::consumer::StreamConsumer<BridgeContext>;
