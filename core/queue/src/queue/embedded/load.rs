//! Reading a persistent queue's topics back at start: each topic's `meta` file, its partitions
//! and their segments. Every segment is scanned (a chunk at a time) to check its records, find
//! the next offset and build its index; only compacted topics keep their records in memory, the
//! others are read from the files when consumed. A record cut short by a crash is cut off with a
//! WARN; damage elsewhere keeps what was read before it, logs an ERROR naming the file and
//! position, and the start goes on. An interrupted compaction (a `.swap` segment) is finished here.
//! Deliberately not here: decoding bytes (`frame`, `read`), committed offsets (`groups`), and
//! rebuilding the partitions in memory (`log`).

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io,
    path::Path,
    sync::Arc,
    time::UNIX_EPOCH,
};

use bytes::Bytes;

use super::{
    frame,
    layout::{decode_topic, parse_meta, parse_segment_name, segment_path},
    read::FrameReader,
    retention::Retention,
    segments::{create_segment, PartitionStore, Segment},
    store::{at, remove_quietly},
    sync::{sync_dir, Syncer},
};

pub(super) struct LoadedTopic {
    pub(super) name: String,
    pub(super) compacted: bool,
    pub(super) retention: Retention,
    pub(super) partitions: Vec<LoadedPartition>,
}

pub(super) struct LoadedPartition {
    /// The offset the next record gets.
    pub(super) next_offset: i64,
    /// Compacted topics only: every readable record, in offset order.
    pub(super) records: Vec<StoredRecord>,
    /// One segment, and nothing was cut from it.
    pub(super) single_clean_segment: bool,
    /// The partition's files, ready for appends.
    pub(super) store: PartitionStore,
}

/// A record read back from a segment.
pub(super) struct StoredRecord {
    pub(super) offset: i64,
    pub(super) key: Option<Bytes>,
    pub(super) value: Bytes,
}

/// Every topic in the queue's `topics` directory, in name order; unknown entries and topics
/// whose `meta` file is missing or bad are logged and skipped. `roll_bytes` is the queue's
/// segment size (a topic's `segment.bytes` may make it smaller).
pub(super) fn topics(topics_dir: &Path, roll_bytes: u64, syncer: &Arc<Syncer>) -> io::Result<Vec<LoadedTopic>> {
    let mut topics = Vec::new();
    let mut entries: Vec<_> =
        fs::read_dir(topics_dir).and_then(|d| d.collect::<Result<_, _>>()).map_err(at(topics_dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let decoded = entry.file_name().to_str().and_then(decode_topic);
        match decoded {
            Some(name) if entry.file_type().map_err(at(&path))?.is_dir() => {
                if let Some(topic) = topic(&path, name, roll_bytes, syncer)? {
                    topics.push(topic);
                }
            }
            _ => tracing::warn!(path = %path.display(), "Unknown file in the queue's topics directory; ignored."),
        }
    }
    Ok(topics)
}

fn topic(dir: &Path, name: String, roll_bytes: u64, syncer: &Arc<Syncer>) -> io::Result<Option<LoadedTopic>> {
    let meta_path = dir.join("meta");
    let text = match fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::warn!(path = %dir.display(), "Topic directory without a meta file (an interrupted creation); ignored.");
            return Ok(None);
        }
        Err(e) => {
            metrics::counter!("queue_embedded_disk_errors_total").increment(1);
            tracing::error!(path = %meta_path.display(), error = %e, "Cannot read a topic's meta file; the topic is ignored.");
            return Ok(None);
        }
    };
    let meta = match parse_meta(&text) {
        Ok(m) => m,
        Err(reason) => {
            metrics::counter!("queue_embedded_disk_errors_total").increment(1);
            tracing::error!(path = %meta_path.display(), reason, "Bad topic meta file; the topic is ignored.");
            return Ok(None);
        }
    };
    let (partitions, compacted, retention) = (meta.partitions, meta.compacted, meta.retention);
    let roll_bytes = retention.roll_bytes(roll_bytes);
    for entry in fs::read_dir(dir).map_err(at(dir))? {
        let entry = entry.map_err(at(dir))?;
        let file_name = entry.file_name();
        let known = match file_name.to_str() {
            Some("meta") => true,
            Some("meta.tmp") => {
                remove_quietly(&entry.path());
                true
            }
            Some(n) => n.parse::<i32>().is_ok_and(|p| (0..partitions).contains(&p) && p.to_string() == n),
            None => false,
        };
        if !known {
            tracing::warn!(path = %entry.path().display(), "Unknown file in a topic directory; ignored.");
        }
    }
    let mut loaded = Vec::new();
    for p in 0..partitions {
        loaded.push(partition(&dir.join(p.to_string()), compacted, roll_bytes, syncer)?);
    }
    Ok(Some(LoadedTopic { name, compacted, retention, partitions: loaded }))
}

fn partition(dir: &Path, compacted: bool, roll_bytes: u64, syncer: &Arc<Syncer>) -> io::Result<LoadedPartition> {
    if !dir.is_dir() {
        tracing::warn!(path = %dir.display(), "Missing partition directory; the partition starts empty.");
        fs::create_dir_all(dir).map_err(at(dir))?;
    }
    let bases = segment_bases(dir)?;
    let mut records = Vec::new();
    let mut clean = bases.len() == 1;
    let mut last_offset: Option<i64> = None;
    let mut segments = VecDeque::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        let path = segment_path(dir, base);
        let is_last = i + 1 == bases.len();
        let file = File::open(&path).map_err(at(&path))?;
        let (len, modified_ms) = file_facts(&file).map_err(at(&path))?;
        let mut segment = Segment::new(base, modified_ms);
        let scan = Scan { base, limit: bases.get(i + 1).copied(), compacted };
        let (pos, damage) =
            scan.segment(&file, len, &mut last_offset, &mut records, &mut segment).map_err(at(&path))?;
        if let Some(damage) = damage {
            clean = false;
            let (cut, reason) = (len - pos, damage.reason());
            if is_last {
                if damage.is_torn() {
                    tracing::warn!(path = %path.display(), position = pos, bytes = cut, reason, "Queue segment ends with a torn record (the process died while writing it); it was cut off.");
                } else {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(path = %path.display(), position = pos, bytes = cut, reason, "Corrupt queue segment; the records before the damage are kept, the rest of the segment was cut off.");
                }
                OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(pos)).map_err(at(&path))?;
            } else {
                metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                tracing::error!(path = %path.display(), position = pos, bytes = cut, reason, "Corrupt queue segment; the records before the damage are kept, the rest of this segment is skipped.");
            }
        }
        segment.bytes = pos;
        segments.push_back(segment);
    }
    let last_base = *bases.last().expect("at least one segment");
    let next_offset = last_offset.map_or(last_base, |o| (o + 1).max(last_base));
    let active_path = segment_path(dir, last_base);
    let active = OpenOptions::new().read(true).write(true).open(&active_path).map_err(at(&active_path))?;
    let store = PartitionStore::loaded(dir.to_path_buf(), segments, active, roll_bytes, syncer.clone());
    Ok(LoadedPartition { next_offset, records, single_clean_segment: clean, store })
}

/// A segment file's length and last change (ms since the epoch).
fn file_facts(file: &File) -> io::Result<(u64, i64)> {
    let meta = file.metadata()?;
    let modified = meta.modified()?.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    Ok((meta.len(), modified))
}

/// The base offsets of a partition directory's segments, in order (at least one: an empty
/// segment at 0 is created when there is none). Finishes an interrupted compaction: a `.swap`
/// segment is complete and replaces the others. Removes leftover `.tmp` segments.
fn segment_bases(dir: &Path) -> io::Result<Vec<i64>> {
    let mut swaps = Vec::new();
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(at(dir))? {
        let entry = entry.map_err(at(dir))?;
        let path = entry.path();
        let file_name = entry.file_name();
        let name = file_name.to_str().unwrap_or_default();
        if let Some(base) = parse_segment_name(name) {
            bases.push(base);
        } else if name.strip_suffix(".swap").and_then(parse_segment_name).is_some() {
            swaps.push(path);
        } else if name.strip_suffix(".tmp").and_then(parse_segment_name).is_some() {
            remove_quietly(&path);
        } else {
            tracing::warn!(path = %path.display(), "Unknown file in a partition directory; ignored.");
        }
    }
    if let Some(swap) = swaps.first() {
        tracing::warn!(path = %swap.display(), "Finishing an interrupted compaction.");
        for base in bases.drain(..) {
            remove_quietly(&segment_path(dir, base));
        }
        for swap in &swaps {
            let target = swap.with_extension("");
            fs::rename(swap, &target).map_err(at(swap))?;
            bases.extend(target.file_name().and_then(|n| n.to_str()).and_then(parse_segment_name));
        }
        sync_dir(dir)?;
    }
    bases.sort_unstable();
    if bases.is_empty() {
        create_segment(&segment_path(dir, 0))?;
        bases.push(0);
    }
    Ok(bases)
}

/// Why the reading of a segment stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    Frame(frame::Error),
    /// A record's offset is below the segment's base, not above the previous record's, or at or
    /// past the next segment's base.
    OutOfOrder,
}

impl Damage {
    fn reason(self) -> &'static str {
        match self {
            Damage::Frame(e) => e.reason(),
            Damage::OutOfOrder => "offset out of order",
        }
    }

    fn is_torn(self) -> bool {
        matches!(self, Damage::Frame(e) if e.is_torn())
    }
}

/// How to read one segment: its base, the next segment's base, and whether its records are kept.
struct Scan {
    base: i64,
    limit: Option<i64>,
    compacted: bool,
}

impl Scan {
    /// Reads the records of a segment file of `len` bytes after `last_offset`: each is noted in
    /// the segment's index and, for a compacted topic, copied to `records`. Returns where reading
    /// stopped and why, when before the end.
    fn segment(
        &self,
        file: &File,
        len: u64,
        last_offset: &mut Option<i64>,
        records: &mut Vec<StoredRecord>,
        segment: &mut Segment,
    ) -> io::Result<(u64, Option<Damage>)> {
        let mut reader = FrameReader::new(file, 0, len);
        loop {
            let record = match reader.next()? {
                Ok(Some(record)) => record,
                Ok(None) => return Ok((reader.position(), None)),
                Err(e) => return Ok((reader.position(), Some(Damage::Frame(e)))),
            };
            let offset = record.offset;
            if offset < self.base || last_offset.is_some_and(|l| offset <= l) || self.limit.is_some_and(|l| offset >= l)
            {
                return Ok((record.position, Some(Damage::OutOfOrder)));
            }
            segment.note(offset, record.position);
            if self.compacted {
                // Compacted partitions keep few records of many chunks: copy them rather than
                // keep whole chunks alive.
                let copy = |b: &Bytes| Bytes::copy_from_slice(b);
                records.push(StoredRecord { offset, key: record.key.as_ref().map(copy), value: copy(&record.value) });
            }
            *last_offset = Some(offset);
        }
    }
}
