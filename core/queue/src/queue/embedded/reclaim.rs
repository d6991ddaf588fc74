//! Giving back disk and memory: applying a topic's cleanup ([`retention::plan`]) to a partition,
//! releasing the cached records every group committed, and keeping the records cached by all
//! partitions within the queue's budget (oldest records of the largest caches go first; they
//! stay readable from the files).
//!
//! When: a partition is cleaned up after each commit on it, when a producer finds it full, when
//! it starts a new segment, when a consumer of it finds nothing new to read, and at start; the
//! cache budget is checked after each append.
//! Deliberately not here: the decision itself (`retention`), the files (`segments`).

use super::{
    retention::{self, Partition},
    State,
};
use crate::queue::TopicPartition;

impl State {
    /// The smallest offset of `tp` committed by a group; `None` when no group committed one.
    pub(super) fn committed_floor(&self, tp: &TopicPartition) -> Option<i64> {
        self.groups.values().filter_map(|g| g.committed.get(tp).copied()).min()
    }

    /// Deletes the partition's segments its topic's cleanup lets go and releases the cached
    /// records below every group's committed offset. `pressed`: a producer waits for room, so a
    /// fully committed active segment goes whatever its size. Compacted topics are left alone.
    pub(super) fn reclaim(&mut self, tp: &TopicPartition, now_ms: i64, pressed: bool) {
        let floor = self.committed_floor(tp);
        let Some(topic) = self.topics.get_mut(&tp.topic).filter(|t| !t.compacted) else {
            return;
        };
        let retention = topic.retention;
        let Some(log) = usize::try_from(tp.partition).ok().and_then(|p| topic.partitions.get_mut(p)) else {
            return;
        };
        let facts = log.segments.facts();
        let next_offset = log.next_offset();
        let partition = Partition { segments: &facts, next_offset, committed: floor, pressed };
        let plan = retention::plan(partition, &retention, now_ms);
        let mut delete = plan.delete;
        if plan.roll && !log.segments.close_active(next_offset, now_ms) {
            delete = delete.min(facts.len() - 1);
        }
        if delete > 0 {
            let old_base = log.base;
            log.segments.delete_oldest(delete);
            let base = log.segments.first_base();
            log.forget_below(base);
            tracing::debug!(
                topic = tp.topic,
                partition = tp.partition,
                segments = delete,
                base,
                "Old queue segments deleted."
            );
            // Records some group had not committed yet: retention took them before delivery.
            if let Some(lost) = floor.map(|c| base - old_base.max(c)).filter(|n| *n > 0) {
                metrics::counter!("queue_embedded_dropped_records_total").increment(lost as u64);
                tracing::error!(
                    topic = tp.topic,
                    partition = tp.partition,
                    records = lost,
                    "Queue records deleted by the topic's retention before every consumer group committed them."
                );
            }
        }
        if let Some(floor) = floor {
            log.release_below(floor);
        }
    }

    /// [`State::reclaim`] on every partition.
    pub(super) fn reclaim_all(&mut self, now_ms: i64, pressed: bool) {
        let tps: Vec<TopicPartition> = self
            .topics
            .iter()
            .flat_map(|(name, t)| (0..t.partitions.len()).map(move |p| TopicPartition::new(name.clone(), p as i32)))
            .collect();
        for tp in &tps {
            self.reclaim(tp, now_ms, pressed);
        }
    }

    /// Evicts cached records, oldest first from the largest caches, until the records in memory
    /// take at most seven eighths of `max` (so that this runs once per eighth of the budget
    /// appended, not at every record). Records that are not a cache of the files (compacted
    /// topics, a queue kept in memory only) are never evicted.
    pub(super) fn enforce_cache_budget(&mut self, max: usize) {
        let target = max - max / 8;
        loop {
            let excess = self.cache.bytes().saturating_sub(target);
            if excess == 0 {
                return;
            }
            let largest =
                self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()).max_by_key(|l| l.evictable_bytes());
            match largest {
                Some(log) if log.evictable_bytes() > 0 => log.evict(excess),
                _ => return,
            }
        }
    }
}
