//! The shared Kafka producer: a `ThreadedProducer` whose poll thread runs the delivery callback,
//! which completes each record's [`Delivery`]. Nothing here blocks the caller.

use rdkafka::{
    client::ClientContext,
    config::RDKafkaLogLevel,
    error::{KafkaError, RDKafkaErrorCode},
    message::Message,
    producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer},
};
use tokio::sync::oneshot;

use super::{backend, base_config, log_client_error, log_to_tracing, KafkaConfig};
use crate::queue::{Delivery, Partitioning, Producer, QueueError, QueueResult};

type Ack = oneshot::Sender<QueueResult<(i32, i64)>>;

/// The producer behind [`crate::queue::Queue::producer`].
pub(super) struct KafkaProducer {
    producer: ThreadedProducer<DeliveryContext>,
}

impl KafkaProducer {
    pub(super) fn new(config: &KafkaConfig) -> QueueResult<Self> {
        let properties: Vec<_> =
            config.producer_properties.iter().chain(&config.extra_producer_properties).cloned().collect();
        let mut client = base_config(config, &properties);
        client.set("client.id", &config.client_id);
        let producer = client.create_with_context(DeliveryContext).map_err(backend)?;
        Ok(KafkaProducer { producer })
    }
}

impl Producer for KafkaProducer {
    fn send(&self, topic: &str, partitioning: Partitioning, key: Option<&[u8]>, value: &[u8]) -> Delivery {
        let (tx, rx) = oneshot::channel();
        let mut record: BaseRecord<'_, [u8], [u8], Box<Ack>> = BaseRecord::with_opaque_to(topic, Box::new(tx));
        // An empty value is sent as a null value: on a compacted topic, Kafka's tombstone.
        if !value.is_empty() {
            record = record.payload(value);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        // Like the embedded backend: `ByKey` without a key goes to partition 0 (librdkafka's
        // murmur2_random would pick a random partition).
        match (partitioning, key) {
            (Partitioning::Fixed(p), _) => record = record.partition(p),
            (Partitioning::ByKey, None) => record = record.partition(0),
            (Partitioning::ByKey, Some(_)) => {}
        }
        if let Err((e, record)) = self.producer.send(record) {
            let partition = record.partition.unwrap_or(-1);
            let _ = record.delivery_opaque.send(Err(produce_error(&e, topic, partition)));
        }
        rx
    }

    fn flush(&self, timeout: std::time::Duration) -> QueueResult<()> {
        self.producer.flush(timeout).map_err(|e| QueueError::Backend(format!("flush: {e}")))
    }
}

/// Completes deliveries from the producer's poll thread.
pub(super) struct DeliveryContext;

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Ack>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, m)) => Err(produce_error(e, m.topic(), m.partition())),
        };
        // The caller may have dropped its Delivery: nobody waits for this record any more.
        let _ = ack.send(outcome);
    }
}

/// Maps a produce failure to the queue's error kinds.
fn produce_error(e: &KafkaError, topic: &str, partition: i32) -> QueueError {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => QueueError::Full(format!("producer queue is full ({e})")),
        Some(RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition) => {
            QueueError::UnknownTopic(topic.to_string())
        }
        Some(RDKafkaErrorCode::UnknownPartition) => QueueError::UnknownPartition(topic.to_string(), partition),
        _ => QueueError::Backend(e.to_string()),
    }
}
