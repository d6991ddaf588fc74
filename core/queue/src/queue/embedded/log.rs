//! One partition ([`PartitionLog`]): its offsets, the records it holds in memory, the latest
//! offset per key of a compacted topic, and its segments. Which records are in memory:
//!
//! * persistent, not compacted: a cache of the newest records, from `mem_base` to the end; older
//!   ones are read from the segment files. Records leave the cache once every group committed
//!   them, or when the queue's cache budget evicts them (`reclaim`).
//! * compacted (the downlink topics: one live record per integration) and every partition of a
//!   queue kept in memory only: every record, from `base`.
//!
//! The bytes in memory are counted in the queue-wide [`Cache`].
//! Deliberately not here: the files (`segments`, `read`, `load`) and what goes when
//! (`retention`, `reclaim`).

use std::{
    collections::{HashMap, VecDeque},
    io,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use bytes::Bytes;

use super::{frame, load::LoadedPartition, read::DiskRead, segments::PartitionStore, space};
use crate::queue::{Record, TopicPartition};

/// The bytes of record data (keys and values) every partition of a queue holds in memory.
#[derive(Clone, Default)]
pub(super) struct Cache(Arc<AtomicUsize>);

impl Cache {
    pub(super) fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

type Entry = Option<(Option<Bytes>, Bytes)>;

pub(super) struct PartitionLog {
    compacted: bool,
    /// The offset of the oldest record that can be read.
    pub(super) base: i64,
    /// The offset of the first entry: from here to the end, every record is in memory.
    mem_base: i64,
    /// One slot per offset from `mem_base`; `None` where a compacted record was superseded.
    entries: VecDeque<Entry>,
    /// The key and value bytes of the entries.
    mem_bytes: usize,
    /// Compacted: the frame bytes of the records kept (the partition bound counts these).
    live_frames: u64,
    latest_by_key: HashMap<Bytes, i64>,
    pub(super) segments: PartitionStore,
    cache: Cache,
    /// Appends are refused for want of room (logged once until one is accepted again).
    pub(super) refusing: bool,
    /// Compacted and persistent: the size of the files at which they are rewritten next.
    compact_at: u64,
}

/// A compacted partition's files are rewritten with the live records only once they hold at
/// least this much and twice the live records' bytes: each rewrite at least halves them, so a
/// byte appended costs at most one byte rewritten, and a small topic is never rewritten.
const COMPACT_MIN_BYTES: u64 = 1 << 20;

impl PartitionLog {
    /// An empty partition.
    pub(super) fn new(segments: PartitionStore, compacted: bool, cache: Cache) -> Self {
        let base = segments.first_base();
        PartitionLog {
            compacted,
            base,
            mem_base: base,
            entries: VecDeque::new(),
            mem_bytes: 0,
            live_frames: 0,
            latest_by_key: HashMap::new(),
            segments,
            cache,
            refusing: false,
            compact_at: COMPACT_MIN_BYTES,
        }
    }

    /// Rebuilds a partition from what `load` read. Not compacted: nothing is in memory, the
    /// records are read from the files. Compacted: the records are replayed as appends (so the
    /// latest per key is kept, at the same offsets), empty slots before the first record go, and
    /// the files are rewritten as one segment when that removes anything.
    pub(super) fn restore(loaded: LoadedPartition, compacted: bool, cache: Cache, now_ms: i64) -> io::Result<Self> {
        let LoadedPartition { next_offset, records, single_clean_segment, store } = loaded;
        let mut log = PartitionLog::new(store, compacted, cache);
        if !compacted {
            log.mem_base = next_offset;
            return Ok(log);
        }
        let read = records.len();
        for r in records {
            while log.next_offset() < r.offset {
                log.push(None);
            }
            log.keep(r.key, r.value);
        }
        if log.entries.is_empty() {
            log.base = next_offset;
            log.mem_base = next_offset;
        }
        while log.next_offset() < next_offset {
            log.push(None);
        }
        log.drop_empty_front();
        let live = log.entries.iter().flatten().count();
        if !single_clean_segment || live < read {
            match log.rewrite_live(now_ms) {
                Ok(()) => {}
                // Starting on a full disk: the files keep the superseded records too, which
                // costs room but loses nothing; a later rewrite or start compacts them.
                Err(e) if space::is_full(&e) => tracing::warn!(
                    error = %e,
                    "Cannot compact a compacted queue partition at start for lack of disk space; it is kept as it is."
                ),
                Err(e) => return Err(e),
            }
        }
        log.plan_next_compaction();
        Ok(log)
    }

    /// Rewrites the files as one segment holding the records kept in memory (the live ones).
    fn rewrite_live(&mut self, now_ms: i64) -> io::Result<()> {
        let base = self.base;
        let live = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|(k, v)| (base + i as i64, k.as_deref(), v.as_ref())));
        self.segments.rewrite(base, live, now_ms)
    }

    fn plan_next_compaction(&mut self) {
        let total = self.segments.total_bytes();
        self.compact_at = COMPACT_MIN_BYTES.max(2 * self.live_frames).max(total + total / 2);
    }

    /// Whether a compacted partition's files hold enough superseded records to be rewritten
    /// ([`PartitionLog::compact`]).
    pub(super) fn compaction_due(&self) -> bool {
        self.compacted
            && self.segments.is_persistent()
            && self.segments.total_bytes() >= self.compact_at
            && self.segments.total_bytes() >= 2 * self.live_frames
    }

    /// Compacts a compacted partition's files while the queue runs: one new segment with the
    /// latest record of each key (and the records without a key), at their offsets, written and
    /// synced beside the old segments before it replaces them (`segments::rewrite`: a crash at
    /// any point leaves either the old files or the new one). Every record it keeps is in memory,
    /// so readers are not affected; empty slots at the front go, as at start. A failure (a full
    /// disk) keeps the old files and is retried once they have grown by half.
    pub(super) fn compact(&mut self, now_ms: i64) -> io::Result<()> {
        self.drop_empty_front();
        let before = self.segments.total_bytes();
        let result = self.rewrite_live(now_ms);
        self.plan_next_compaction();
        result.map(|()| {
            tracing::debug!(before, after = self.segments.total_bytes(), "Compacted queue partition rewritten.");
        })
    }

    pub(super) fn next_offset(&self) -> i64 {
        self.mem_base + self.entries.len() as i64
    }

    /// Where the records in memory start.
    pub(super) fn mem_base(&self) -> i64 {
        self.mem_base
    }

    /// The bytes the partition bound counts: the segments, or for a compacted partition the
    /// records it keeps (its segments are compacted when superseded records fill them, see
    /// [`PartitionLog::compaction_due`]).
    pub(super) fn stored_bytes(&self) -> u64 {
        if self.compacted {
            self.live_frames
        } else {
            self.segments.total_bytes()
        }
    }

    /// How much a record would add to [`PartitionLog::stored_bytes`].
    pub(super) fn room_needed(&self, key: Option<&[u8]>, value: &[u8]) -> u64 {
        let new = frame_bytes(key, value);
        let superseded = match key.filter(|_| self.compacted).and_then(|k| self.latest_by_key.get(k)) {
            Some(old) => self.entry(*old).map_or(0, |(k, v)| frame_bytes(k.as_deref(), v)),
            None => 0,
        };
        new.saturating_sub(superseded)
    }

    /// Stores a record (in its segment file first, in a persistent queue) and keeps it in
    /// memory; returns its offset and whether a new segment was started for it. In a compacted
    /// partition it supersedes the previous record of its key.
    pub(super) fn append(&mut self, key: Option<&[u8]>, value: &[u8], now_ms: i64) -> io::Result<(i64, bool)> {
        let offset = self.next_offset();
        let rolled = self.segments.append(offset, key, value, now_ms)?;
        self.keep(key.map(Bytes::copy_from_slice), Bytes::copy_from_slice(value));
        Ok((offset, rolled))
    }

    fn keep(&mut self, key: Option<Bytes>, value: Bytes) {
        if self.compacted {
            self.live_frames += frame_bytes(key.as_deref(), &value);
            if let Some(k) = &key {
                if let Some(old) = self.latest_by_key.insert(k.clone(), self.next_offset()) {
                    self.supersede(old);
                }
            }
        }
        self.push(Some((key, value)));
    }

    fn supersede(&mut self, offset: i64) {
        let Some(i) = offset.checked_sub(self.mem_base).map(|i| i as usize) else {
            return;
        };
        if let Some((k, v)) = self.entries.get_mut(i).and_then(Option::take) {
            let bytes = k.as_ref().map_or(0, Bytes::len) + v.len();
            self.mem_bytes -= bytes;
            self.cache.0.fetch_sub(bytes, Ordering::Relaxed);
            self.live_frames -= frame_bytes(k.as_deref(), &v);
        }
    }

    fn entry(&self, offset: i64) -> Option<&(Option<Bytes>, Bytes)> {
        let i = usize::try_from(offset.checked_sub(self.mem_base)?).ok()?;
        self.entries.get(i)?.as_ref()
    }

    fn push(&mut self, entry: Entry) {
        let bytes = entry.as_ref().map_or(0, |(k, v)| k.as_ref().map_or(0, Bytes::len) + v.len());
        self.mem_bytes += bytes;
        self.cache.0.fetch_add(bytes, Ordering::Relaxed);
        self.entries.push_back(entry);
    }

    /// The bytes of the slots `entries` holds room for.
    pub(super) fn index_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// Removes the oldest entry from memory; returns its bytes (`None` when there is none).
    fn pop(&mut self) -> Option<usize> {
        let entry = self.entries.pop_front()?;
        trib_ops::memory::shrink_drained(&mut self.entries);
        self.mem_base += 1;
        let bytes = entry.as_ref().map_or(0, |(k, v)| k.as_ref().map_or(0, Bytes::len) + v.len());
        self.mem_bytes -= bytes;
        self.cache.0.fetch_sub(bytes, Ordering::Relaxed);
        if let Some((Some(k), v)) = entry.filter(|_| self.compacted) {
            self.live_frames -= frame_bytes(Some(&k), &v);
            if self.latest_by_key.get(&k) == Some(&(self.mem_base - 1)) {
                self.latest_by_key.remove(&k);
            }
        }
        Some(bytes)
    }

    fn drop_empty_front(&mut self) {
        while let Some(None) = self.entries.front() {
            self.pop();
        }
        self.base = self.base.max(self.mem_base.min(self.next_offset()));
    }

    /// Appends to `out` the records in memory from offset `from` until `out` holds `max`;
    /// returns the offset to read next.
    pub(super) fn read(&self, tp: &TopicPartition, from: i64, max: usize, out: &mut Vec<Record>) -> i64 {
        let mut position = from.max(self.mem_base);
        while position < self.next_offset() && out.len() < max {
            if let Some((key, value)) = self.entry(position) {
                out.push(Record { tp: tp.clone(), offset: position, key: key.clone(), value: value.clone() });
            }
            position += 1;
        }
        position
    }

    /// The read from the files of the records from `from`, which are not in memory.
    pub(super) fn plan_disk_read(&self, tp: &TopicPartition, from: i64, max: usize) -> io::Result<Option<DiskRead>> {
        self.segments.plan_read(tp, from, self.mem_base, self.next_offset(), max)
    }

    /// Whether the records in memory are only a cache of the files (and may leave it).
    pub(super) fn is_cache(&self) -> bool {
        self.segments.is_persistent() && !self.compacted
    }

    /// The bytes the cache budget could free here.
    pub(super) fn evictable_bytes(&self) -> usize {
        if self.is_cache() {
            self.mem_bytes
        } else {
            0
        }
    }

    /// Frees at least `bytes` of the cache (or all of it), oldest records first.
    pub(super) fn evict(&mut self, bytes: usize) {
        let mut freed = 0;
        while freed < bytes && self.is_cache() {
            match self.pop() {
                Some(b) => freed += b,
                None => break,
            }
        }
    }

    /// Releases the cached records below `offset` (every group committed them).
    pub(super) fn release_below(&mut self, offset: i64) {
        while self.mem_base < offset && self.is_cache() && self.pop().is_some() {}
    }

    /// Forgets the records below `base`, whose segments were deleted.
    pub(super) fn forget_below(&mut self, base: i64) {
        while self.mem_base < base && self.pop().is_some() {}
        self.base = self.base.max(base);
        self.mem_base = self.mem_base.max(base);
    }

    /// Moves the next offset up to `offset` when the partition holds nothing in memory (at
    /// start, when a group committed past the records found; see `EmbeddedQueue::open`).
    pub(super) fn raise_next_offset(&mut self, offset: i64) {
        if self.entries.is_empty() && offset > self.mem_base {
            if !self.is_cache() {
                self.base = offset;
            }
            self.mem_base = offset;
        }
    }
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        self.cache.0.fetch_sub(self.mem_bytes, Ordering::Relaxed);
    }
}

/// The bytes a record takes in a segment file.
fn frame_bytes(key: Option<&[u8]>, value: &[u8]) -> u64 {
    frame::record_frame_len(key.map_or(0, <[u8]>::len), value.len()) as u64
}
