//! Hands messages that matched an integration's topic filters to the queue, as TBMQ does:
//! a `PublishIntegrationMsgProto` on `tbmq.msg.ie.<id32>`, partition 0, key = MQTT topic.
//!
//! The broker never blocks here. When the integration's topic is known to exist the record is
//! handed to the producer at once; otherwise the message goes through a bounded channel to a
//! thread that creates the topic first, keeping the integration's order. A full channel or a
//! refused record is counted (`broker_integration_msgs_dropped_total`) and logged, at most once
//! per 10 s per integration and reason with the count of the lines left out (`LogLimit`): a
//! queue that refuses every message must not write a line per message.
//!
//! For QoS 1 and 2 the forwarder returns a [`Handover`] that settles when the queue has stored
//! the record (at once on the embedded queue, when Kafka confirms otherwise); the connection
//! sends PUBACK or PUBREC only then, as TBMQ acknowledges after its Kafka producer's callback.
//! So a message its publisher saw acknowledged survives a killed broker process.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc, LazyLock,
    },
    time::{Duration, Instant},
};

use parking_lot::RwLock;
use prost::Message as _;
use trib_ops::log_limit::LogLimit;
use trib_queue::{
    queue::{wait_delivery, Delivery, Partitioning, Producer, Queue, QueueError},
    topics::TopicNames,
    wire::{MqttPropertiesProto, PublishIntegrationMsgProto, PublishMsgProto, UserPropertyProto, WIRE_VERSION},
};
use uuid::Uuid;

use crate::{
    message::PublishedMessage,
    protocol::QoS,
    router::{Handover, Handovers, IntegrationRoute, IntegrationSink, NotStored},
};

/// Tells the publishing connection whether its message was stored (QoS 1 and 2 only).
type Confirm = Option<tokio::sync::oneshot::Sender<Result<(), NotStored>>>;

/// Bound of the slow path (messages waiting for their topic to be created).
const SLOW_PATH_CAPACITY: usize = 10_000;

/// The lines about messages the queue did not take, keyed by reason and integration.
static DROPPED_LINES: LazyLock<LogLimit> = LazyLock::new(LogLimit::default);

/// The number of lines like this one suppressed since the last one written, or `None` when
/// this one is suppressed too.
fn dropped_line(reason: &str, integration_id: &str) -> Option<u64> {
    DROPPED_LINES.admit(&format!("{reason}:{integration_id}"))
}

/// Counters of the forwarder.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Records handed to the queue.
    pub sent: AtomicU64,
    /// Records the queue confirmed.
    pub stored: AtomicU64,
    /// Messages dropped (queue refused or the slow path was full).
    pub dropped: AtomicU64,
}

/// The [`IntegrationSink`] that writes to the queue.
pub struct QueueForwarder {
    producer: Arc<dyn Producer>,
    topics: TopicNames,
    service_id: String,
    known: Arc<RwLock<HashSet<String>>>,
    /// Messages per topic still waiting on the slow path; the fast path is used only at zero,
    /// so a message never overtakes an earlier one of the same integration.
    pending: Arc<parking_lot::Mutex<HashMap<String, usize>>>,
    slow: mpsc::SyncSender<(String, Vec<u8>, String, Confirm)>,
    acks: mpsc::Sender<(Delivery, Confirm)>,
    stats: Arc<ForwardStats>,
}

impl std::fmt::Debug for QueueForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueForwarder").field("service_id", &self.service_id).finish()
    }
}

impl QueueForwarder {
    /// Creates the forwarder and its two helper threads (topic creation, delivery accounting).
    pub fn new(queue: Arc<dyn Queue>, topics: TopicNames, service_id: String) -> Arc<Self> {
        let stats = Arc::new(ForwardStats::default());
        let known = Arc::new(RwLock::new(HashSet::new()));
        let pending: Arc<parking_lot::Mutex<HashMap<String, usize>>> = Arc::default();
        // Unbounded, but never long: every entry is a record the producer holds, and the
        // producer's own buffer is bounded (`queue.buffering.max.kbytes`).
        let (acks_tx, acks_rx) = mpsc::channel::<(Delivery, Confirm)>();
        let (slow_tx, slow_rx) = mpsc::sync_channel::<(String, Vec<u8>, String, Confirm)>(SLOW_PATH_CAPACITY);
        let producer = queue.producer();
        {
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("broker-ie-acks".into())
                .spawn(move || {
                    for (delivery, confirm) in acks_rx {
                        let result = match wait_delivery(delivery) {
                            Ok(_) => {
                                stats.stored.fetch_add(1, Ordering::Relaxed);
                                Ok(())
                            }
                            Err(e) => {
                                if let Some(suppressed) = dropped_line("not stored", "") {
                                    tracing::error!(error = %e, suppressed, "Integration message was not stored by the queue.");
                                }
                                metrics::counter!("broker_integration_msgs_dropped_total", "reason" => "queue")
                                    .increment(1);
                                stats.dropped.fetch_add(1, Ordering::Relaxed);
                                Err(not_stored(&e))
                            }
                        };
                        if let Some(confirm) = confirm {
                            // The connection may be gone; then nobody waits for the answer.
                            let _ = confirm.send(result);
                        }
                    }
                })
                .expect("spawn forwarder ack thread");
        }
        {
            let (queue, topics, known, producer, acks, stats, pending) = (
                queue.clone(),
                topics.clone(),
                known.clone(),
                producer.clone(),
                acks_tx.clone(),
                stats.clone(),
                pending.clone(),
            );
            std::thread::Builder::new()
                .name("broker-ie-topics".into())
                .spawn(move || {
                    for (topic, value, key, confirm) in slow_rx {
                        if !known.read().contains(&topic) {
                            let created = topic_spec(&topics, &topic).and_then(|spec| queue.create_topic(&spec).ok());
                            if created.is_some() {
                                known.write().insert(topic.clone());
                            }
                        }
                        let d = producer.send(&topic, Partitioning::Fixed(0), Some(key.as_bytes()), &value);
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                        let _ = acks.send((d, confirm));
                        let mut p = pending.lock();
                        if let Some(n) = p.get_mut(&topic) {
                            *n -= 1;
                            if *n == 0 {
                                p.remove(&topic);
                            }
                        }
                    }
                })
                .expect("spawn forwarder topic thread");
        }
        Arc::new(QueueForwarder { producer, topics, service_id, known, pending, slow: slow_tx, acks: acks_tx, stats })
    }

    /// The forwarder's counters.
    pub fn stats(&self) -> Arc<ForwardStats> {
        self.stats.clone()
    }

    /// Forgets that a topic exists (after the cleanup task deleted it).
    pub fn forget_topic(&self, topic: &str) {
        self.known.write().remove(topic);
    }

    /// Waits until every message taken so far is with the queue (the slow path is empty) and the
    /// queue has stored what it holds, for at most `timeout`. Called at shutdown, after the MQTT
    /// listeners closed, so that nothing acknowledged or accepted is left in memory.
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while !self.pending.lock().is_empty() {
            if Instant::now() >= deadline {
                return Err("messages are still waiting for their integration topic".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.producer.flush(deadline.saturating_duration_since(Instant::now())).map_err(|e| e.to_string())
    }

    fn drop_message(&self, reason: &'static str) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("broker_integration_msgs_dropped_total", "reason" => reason).increment(1);
    }
}

/// A failed delivery as the publisher's connection sees it.
fn not_stored(e: &QueueError) -> NotStored {
    match e {
        QueueError::Full(reason) => NotStored::quota(reason.clone()),
        other => NotStored::new(other.to_string()),
    }
}

/// The topic spec of a message topic named `topic` (`<p>tbmq.msg.ie.<id32>`).
fn topic_spec(topics: &TopicNames, topic: &str) -> Option<trib_queue::queue::TopicSpec> {
    let id32 = topic.rsplit('.').next()?;
    let id = Uuid::parse_str(id32).ok()?;
    topics.msg_spec(id).ok()
}

/// Encodes a published message as TBMQ's `PublishIntegrationMsgProto`.
pub fn encode(msg: &PublishedMessage, broker_service_id: &str) -> Vec<u8> {
    let proto = PublishIntegrationMsgProto {
        publish_msg_proto: Some(publish_msg_proto(msg)),
        tbmq_node: broker_service_id.to_string(),
        timestamp: msg.received_at_ms as i64,
        wire_version: WIRE_VERSION,
    };
    proto.encode_to_vec()
}

/// A message as the queue's records carry it (TBMQ's `PublishMsgProto`).
pub(crate) fn publish_msg_proto(msg: &PublishedMessage) -> PublishMsgProto {
    PublishMsgProto {
        client_id: msg.client_id.to_string(),
        packet_id: 0,
        payload: msg.payload.clone(),
        retain: msg.retain,
        qos: msg.qos as i32,
        topic_name: msg.topic.clone(),
        user_properties: user_properties_proto(msg),
        mqtt_properties: mqtt_properties_proto(msg),
        client_cert_cn: None,
    }
}

/// A message's user properties, in order, as the queue's records carry them.
pub(crate) fn user_properties_proto(msg: &PublishedMessage) -> Vec<UserPropertyProto> {
    msg.user_properties.iter().map(|(k, v)| UserPropertyProto { key: k.clone(), value: v.clone() }).collect()
}

/// A message's other MQTT 5 properties as the queue's records carry them (`None` when it has none).
pub(crate) fn mqtt_properties_proto(msg: &PublishedMessage) -> Option<MqttPropertiesProto> {
    let has_props = msg.content_type.is_some()
        || msg.correlation_data.is_some()
        || msg.response_topic.is_some()
        || msg.message_expiry_interval.is_some()
        || msg.payload_format_indicator.is_some();
    has_props.then(|| MqttPropertiesProto {
        payload_format_indicator: msg.payload_format_indicator.map(i32::from),
        content_type: msg.content_type.clone(),
        response_topic: msg.response_topic.clone(),
        correlation_data: msg.correlation_data.as_ref().map(|b| b.to_vec()),
        subscription_ids: Vec::new(),
        message_expiry_interval: msg.message_expiry_interval,
    })
}

/// What a connection waits for: nothing for QoS 0, the queue's answer otherwise.
fn confirmation(qos: QoS) -> (Confirm, Handover) {
    if qos == QoS::AtMostOnce {
        return (None, Handover::Stored);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    (Some(tx), Handover::Pending(rx))
}

impl IntegrationSink for QueueForwarder {
    /// The integration's queue topic, `<p>tbmq.msg.ie.<id32>`: the id is parsed once, here.
    fn route(&self, integration_id: &str) -> Result<Arc<str>, String> {
        let id = Uuid::parse_str(integration_id).map_err(|e| format!("not a UUID: {e}"))?;
        Ok(self.topics.msg(id).into())
    }

    fn send(&self, integration_id: &str, msg: &PublishedMessage) -> Handover {
        let destination = match self.route(integration_id) {
            Ok(destination) => destination,
            Err(e) => {
                if let Some(suppressed) = dropped_line("bad id", integration_id) {
                    tracing::error!(integration_id, error = %e, suppressed, "Integration with a malformed id; message dropped.");
                }
                self.drop_message("bad_id");
                return Handover::Failed(NotStored::new(format!("malformed integration id {integration_id:?}")));
            }
        };
        let route = Arc::new(IntegrationRoute { id: integration_id.into(), destination });
        let mut handovers = Handovers::default();
        self.send_all(&[&route], msg, &mut handovers);
        handovers.into_single()
    }

    /// Encodes the PUBLISH once and hands the same bytes to every matching integration's topic;
    /// which topics may take the fast path is decided under one look at the shared sets.
    fn send_all(&self, routes: &[&Arc<IntegrationRoute>], msg: &PublishedMessage, handovers: &mut Handovers) {
        let value = encode(msg, &self.service_id);
        let fast: Vec<bool> = {
            let (known, pending) = (self.known.read(), self.pending.lock());
            routes.iter().map(|r| known.contains(&*r.destination) && !pending.contains_key(&*r.destination)).collect()
        };
        for (route, fast) in routes.iter().zip(fast) {
            let handover = if fast { self.send_direct(route, msg, &value) } else { None };
            handovers.push(handover.unwrap_or_else(|| self.send_slow(route, msg, &value)));
        }
    }
}

impl QueueForwarder {
    /// Hands the record to the producer; `None` when the topic turned out to be gone (then the
    /// slow path recreates it and sends).
    fn send_direct(&self, route: &IntegrationRoute, msg: &PublishedMessage, value: &[u8]) -> Option<Handover> {
        let topic = &*route.destination;
        let mut d = self.producer.send(topic, Partitioning::Fixed(0), Some(msg.topic.as_bytes()), value);
        match d.try_recv() {
            // Stored already (the embedded queue answers at once).
            Ok(Ok(_)) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                self.stats.stored.fetch_add(1, Ordering::Relaxed);
                Some(Handover::Stored)
            }
            // The topic was deleted (cleanup of a long-disabled integration): recreate it on the
            // slow path, which also resends.
            Ok(Err(QueueError::UnknownTopic(_))) => {
                self.known.write().remove(topic);
                None
            }
            // The integration's backlog is at its limit: refused, not dropped; the queue logs
            // each such episode once, so no line per message here.
            Ok(Err(QueueError::Full(e))) => {
                self.drop_message("full");
                Some(Handover::Failed(NotStored::quota(e)))
            }
            Ok(Err(e)) => {
                if let Some(suppressed) = dropped_line("refused", &route.id) {
                    tracing::error!(integration_id = %route.id, error = %e, suppressed, "Integration message refused by the queue.");
                }
                self.drop_message("queue");
                Some(Handover::Failed(NotStored::new(e.to_string())))
            }
            Err(_) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                let (confirm, handover) = confirmation(msg.qos);
                if self.acks.send((d, confirm)).is_err() {
                    // The accounting thread is gone (it never exits while the forwarder lives);
                    // the record itself is with the queue.
                    return Some(Handover::Stored);
                }
                Some(handover)
            }
        }
    }

    /// Queues the record for the topic thread, which creates the topic first (keeping order).
    fn send_slow(&self, route: &IntegrationRoute, msg: &PublishedMessage, value: &[u8]) -> Handover {
        let topic = route.destination.to_string();
        // Counted before it is queued, so the slow thread can never see a count of zero for it.
        *self.pending.lock().entry(topic.clone()).or_default() += 1;
        let (confirm, handover) = confirmation(msg.qos);
        if self.slow.try_send((topic.clone(), value.to_vec(), msg.topic.clone(), confirm)).is_err() {
            let mut p = self.pending.lock();
            if let Some(n) = p.get_mut(&topic) {
                *n -= 1;
                if *n == 0 {
                    p.remove(&topic);
                }
            }
            if let Some(suppressed) = dropped_line("backlog", &route.id) {
                tracing::error!(integration_id = %route.id, suppressed, "Integration topic creation is backed up; message dropped.");
            }
            self.drop_message("backlog");
            return Handover::Failed(NotStored::new("integration topic creation is backed up"));
        }
        handover
    }
}
