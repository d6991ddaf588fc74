//! Settings of the Kafka backend and TBMQ's defaults translated to librdkafka properties.
//! Parsing them from the config file or env vars is the caller's job.

use std::time::Duration;

#[cfg(doc)]
use crate::queue::QueueError;

/// Settings of the Kafka backend. Properties are librdkafka names; later entries win, and the
/// lists are applied in field order: `common_properties`, then the client's defaults, then its
/// extras, then what the backend forces (bootstrap servers, client id, group id, commit mode).
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers` (TBMQ `TB_KAFKA_SERVERS`, default `localhost:9092`).
    pub bootstrap_servers: String,
    /// `client.id` of the shared producer and of the admin client.
    pub client_id: String,
    /// Properties for every client (TBMQ `TB_KAFKA_DEFAULT_PRODUCER_CONSUMER_CONFIG`).
    pub common_properties: Vec<(String, String)>,
    /// Producer defaults (TBMQ `TB_KAFKA_DEFAULT_PRODUCER_*`), see [`default_producer_properties`].
    pub producer_properties: Vec<(String, String)>,
    /// Extra producer properties (TBMQ `TB_KAFKA_DEFAULT_PRODUCER_CONFIG` and the per-topic
    /// `ADDITIONAL_PRODUCER_CONFIG`; there is one shared producer, so they are merged here).
    pub extra_producer_properties: Vec<(String, String)>,
    /// Consumer defaults (TBMQ `TB_KAFKA_DEFAULT_CONSUMER_*`), see [`default_consumer_properties`].
    pub consumer_properties: Vec<(String, String)>,
    /// Extra consumer properties (TBMQ `TB_KAFKA_DEFAULT_CONSUMER_CONFIG`).
    pub extra_consumer_properties: Vec<(String, String)>,
    /// Admin client properties (TBMQ `TB_KAFKA_ADMIN_CONFIG`; its `retries:1` default is a Java
    /// admin setting without a librdkafka equivalent, so the default here is empty).
    pub admin_properties: Vec<(String, String)>,
    /// Bound of one admin command, and of the blocking consumer calls (commit, committed offsets,
    /// seek, watermarks). TBMQ `TB_KAFKA_ADMIN_COMMAND_TIMEOUT_SEC`, 30 s.
    pub admin_timeout: Duration,
}

/// Default admin command timeout (TBMQ `TB_KAFKA_ADMIN_COMMAND_TIMEOUT_SEC`).
pub const DEFAULT_ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

impl KafkaConfig {
    /// TBMQ's defaults for a cluster at `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "tributary".to_string(),
            common_properties: Vec::new(),
            producer_properties: default_producer_properties(),
            extra_producer_properties: Vec::new(),
            consumer_properties: default_consumer_properties(),
            extra_consumer_properties: Vec::new(),
            admin_properties: Vec::new(),
            admin_timeout: DEFAULT_ADMIN_TIMEOUT,
        }
    }
}

/// The producer defaults: TBMQ's in librdkafka terms (`batch.size=16384`, `linger.ms=5`,
/// `compression.type=none`; `buffer.memory=33554432` becomes `queue.buffering.max.kbytes=32768`,
/// past which `send` fails with [`QueueError::Full`]; Java's `delivery.timeout.ms` default (120 s)
/// becomes `message.timeout.ms`; `murmur2_random` is the Java client's partitioner, so keyed records
/// land where TBMQ's would), except for delivery safety: TBMQ's `acks=1`, `retries=1` can store a
/// record twice and out of order (a retried batch behind later ones) and lose it when the one retry
/// fails too, which a distributed test saw on an executor crash. We use the idempotent producer
/// instead (`enable.idempotence=true`: `acks=all`, retries until `message.timeout.ms`, order kept,
/// no duplicates from retries). `TB_KAFKA_DEFAULT_PRODUCER_CONFIG` overrides any of these.
pub fn default_producer_properties() -> Vec<(String, String)> {
    pairs(&[
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("batch.size", "16384"),
        ("linger.ms", "5"),
        ("compression.type", "none"),
        ("queue.buffering.max.kbytes", "32768"),
        ("message.timeout.ms", "120000"),
        ("partitioner", "murmur2_random"),
    ])
}

/// TBMQ's consumer defaults in librdkafka terms: `session.timeout.ms=10000`,
/// `max.poll.interval.ms=300000`, `heartbeat.interval.ms=3000`, `max.partition.fetch.bytes=16777216`,
/// `fetch.max.bytes=134217728` (with `receive.message.max.bytes` raised to fit, as librdkafka
/// requires). `max.poll.records` has no librdkafka equivalent: it is `poll`'s `max_records`.
///
/// Java's `StickyAssignor` (eager) has no librdkafka counterpart; `cooperative-sticky` computes
/// the same sticky assignment and moves only the partitions that change owner, so members see
/// `Revoked`/`Assigned` for the difference only, like the embedded backend. It cannot share a
/// group with Java members using `StickyAssignor` (no common protocol), which TBMQ's groups
/// here never have.
///
/// Tansu 0.6.0 (the Kafka-compatible broker of our CI) has a group-coordinator defect that no
/// client setting avoids: when a member is killed (no LeaveGroup) and its session expires, the
/// survivor's heartbeat removes it without a new generation and without clearing the group's
/// leader. If the dead member was the leader, the survivor's next JoinGroup starts a generation
/// led by the dead member, every SyncGroup is then refused with REBALANCE_IN_PROGRESS, and the
/// survivor's partitions are revoked (its own session expires while it loops) and never assigned
/// again; with an eager assignor (`range`) the group stays "formed" instead and hands the
/// survivor its old assignment, so the dead member's partitions are never reassigned whoever led.
/// With `cooperative-sticky` a killed follower is taken over (the leader survives and computes
/// a new assignment), which `kafka/tests.rs` checks on a real broker; a killed leader is only
/// taken over on Apache Kafka. A clean stop (LeaveGroup) works on both.
///
/// `topic.metadata.refresh.interval.ms=5000` (librdkafka: 300000): a consumer subscribed to a
/// topic that did not exist yet, or was created moments ago and is not in its first metadata
/// answer, gets its partitions within seconds instead of minutes.
pub fn default_consumer_properties() -> Vec<(String, String)> {
    pairs(&[
        ("session.timeout.ms", "10000"),
        ("max.poll.interval.ms", "300000"),
        ("heartbeat.interval.ms", "3000"),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("max.partition.fetch.bytes", "16777216"),
        ("fetch.max.bytes", "134217728"),
        ("receive.message.max.bytes", "134218240"),
        ("topic.metadata.refresh.interval.ms", "5000"),
    ])
}

/// Owned `(key, value)` pairs from string literals.
pub(super) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
