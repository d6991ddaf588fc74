//! The embedded producer: `send` stores the record (in its segment file first, in a persistent
//! queue) and answers with its partition and offset before it returns, so the [`Delivery`] is
//! always complete. A partition that cannot take the record within its bound, even after its
//! cleanup ran, refuses it with [`QueueError::Full`] (counted in
//! `queue_embedded_refused_records_total`, logged once until records are accepted again):
//! nothing stored is dropped to make room. A full disk refuses it the same way (`space`), after
//! the cleanup of every partition had a chance to free room.
//! A compacted partition whose files filled up with superseded records is rewritten after the
//! append that tipped it (`PartitionLog::compaction_due`).
//! Deliberately not here: how a partition keeps records (`log`, `segments`), what goes when
//! (`retention`, `reclaim`).

use std::sync::Arc;

use super::{disk_error, space, waiters, Inner, State};
use crate::{
    now_ms,
    queue::{partition_for_key, Delivery, Partitioning, Producer, QueueError, QueueResult, TopicPartition},
};

/// The producer behind [`crate::queue::Queue::producer`].
pub(super) struct EmbeddedProducer {
    inner: Arc<Inner>,
}

impl EmbeddedProducer {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        EmbeddedProducer { inner }
    }

    fn append(
        &self,
        topic: &str,
        partitioning: Partitioning,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> QueueResult<(i32, i64)> {
        let limits = self.inner.limits;
        let mut state = self.inner.state.lock();
        let partitions =
            state.topics.get(topic).ok_or_else(|| QueueError::UnknownTopic(topic.to_string()))?.partitions.len();
        let partition = match (partitioning, key) {
            (Partitioning::Fixed(p), _) => p,
            (Partitioning::ByKey, Some(k)) => partition_for_key(k, partitions as i32),
            (Partitioning::ByKey, None) => 0,
        };
        let tp = TopicPartition::new(topic, partition);
        let now = now_ms();
        if let Err(full) = make_room(&mut state, &tp, key, value, limits.max_partition_bytes as u64, now) {
            metrics::counter!("queue_embedded_refused_records_total").increment(1);
            let (log, _) = state.partition_mut(&tp)?;
            let started = !std::mem::replace(&mut log.refusing, true);
            drop(state);
            if started {
                tracing::warn!(
                    topic,
                    partition,
                    error = %full,
                    "Embedded queue partition is full; records are refused until its consumers commit."
                );
            }
            return Err(full);
        }
        // Written before the record is visible or acknowledged; a failed write stores nothing.
        let (offset, rolled) = match append_with_room(&mut state, &tp, key, value, now)? {
            Ok(appended) => appended,
            Err(e) if space::is_full(&e) => {
                metrics::counter!("queue_embedded_refused_records_total").increment(1);
                return Err(state.disk_full("store a record", &e));
            }
            Err(e) => return Err(disk_error("store a record", e)),
        };
        state.disk_has_room();
        let (log, _) = state.partition_mut(&tp)?;
        let ended = std::mem::take(&mut log.refusing);
        if log.compaction_due() {
            // The record is stored either way: a failed rewrite keeps the old files.
            if let Err(e) = log.compact(now) {
                metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                tracing::warn!(topic, partition, error = %e, "Cannot compact a compacted queue partition; its old files are kept.");
            }
        }
        if rolled {
            // A new segment: a good moment to let old ones go by time.
            state.reclaim(&tp, now, false);
        }
        // A queue kept in memory only has nothing to evict to.
        if state.store.is_some() && state.cache.bytes() > limits.cache_max_bytes {
            state.enforce_cache_budget(limits.cache_max_bytes);
        }
        state.wake_readers_of(topic);
        let fired = state.take_fired();
        drop(state);
        waiters::call(fired);
        if ended {
            tracing::info!(topic, partition, "Embedded queue partition has room again; records are accepted.");
        }
        Ok((partition, offset))
    }
}

/// Appends the record to its partition. When the disk is full, consumed records may free
/// room: every partition is cleaned up as for a waiting producer, and the write is tried once
/// more. The outer error is the queue's (unknown partition), the inner one the disk's.
fn append_with_room(
    state: &mut State,
    tp: &TopicPartition,
    key: Option<&[u8]>,
    value: &[u8],
    now_ms: i64,
) -> QueueResult<std::io::Result<(i64, bool)>> {
    match state.partition_mut(tp)?.0.append(key, value, now_ms) {
        Err(e) if space::is_full(&e) => {
            state.reclaim_all(now_ms, true);
            Ok(state.partition_mut(tp)?.0.append(key, value, now_ms))
        }
        appended => Ok(appended),
    }
}

/// Checks that the partition can take the record within `max`, running its cleanup first when
/// it cannot; the error says why not.
fn make_room(
    state: &mut State,
    tp: &TopicPartition,
    key: Option<&[u8]>,
    value: &[u8],
    max: u64,
    now_ms: i64,
) -> QueueResult<()> {
    let fits = |state: &mut State| -> QueueResult<(bool, u64, u64)> {
        let (log, _) = state.partition_mut(tp)?;
        let (stored, needed) = (log.stored_bytes(), log.room_needed(key, value));
        Ok((stored + needed <= max, stored, needed))
    };
    if fits(state)?.0 {
        return Ok(());
    }
    state.reclaim(tp, now_ms, true);
    match fits(state)? {
        (true, ..) => Ok(()),
        (false, _, needed) if needed > max => {
            Err(QueueError::Full(format!("a record of {needed} bytes exceeds the {max}-byte bound of {tp}")))
        }
        (false, stored, _) => Err(QueueError::Full(format!(
            "{tp} holds {stored} bytes not yet committed by its consumers or removed by retention (bound {max})"
        ))),
    }
}

impl Producer for EmbeddedProducer {
    fn send(&self, topic: &str, partitioning: Partitioning, key: Option<&[u8]>, value: &[u8]) -> Delivery {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(self.append(topic, partitioning, key, value));
        rx
    }
}
