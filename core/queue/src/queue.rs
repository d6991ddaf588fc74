//! The queue transport between broker nodes and executors: one interface, two backends.
//!
//! * [`embedded`]: an in-process backend for the all-in-one mode. It is the smallest thing with
//!   the semantics the executor relies on (topics with partitions, keyed records, consumer
//!   groups with assignment and revocation, committed offsets, compacted topics read from the
//!   beginning, topic create/delete), kept in memory and, when given a directory, stored in
//!   segment files so that it survives a restart or a killed process. It is not a Kafka: no
//!   replication, one process.
//! * `kafka` (rdkafka): production, several processes.
//!
//! The interface is blocking on purpose: executor loops run on their own threads (one per
//! downlink type and one per integration, like TBMQ), and drivers are synchronous. Producing
//! never blocks: [`Producer::send`] returns a [`Delivery`] that can be awaited from async code
//! or waited on from a thread.

pub mod embedded;
pub mod kafka;

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use bytes::Bytes;

/// Errors of the queue layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The topic does not exist.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error("unknown partition {1} of topic {0}")]
    UnknownPartition(String, i32),
    /// The backend refused the record because a bound was reached; the producer should back off.
    #[error("queue full: {0}")]
    Full(String),
    /// The consumer is not assigned the partition it tried to use.
    #[error("partition {1} of topic {0} is not assigned to this consumer")]
    NotAssigned(String, i32),
    /// A backend error (Kafka client, configuration).
    #[error("queue backend error: {0}")]
    Backend(String),
    /// The queue was shut down.
    #[error("queue closed")]
    Closed,
}

/// Result alias.
pub type QueueResult<T> = Result<T, QueueError>;

/// A topic and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)
    }
}

/// One consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where it came from.
    pub tp: TopicPartition,
    /// Its offset in the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<Bytes>,
    /// Record value; an empty value with a key on a compacted topic is a tombstone.
    pub value: Bytes,
}

/// What a poll returns: records, or a change of the consumer's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// These partitions were taken away (processing state for them must be dropped).
    Revoked(Vec<TopicPartition>),
    /// These partitions were given to this consumer.
    Assigned(Vec<TopicPartition>),
    /// Records, in offset order per partition.
    Records(Vec<Record>),
}

/// Topic settings, TBMQ-style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name (with the configured prefix already applied).
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor (ignored by the embedded backend).
    pub replication_factor: i16,
    /// Other topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// Parses TBMQ's `key:value;key:value` property string (`\;` escapes a semicolon), pulling
    /// out `partitions` and `replication.factor` (default 1 each).
    pub fn from_properties(name: &str, properties: &str) -> Result<Self, QueueError> {
        let mut configs = BTreeMap::new();
        let mut current = String::new();
        let mut items = Vec::new();
        let mut chars = properties.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&';') => {
                    current.push(';');
                    chars.next();
                }
                ';' => items.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        items.push(current);
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once(':')
                .ok_or_else(|| QueueError::Backend(format!("topic property '{item}' is not key:value")))?;
            configs.insert(k.trim().to_string(), v.trim().to_string());
        }
        let take_num = |configs: &mut BTreeMap<String, String>, key: &str| -> Result<Option<i64>, QueueError> {
            configs
                .remove(key)
                .map(|v| v.parse::<i64>().map_err(|_| QueueError::Backend(format!("{key} '{v}' is not a number"))))
                .transpose()
        };
        let partitions = take_num(&mut configs, "partitions")?.unwrap_or(1);
        let replication = take_num(&mut configs, "replication.factor")?.unwrap_or(1);
        if !(1..=10_000).contains(&partitions) {
            return Err(QueueError::Backend(format!("partitions must be 1..10000, got {partitions}")));
        }
        Ok(TopicSpec {
            name: name.to_string(),
            partitions: partitions as i32,
            replication_factor: replication.clamp(1, i16::MAX as i64) as i16,
            configs,
        })
    }

    /// Forces `cleanup.policy=compact` (TBMQ does this for downlink topics).
    pub fn compacted(mut self) -> Self {
        self.configs.insert("cleanup.policy".into(), "compact".into());
        self
    }

    /// Forces the partition count (TBMQ forces 1 for integration message topics).
    pub fn with_partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions;
        self
    }

    /// Whether the topic is compacted.
    pub fn is_compacted(&self) -> bool {
        self.configs.get("cleanup.policy").is_some_and(|p| p.contains("compact"))
    }
}

/// Where to place a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// A fixed partition.
    Fixed(i32),
    /// By key hash (murmur2 like Kafka's default partitioner); partition 0 without a key.
    ByKey,
}

/// The acknowledgement of one produced record: `(partition, offset)` once stored.
pub type Delivery = tokio::sync::oneshot::Receiver<QueueResult<(i32, i64)>>;

/// Waits for a delivery from a plain thread.
pub fn wait_delivery(delivery: Delivery) -> QueueResult<(i32, i64)> {
    delivery.blocking_recv().unwrap_or(Err(QueueError::Closed))
}

/// Sends records. Cheap to clone behind an `Arc`; never blocks.
pub trait Producer: Send + Sync {
    /// Queues a record; the returned [`Delivery`] resolves when the backend stored it (or failed).
    fn send(&self, topic: &str, partitioning: Partitioning, key: Option<&[u8]>, value: &[u8]) -> Delivery;

    /// Waits up to `timeout` until every record sent so far is stored (or failed). A backend
    /// that stores synchronously has nothing to wait for. Called at shutdown: without it a
    /// Kafka producer drops what it still buffers.
    fn flush(&self, _timeout: Duration) -> QueueResult<()> {
        Ok(())
    }
}

/// What [`Consumer::on_records`] calls when the consumer has something to return. It runs on
/// the thread that appended the record (or changed the partitions), outside the queue's locks:
/// it must be quick and must not block (hand the work to another thread).
pub type RecordWaker = Box<dyn FnOnce() + Send>;

/// Reads records. One consumer is used by one thread.
pub trait Consumer: Send {
    /// Waits up to `timeout` for records (at most `max_records`) or partition changes.
    /// Partition changes come first.
    fn poll(&mut self, timeout: Duration, max_records: usize) -> QueueResult<Vec<ConsumerEvent>>;
    /// Commits `next_offset` (the offset of the next record to read) for a partition.
    fn commit(&mut self, tp: &TopicPartition, next_offset: i64) -> QueueResult<()>;
    /// The group's committed offset for a partition, if any.
    fn committed(&mut self, tp: &TopicPartition) -> QueueResult<Option<i64>>;
    /// Moves this consumer's read position for a partition.
    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> QueueResult<()>;
    /// Offsets `(first, next)` of a partition: `first` is the earliest readable offset, `next`
    /// the offset the next produced record will get (Kafka's high watermark).
    fn watermarks(&mut self, tp: &TopicPartition) -> QueueResult<(i64, i64)>;

    /// Asks the consumer to call `waker` once, when a [`Consumer::poll`] would return
    /// something: a record appended to a partition it reads, or a change of its partitions.
    /// When records are already waiting, `waker` is called before this returns, so nothing
    /// appended between an empty poll and this call is missed. The consumer forgets the waker
    /// (uncalled) when it is polled again, given another one, or dropped.
    ///
    /// Lets a reader with nothing to do give its thread back instead of blocking in `poll`.
    /// Returns false when the backend cannot do this (the default; `waker` is dropped
    /// uncalled): the reader must keep polling.
    fn on_records(&mut self, waker: RecordWaker) -> bool {
        drop(waker);
        false
    }
}

/// A queue backend.
pub trait Queue: Send + Sync {
    /// The shared producer.
    fn producer(&self) -> Arc<dyn Producer>;
    /// Creates a topic if it does not exist (an existing topic is left as it is).
    fn create_topic(&self, spec: &TopicSpec) -> QueueResult<()>;
    /// Deletes a topic; deleting a missing topic is not an error.
    fn delete_topic(&self, name: &str) -> QueueResult<()>;
    /// Whether a topic exists.
    fn topic_exists(&self, name: &str) -> QueueResult<bool>;
    /// Deletes a consumer group's committed offsets; a missing group is not an error.
    fn delete_group(&self, group: &str) -> QueueResult<()>;
    /// A consumer in `group` subscribed to `topics`; partitions are spread over the group's
    /// members and moved when members come and go. New partitions start at the committed offset,
    /// or at the beginning when the group has none.
    fn subscribe(&self, group: &str, client_id: &str, topics: &[String]) -> QueueResult<Box<dyn Consumer>>;
    /// A consumer of exactly `tp` (manual assignment), using `group` only for committed offsets.
    /// It starts at the committed offset, or at the beginning when there is none.
    fn assign(&self, group: &str, client_id: &str, tp: &TopicPartition) -> QueueResult<Box<dyn Consumer>>;
}

/// Partition for a key in the embedded backend: Kafka's default partitioner,
/// `(murmur2(key) & 0x7fffffff) % partitions` (the Kafka backend leaves this to librdkafka's
/// `murmur2_random`, which gives the same answer for keyed records). Stored records outlive the
/// process, so a key must map to the same partition in every run and with every toolchain, which
/// the standard library's hasher does not promise.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) as i32 % partitions.max(1)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(key: &[u8]) -> u32 {
    murmur2::murmur2(key, murmur2::KAFKA_SEED)
}

#[cfg(test)]
mod tests;
