//! The segments of one partition ([`PartitionStore`]): what is known of each (first offset, size,
//! newest write, a sparse index of record positions) and, in a persistent queue, their files:
//! creating them, appending (one write per record), rolling to a new segment, deleting the
//! oldest, finding where an offset is for a read, and rewriting a compacted partition. A queue
//! kept in memory only keeps the bookkeeping alone, so that its records go by the same rules.
//! Deliberately not here: reading files (`read`, `load`), the byte format (`frame`), names
//! (`layout`), syncing (`sync`), the records in memory (`log`), what goes when (`retention`).

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, ErrorKind, Write as _},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    frame,
    layout::{segment_name, segment_path},
    read::DiskRead,
    retention::SegmentFacts,
    space,
    store::{at, remove_quietly},
    sync::{sync_dir, SyncFile, Syncer},
};
use crate::queue::TopicPartition;

/// A segment's sparse index has an entry at least every this many bytes: a read by offset
/// starts at most this far before its first record.
const INDEX_INTERVAL: u64 = 64 * 1024;

/// One segment.
pub(super) struct Segment {
    /// The offset of its first record (every record in it is at or after this).
    pub(super) base: i64,
    /// Its size: where the next record is written (the readable part, after damage).
    pub(super) bytes: u64,
    /// When a record was last written to it (ms since the epoch; the file's time after a start).
    pub(super) last_write_ms: i64,
    /// `(offset, position)` of its first record, then of one record every [`INDEX_INTERVAL`].
    index: Vec<(i64, u64)>,
}

impl Segment {
    pub(super) fn new(base: i64, last_write_ms: i64) -> Self {
        Segment { base, bytes: 0, last_write_ms, index: Vec::new() }
    }

    /// Notes the record at `offset`, written at `position`, in the index.
    pub(super) fn note(&mut self, offset: i64, position: u64) {
        if self.index.last().is_none_or(|(_, p)| position >= p + INDEX_INTERVAL) {
            self.index.push((offset, position));
        }
    }

    /// Where to start reading for `offset`: at or before its record.
    fn position_of(&self, offset: i64) -> u64 {
        match self.index.partition_point(|(o, _)| *o <= offset) {
            0 => 0,
            i => self.index[i - 1].1,
        }
    }

    fn facts(&self) -> SegmentFacts {
        SegmentFacts { base: self.base, bytes: self.bytes, last_write_ms: self.last_write_ms }
    }
}

/// The segments of one partition, with their files in a persistent queue.
pub(super) struct PartitionStore {
    /// Oldest first; the last is the active segment that appends go to. Never empty.
    segments: VecDeque<Segment>,
    /// The size of all segments.
    total: u64,
    roll_bytes: u64,
    files: Option<Files>,
}

/// The files of a persistent partition.
struct Files {
    dir: PathBuf,
    active: Arc<SyncFile>,
    syncer: Arc<Syncer>,
    scratch: Vec<u8>,
    roll_failed: bool,
}

impl PartitionStore {
    /// The bookkeeping of a partition kept in memory only, starting at `base`.
    pub(super) fn in_memory(base: i64, roll_bytes: u64, now_ms: i64) -> Self {
        PartitionStore { segments: VecDeque::from([Segment::new(base, now_ms)]), total: 0, roll_bytes, files: None }
    }

    /// Creates the directory of a new, empty partition with its first segment.
    pub(super) fn create(dir: PathBuf, roll_bytes: u64, syncer: Arc<Syncer>, now_ms: i64) -> io::Result<Self> {
        fs::create_dir(&dir).map_err(at(&dir))?;
        let file = create_segment(&segment_path(&dir, 0))?;
        sync_dir(&dir)?;
        Ok(PartitionStore::loaded(dir, VecDeque::from([Segment::new(0, now_ms)]), file, roll_bytes, syncer))
    }

    /// The store of a partition whose segments `load` read; `active` is the last one's file.
    pub(super) fn loaded(
        dir: PathBuf,
        segments: VecDeque<Segment>,
        active: File,
        roll_bytes: u64,
        syncer: Arc<Syncer>,
    ) -> Self {
        let total = segments.iter().map(|s| s.bytes).sum();
        let files =
            Files { dir, active: Arc::new(SyncFile::new(active)), syncer, scratch: Vec::new(), roll_failed: false };
        PartitionStore { segments, total, roll_bytes, files: Some(files) }
    }

    pub(super) fn is_persistent(&self) -> bool {
        self.files.is_some()
    }

    /// The first offset of the oldest segment.
    pub(super) fn first_base(&self) -> i64 {
        self.segments.front().expect("a partition has a segment").base
    }

    /// The size of every segment together.
    pub(super) fn total_bytes(&self) -> u64 {
        self.total
    }

    pub(super) fn facts(&self) -> Vec<SegmentFacts> {
        self.segments.iter().map(Segment::facts).collect()
    }

    /// Stores a record: in a persistent partition, one write to the active segment (on return
    /// the bytes are in the operating system's cache; a failed write leaves the segment as it
    /// was). Returns whether a new segment was started for it.
    pub(super) fn append(&mut self, offset: i64, key: Option<&[u8]>, value: &[u8], now_ms: i64) -> io::Result<bool> {
        if let Some(files) = self.files.as_mut() {
            frame::encode_record(&mut files.scratch, offset, key, value).map_err(invalid_input)?;
        }
        let len = frame::record_frame_len(key.map_or(0, <[u8]>::len), value.len()) as u64;
        let active = self.segments.back().expect("an active segment").bytes;
        let rolled = active > 0 && active + len > self.roll_bytes && self.roll(offset, now_ms);
        let segment = self.segments.back_mut().expect("an active segment");
        if let Some(files) = self.files.as_mut() {
            let result =
                space::check(&files.dir).and_then(|()| files.active.file.write_all_at(&files.scratch, segment.bytes));
            if files.scratch.capacity() > 4 * 1024 * 1024 {
                files.scratch = Vec::new();
            }
            if let Err(e) = result {
                let _ = files.active.file.set_len(segment.bytes);
                return Err(at(&segment_path(&files.dir, segment.base))(e));
            }
            files.syncer.written(&files.active);
        }
        segment.note(offset, segment.bytes);
        segment.bytes += len;
        segment.last_write_ms = now_ms;
        self.total += len;
        Ok(rolled)
    }

    /// Closes a non-empty active segment: the next record goes to a new one at `next_offset`,
    /// and the old one can be deleted. Returns whether it was closed.
    pub(super) fn close_active(&mut self, next_offset: i64, now_ms: i64) -> bool {
        self.segments.back().is_some_and(|s| s.bytes > 0) && self.roll(next_offset, now_ms)
    }

    /// Starts a new active segment at `base`; on failure the current one goes on growing.
    fn roll(&mut self, base: i64, now_ms: i64) -> bool {
        if let Some(files) = self.files.as_mut() {
            let path = segment_path(&files.dir, base);
            match create_segment(&path) {
                Ok(file) => {
                    // The old segment stays in the syncer's list while it has unsynced writes.
                    files.active = Arc::new(SyncFile::new(file));
                    files.syncer.dir_changed(files.dir.clone());
                    files.roll_failed = false;
                }
                Err(e) => {
                    if !files.roll_failed {
                        metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                        tracing::error!(path = %path.display(), error = %e, "Cannot start a new queue segment; the current one keeps growing.");
                    }
                    files.roll_failed = true;
                    return false;
                }
            }
        }
        self.segments.push_back(Segment::new(base, now_ms));
        true
    }

    /// Deletes the `n` oldest segments (never the active one).
    pub(super) fn delete_oldest(&mut self, n: usize) {
        for _ in 0..n.min(self.segments.len() - 1) {
            let segment = self.segments.pop_front().expect("more than one segment");
            self.total -= segment.bytes;
            if let Some(files) = self.files.as_ref() {
                let path = segment_path(&files.dir, segment.base);
                if let Err(e) = fs::remove_file(&path) {
                    if e.kind() != ErrorKind::NotFound {
                        metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                        tracing::error!(path = %path.display(), error = %e, "Cannot delete an old queue segment.");
                    }
                }
                files.syncer.dir_changed(files.dir.clone());
            }
        }
    }

    /// A read of the records from `from` up to `until` (where the records in memory start) in
    /// the segment holding `from`, with its file open; `None` in a queue kept in memory only.
    /// `next_offset` is where the active segment ends.
    pub(super) fn plan_read(
        &self,
        tp: &TopicPartition,
        from: i64,
        until: i64,
        next_offset: i64,
        max: usize,
    ) -> io::Result<Option<DiskRead>> {
        let Some(files) = self.files.as_ref() else {
            return Ok(None);
        };
        let i = self.segments.partition_point(|s| s.base <= from).saturating_sub(1);
        let segment = &self.segments[i];
        let path = segment_path(&files.dir, segment.base);
        let file = if i + 1 == self.segments.len() {
            files.active.file.try_clone().map_err(at(&path))?
        } else {
            File::open(&path).map_err(at(&path))?
        };
        let after = self.segments.get(i + 1).map_or(next_offset, |s| s.base);
        Ok(Some(DiskRead {
            tp: tp.clone(),
            file,
            path,
            position: segment.position_of(from),
            end: segment.bytes,
            from,
            until,
            after,
            max,
        }))
    }

    /// Replaces every segment by one segment at `base` holding `records` (the compaction of a
    /// compacted partition at start). Crash-safe: the new segment is complete and synced before it
    /// is renamed to `.swap`; a `.swap` file found at start replaces the segments beside it.
    pub(super) fn rewrite<'a>(
        &mut self,
        base: i64,
        records: impl Iterator<Item = (i64, Option<&'a [u8]>, &'a [u8])>,
        now_ms: i64,
    ) -> io::Result<()> {
        let Some(files) = self.files.as_mut() else {
            return Ok(());
        };
        let name = segment_name(base);
        let tmp = files.dir.join(format!("{name}.tmp"));
        let swap = files.dir.join(format!("{name}.swap"));
        let segment = match write_swap(&tmp, &swap, base, records, now_ms) {
            Ok(segment) => segment,
            Err(e) => {
                // Nothing was replaced: the partition goes on with the segments it has.
                remove_quietly(&tmp);
                remove_quietly(&swap);
                return Err(e);
            }
        };
        for old in &self.segments {
            remove_quietly(&segment_path(&files.dir, old.base));
        }
        let path = segment_path(&files.dir, base);
        fs::rename(&swap, &path).map_err(at(&path))?;
        sync_dir(&files.dir)?;
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(at(&path))?;
        files.active = Arc::new(SyncFile::new(file));
        self.total = segment.bytes;
        self.segments = VecDeque::from([segment]);
        Ok(())
    }

    /// Base offsets of the segments (tests).
    #[cfg(test)]
    pub(super) fn segment_bases(&self) -> Vec<i64> {
        self.segments.iter().map(|s| s.base).collect()
    }
}

/// Writes `records` as one segment at `base` into `tmp`, syncs it and renames it to `swap`
/// (synced: from here a start finishes the compaction).
fn write_swap<'a>(
    tmp: &Path,
    swap: &Path,
    base: i64,
    records: impl Iterator<Item = (i64, Option<&'a [u8]>, &'a [u8])>,
    now_ms: i64,
) -> io::Result<Segment> {
    space::check(tmp)?;
    let mut out = BufWriter::new(File::create(tmp).map_err(at(tmp))?);
    let mut frame = Vec::new();
    let mut segment = Segment::new(base, now_ms);
    for (offset, key, value) in records {
        frame::encode_record(&mut frame, offset, key, value).map_err(invalid_input)?;
        out.write_all(&frame).map_err(at(tmp))?;
        segment.note(offset, segment.bytes);
        segment.bytes += frame.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error()).map_err(at(tmp))?;
    file.sync_all().map_err(at(tmp))?;
    drop(file);
    fs::rename(tmp, swap).map_err(at(swap))?;
    if let Some(dir) = swap.parent() {
        sync_dir(dir)?;
    }
    Ok(segment)
}

/// The error of a record that cannot be encoded (too large).
fn invalid_input(e: frame::Error) -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, e)
}

/// Creates (or empties) a segment file.
pub(super) fn create_segment(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).map_err(at(path))
}
