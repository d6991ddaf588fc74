//! The in-process queue backend of the all-in-one mode.
//!
//! Semantics kept from Kafka because the executor depends on them: partitioned topics with
//! keyed records and increasing offsets; compacted topics keep the latest record per key (older
//! ones leave offset gaps, as in Kafka); consumer groups spread partitions over their members and
//! move them when members join or leave (each member sees `Revoked` then `Assigned`); committed
//! offsets per group; manual assignment.
//!
//! Storage (the operator's view is in `core/README.md`, "The embedded queue"):
//! [`EmbeddedQueue::new`] keeps everything in memory only (tests, examples);
//! [`EmbeddedQueue::open`] keeps the queue in a directory, so that a restarted process sees the
//! same topics, records, offsets and committed offsets. A record is written to its partition's
//! active segment file (one write, under the state lock) before `send` answers, so it survives
//! the death of the process; files are synced to the disk once a second (`sync`). Memory holds a
//! cache of the newest records, all partitions within [`Limits::cache_max_bytes`]; a consumer
//! behind it reads from the files. Compacted topics are held in memory whole.
//!
//! Disk and memory are given back as records are consumed: a segment goes once every group that
//! committed offsets on its partition committed past it, or by the topic's `retention.ms` and
//! `retention.bytes`; a cached record leaves memory once every such group committed it. A
//! partition stores at most [`Limits::max_partition_bytes`]: past that `send` fails with
//! [`QueueError::Full`] (nothing stored is dropped to make room).
//!
//! A full disk (`space`) does not stop the queue: it opens and serves what it stored, `send`
//! fails with [`QueueError::Full`], commits that cannot be written are kept in memory (so that
//! consumed records still free their segments), and writes succeed again once there is room.
//!
//! Keys are spread over partitions with Kafka's murmur2 partitioner, which, unlike the standard
//! library's hasher, is fixed by definition: a key stays in its partition across restarts and
//! toolchain upgrades.
//!
//! Map. This file: [`EmbeddedQueue`], the state it shares under one lock, and its [`Queue`]
//! impl (topics, groups, new consumers). Then, in `embedded/`:
//! * `producer`, `consumer`: the two halves of the [`Queue`] interface, as in `kafka/`.
//! * `groups`: consumer groups: assignment (rebalance), committed offsets, `groups.log`.
//! * `log`: one partition: its offsets and the records it holds in memory.
//! * Giving back: `retention` (which segments go, pure), `reclaim` (applying it, the cache).
//! * The persistent part: `store` (the directory, its layout documented there), `load`
//!   (reading it at start), `segments` (a partition's segments and files), `read` (reading
//!   records from the files), `layout` (names and meta text), `frame` (the byte format, pure),
//!   `sync` (syncing to the disk), `space` (a full disk).

mod consumer;
mod frame;
mod groups;
mod layout;
mod load;
mod log;
mod producer;
mod read;
mod reclaim;
mod retention;
mod segments;
mod space;
mod store;
mod sync;
#[cfg(test)]
mod tests;
mod waiters;

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::Arc,
    time::Instant,
};

use parking_lot::Mutex;

use self::{
    consumer::{EmbeddedConsumer, Sleeper},
    groups::{GroupState, Member},
    layout::TopicMeta,
    log::{Cache, PartitionLog},
    producer::EmbeddedProducer,
    retention::Retention,
    segments::PartitionStore,
    store::Store,
    waiters::Waiters,
};
use super::{Consumer, Producer, Queue, QueueError, QueueResult, TopicPartition, TopicSpec};
use crate::now_ms;

/// Default bound of one partition: 256 MiB.
pub const DEFAULT_MAX_PARTITION_BYTES: usize = 256 * 1024 * 1024;

/// Default budget of the records a persistent queue keeps in memory: 64 MiB.
pub const DEFAULT_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The bounds of an embedded queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// What one partition may store (record frames: key, value and 20 bytes each): past it,
    /// `send` fails with [`QueueError::Full`] until consumers commit or retention deletes.
    pub max_partition_bytes: usize,
    /// The record data (keys and values) a persistent queue keeps in memory, all partitions
    /// together; older records are read from the files. Compacted topics are held in memory
    /// whole, and a queue kept in memory only has nothing to evict to: neither is bounded by it.
    pub cache_max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_partition_bytes: DEFAULT_MAX_PARTITION_BYTES, cache_max_bytes: DEFAULT_CACHE_MAX_BYTES }
    }
}

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

/// What the queue's clones, producers and consumers share.
struct Inner {
    state: Mutex<State>,
    limits: Limits,
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
    /// Consumers that are not polling but asked to be called back (`waiters`).
    waiters: Waiters,
    /// The files of a persistent queue ([`EmbeddedQueue::open`]).
    store: Option<Store>,
    /// The record bytes every partition holds in memory.
    cache: Cache,
    /// A record could not be stored for lack of disk space, and none has been since (`space`).
    disk_full: bool,
}

struct TopicState {
    compacted: bool,
    retention: Retention,
    partitions: Vec<PartitionLog>,
}

impl EmbeddedQueue {
    /// A new, empty queue with the default partition bound, in memory only.
    pub fn new() -> Self {
        Self::with_max_partition_bytes(DEFAULT_MAX_PARTITION_BYTES)
    }

    /// A new, empty queue whose partitions store at most `max_partition_bytes`, in memory only.
    pub fn with_max_partition_bytes(max_partition_bytes: usize) -> Self {
        let limits = Limits { max_partition_bytes: max_partition_bytes.max(1), ..Limits::default() };
        EmbeddedQueue { inner: Arc::new(Inner { state: Mutex::new(State::default()), limits }) }
    }

    /// [`EmbeddedQueue::open_with`] with the default cache budget.
    pub fn open(dir: &Path, max_partition_bytes: usize) -> QueueResult<Self> {
        Self::open_with(dir, Limits { max_partition_bytes, ..Limits::default() })
    }

    /// A persistent queue kept in `dir` (created when missing), within `limits`: what the
    /// directory holds is loaded, and every change is written to it (see the module
    /// documentation).
    ///
    /// Fails when the directory cannot be used: it cannot be created or read, or another process
    /// holds it (one process per directory, enforced with a lock file). Damaged contents do not
    /// fail it: they are cut off or skipped with a log line.
    pub fn open_with(dir: &Path, limits: Limits) -> QueueResult<Self> {
        let limits = Limits { max_partition_bytes: limits.max_partition_bytes.max(1), ..limits };
        let started = Instant::now();
        let cannot =
            |e: std::io::Error| QueueError::Backend(format!("cannot open the queue directory {}: {e}", dir.display()));
        let roll_bytes = layout::roll_bytes(limits.max_partition_bytes);
        let (store, loaded) = Store::open(dir, roll_bytes).map_err(cannot)?;
        let mut state = State { store: Some(store), ..State::default() };
        let now = now_ms();
        for topic in loaded.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for loaded in topic.partitions {
                partitions
                    .push(PartitionLog::restore(loaded, topic.compacted, state.cache.clone(), now).map_err(cannot)?);
            }
            let (compacted, retention) = (topic.compacted, topic.retention);
            state.topics.insert(topic.name, TopicState { compacted, retention, partitions });
        }
        let commits = loaded.commits.len();
        for (group, tp, offset) in loaded.commits {
            // A group never commits past the end; when the files end before its offset (a power
            // loss kept a segment's deletion but not the creation of the next), offsets go on
            // from there rather than be given out again.
            if let Ok((log, _)) = state.partition_mut(&tp) {
                log.raise_next_offset(offset);
            }
            state.groups.entry(group).or_default().committed.insert(tp, offset);
        }
        state.reclaim_all(now, false);
        let stored: u64 = state.topics.values().flat_map(|t| &t.partitions).map(|p| p.stored_bytes()).sum();
        tracing::info!(
            dir = %dir.display(),
            topics = state.topics.len(),
            stored_bytes = stored,
            committed_offsets = commits,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Embedded queue loaded from its directory."
        );
        Ok(EmbeddedQueue { inner: Arc::new(Inner { state: Mutex::new(state), limits }) })
    }

    /// The record data (keys and values) the queue holds in memory now, all partitions together.
    pub fn cached_bytes(&self) -> usize {
        self.inner.state.lock().cache.bytes()
    }

    /// The bytes the partitions' in-memory indexes hold room for (one slot per record from the
    /// oldest one in memory), used or not: what is left of a burst once its records were
    /// consumed.
    pub fn index_bytes(&self) -> usize {
        let state = self.inner.state.lock();
        state.topics.values().flat_map(|t| &t.partitions).map(PartitionLog::index_bytes).sum()
    }
}

impl Default for EmbeddedQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// The queue error of a failed disk operation (also logged and counted: the disk needs a look).
fn disk_error(what: &str, e: std::io::Error) -> QueueError {
    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
    tracing::error!(error = %e, "The embedded queue cannot {what} on disk.");
    QueueError::Backend(format!("cannot {what} on disk: {e}"))
}

impl State {
    /// A key for a new consumer (and group member), unique in this queue.
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
}

impl Queue for EmbeddedQueue {
    fn producer(&self) -> Arc<dyn Producer> {
        Arc::new(EmbeddedProducer::new(self.inner.clone()))
    }

    fn create_topic(&self, spec: &TopicSpec) -> QueueResult<()> {
        let mut state = self.inner.state.lock();
        if state.topics.contains_key(&spec.name) {
            return Ok(());
        }
        let retention =
            Retention::from_map(&spec.configs).map_err(|e| QueueError::Backend(format!("topic {}: {e}", spec.name)))?;
        let meta = TopicMeta { partitions: spec.partitions.max(1), compacted: spec.is_compacted(), retention };
        let now = now_ms();
        let stores: Vec<PartitionStore> = match state.store.as_mut() {
            Some(store) => store
                .create_topic(&spec.name, &meta, now)
                .map_err(|e| disk_error(&format!("create topic {}", spec.name), e))?,
            None => {
                let roll_bytes = retention.roll_bytes(layout::roll_bytes(self.inner.limits.max_partition_bytes));
                (0..meta.partitions).map(|_| PartitionStore::in_memory(0, roll_bytes, now)).collect()
            }
        };
        let partitions =
            stores.into_iter().map(|s| PartitionLog::new(s, meta.compacted, state.cache.clone())).collect();
        state.topics.insert(spec.name.clone(), TopicState { compacted: meta.compacted, retention, partitions });
        state.rebalance_groups_of(&spec.name);
        state.wake_all(Some(&spec.name));
        let fired = state.take_fired();
        drop(state);
        waiters::call(fired);
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
        state.wake_all(Some(name));
        let fired = state.take_fired();
        drop(state);
        waiters::call(fired);
        Ok(())
    }

    fn topic_exists(&self, name: &str) -> QueueResult<bool> {
        Ok(self.inner.state.lock().topics.contains_key(name))
    }

    fn delete_group(&self, group: &str) -> QueueResult<()> {
        self.inner.state.lock().delete_group(group)
    }

    fn subscribe(&self, group: &str, _client_id: &str, topics: &[String]) -> QueueResult<Box<dyn Consumer>> {
        let mut state = self.inner.state.lock();
        let id = state.next_key();
        let member = Member { topics: topics.to_vec(), assigned: Vec::new(), pending: VecDeque::new() };
        state.groups.entry(group.to_string()).or_default().members.insert(id, member);
        state.rebalance(group);
        state.wake_all(None);
        let fired = state.take_fired();
        drop(state);
        waiters::call(fired);
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
