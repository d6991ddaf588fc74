//! Kafka consumers: group members (`subscribe`) and manually assigned partitions (`assign`).
//!
//! librdkafka runs rebalance callbacks inside `poll` on the polling thread; [`EventContext`]
//! records them as `Revoked`/`Assigned` events that [`KafkaConsumer::poll`] returns before any
//! record. A member that is not polled does not take part in a rebalance, so the whole group
//! waits for it (up to `max.poll.interval.ms`), as with any Kafka client.
//!
//! Offsets are only committed explicitly (`enable.auto.commit=false`); new partitions start at
//! the group's committed offset, else at the beginning (`auto.offset.reset=earliest`, forced like
//! TBMQ does).

use std::{
    collections::VecDeque,
    ops::Deref,
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::{
    client::ClientContext,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance},
    error::{KafkaError, RDKafkaErrorCode},
    message::Message,
    Offset, TopicPartitionList,
};

use super::{backend, base_config, log_client_error, log_to_tracing, KafkaConfig};
use crate::queue::{Consumer, ConsumerEvent, QueueError, QueueResult, Record, TopicPartition};

/// How long `poll` keeps collecting once the first record arrived: enough to drain what
/// librdkafka already fetched, short enough to keep latency low.
const POLL_GRACE: Duration = Duration::from_millis(10);

/// How long dropping a consumer waits for librdkafka to close it (leave its group).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// A consumer of the Kafka backend.
pub(super) struct KafkaConsumer {
    consumer: Closing,
    timeout: Duration,
    /// Set for a manually assigned consumer (not a group member).
    manual: Option<Manual>,
}

/// The partition of a manually assigned consumer. librdkafka is given the assignment only at the
/// first `poll`, with the offset a `seek` chose before it: assigning and at once re-assigning
/// (the only way to seek a partition that is not fetching yet) can abort the process in
/// librdkafka 2.12 (`rd_kafka_assignment_partition_stopped: Assertion rktp->rktp_started`, a
/// duplicate FETCH_STOP, librdkafka issue #5573, fixed after 2.15), seen in CI.
struct Manual {
    tp: TopicPartition,
    /// Where to start; `Offset::Stored` = the group's committed offset, else the beginning.
    start: Offset,
    assigned: bool,
}

impl KafkaConsumer {
    /// A member of `group` subscribed to `topics`.
    pub(super) fn subscribe(
        config: &KafkaConfig,
        group: &str,
        client_id: &str,
        topics: &[String],
    ) -> QueueResult<Self> {
        let this = Self::new(config, group, client_id)?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        this.consumer.subscribe(&topics).map_err(backend)?;
        Ok(this)
    }

    /// A consumer of exactly `tp`, starting at `group`'s committed offset (assigned at the first
    /// `poll`, see [`Manual`]).
    pub(super) fn assign(config: &KafkaConfig, group: &str, client_id: &str, tp: &TopicPartition) -> QueueResult<Self> {
        let mut this = Self::new(config, group, client_id)?;
        this.manual = Some(Manual { tp: tp.clone(), start: Offset::Stored, assigned: false });
        Ok(this)
    }

    /// Gives librdkafka a manual consumer's assignment, once, before the first poll.
    fn start_manual(&mut self) -> QueueResult<()> {
        let Some(manual) = self.manual.as_mut().filter(|m| !m.assigned) else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&manual.tp.topic, manual.tp.partition, manual.start).map_err(backend)?;
        self.consumer.assign(&tpl).map_err(backend)?;
        manual.assigned = true;
        Ok(())
    }

    fn new(config: &KafkaConfig, group: &str, client_id: &str) -> QueueResult<Self> {
        let properties: Vec<_> =
            config.consumer_properties.iter().chain(&config.extra_consumer_properties).cloned().collect();
        let mut client = base_config(config, &properties);
        client
            .set("group.id", group)
            .set("client.id", client_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        let context = EventContext { events: Mutex::new(VecDeque::new()), before_error: Mutex::new(Vec::new()) };
        let consumer = client.create_with_context(context).map_err(backend)?;
        Ok(KafkaConsumer { consumer: Closing(Some(consumer)), timeout: config.admin_timeout, manual: None })
    }

    fn take_events(&self) -> Vec<ConsumerEvent> {
        self.consumer.context().events.lock().drain(..).collect()
    }

    fn check_assigned(&self, tp: &TopicPartition) -> QueueResult<()> {
        if let Some(manual) = &self.manual {
            return if manual.tp == *tp {
                Ok(())
            } else {
                Err(QueueError::NotAssigned(tp.topic.clone(), tp.partition))
            };
        }
        let assignment = self.consumer.assignment().map_err(backend)?;
        if assignment.find_partition(&tp.topic, tp.partition).is_some() {
            Ok(())
        } else {
            Err(QueueError::NotAssigned(tp.topic.clone(), tp.partition))
        }
    }
}

impl Consumer for KafkaConsumer {
    fn poll(&mut self, timeout: Duration, max_records: usize) -> QueueResult<Vec<ConsumerEvent>> {
        self.start_manual()?;
        let max_records = max_records.max(1);
        let deadline = Instant::now() + timeout;
        let mut events = self.take_events();
        let mut records = Vec::new();
        let mut stop_at = deadline;
        while events.is_empty() && records.len() < max_records {
            let now = Instant::now();
            match self.consumer.poll(stop_at.saturating_duration_since(now)) {
                Some(Ok(m)) => {
                    if records.is_empty() {
                        stop_at = deadline.min(Instant::now() + POLL_GRACE);
                    }
                    records.push(Record {
                        tp: TopicPartition::new(m.topic(), m.partition()),
                        offset: m.offset(),
                        key: m.key().map(Bytes::copy_from_slice),
                        value: m.payload().map(Bytes::copy_from_slice).unwrap_or_default(),
                    });
                }
                Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                    return Err(QueueError::Backend(format!("fatal consumer error: {code}")));
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Kafka consumer error; librdkafka retries.")
                }
                None => {}
            }
            events = self.take_events();
            if Instant::now() >= stop_at {
                break;
            }
        }
        // Records fetched before a revocation in the same call belong to partitions this
        // consumer no longer owns: the new owner reads them again from the committed offset.
        for event in &events {
            if let ConsumerEvent::Revoked(tps) = event {
                records.retain(|r| !tps.contains(&r.tp));
            }
        }
        if !records.is_empty() {
            events.push(ConsumerEvent::Records(records));
        }
        Ok(events)
    }

    fn commit(&mut self, tp: &TopicPartition, next_offset: i64) -> QueueResult<()> {
        self.check_assigned(tp)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(next_offset)).map_err(backend)?;
        self.consumer.commit(&tpl, CommitMode::Sync).map_err(backend)
    }

    fn committed(&mut self, tp: &TopicPartition) -> QueueResult<Option<i64>> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.topic, tp.partition);
        let committed = self.consumer.committed_offsets(tpl, self.timeout).map_err(backend)?;
        let offset = committed.find_partition(&tp.topic, tp.partition).map(|e| e.offset());
        Ok(match offset {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
    }

    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> QueueResult<()> {
        self.check_assigned(tp)?;
        if let Some(manual) = self.manual.as_mut() {
            if !manual.assigned {
                manual.start = Offset::Offset(offset);
                return Ok(());
            }
            // librdkafka refuses to seek a partition it is not fetching yet ("Erroneous state");
            // assigning again with the offset always works (polls after the first one).
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset)).map_err(backend)?;
            return self.consumer.assign(&tpl).map_err(backend);
        }
        self.consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), self.timeout).map_err(backend)
    }

    fn watermarks(&mut self, tp: &TopicPartition) -> QueueResult<(i64, i64)> {
        self.consumer.fetch_watermarks(&tp.topic, tp.partition, self.timeout).map_err(|e| {
            match e.rdkafka_error_code() {
                Some(RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition) => {
                    QueueError::UnknownTopic(tp.topic.clone())
                }
                Some(RDKafkaErrorCode::UnknownPartition) => {
                    QueueError::UnknownPartition(tp.topic.clone(), tp.partition)
                }
                _ => backend(e),
            }
        })
    }
}

/// A consumer whose drop (librdkafka's close: leaving the group, serving the last rebalance) is
/// bounded by [`CLOSE_WAIT`]. librdkafka can wait forever in a close that meets a rebalance under
/// the cooperative protocol: the revoke callback's `rd_kafka_incremental_unassign` waits without
/// a time limit for the group handler, which no longer answers (seen in CI against Tansu: a test
/// harness's consumer dropped while its group was still joining never returned). Past the wait
/// the close goes on by itself on its own thread and the caller continues, so a stop or a
/// shutdown never hangs on it; the broker ends the membership at `session.timeout.ms`.
struct Closing(Option<BaseConsumer<EventContext>>);

impl Deref for Closing {
    type Target = BaseConsumer<EventContext>;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("the consumer is only taken out when it is dropped")
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        let Some(consumer) = self.0.take() else { return };
        let (closed_tx, closed) = std::sync::mpsc::channel();
        let closing = std::thread::Builder::new().name("kafka-close".into()).spawn(move || {
            drop(consumer);
            let _ = closed_tx.send(());
        });
        // Without a thread the closure, and the consumer with it, was dropped here already.
        if closing.is_ok() && closed.recv_timeout(CLOSE_WAIT).is_err() {
            tracing::warn!(
                wait_secs = CLOSE_WAIT.as_secs(),
                "A Kafka consumer did not close in time (librdkafka waits on a rebalance); it is left to finish on its own."
            );
        }
    }
}

/// Records rebalances for [`KafkaConsumer::poll`]; runs on the polling thread.
pub(super) struct EventContext {
    events: Mutex<VecDeque<ConsumerEvent>>,
    /// The assignment when a failed rebalance started (rdkafka then unassigns it).
    before_error: Mutex<Vec<TopicPartition>>,
}

impl ClientContext for EventContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

impl ConsumerContext for EventContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let (Rebalance::Error(_), Ok(tpl)) = (rebalance, consumer.assignment()) {
            *self.before_error.lock() = partitions(&tpl);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Assign(tpl) => ConsumerEvent::Assigned(partitions(tpl)),
            Rebalance::Revoke(tpl) => {
                if consumer.assignment_lost() {
                    tracing::warn!(
                        partitions = tpl.count(),
                        "Kafka group membership was lost (session expired or fenced); its partitions are revoked and the consumer joins again."
                    );
                }
                ConsumerEvent::Revoked(partitions(tpl))
            }
            Rebalance::Error(e) => {
                // rdkafka has unassigned this member's partitions: report them as revoked, so
                // that nothing keeps running on partitions it may no longer own.
                tracing::warn!(error = %e, "Kafka consumer rebalance failed; the group retries.");
                ConsumerEvent::Revoked(std::mem::take(&mut *self.before_error.lock()))
            }
        };
        // Cooperative rebalancing often hands out nothing new in a round: not an event.
        if !matches!(&event, ConsumerEvent::Assigned(tps) | ConsumerEvent::Revoked(tps) if tps.is_empty()) {
            self.events.lock().push_back(event);
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect()
}
