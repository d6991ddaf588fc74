//! The in-process queue backend of the all-in-one mode.
//!
//! Semantics kept from Kafka because the executor depends on them: partitioned topics with
//! keyed records and increasing offsets; compacted topics keep the latest record per key (older
//! ones leave offset gaps, as in Kafka); consumer groups spread partitions over their members and
//! move them when members join or leave (each member sees `Revoked` then `Assigned`); committed
//! offsets per group; manual assignment.
//!
//! Memory is bounded: a partition keeps at most `max_partition_bytes` of record data. Past that
//! the oldest records are dropped, as Kafka's `retention.bytes` would, with an ERROR log and the
//! `queue_embedded_dropped_records_total` counter (nothing else in the embedded mode drops data).
//!
//! Persistence: [`EmbeddedQueue::new`] keeps everything in memory only (tests, examples).
//! [`EmbeddedQueue::open`] also keeps the queue in a directory (the all-in-one process uses
//! `TB_QUEUE_IN_MEMORY_DIR`, default `data/queue`), so that a restarted process sees the same
//! topics, the same records at the same offsets and the same committed offsets. Every record is
//! written to its partition's active segment file (one write, under the state lock) before
//! `send` answers, so a stored record survives the death of the process, SIGKILL included; files
//! are synced to the disk once a second by a background thread, so a power loss can lose about
//! the last second of records and commits (as Kafka's default does without replication).
//! Segments are deleted once the partition's bound has dropped all their records, so disk use
//! per partition stays about the memory bound; compacted topics are compacted on disk at start.
//! Consumer group membership is not stored (members are live consumers), committed offsets are.
//! A record cut short by a crash is dropped at start with a WARN; damage elsewhere keeps what
//! was read before it, logs an ERROR naming the file and position, and the start goes on. The
//! file format is in `embedded/store.rs`. Records are read from memory, never from the files.
//!
//! Keys are spread over partitions with Kafka's murmur2 partitioner, which, unlike the standard
//! library's hasher, is fixed by definition: a key stays in its partition across restarts and
//! toolchain upgrades.

mod store;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use self::store::{PartitionStore, Store};
use super::{
    partition_for_key, Consumer, ConsumerEvent, Delivery, Partitioning, Producer, Queue, QueueError, QueueResult,
    Record, TopicPartition, TopicSpec,
};

/// Default bound of one partition's record data: 256 MiB.
pub const DEFAULT_MAX_PARTITION_BYTES: usize = 256 * 1024 * 1024;

/// The embedded queue. Cloning shares the same queue.
#[derive(Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedQueue")
    }
}

struct Inner {
    state: Mutex<State>,
    max_partition_bytes: usize,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, TopicState>,
    groups: HashMap<String, GroupState>,
    next_member: u64,
    /// Consumers blocked in `poll`, by consumer key. A record wakes only the consumers of its
    /// topic (with many idle consumers, waking all of them for every record cost more CPU than
    /// storing the record); other changes (topics, groups, assignments) wake every one.
    sleepers: HashMap<u64, Sleeper>,
    /// The files of a persistent queue ([`EmbeddedQueue::open`]).
    store: Option<Store>,
}

/// A consumer waiting in `poll`: the topics it reads and its own condition variable (always
/// used with the state mutex).
struct Sleeper {
    topics: Arc<[String]>,
    wake: Arc<Condvar>,
}

struct TopicState {
    compacted: bool,
    partitions: Vec<PartitionLog>,
}

#[derive(Default)]
struct PartitionLog {
    base: i64,
    entries: VecDeque<Option<(Option<Bytes>, Bytes)>>,
    bytes: usize,
    latest_by_key: HashMap<Bytes, i64>,
    /// The partition's segments in a persistent queue.
    disk: Option<PartitionStore>,
}

#[derive(Default)]
struct GroupState {
    committed: HashMap<TopicPartition, i64>,
    members: BTreeMap<u64, Member>,
}

struct Member {
    topics: Vec<String>,
    assigned: Vec<TopicPartition>,
    pending: VecDeque<ConsumerEvent>,
}

impl EmbeddedQueue {
    /// A new, empty queue with the default partition bound, in memory only.
    pub fn new() -> Self {
        Self::with_max_partition_bytes(DEFAULT_MAX_PARTITION_BYTES)
    }

    /// A new, empty queue whose partitions keep at most `max_partition_bytes` of record data,
    /// in memory only.
    pub fn with_max_partition_bytes(max_partition_bytes: usize) -> Self {
        EmbeddedQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                max_partition_bytes: max_partition_bytes.max(1),
            }),
        }
    }

    /// A persistent queue kept in `dir` (created when missing), whose partitions keep at most
    /// `max_partition_bytes` of record data: what the directory holds is loaded, and every change
    /// is written to it (see the module documentation).
    ///
    /// Fails when the directory cannot be used: it cannot be created or read, or another process
    /// holds it (one process per directory, enforced with a lock file). Damaged contents do not
    /// fail it: they are cut off or skipped with a log line.
    pub fn open(dir: &Path, max_partition_bytes: usize) -> QueueResult<Self> {
        let max = max_partition_bytes.max(1);
        let started = Instant::now();
        let cannot =
            |e: std::io::Error| QueueError::Backend(format!("cannot open the queue directory {}: {e}", dir.display()));
        let (store, loaded) = Store::open(dir, store::roll_bytes(max)).map_err(cannot)?;
        let mut state = State { store: Some(store), ..State::default() };
        let mut records = 0;
        for topic in loaded.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for loaded in topic.partitions {
                let log = PartitionLog::restore(loaded, topic.compacted, max).map_err(cannot)?;
                records += log.entries.iter().flatten().count();
                partitions.push(log);
            }
            state.topics.insert(topic.name, TopicState { compacted: topic.compacted, partitions });
        }
        let commits = loaded.commits.len();
        for (group, tp, offset) in loaded.commits {
            state.groups.entry(group).or_default().committed.insert(tp, offset);
        }
        tracing::info!(
            dir = %dir.display(),
            topics = state.topics.len(),
            records,
            committed_offsets = commits,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Embedded queue loaded from its directory."
        );
        Ok(EmbeddedQueue { inner: Arc::new(Inner { state: Mutex::new(state), max_partition_bytes: max }) })
    }
}

/// The queue error of a failed disk operation (also logged and counted: the disk needs a look).
fn disk_error(what: &str, e: std::io::Error) -> QueueError {
    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
    tracing::error!(error = %e, "The embedded queue cannot {what} on disk.");
    QueueError::Backend(format!("cannot {what} on disk: {e}"))
}

impl Default for EmbeddedQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl PartitionLog {
    /// Rebuilds a partition from its files: the records are replayed as appends (so a compacted
    /// partition keeps the latest per key, at the same offsets), the offset the next record gets
    /// is the stored one, the bound applies, and empty slots before the first record go. Then
    /// the files are brought in line: a compacted partition is rewritten as one segment (when
    /// that removes anything), segments below the oldest kept offset are deleted.
    fn restore(loaded: store::LoadedPartition, compacted: bool, max: usize) -> std::io::Result<PartitionLog> {
        let store::LoadedPartition { first_offset, next_offset, records, single_clean_segment, store: mut disk } =
            loaded;
        let read = records.len();
        let mut log = PartitionLog { base: first_offset, ..PartitionLog::default() };
        for r in records {
            while log.next_offset() < r.offset {
                log.entries.push_back(None);
            }
            log.append(r.key, r.value, compacted);
        }
        if log.entries.is_empty() {
            log.base = next_offset;
        }
        while log.next_offset() < next_offset {
            log.entries.push_back(None);
        }
        log.enforce_bound(max);
        while let Some(None) = log.entries.front() {
            log.entries.pop_front();
            log.base += 1;
        }
        if compacted {
            let live = log.entries.iter().flatten().count();
            if !single_clean_segment || live < read {
                let base = log.base;
                let live = log
                    .entries
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| e.as_ref().map(|(k, v)| (base + i as i64, k.as_deref(), v.as_ref())));
                disk.rewrite(base, live)?;
            }
        } else {
            disk.release_below(log.base);
        }
        log.disk = Some(disk);
        Ok(log)
    }

    fn next_offset(&self) -> i64 {
        self.base + self.entries.len() as i64
    }

    fn append(&mut self, key: Option<Bytes>, value: Bytes, compacted: bool) -> i64 {
        let offset = self.next_offset();
        if compacted {
            if let Some(k) = &key {
                if let Some(old) = self.latest_by_key.insert(k.clone(), offset) {
                    self.remove(old);
                }
            }
        }
        self.bytes += value.len() + key.as_ref().map_or(0, Bytes::len);
        self.entries.push_back(Some((key, value)));
        offset
    }

    fn remove(&mut self, offset: i64) {
        if let Some(slot) = offset.checked_sub(self.base).and_then(|i| self.entries.get_mut(i as usize)) {
            if let Some((k, v)) = slot.take() {
                self.bytes -= v.len() + k.as_ref().map_or(0, Bytes::len);
            }
        }
    }

    /// Drops the oldest entries until the data fits in `max` bytes; returns how many records went.
    fn enforce_bound(&mut self, max: usize) -> usize {
        let mut dropped = 0;
        while self.bytes > max {
            match self.entries.pop_front() {
                Some(Some((k, v))) => {
                    self.bytes -= v.len() + k.as_ref().map_or(0, Bytes::len);
                    if let Some(k) = k {
                        if self.latest_by_key.get(&k) == Some(&self.base) {
                            self.latest_by_key.remove(&k);
                        }
                    }
                    dropped += 1;
                }
                Some(None) => {}
                None => break,
            }
            self.base += 1;
        }
        dropped
    }

    fn read(&self, tp: &TopicPartition, from: i64, max: usize, out: &mut Vec<Record>) -> i64 {
        let mut position = from.max(self.base);
        while position < self.next_offset() && out.len() < max {
            if let Some(Some((key, value))) = self.entries.get((position - self.base) as usize) {
                out.push(Record { tp: tp.clone(), offset: position, key: key.clone(), value: value.clone() });
            }
            position += 1;
        }
        position
    }
}

impl State {
    /// Wakes every waiting consumer (a change of topics, groups or assignments).
    fn wake_all(&self) {
        for sleeper in self.sleepers.values() {
            sleeper.wake.notify_one();
        }
    }

    /// Wakes the waiting consumers that read `topic` (a record was appended).
    fn wake_readers_of(&self, topic: &str) {
        for sleeper in self.sleepers.values() {
            if sleeper.topics.iter().any(|t| t == topic) {
                sleeper.wake.notify_one();
            }
        }
    }

    fn next_key(&mut self) -> u64 {
        self.next_member += 1;
        self.next_member
    }

    fn partition_mut(&mut self, tp: &TopicPartition) -> QueueResult<(&mut PartitionLog, bool)> {
        let topic = self.topics.get_mut(&tp.topic).ok_or_else(|| QueueError::UnknownTopic(tp.topic.clone()))?;
        let compacted = topic.compacted;
        let log = usize::try_from(tp.partition)
            .ok()
            .and_then(|p| topic.partitions.get_mut(p))
            .ok_or_else(|| QueueError::UnknownPartition(tp.topic.clone(), tp.partition))?;
        Ok((log, compacted))
    }

    fn partition(&self, tp: &TopicPartition) -> Option<&PartitionLog> {
        self.topics.get(&tp.topic).and_then(|t| usize::try_from(tp.partition).ok().and_then(|p| t.partitions.get(p)))
    }

    /// Recomputes a group's assignment: partitions of each topic are dealt round-robin over the
    /// members subscribed to it (ordered by join order); members get the difference as events.
    fn rebalance(&mut self, group: &str) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let mut wanted: BTreeMap<u64, Vec<TopicPartition>> = g.members.keys().map(|id| (*id, Vec::new())).collect();
        let mut topics: Vec<&String> = g.members.values().flat_map(|m| m.topics.iter()).collect();
        topics.sort();
        topics.dedup();
        for topic in topics {
            let Some(t) = self.topics.get(topic) else {
                continue;
            };
            let subscribers: Vec<u64> =
                g.members.iter().filter(|(_, m)| m.topics.contains(topic)).map(|(id, _)| *id).collect();
            for p in 0..t.partitions.len() {
                let member = subscribers[p % subscribers.len()];
                wanted.entry(member).or_default().push(TopicPartition::new(topic.clone(), p as i32));
            }
        }
        for (id, member) in g.members.iter_mut() {
            let new = wanted.remove(id).unwrap_or_default();
            let revoked: Vec<_> = member.assigned.iter().filter(|tp| !new.contains(tp)).cloned().collect();
            let assigned: Vec<_> = new.iter().filter(|tp| !member.assigned.contains(tp)).cloned().collect();
            if !revoked.is_empty() {
                member.pending.push_back(ConsumerEvent::Revoked(revoked));
            }
            if !assigned.is_empty() {
                member.pending.push_back(ConsumerEvent::Assigned(assigned));
            }
            member.assigned = new;
        }
    }

    fn rebalance_groups_of(&mut self, topic: &str) {
        let groups: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.members.values().any(|m| m.topics.iter().any(|t| t == topic)))
            .map(|(name, _)| name.clone())
            .collect();
        for g in groups {
            self.rebalance(&g);
        }
    }
}

impl Queue for EmbeddedQueue {
    fn producer(&self) -> Arc<dyn Producer> {
        Arc::new(EmbeddedProducer { inner: self.inner.clone() })
    }

    fn create_topic(&self, spec: &TopicSpec) -> QueueResult<()> {
        let mut state = self.inner.state.lock();
        if state.topics.contains_key(&spec.name) {
            return Ok(());
        }
        let (count, compacted) = (spec.partitions.max(1), spec.is_compacted());
        let disks: Vec<Option<PartitionStore>> = match state.store.as_mut() {
            Some(store) => store
                .create_topic(&spec.name, count, compacted)
                .map_err(|e| disk_error(&format!("create topic {}", spec.name), e))?
                .into_iter()
                .map(Some)
                .collect(),
            None => (0..count).map(|_| None).collect(),
        };
        let partitions = disks.into_iter().map(|disk| PartitionLog { disk, ..PartitionLog::default() }).collect();
        state.topics.insert(spec.name.clone(), TopicState { compacted, partitions });
        state.rebalance_groups_of(&spec.name);
        state.wake_all();
        Ok(())
    }

    fn delete_topic(&self, name: &str) -> QueueResult<()> {
        let mut state = self.inner.state.lock();
        if state.topics.contains_key(name) {
            if let Some(store) = state.store.as_mut() {
                // A failure after the committed offsets were deleted leaves a topic that is read
                // again from its start after a restart: duplicates, no loss.
                store.delete_topic(name).map_err(|e| disk_error(&format!("delete topic {name}"), e))?;
            }
            state.topics.remove(name);
            state.rebalance_groups_of(name);
            for g in state.groups.values_mut() {
                g.committed.retain(|tp, _| tp.topic != name);
            }
        }
        state.wake_all();
        Ok(())
    }

    fn topic_exists(&self, name: &str) -> QueueResult<bool> {
        Ok(self.inner.state.lock().topics.contains_key(name))
    }

    fn delete_group(&self, group: &str) -> QueueResult<()> {
        let mut state = self.inner.state.lock();
        let State { groups, store, .. } = &mut *state;
        if let Some(g) = groups.get_mut(group) {
            if let (Some(store), false) = (store.as_mut(), g.committed.is_empty()) {
                store.delete_group(group).map_err(|e| disk_error(&format!("delete group {group}"), e))?;
            }
            g.committed.clear();
            if g.members.is_empty() {
                groups.remove(group);
            }
        }
        Ok(())
    }

    fn subscribe(&self, group: &str, _client_id: &str, topics: &[String]) -> QueueResult<Box<dyn Consumer>> {
        let mut state = self.inner.state.lock();
        let id = state.next_key();
        let member = Member { topics: topics.to_vec(), assigned: Vec::new(), pending: VecDeque::new() };
        state.groups.entry(group.to_string()).or_default().members.insert(id, member);
        state.rebalance(group);
        state.wake_all();
        Ok(Box::new(EmbeddedConsumer::new(self.inner.clone(), group, id, true, topics.into(), Vec::new())))
    }

    fn assign(&self, group: &str, _client_id: &str, tp: &TopicPartition) -> QueueResult<Box<dyn Consumer>> {
        let mut state = self.inner.state.lock();
        state.groups.entry(group.to_string()).or_default();
        let key = state.next_key();
        drop(state);
        let topics: Arc<[String]> = Arc::from([tp.topic.clone()]);
        Ok(Box::new(EmbeddedConsumer::new(self.inner.clone(), group, key, false, topics, vec![tp.clone()])))
    }
}

struct EmbeddedProducer {
    inner: Arc<Inner>,
}

impl Producer for EmbeddedProducer {
    fn send(&self, topic: &str, partitioning: Partitioning, key: Option<&[u8]>, value: &[u8]) -> Delivery {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(self.append(topic, partitioning, key, value));
        rx
    }
}

impl EmbeddedProducer {
    fn append(
        &self,
        topic: &str,
        partitioning: Partitioning,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> QueueResult<(i32, i64)> {
        let mut state = self.inner.state.lock();
        let partitions =
            state.topics.get(topic).ok_or_else(|| QueueError::UnknownTopic(topic.to_string()))?.partitions.len();
        let partition = match (partitioning, key) {
            (Partitioning::Fixed(p), _) => p,
            (Partitioning::ByKey, Some(k)) => partition_for_key(k, partitions as i32),
            (Partitioning::ByKey, None) => 0,
        };
        let tp = TopicPartition::new(topic, partition);
        let (log, compacted) = state.partition_mut(&tp)?;
        let next = log.next_offset();
        if let Some(disk) = log.disk.as_mut() {
            // Written before the record is visible or acknowledged; a failed write stores nothing.
            disk.append(next, key, value).map_err(|e| disk_error("store a record", e))?;
        }
        let offset = log.append(key.map(Bytes::copy_from_slice), Bytes::copy_from_slice(value), compacted);
        let dropped = log.enforce_bound(self.inner.max_partition_bytes);
        let base = log.base;
        if let Some(disk) = log.disk.as_mut() {
            disk.release_below(base);
        }
        state.wake_readers_of(topic);
        drop(state);
        if dropped > 0 {
            metrics::counter!("queue_embedded_dropped_records_total").increment(dropped as u64);
            tracing::error!(
                topic,
                partition,
                dropped,
                "Embedded queue partition is full; oldest records were dropped."
            );
        }
        Ok((partition, offset))
    }
}

struct EmbeddedConsumer {
    inner: Arc<Inner>,
    group: String,
    /// This consumer's key among the sleepers (and, for a group member, in the group).
    key: u64,
    member: Option<u64>,
    /// The topics whose records wake this consumer.
    topics: Arc<[String]>,
    wake: Arc<Condvar>,
    assigned: Vec<TopicPartition>,
    positions: HashMap<TopicPartition, i64>,
    next_start: usize,
}

impl EmbeddedConsumer {
    fn new(
        inner: Arc<Inner>,
        group: &str,
        key: u64,
        is_member: bool,
        topics: Arc<[String]>,
        assigned: Vec<TopicPartition>,
    ) -> Self {
        EmbeddedConsumer {
            inner,
            group: group.to_string(),
            key,
            member: is_member.then_some(key),
            topics,
            wake: Arc::new(Condvar::new()),
            assigned,
            positions: HashMap::new(),
            next_start: 0,
        }
    }

    fn start_position(state: &State, group: &str, tp: &TopicPartition) -> i64 {
        let committed = state.groups.get(group).and_then(|g| g.committed.get(tp).copied());
        committed.unwrap_or_else(|| state.partition(tp).map_or(0, |p| p.base))
    }

    /// Takes pending partition changes of a group member and applies them locally.
    fn take_events(&mut self, state: &mut State) -> Vec<ConsumerEvent> {
        let Some(id) = self.member else {
            return Vec::new();
        };
        let Some(member) = state.groups.get_mut(&self.group).and_then(|g| g.members.get_mut(&id)) else {
            return Vec::new();
        };
        let events: Vec<ConsumerEvent> = member.pending.drain(..).collect();
        for event in &events {
            match event {
                ConsumerEvent::Revoked(tps) => {
                    self.assigned.retain(|tp| !tps.contains(tp));
                    for tp in tps {
                        self.positions.remove(tp);
                    }
                }
                ConsumerEvent::Assigned(tps) => self.assigned.extend(tps.iter().cloned()),
                ConsumerEvent::Records(_) => {}
            }
        }
        events
    }

    fn read(&mut self, state: &State, max: usize) -> Vec<Record> {
        let mut out = Vec::new();
        let n = self.assigned.len();
        for i in 0..n {
            let tp = &self.assigned[(self.next_start + i) % n];
            let Some(log) = state.partition(tp) else {
                continue;
            };
            let from = match self.positions.get(tp) {
                Some(p) => *p,
                None => Self::start_position(state, &self.group, tp),
            };
            let next = log.read(tp, from, max, &mut out);
            self.positions.insert(tp.clone(), next);
            if out.len() >= max {
                break;
            }
        }
        self.next_start = self.next_start.wrapping_add(1);
        out
    }
}

impl Consumer for EmbeddedConsumer {
    fn poll(&mut self, timeout: Duration, max_records: usize) -> QueueResult<Vec<ConsumerEvent>> {
        let deadline = Instant::now() + timeout;
        let inner = self.inner.clone();
        let mut state = inner.state.lock();
        loop {
            let events = self.take_events(&mut state);
            if !events.is_empty() {
                return Ok(events);
            }
            let records = self.read(&state, max_records.max(1));
            if !records.is_empty() {
                return Ok(vec![ConsumerEvent::Records(records)]);
            }
            state.sleepers.insert(self.key, Sleeper { topics: self.topics.clone(), wake: self.wake.clone() });
            let timed_out = self.wake.wait_until(&mut state, deadline).timed_out();
            state.sleepers.remove(&self.key);
            if timed_out {
                return Ok(Vec::new());
            }
        }
    }

    fn commit(&mut self, tp: &TopicPartition, next_offset: i64) -> QueueResult<()> {
        if !self.assigned.contains(tp) {
            return Err(QueueError::NotAssigned(tp.topic.clone(), tp.partition));
        }
        let mut state = self.inner.state.lock();
        let State { groups, store, .. } = &mut *state;
        let committed = &mut groups.entry(self.group.clone()).or_default().committed;
        if committed.get(tp) == Some(&next_offset) {
            return Ok(());
        }
        if let Some(store) = store.as_mut() {
            store.commit(&self.group, tp, next_offset).map_err(|e| disk_error("store a committed offset", e))?;
        }
        committed.insert(tp.clone(), next_offset);
        if let Some(store) = store.as_mut().filter(|s| s.groups_log_is_large()) {
            let all = groups.iter().flat_map(|(g, s)| s.committed.iter().map(move |(tp, o)| (g.as_str(), tp, *o)));
            if let Err(e) = store.rewrite_groups(all) {
                metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                tracing::error!(error = %e, "Cannot rewrite the committed offsets file; it keeps growing.");
            }
        }
        Ok(())
    }

    fn committed(&mut self, tp: &TopicPartition) -> QueueResult<Option<i64>> {
        Ok(self.inner.state.lock().groups.get(&self.group).and_then(|g| g.committed.get(tp).copied()))
    }

    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> QueueResult<()> {
        if !self.assigned.contains(tp) {
            return Err(QueueError::NotAssigned(tp.topic.clone(), tp.partition));
        }
        self.positions.insert(tp.clone(), offset);
        Ok(())
    }

    fn watermarks(&mut self, tp: &TopicPartition) -> QueueResult<(i64, i64)> {
        let state = self.inner.state.lock();
        let topic = state.topics.get(&tp.topic).ok_or_else(|| QueueError::UnknownTopic(tp.topic.clone()))?;
        let log = usize::try_from(tp.partition)
            .ok()
            .and_then(|p| topic.partitions.get(p))
            .ok_or_else(|| QueueError::UnknownPartition(tp.topic.clone(), tp.partition))?;
        Ok((log.base, log.next_offset()))
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        if let Some(id) = self.member {
            let mut state = self.inner.state.lock();
            if let Some(g) = state.groups.get_mut(&self.group) {
                g.members.remove(&id);
            }
            state.rebalance(&self.group);
            state.wake_all();
        }
    }
}
