//! Retained messages on the compacted `tbmq.msg.retained` topic, as TBMQ keeps them: key = MQTT
//! topic, value = `RetainedMsgProto` (payload, QoS, MQTT 5 properties, when it was received and
//! the node that received it); a cleared retained message is a tombstone (an empty value).
//! The router's in-memory store stays what subscribers are served from; this module fills it.
//!
//! At start a node reads the whole topic into its store before its MQTT listeners open
//! ([`RetainedTopic::catch_up`]; it reads until a marker record it wrote, which works however
//! compaction thinned the topic), then follows the topic ([`RetainedTopic::follow`]) so that what
//! other nodes set or clear applies here too. Every node reads the one partition in the same
//! order, and the last record per MQTT topic wins.
//!
//! A client's retained message is stored in memory at once and written to the topic without
//! waiting ([`crate::RetainedLog`]); a QoS 1 or 2 PUBLISH is acknowledged once the queue stored
//! the record (or failed to: that is logged, and the acknowledgement is not refused, since the
//! message was delivered). While a node has records of its own for an MQTT topic that it has not
//! read back yet, what it reads for that topic is not applied: its own later record comes after
//! it in the topic and wins, and applying an older record in between would make the retained
//! message go back for a while.
//!
//! Not here: the store itself (`router::retained`), expiry of stored messages (on lookup).

#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, LazyLock, Weak,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use prost::Message as _;
use trib_ops::log_limit::LogLimit;
use trib_queue::{
    queue::{
        wait_delivery, Consumer, ConsumerEvent, Delivery, Partitioning, Producer, Queue, QueueError, QueueResult,
        Record, TopicPartition,
    },
    topics::TopicNames,
    wire::{RetainedMsgProto, WIRE_VERSION},
};
use uuid::Uuid;

use crate::{
    forward::{mqtt_properties_proto, user_properties_proto},
    message::{now_ms, PublishedMessage, RoutedMessage},
    protocol::QoS,
    router::{topic::validate_topic_name, Handover, NotStored, RetainedLog, Router},
};

/// Prefix of the key of a catch-up marker. The `#` makes it an invalid topic name, so no client
/// can ever retain a message under a marker's key.
pub const MARKER_KEY_PREFIX: &str = "$#tbmq_system_dummy_retained_";
/// How long a node may take to read the topic up to its marker before its start fails.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Records read per poll.
const MAX_RECORDS: usize = 500;

/// Log lines about records that were skipped or not stored, per reason.
static LINES: LazyLock<LogLimit> = LazyLock::new(LogLimit::default);

/// This node's writer and reader of `tbmq.msg.retained`.
pub struct RetainedTopic {
    log: Arc<Log>,
    reader: Mutex<Option<Reader>>,
    poll: Duration,
}

impl std::fmt::Debug for RetainedTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetainedTopic").field("topic", &self.log.topic).finish_non_exhaustive()
    }
}

impl RetainedTopic {
    /// Creates the topic when missing and this node's consumer of it (from the beginning), for
    /// `router`'s store. Nothing is read until [`RetainedTopic::catch_up`].
    pub async fn open(
        queue: Arc<dyn Queue>,
        names: &TopicNames,
        service_id: &str,
        router: &Arc<Router>,
        poll: Duration,
    ) -> QueueResult<Self> {
        let (names, id) = (names.clone(), service_id.to_owned());
        let (topic, consumer) = tokio::task::spawn_blocking(move || -> QueueResult<_> {
            let spec = names.retained_msg_spec()?;
            queue.create_topic(&spec)?;
            let client_id = format!("{}retained-msg-consumer-{id}", names.prefix);
            // The group never commits, so the consumer starts at the beginning.
            let consumer =
                queue.assign(&names.retained_msg_group(&id), &client_id, &TopicPartition::new(&spec.name, 0))?;
            Ok((spec.name, (consumer, queue.producer())))
        })
        .await
        .map_err(|e| QueueError::Backend(format!("cannot open the retained messages topic: {e}")))??;
        let (consumer, producer) = consumer;
        let (acks, acks_rx) = mpsc::channel();
        let log = Arc::new(Log {
            router: Arc::downgrade(router),
            producer,
            topic,
            service_id: service_id.to_owned(),
            pending: Mutex::new(HashMap::new()),
            acks,
        });
        spawn_acks(Arc::downgrade(&log), acks_rx)?;
        let reader = Reader { consumer, next: 0 };
        Ok(RetainedTopic { log, reader: Mutex::new(Some(reader)), poll })
    }

    /// Reads the topic up to now (a marker this node writes) into the router's store; returns
    /// how many retained messages the store holds then. Called at start, before the MQTT
    /// listeners open and before [`RetainedTopic::follow`].
    pub async fn catch_up(&self) -> QueueResult<usize> {
        let marker = format!("{MARKER_KEY_PREFIX}{}", Uuid::new_v4());
        let offset = self.log.send_async(marker.as_bytes(), b"marker").await?;
        let mut reader = self.reader.lock().take().ok_or(QueueError::Closed)?;
        let (log, poll) = (self.log.clone(), self.poll);
        let (reader, result) = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + CATCH_UP_TIMEOUT;
            let result = reader.read_through(offset, &log, poll, deadline);
            (reader, result)
        })
        .await
        .map_err(|e| QueueError::Backend(format!("retained messages catch-up failed: {e}")))?;
        *self.reader.lock() = Some(reader);
        result?;
        self.log.send_async(marker.as_bytes(), &[]).await?;
        Ok(self.log.router.upgrade().map_or(0, |r| r.retained_count()))
    }

    /// Makes the router write its clients' retained messages to the topic, and starts the thread
    /// that applies what other nodes write, until `stop` is set or the router is gone.
    pub fn follow(&self, stop: Arc<AtomicBool>) -> QueueResult<JoinHandle<()>> {
        let mut reader = self.reader.lock().take().ok_or(QueueError::Closed)?;
        let router = self.log.router.upgrade().ok_or(QueueError::Closed)?;
        router.set_retained_log(Some(self.log.clone()));
        let (log, poll) = (Arc::downgrade(&self.log), self.poll);
        std::thread::Builder::new()
            .name("broker-retained".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // The router holds the log: when it is gone, so is the broker.
                    let Some(log) = log.upgrade().filter(|l| l.router.strong_count() > 0) else { break };
                    if let Err(e) = reader.poll_once(&log, poll) {
                        tracing::warn!(error = %e, "Retained messages topic poll failed.");
                        std::thread::sleep(poll);
                    }
                }
            })
            .map_err(|e| QueueError::Backend(format!("cannot start the retained messages thread: {e}")))
    }
}

/// What one record does to an MQTT topic's retained message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The topic's retained message is now this one; the second field is the node that wrote it.
    Set(Box<PublishedMessage>, String),
    /// The topic has no retained message (a tombstone, or a message that expired meanwhile).
    Clear,
}

/// Encodes a retained message's record value; an empty payload gives the tombstone.
pub fn encode(msg: &PublishedMessage, service_id: &str) -> Vec<u8> {
    if msg.payload.is_empty() {
        return Vec::new();
    }
    RetainedMsgProto {
        payload: msg.payload.clone(),
        qos: msg.qos as i32,
        topic: msg.topic.clone(),
        user_properties: user_properties_proto(msg),
        created: i64::try_from(msg.received_at_ms).unwrap_or(i64::MAX),
        mqtt_properties: mqtt_properties_proto(msg),
        service_id: service_id.to_owned(),
        client_id: msg.client_id.to_string(),
        wire_version: WIRE_VERSION,
    }
    .encode_to_vec()
}

/// Why a record was skipped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The key is missing or not an MQTT topic name.
    #[error("the key is not a topic name")]
    Key,
    /// The value is not a `RetainedMsgProto`.
    #[error("undecodable value: {0}")]
    Value(String),
    /// The QoS is not 0, 1 or 2.
    #[error("invalid qos {0}")]
    Qos(i32),
}

/// What a record says, read at `now_ms`: `Ok(None)` for this node's catch-up markers. A message
/// whose expiry interval has passed since it was received clears the topic; one with time left
/// gets the time left as its interval.
pub fn decode(key: Option<&[u8]>, value: &[u8], now_ms: u64) -> Result<Option<(String, Change)>, DecodeError> {
    let topic = key.and_then(|k| std::str::from_utf8(k).ok()).ok_or(DecodeError::Key)?;
    if topic.starts_with(MARKER_KEY_PREFIX) {
        return Ok(None);
    }
    validate_topic_name(topic).map_err(|_| DecodeError::Key)?;
    if value.is_empty() {
        return Ok(Some((topic.to_owned(), Change::Clear)));
    }
    let proto = RetainedMsgProto::decode(value).map_err(|e| DecodeError::Value(e.to_string()))?;
    let qos = u8::try_from(proto.qos).ok().and_then(QoS::from_u8).ok_or(DecodeError::Qos(proto.qos))?;
    let props = proto.mqtt_properties.unwrap_or_default();
    let received_at_ms = u64::try_from(proto.created).unwrap_or(0);
    let mut message_expiry_interval = props.message_expiry_interval;
    if let Some(interval) = message_expiry_interval {
        let left_ms = (u64::from(interval) * 1000).saturating_sub(now_ms.saturating_sub(received_at_ms));
        if left_ms == 0 {
            return Ok(Some((topic.to_owned(), Change::Clear)));
        }
        message_expiry_interval = Some(u32::try_from(left_ms.div_ceil(1000)).unwrap_or(u32::MAX));
    }
    let msg = PublishedMessage {
        topic: topic.to_owned(),
        payload: proto.payload,
        qos,
        retain: true,
        client_id: proto.client_id.into(),
        user_properties: proto.user_properties.into_iter().map(|p| (p.key, p.value)).collect(),
        content_type: props.content_type,
        correlation_data: props.correlation_data.map(bytes::Bytes::from),
        response_topic: props.response_topic,
        message_expiry_interval,
        payload_format_indicator: props.payload_format_indicator.and_then(|p| u8::try_from(p).ok()),
        received_at_ms,
    };
    if msg.payload.is_empty() {
        return Ok(Some((topic.to_owned(), Change::Clear)));
    }
    Ok(Some((topic.to_owned(), Change::Set(Box::new(msg), proto.service_id))))
}

/// Whether a record of this node's is a message or a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Set,
    Clear,
}

/// Tells the publishing connection when the record is stored (QoS 1 and 2 only).
type Confirm = Option<tokio::sync::oneshot::Sender<Result<(), NotStored>>>;

/// The router's [`RetainedLog`] and the applying side of the topic, under one lock.
struct Log {
    router: Weak<Router>,
    producer: Arc<dyn Producer>,
    topic: String,
    service_id: String,
    /// This node's records per MQTT topic that it has not read back yet, in the order written.
    pending: Mutex<HashMap<String, VecDeque<Kind>>>,
    acks: mpsc::Sender<(Delivery, String, Kind, Confirm)>,
}

impl RetainedLog for Log {
    fn write(&self, msg: &PublishedMessage, store: &dyn Fn()) -> Handover {
        let kind = if msg.payload.is_empty() { Kind::Clear } else { Kind::Set };
        let value = encode(msg, &self.service_id);
        let mut delivery = {
            // The store, the pending record and the send in one step against `apply`: what this
            // node reads for the topic from now on comes before this record or is this record.
            let mut pending = self.pending.lock();
            store();
            pending.entry(msg.topic.clone()).or_default().push_back(kind);
            self.producer.send(&self.topic, Partitioning::Fixed(0), Some(msg.topic.as_bytes()), &value)
        };
        match delivery.try_recv() {
            // Stored already (the embedded queue answers at once).
            Ok(Ok(_)) => Handover::Stored,
            Ok(Err(e)) => {
                self.not_stored(&msg.topic, kind, &e);
                Handover::Stored
            }
            Err(_) => {
                let (confirm, handover) = if msg.qos == QoS::AtMostOnce {
                    (None, Handover::Stored)
                } else {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    (Some(tx), Handover::Pending(rx))
                };
                match self.acks.send((delivery, msg.topic.clone(), kind, confirm)) {
                    Ok(()) => handover,
                    // The accounting thread is gone; the record itself is with the queue.
                    Err(_) => Handover::Stored,
                }
            }
        }
    }
}

impl Log {
    /// Applies one record read from the topic.
    fn apply(&self, record: &Record) {
        let (topic, change) = match decode(record.key.as_deref(), &record.value, now_ms()) {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => {
                if let Some(suppressed) = LINES.admit(&format!("skipped:{e}")) {
                    tracing::warn!(offset = record.offset, error = %e, suppressed, "Retained message record skipped.");
                }
                return;
            }
        };
        let Some(router) = self.router.upgrade() else { return };
        let mut pending = self.pending.lock();
        if let Some(own) = pending.get_mut(&topic) {
            // A record of this node's for the topic is still to come and wins over this one.
            // This one is that record's first if it is ours: a message this node wrote, or a
            // tombstone while this node's next record is one (tombstones carry no writer).
            let mine = match &change {
                Change::Set(_, writer) => *writer == self.service_id,
                Change::Clear => own.front() == Some(&Kind::Clear),
            };
            if mine {
                own.pop_front();
                if own.is_empty() {
                    pending.remove(&topic);
                }
            }
            return;
        }
        let msg = match change {
            Change::Set(msg, _) => Some(RoutedMessage::new(*msg)),
            Change::Clear => None,
        };
        router.apply_retained(&topic, msg);
    }

    /// Forgets a record of this node's that the queue did not store (it will never be read).
    fn not_stored(&self, topic: &str, kind: Kind, e: &QueueError) {
        let mut pending = self.pending.lock();
        if let Some(own) = pending.get_mut(topic) {
            if let Some(i) = own.iter().position(|k| *k == kind) {
                own.remove(i);
            }
            if own.is_empty() {
                pending.remove(topic);
            }
        }
        if let Some(suppressed) = LINES.admit("not stored") {
            tracing::error!(
                topic = ?topic,
                error = %e,
                suppressed,
                "Retained message was not stored by the queue; it is kept on this node only."
            );
        }
    }

    /// Sends a record and waits until it is stored; returns its offset.
    async fn send_async(&self, key: &[u8], value: &[u8]) -> QueueResult<i64> {
        let delivery = self.producer.send(&self.topic, Partitioning::Fixed(0), Some(key), value);
        let (_, offset) = delivery.await.unwrap_or(Err(QueueError::Closed))?;
        Ok(offset)
    }
}

/// Starts the thread that waits for the queue's answers the producer did not give at once.
fn spawn_acks(log: Weak<Log>, rx: mpsc::Receiver<(Delivery, String, Kind, Confirm)>) -> QueueResult<()> {
    std::thread::Builder::new()
        .name("broker-retained-acks".into())
        .spawn(move || {
            // Ends when the log (the only sender) is gone.
            for (delivery, topic, kind, confirm) in rx {
                if let Err(e) = wait_delivery(delivery) {
                    if let Some(log) = log.upgrade() {
                        log.not_stored(&topic, kind, &e);
                    }
                }
                if let Some(confirm) = confirm {
                    // The connection may be gone; then nobody waits for the answer.
                    let _ = confirm.send(Ok(()));
                }
            }
        })
        .map(drop)
        .map_err(|e| QueueError::Backend(format!("cannot start the retained messages ack thread: {e}")))
}

/// The node's consumer of the topic.
struct Reader {
    consumer: Box<dyn Consumer>,
    /// The offset after the last record read.
    next: i64,
}

impl Reader {
    /// Reads until the record at `offset` was read (or `deadline` passed). Blocking.
    fn read_through(&mut self, offset: i64, log: &Log, poll: Duration, deadline: Instant) -> QueueResult<()> {
        while self.next <= offset {
            if Instant::now() >= deadline {
                return Err(QueueError::Backend(format!(
                    "could not read the retained messages topic up to offset {offset} in time (read up to {})",
                    self.next
                )));
            }
            self.poll_once(log, poll)?;
        }
        Ok(())
    }

    /// Polls once and applies what came. Blocking.
    fn poll_once(&mut self, log: &Log, poll: Duration) -> QueueResult<()> {
        for event in self.consumer.poll(poll, MAX_RECORDS)? {
            if let ConsumerEvent::Records(records) = event {
                for record in &records {
                    log.apply(record);
                    self.next = record.offset + 1;
                }
            }
        }
        Ok(())
    }
}
