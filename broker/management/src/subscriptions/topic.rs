//! The integrations' records on the compacted `tbmq.client.subscriptions` topic, as TBMQ keeps
//! them: key = integration id, value = `ClientSubscriptionsProto` with every topic filter of the
//! integration (QoS 1, source `INTEGRATION`); a deleted integration (or one left without filters)
//! is a tombstone. Every broker node reads the whole topic on its own (a consumer of the one
//! partition in a group of its own that never commits), so every node sees every change in the
//! same order.
//!
//! Catching up uses TBMQ's marker: the node writes a record under a
//! `tbmq_system_dummy_client_id_<uuid>` key and reads until it meets it, which works however
//! compaction thinned the topic; then it removes the marker with a tombstone.
//!
//! What the records mean for the broker's trie is [`super::Subscriptions`]'s business; MQTT
//! clients' records (source `MQTT_CLIENT`) are skipped here.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use prost::Message as _;
use tokio::sync::watch;
use trib_queue::{
    queue::{ConsumerEvent, Partitioning, Queue, QueueError, QueueResult, Record, TopicPartition},
    topics::TopicNames,
    wire::{ClientSubscriptionsProto, SubscriptionsSourceProto, TopicSubscriptionProto, WIRE_VERSION},
};
use uuid::Uuid;

/// TBMQ's prefix of marker keys (`BrokerConstants.SYSTEM_DUMMY_CLIENT_ID_PREFIX`).
pub const MARKER_KEY_PREFIX: &str = "tbmq_system_dummy_client_id_";
/// TBMQ's topic filter of a marker record (`BrokerConstants.SYSTEM_DUMMY_TOPIC_FILTER`).
const MARKER_TOPIC_FILTER: &str = "tbmq_system_dummy_topic_filter";
/// How long a node may take to read the topic up to its marker before its start fails.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a change may take from the queue back into this node's trie.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// An integration's subscriptions as one record states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The integration's filters are now these (never empty).
    Set(Uuid, Vec<String>),
    /// The integration has no subscriptions any more.
    Remove(Uuid),
}

/// Encodes an integration's record value; empty filters give the tombstone (an empty value).
pub fn encode(filters: &[String]) -> Vec<u8> {
    if filters.is_empty() {
        return Vec::new();
    }
    let subscriptions =
        filters.iter().map(|f| TopicSubscriptionProto { topic: f.clone(), qos: 1, ..Default::default() }).collect();
    subscriptions_proto(subscriptions, SubscriptionsSourceProto::Integration).encode_to_vec()
}

/// What a record says about an integration: `None` for markers, MQTT clients' records and
/// records that are not an integration's (a key that is not a UUID, an undecodable value).
pub fn decode(key: Option<&[u8]>, value: &[u8]) -> Option<Change> {
    let key = std::str::from_utf8(key?).ok()?;
    if key.starts_with(MARKER_KEY_PREFIX) {
        return None;
    }
    let id = Uuid::parse_str(key).ok()?;
    if value.is_empty() {
        return Some(Change::Remove(id));
    }
    let proto = match ClientSubscriptionsProto::decode(value) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(key, error = %e, "Undecodable subscriptions record skipped.");
            return None;
        }
    };
    // TBMQ clears a key with an empty set of subscriptions instead of a tombstone.
    if proto.subscriptions.is_empty() {
        return Some(Change::Remove(id));
    }
    if proto.source != Some(SubscriptionsSourceProto::Integration as i32) {
        return None;
    }
    Some(Change::Set(id, proto.subscriptions.into_iter().map(|s| s.topic).collect()))
}

/// This node's writer and reader of the topic.
pub struct SubscriptionTopic {
    queue: Arc<dyn Queue>,
    tp: TopicPartition,
    /// The offset after the last record this node applied.
    applied: watch::Sender<i64>,
}

impl std::fmt::Debug for SubscriptionTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionTopic").field("tp", &self.tp).field("applied", &*self.applied.borrow()).finish()
    }
}

/// The node's consumer of the topic, with what it needs to apply records.
pub struct Reader {
    consumer: Box<dyn trib_queue::queue::Consumer>,
    applied: watch::Sender<i64>,
}

impl SubscriptionTopic {
    /// Creates the topic when missing and this node's consumer of it (from the beginning).
    /// Blocking (Kafka admin calls).
    pub fn open(queue: Arc<dyn Queue>, names: &TopicNames, service_id: &str) -> QueueResult<(Self, Reader)> {
        let spec = names.client_subscriptions_spec()?;
        queue.create_topic(&spec)?;
        let tp = TopicPartition::new(spec.name, 0);
        let client_id = format!("{}client-subscriptions-consumer-{service_id}", names.prefix);
        // The group never commits, so the consumer starts at the beginning.
        let consumer = queue.assign(&names.client_subscriptions_group(service_id), &client_id, &tp)?;
        let (applied, _) = watch::channel(0);
        let reader = Reader { consumer, applied: applied.clone() };
        Ok((SubscriptionTopic { queue, tp, applied }, reader))
    }

    /// Writes an integration's record (a tombstone for empty filters); returns its offset.
    pub async fn write(&self, integration_id: Uuid, filters: &[String]) -> QueueResult<i64> {
        self.send(integration_id.to_string().as_bytes(), &encode(filters)).await
    }

    /// Waits until this node applied the record at `offset`.
    pub async fn wait_applied(&self, offset: i64) -> QueueResult<()> {
        let mut applied = self.applied.subscribe();
        let result =
            tokio::time::timeout(APPLY_TIMEOUT, applied.wait_for(|next| *next > offset)).await.map(|r| r.is_ok());
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(QueueError::Closed),
            Err(_) => Err(QueueError::Backend(format!(
                "the subscriptions change was stored at offset {offset} of {} but this node did not read it back within {} s",
                self.tp,
                APPLY_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Writes a marker and returns its key and offset.
    pub async fn write_marker(&self) -> QueueResult<(String, i64)> {
        let key = format!("{MARKER_KEY_PREFIX}{}", Uuid::new_v4());
        let marker = TopicSubscriptionProto { topic: MARKER_TOPIC_FILTER.into(), qos: 0, ..Default::default() };
        let value = subscriptions_proto(vec![marker], SubscriptionsSourceProto::MqttClient).encode_to_vec();
        let offset = self.send(key.as_bytes(), &value).await?;
        Ok((key, offset))
    }

    /// Removes a marker (a tombstone of its key).
    pub async fn remove_marker(&self, key: &str) -> QueueResult<()> {
        self.send(key.as_bytes(), &[]).await.map(drop)
    }

    async fn send(&self, key: &[u8], value: &[u8]) -> QueueResult<i64> {
        let delivery = self.queue.producer().send(&self.tp.topic, Partitioning::Fixed(0), Some(key), value);
        let (_, offset) = delivery.await.unwrap_or(Err(QueueError::Closed))?;
        Ok(offset)
    }
}

impl Reader {
    /// Reads until the record at `offset` was applied (or `deadline` passed), applying every
    /// change in order. Blocking.
    pub fn read_through(
        &mut self,
        offset: i64,
        poll: Duration,
        deadline: Instant,
        apply: &dyn Fn(Change),
    ) -> QueueResult<()> {
        while *self.applied.borrow() <= offset {
            if Instant::now() >= deadline {
                return Err(QueueError::Backend(format!(
                    "could not read the subscriptions topic up to offset {offset} in time (read up to {})",
                    *self.applied.borrow()
                )));
            }
            self.poll_once(poll, apply)?;
        }
        Ok(())
    }

    /// Polls once and applies what came. Blocking.
    pub fn poll_once(&mut self, poll: Duration, apply: &dyn Fn(Change)) -> QueueResult<()> {
        for event in self.consumer.poll(poll, 500)? {
            if let ConsumerEvent::Records(records) = event {
                records.iter().for_each(|r| self.apply(r, apply));
            }
        }
        Ok(())
    }

    fn apply(&self, record: &Record, apply: &dyn Fn(Change)) {
        if let Some(change) = decode(record.key.as_deref(), &record.value) {
            apply(change);
        }
        self.applied.send_replace(record.offset + 1);
    }
}

fn subscriptions_proto(
    subscriptions: Vec<TopicSubscriptionProto>,
    source: SubscriptionsSourceProto,
) -> ClientSubscriptionsProto {
    ClientSubscriptionsProto {
        subscriptions,
        source: Some(source as i32),
        wire_version: WIRE_VERSION,
        service_id: None,
        session_ended: false,
        session_expiry_interval: None,
        node_seq: None,
        disconnected_at: None,
        awaiting_pubrel: Vec::new(),
    }
}
