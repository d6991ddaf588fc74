//! The Kafka queue backend (rdkafka, bundled librdkafka): production, several processes.
//!
//! One [`KafkaQueue`] owns one shared producer (`producer`) and one admin client; every
//! [`Queue::subscribe`] or [`Queue::assign`] makes a new consumer (`consumer`). Names are used
//! as given: the deployment prefix (`TB_KAFKA_PREFIX`) is applied by the callers.
//!
//! Defaults follow TBMQ's `queue.kafka.default.*` settings, translated to librdkafka (see
//! [`KafkaConfig::new`]). Deliberately not here: topic caching (TBMQ caches the topic list for
//! 5 minutes; callers create topics up front), consumer statistics, and the `prefix`.
//!
//! Blocking: admin calls block the calling thread (up to [`KafkaConfig::admin_timeout`]) on
//! rdkafka's runtime-agnostic futures; consumers block in `poll`; producing never blocks.

mod config;
mod consumer;
mod producer;

use std::sync::Arc;

use futures::executor::block_on;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::ClientContext,
    config::RDKafkaLogLevel,
    error::{KafkaError, RDKafkaErrorCode},
    ClientConfig,
};

use super::{Consumer, Producer, Queue, QueueError, QueueResult, TopicPartition, TopicSpec};

pub use config::{default_consumer_properties, default_producer_properties, KafkaConfig, DEFAULT_ADMIN_TIMEOUT};

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
        let mut topic =
            NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(spec.replication_factor.into()));
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
        RDKafkaLogLevel::Warning => {
            tracing::warn!(facility = fac, message, "Kafka client warning.")
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(facility = fac, message, "Kafka client notice.")
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(facility = fac, message, "Kafka client debug message.")
        }
    }
}

/// Client-level errors (a broker down, a failed connection) are retried by librdkafka itself.
fn log_client_error(error: &KafkaError, reason: &str) {
    tracing::warn!(error = %error, reason, "Kafka client error; librdkafka retries.");
}

#[cfg(test)]
mod tests;
