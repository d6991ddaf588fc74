//! Dead letters of an integration (ours; TBMQ drops what an integration gives up on): the
//! executor writes each given-up message as a [`DeadLetterProto`] to `<p>tbmq.ie.dlq.<id32>`
//! before it commits the pack. Here they are read for the REST API and replayed to the
//! integration's message topic, the replay group `<p>ie-dlq-replay-group-<id32>` remembering how
//! far. Everything here blocks (Kafka requests) and runs on the blocking pool (called from `topics`).

use std::time::{Duration, Instant};

use prost::Message as _;
use trib_queue::{
    queue::{wait_delivery, Consumer, ConsumerEvent, Partitioning, Queue, QueueError, QueueResult, TopicPartition},
    topics::TopicNames,
    wire::{DeadLetterProto, PublishIntegrationMsgProto, PublishMsgProto},
};
use uuid::Uuid;

/// How long reading a dead-letter topic up to the end offset seen at the start may take.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);
/// One poll's longest wait.
const POLL: Duration = Duration::from_millis(200);
/// Records per poll.
const BATCH: usize = 500;

/// One record of a dead-letter topic.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Its offset on the dead-letter topic.
    pub offset: i64,
    /// The dead letter; `None` when the record is not a `DeadLetterProto`.
    pub letter: Option<DeadLetterProto>,
    /// The original message decoded from `letter.record`; `None` when it does not decode (or
    /// carries no `PublishMsgProto`).
    pub message: Option<Original>,
}

/// The message an integration gave up on, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Original {
    /// The MQTT message.
    pub publish: PublishMsgProto,
    /// When the broker queued it for the integration (ms; `PublishIntegrationMsgProto.timestamp`).
    pub received_at: i64,
}

impl DeadLetter {
    /// Decodes a dead-letter record.
    pub fn decode(offset: i64, value: &[u8]) -> Self {
        let letter = DeadLetterProto::decode(value).ok();
        let message = letter.as_ref().and_then(|l| original(&l.record));
        DeadLetter { offset, letter, message }
    }
}

/// The original message of a dead letter's `record`, if it decodes.
fn original(record: &[u8]) -> Option<Original> {
    let msg = PublishIntegrationMsgProto::decode(record).ok()?;
    Some(Original { publish: msg.publish_msg_proto?, received_at: msg.timestamp })
}

/// Dead letters read from a topic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeadLetters {
    /// Records in the topic now (end offset minus first offset).
    pub total: i64,
    /// What the replay group committed: dead letters below it were replayed.
    pub replayed_up_to: Option<i64>,
    /// The records read, oldest first.
    pub data: Vec<DeadLetter>,
}

/// A consumer of an integration's dead-letter topic in its replay group (never a group member:
/// it only reads and commits offsets), with the topic's offsets when it was opened.
struct Reader {
    consumer: Box<dyn Consumer>,
    tp: TopicPartition,
    /// The first offset kept.
    first: i64,
    /// The offset the next record will get.
    end: i64,
}

impl Reader {
    /// `None` when the topic does not exist.
    fn open(queue: &dyn Queue, names: &TopicNames, id: Uuid, role: &str) -> QueueResult<Option<Reader>> {
        let tp = TopicPartition::new(names.dlq(id), 0);
        if !queue.topic_exists(&tp.topic)? {
            return Ok(None);
        }
        let client_id = format!("{}ie-dlq-{role}", names.prefix);
        let mut consumer = queue.assign(&names.dlq_replay_group(id), &client_id, &tp)?;
        match consumer.watermarks(&tp) {
            Ok((first, end)) => Ok(Some(Reader { consumer, tp, first, end })),
            Err(QueueError::UnknownTopic(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Up to `limit` dead letters from `from` (default and at least the topic's first offset), with
/// the topic's size and the replay group's offset. A missing topic has none.
pub fn read(
    queue: &dyn Queue,
    names: &TopicNames,
    id: Uuid,
    from: Option<i64>,
    limit: usize,
    deadline: Instant,
) -> QueueResult<DeadLetters> {
    let Some(Reader { mut consumer, tp, first, end }) = Reader::open(queue, names, id, "reader")? else {
        return Ok(DeadLetters::default());
    };
    let replayed_up_to = consumer.committed(&tp)?;
    let start = from.unwrap_or(first).max(first);
    let mut data = Vec::new();
    if start < end && limit > 0 {
        let next = read_range(consumer.as_mut(), &tp, start, end, deadline, |offset, value| {
            data.push(DeadLetter::decode(offset, value));
            Ok(data.len() < limit)
        })?;
        if next < end && data.len() < limit {
            return Err(not_read(&tp, next, end));
        }
    }
    Ok(DeadLetters { total: end - first, replayed_up_to, data })
}

/// Replays the dead letters from the replay group's offset (or the beginning) up to the end seen
/// at the start: each one whose original message decodes is produced again, its bytes unchanged,
/// to the integration's message topic (partition 0, key = its MQTT topic), in order. Once the
/// queue stored them all, the end is committed for the replay group. Returns how many were
/// produced. When the deadline passes first, what was produced is committed and the call fails,
/// so that another call goes on from there.
pub fn replay(queue: &dyn Queue, names: &TopicNames, id: Uuid, deadline: Instant) -> QueueResult<u64> {
    let Some(Reader { mut consumer, tp, first, end }) = Reader::open(queue, names, id, "replay")? else {
        return Ok(0);
    };
    let committed = consumer.committed(&tp)?;
    // An offset beyond the end belongs to an earlier topic of the same name.
    let start = match committed {
        Some(c) if c <= end => c.max(first),
        _ => first,
    };
    let mut deliveries = Vec::new();
    let mut next = start;
    if start < end {
        crate::msg_topic::ensure_msg_blocking(queue, names, id)?;
        let (producer, msg_topic) = (queue.producer(), names.msg(id));
        next = read_range(consumer.as_mut(), &tp, start, end, deadline, |_, value| {
            let letter = DeadLetterProto::decode(value).ok();
            if let Some((letter, message)) = letter.and_then(|l| original(&l.record).map(|m| (l, m))) {
                let key = message.publish.topic_name.as_bytes();
                deliveries.push(producer.send(&msg_topic, Partitioning::Fixed(0), Some(key), &letter.record));
            }
            Ok(true)
        })?;
    }
    let replayed = deliveries.len() as u64;
    for delivery in deliveries {
        wait_delivery(delivery)?;
    }
    if committed != Some(next) && (next > 0 || committed.is_some()) {
        consumer.commit(&tp, next)?;
    }
    if next < end {
        return Err(QueueError::Backend(format!(
            "{replayed} dead letters replayed, but {tp} was read only up to offset {next} of {end} within {} s; \
             call again to go on",
            READ_DEADLINE.as_secs()
        )));
    }
    Ok(replayed)
}

fn not_read(tp: &TopicPartition, next: i64, end: i64) -> QueueError {
    QueueError::Backend(format!("{tp} was read only up to offset {next} of {end} within {} s", READ_DEADLINE.as_secs()))
}

/// Reads `tp` from `start` until `end` (exclusive), handing each record to `take` until it
/// returns false, or until `deadline`. Returns the offset after the last record taken.
fn read_range(
    consumer: &mut dyn Consumer,
    tp: &TopicPartition,
    start: i64,
    end: i64,
    deadline: Instant,
    mut take: impl FnMut(i64, &[u8]) -> QueueResult<bool>,
) -> QueueResult<i64> {
    // A Kafka manual consumer applies this at its first poll.
    consumer.seek(tp, start)?;
    let mut next = start;
    while next < end {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        for event in consumer.poll(left.min(POLL), BATCH)? {
            let ConsumerEvent::Records(records) = event else { continue };
            for record in records.iter().filter(|r| r.tp == *tp) {
                if record.offset < next {
                    continue;
                }
                if record.offset >= end {
                    // Everything below the end was seen (offsets may have gaps).
                    return Ok(end);
                }
                next = record.offset + 1;
                if !take(record.offset, &record.value)? {
                    return Ok(next);
                }
            }
        }
    }
    Ok(next)
}
