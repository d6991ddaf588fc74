//! The Kafka queue backend (rdkafka, bundled librdkafka): production, several processes.
//!
//! One [`KafkaQueue`] owns one shared producer ([`producer`]) and one admin client; every
//! [`Queue::subscribe`] or [`Queue::assign`] makes a new consumer ([`consumer`]). Names are used
//! as given: the deployment prefix (`TB_KAFKA_PREFIX`) is applied by the callers.
//!
//! Defaults follow TBMQ's `queue.kafka.default.*` settings, translated to librdkafka (see
//! [`KafkaConfig::new`]). Deliberately not here: topic caching (TBMQ caches the topic list for
//! 5 minutes; callers create topics up front), consumer statistics, and the `prefix`.
//!
//! Blocking: admin calls block the calling thread (up to [`KafkaConfig::admin_timeout`]) on
//! rdkafka's runtime-agnostic futures; consumers block in `poll`; producing never blocks.

mod consumer;
mod producer;

use std::{sync::Arc, time::Duration};

use futures::executor::block_on;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::ClientContext,
    config::RDKafkaLogLevel,
    error::{KafkaError, RDKafkaErrorCode},
    ClientConfig,
};

use super::{Consumer, Producer, Queue, QueueError, QueueResult, TopicPartition, TopicSpec};

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

/// TBMQ's producer defaults in librdkafka terms: `acks=1`, `retries=1`, `batch.size=16384`,
/// `linger.ms=5`, `compression.type=none`; `buffer.memory=33554432` becomes
/// `queue.buffering.max.kbytes=32768` (past it `send` fails with [`QueueError::Full`]); Java's
/// `delivery.timeout.ms` default (120 s) becomes `message.timeout.ms`; `murmur2_random` is the
/// Java client's partitioner, so keyed records land where TBMQ's would.
pub fn default_producer_properties() -> Vec<(String, String)> {
    pairs(&[
        ("acks", "1"),
        ("retries", "1"),
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

/// The Kafka queue. Cloning shares the producer and the admin client.
#[derive(Clone)]
pub struct KafkaQueue {
    config: Arc<KafkaConfig>,
    producer: Arc<producer::KafkaProducer>,
    admin: Arc<AdminClient<LogContext>>,
}

impl std::fmt::Debug for KafkaQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaQueue").field("bootstrap_servers", &self.config.bootstrap_servers).finish()
    }
}

impl KafkaQueue {
    /// Creates the shared producer and the admin client. Nothing connects yet: librdkafka
    /// connects in the background, so a cluster that is down shows up as failing calls.
    pub fn new(config: KafkaConfig) -> QueueResult<Self> {
        let producer = producer::KafkaProducer::new(&config)?;
        let mut admin_config = base_config(&config, &config.admin_properties);
        admin_config.set("client.id", format!("{}-admin", config.client_id));
        let admin = admin_config.create_with_context(LogContext).map_err(backend)?;
        Ok(KafkaQueue { config: Arc::new(config), producer: Arc::new(producer), admin: Arc::new(admin) })
    }

    fn admin_options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.config.admin_timeout))
            .operation_timeout(Some(self.config.admin_timeout))
    }
}

impl Queue for KafkaQueue {
    fn producer(&self) -> Arc<dyn Producer> {
        self.producer.clone()
    }

    fn create_topic(&self, spec: &TopicSpec) -> QueueResult<()> {
        let mut topic = NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(spec.replication_factor.into()));
        for (k, v) in &spec.configs {
            topic = topic.set(k, v);
        }
        let results = block_on(self.admin.create_topics([&topic], &self.admin_options())).map_err(backend)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(QueueError::Backend(format!("create topic {name}: {code}"))),
            }
        }
        Ok(())
    }

    fn delete_topic(&self, name: &str) -> QueueResult<()> {
        let results = block_on(self.admin.delete_topics(&[name], &self.admin_options())).map_err(backend)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((name, code)) => return Err(QueueError::Backend(format!("delete topic {name}: {code}"))),
            }
        }
        Ok(())
    }

    fn topic_exists(&self, name: &str) -> QueueResult<bool> {
        let metadata = self.admin.inner().fetch_metadata(Some(name), self.config.admin_timeout).map_err(backend)?;
        Ok(metadata.topics().iter().any(|t| t.name() == name && t.error().is_none()))
    }

    fn delete_group(&self, group: &str) -> QueueResult<()> {
        let results = block_on(self.admin.delete_groups(&[group], &self.admin_options())).map_err(backend)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((name, code)) => return Err(QueueError::Backend(format!("delete group {name}: {code}"))),
            }
        }
        Ok(())
    }

    fn subscribe(&self, group: &str, client_id: &str, topics: &[String]) -> QueueResult<Box<dyn Consumer>> {
        Ok(Box::new(consumer::KafkaConsumer::subscribe(&self.config, group, client_id, topics)?))
    }

    fn assign(&self, group: &str, client_id: &str, tp: &TopicPartition) -> QueueResult<Box<dyn Consumer>> {
        Ok(Box::new(consumer::KafkaConsumer::assign(&self.config, group, client_id, tp)?))
    }
}

/// A client config with the bootstrap servers, the common properties and then `properties`.
/// Topics are never created implicitly: a record for a missing topic fails like on the embedded
/// backend, and a metadata lookup must not create what it looks up.
fn base_config(config: &KafkaConfig, properties: &[(String, String)]) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    client.set("allow.auto.create.topics", "false");
    for (k, v) in config.common_properties.iter().chain(properties) {
        client.set(k, v);
    }
    client
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn backend(e: KafkaError) -> QueueError {
    QueueError::Backend(e.to_string())
}

/// Sends librdkafka's logs and client errors to `tracing` instead of the `log` crate.
#[derive(Clone, Copy)]
struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

fn log_to_tracing(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(facility = fac, message, "Kafka client error.");
        }
        RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, message, "Kafka client warning."),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(facility = fac, message, "Kafka client notice."),
        RDKafkaLogLevel::Debug => tracing::debug!(facility = fac, message, "Kafka client debug message."),
    }
}

/// Client-level errors (a broker down, a failed connection) are retried by librdkafka itself.
fn log_client_error(error: &KafkaError, reason: &str) {
    tracing::warn!(error = %error, reason, "Kafka client error; librdkafka retries.");
}

#[cfg(test)]
mod tests;
