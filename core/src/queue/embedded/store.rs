//! The on-disk form of the persistent embedded queue ([`super::EmbeddedQueue::open`]).
//!
//! Layout of the queue directory:
//!
//! * `lock`: held with `flock(2)` while a process uses the directory (a second process is refused).
//! * `topics/<encoded name>/meta`: `format=1`, `partitions=N` and `compacted=true|false` lines.
//!   Topic names keep `[A-Za-z0-9._-]` and percent-encode every other byte.
//! * `topics/<encoded name>/<partition>/<20-digit base offset>.log`: the segments of a partition,
//!   oldest first; the last one is the active segment that appends go to.
//! * `groups.log`: committed offsets of consumer groups, and deletions of groups and topics.
//! * `trash/`: topic directories being deleted (emptied at start).
//!
//! Every record and every `groups.log` entry is one frame: the body's length (u32), a CRC32 of
//! the length and the body (u32), the body; integers are little-endian. A record's body is its
//! offset (i64), its key's length (i32, -1 = no key), the key and the value. An entry's body is a
//! kind byte followed by its fields, strings as a u32 length and UTF-8.
//!
//! Durability: an append is one `pwrite(2)` made before the producer is answered, so a stored
//! record survives the death of the process; a background thread calls `fdatasync` on written
//! files once a second, so power loss can lose about the last second (Kafka's default without
//! replication is no better). Topic creation and deletion and the rewrites of compacted
//! partitions and of `groups.log` are synced at once (they are rare).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt::Write as _,
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, ErrorKind, Write as _},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::queue::TopicPartition;

/// How often written files are synced to the disk.
pub(super) const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// `groups.log` is rewritten with only the live offsets when it grows past this (less in tests,
/// so that they can reach it).
const GROUPS_LOG_REWRITE_BYTES: u64 = if cfg!(test) { 4096 } else { 16 * 1024 * 1024 };
/// Frame header: body length and CRC.
const HEADER: usize = 8;
/// A record body without key and value: offset and key length.
const RECORD_FIXED: usize = 12;
const META_FORMAT: &str = "1";

const ENTRY_COMMIT: u8 = 1;
const ENTRY_DELETE_GROUP: u8 = 2;
const ENTRY_DELETE_TOPIC: u8 = 3;

/// The segment size of a queue whose partitions keep at most `max_partition_bytes`:
/// a quarter of the bound, within 1 MiB..=64 MiB.
pub(super) fn roll_bytes(max_partition_bytes: usize) -> u64 {
    const MIB: u64 = 1024 * 1024;
    (max_partition_bytes as u64 / 4).clamp(MIB, 64 * MIB)
}

/// A record read back from a segment.
pub(super) struct StoredRecord {
    pub(super) offset: i64,
    pub(super) key: Option<Bytes>,
    pub(super) value: Bytes,
}

/// Committed offsets: group, topic-partition, next offset.
pub(super) type Commits = Vec<(String, TopicPartition, i64)>;

/// What [`Store::open`] found in the directory.
pub(super) struct Loaded {
    pub(super) topics: Vec<LoadedTopic>,
    pub(super) commits: Commits,
}

pub(super) struct LoadedTopic {
    pub(super) name: String,
    pub(super) compacted: bool,
    pub(super) partitions: Vec<LoadedPartition>,
}

pub(super) struct LoadedPartition {
    /// The base offset of the oldest segment.
    pub(super) first_offset: i64,
    /// The offset the next record gets.
    pub(super) next_offset: i64,
    /// Every readable record, in offset order.
    pub(super) records: Vec<StoredRecord>,
    /// One segment, and nothing was cut from it.
    pub(super) single_clean_segment: bool,
    /// The partition's files, ready for appends.
    pub(super) store: PartitionStore,
}

/// The persistent part of an embedded queue. Used under the queue's state lock.
pub(super) struct Store {
    root: PathBuf,
    roll_bytes: u64,
    groups: GroupsLog,
    syncer: Arc<Syncer>,
    thread: Option<JoinHandle<()>>,
    trash_seq: u64,
    /// Holds the directory's `flock` until the store is dropped.
    _lock: File,
}

impl Store {
    /// Opens (or creates) the queue directory and reads everything in it.
    pub(super) fn open(root: &Path, roll_bytes: u64) -> io::Result<(Store, Loaded)> {
        fs::create_dir_all(root).map_err(at(root))?;
        let lock = lock_dir(root)?;
        let trash = root.join("trash");
        if trash.exists() {
            if let Err(e) = fs::remove_dir_all(&trash) {
                tracing::warn!(path = %trash.display(), error = %e, "Cannot empty the queue's trash directory.");
            }
        }
        let topics_dir = root.join("topics");
        fs::create_dir_all(&topics_dir).map_err(at(&topics_dir))?;
        for entry in fs::read_dir(root).map_err(at(root))? {
            let entry = entry.map_err(at(root))?;
            let name = entry.file_name();
            match name.to_str() {
                Some("lock" | "topics" | "groups.log" | "trash") => {}
                Some("groups.log.tmp") => remove_quietly(&entry.path()),
                _ => tracing::warn!(path = %entry.path().display(), "Unknown file in the queue directory; ignored."),
            }
        }
        let syncer = Arc::new(Syncer::default());
        let mut topics = Vec::new();
        let mut entries: Vec<_> =
            fs::read_dir(&topics_dir).and_then(|d| d.collect::<Result<_, _>>()).map_err(at(&topics_dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let decoded = entry.file_name().to_str().and_then(decode_topic);
            match decoded {
                Some(name) if entry.file_type().map_err(at(&path))?.is_dir() => {
                    if let Some(topic) = load_topic(&path, name, roll_bytes, &syncer)? {
                        topics.push(topic);
                    }
                }
                _ => tracing::warn!(path = %path.display(), "Unknown file in the queue's topics directory; ignored."),
            }
        }
        let (groups, commits) = GroupsLog::load(root.join("groups.log"))?;
        let thread = {
            let syncer = syncer.clone();
            std::thread::Builder::new().name("queue-sync".into()).spawn(move || syncer.run())?
        };
        let store = Store {
            root: root.to_path_buf(),
            roll_bytes,
            groups,
            syncer,
            thread: Some(thread),
            trash_seq: 0,
            _lock: lock,
        };
        Ok((store, Loaded { topics, commits }))
    }

    fn topic_dir(&self, name: &str) -> PathBuf {
        self.root.join("topics").join(encode_topic(name))
    }

    /// Creates a topic's directory (replacing a stray one) and returns its partitions' stores.
    pub(super) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        compacted: bool,
    ) -> io::Result<Vec<PartitionStore>> {
        if name.is_empty() {
            return Err(io::Error::new(ErrorKind::InvalidInput, "a topic with an empty name cannot be stored"));
        }
        let dir = self.topic_dir(name);
        if fs::symlink_metadata(&dir).is_ok() {
            // Left by an interrupted creation (no meta) or ignored at start (bad meta).
            tracing::warn!(topic = name, path = %dir.display(), "Replacing a stray topic directory.");
            self.discard(&dir)?;
        }
        fs::create_dir(&dir).map_err(at(&dir))?;
        let mut stores = Vec::new();
        for p in 0..partitions {
            let pdir = dir.join(p.to_string());
            fs::create_dir(&pdir).map_err(at(&pdir))?;
            let file = create_segment(&segment_path(&pdir, 0))?;
            sync_dir(&pdir)?;
            stores.push(PartitionStore::new(pdir, VecDeque::from([0]), file, 0, self.roll_bytes, self.syncer.clone()));
        }
        write_meta(&dir, partitions, compacted)?;
        sync_dir(&dir)?;
        sync_dir(&self.root.join("topics"))?;
        Ok(stores)
    }

    /// Deletes a topic's files and its committed offsets (the offsets first: if the process dies
    /// in between, the topic is read again from its start, which duplicates but loses nothing).
    pub(super) fn delete_topic(&mut self, name: &str) -> io::Result<()> {
        self.groups.append(&GroupEntry::DeleteTopic { topic: name }, &self.syncer)?;
        let dir = self.topic_dir(name);
        self.discard(&dir)
    }

    /// Moves a directory into the trash (atomically) and removes it.
    fn discard(&mut self, dir: &Path) -> io::Result<()> {
        let trash = self.root.join("trash");
        fs::create_dir_all(&trash).map_err(at(&trash))?;
        self.trash_seq += 1;
        let target = trash.join(format!("{}-{}", std::process::id(), self.trash_seq));
        match fs::rename(dir, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(at(dir)(e)),
        }
        sync_dir(&self.root.join("topics"))?;
        if let Err(e) = fs::remove_dir_all(&target) {
            tracing::warn!(path = %target.display(), error = %e, "Cannot remove a deleted topic's files; they go at the next start.");
        }
        Ok(())
    }

    /// Stores a committed offset.
    pub(super) fn commit(&mut self, group: &str, tp: &TopicPartition, offset: i64) -> io::Result<()> {
        let entry = GroupEntry::Commit { group, topic: &tp.topic, partition: tp.partition, offset };
        self.groups.append(&entry, &self.syncer)
    }

    /// Stores the deletion of a group's committed offsets.
    pub(super) fn delete_group(&mut self, group: &str) -> io::Result<()> {
        self.groups.append(&GroupEntry::DeleteGroup { group }, &self.syncer)
    }

    /// Whether `groups.log` should be rewritten with only the live offsets.
    pub(super) fn groups_log_is_large(&self) -> bool {
        self.groups.len >= self.groups.rewrite_at
    }

    /// Rewrites `groups.log` with exactly these committed offsets.
    pub(super) fn rewrite_groups<'a>(
        &mut self,
        commits: impl Iterator<Item = (&'a str, &'a TopicPartition, i64)>,
    ) -> io::Result<()> {
        let result = self.groups.rewrite(commits);
        if result.is_err() {
            // Try again only after as much again was written.
            self.groups.rewrite_at = self.groups.len + GROUPS_LOG_REWRITE_BYTES;
        }
        result
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.syncer.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The files of one partition.
pub(super) struct PartitionStore {
    dir: PathBuf,
    /// Base offsets of the segments, oldest first; the last is the active segment.
    segments: VecDeque<i64>,
    active: Arc<SyncFile>,
    active_len: u64,
    roll_bytes: u64,
    syncer: Arc<Syncer>,
    scratch: Vec<u8>,
    roll_failed: bool,
}

impl PartitionStore {
    fn new(
        dir: PathBuf,
        segments: VecDeque<i64>,
        active: File,
        active_len: u64,
        roll_bytes: u64,
        syncer: Arc<Syncer>,
    ) -> Self {
        PartitionStore {
            dir,
            segments,
            active: Arc::new(SyncFile::new(active)),
            active_len,
            roll_bytes,
            syncer,
            scratch: Vec::new(),
            roll_failed: false,
        }
    }

    /// Writes a record to the active segment with one write; on return the bytes are in the
    /// operating system's cache. A failed write leaves the segment as it was.
    pub(super) fn append(&mut self, offset: i64, key: Option<&[u8]>, value: &[u8]) -> io::Result<()> {
        encode_record(&mut self.scratch, offset, key, value)?;
        let len = self.scratch.len() as u64;
        if self.active_len > 0 && self.active_len + len > self.roll_bytes {
            self.roll(offset);
        }
        let result = self.active.file.write_all_at(&self.scratch, self.active_len);
        if self.scratch.capacity() > 4 * 1024 * 1024 {
            self.scratch = Vec::new();
        }
        match result {
            Ok(()) => {
                self.active_len += len;
                self.syncer.written(&self.active);
                Ok(())
            }
            Err(e) => {
                let _ = self.active.file.set_len(self.active_len);
                Err(at(&segment_path(&self.dir, *self.segments.back().expect("an active segment")))(e))
            }
        }
    }

    /// Starts a new active segment at `base`; on failure the current one goes on growing.
    fn roll(&mut self, base: i64) {
        let path = segment_path(&self.dir, base);
        match create_segment(&path) {
            Ok(file) => {
                // The old segment stays in the syncer's list while it has unsynced writes.
                self.active = Arc::new(SyncFile::new(file));
                self.active_len = 0;
                self.segments.push_back(base);
                self.syncer.dir_changed(self.dir.clone());
                self.roll_failed = false;
            }
            Err(e) => {
                if !self.roll_failed {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(path = %path.display(), error = %e, "Cannot start a new queue segment; the current one keeps growing.");
                }
                self.roll_failed = true;
            }
        }
    }

    /// Deletes the segments whose every offset is below `base` (the oldest offset kept).
    pub(super) fn release_below(&mut self, base: i64) {
        while self.segments.len() > 1 && self.segments[1] <= base {
            let path = segment_path(&self.dir, self.segments[0]);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != ErrorKind::NotFound {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(path = %path.display(), error = %e, "Cannot delete an old queue segment.");
                }
            }
            self.segments.pop_front();
        }
    }

    /// Replaces every segment by one segment at `base` holding `records` (the compaction of a
    /// compacted partition at start). Crash-safe: the new segment is complete and synced before it
    /// is renamed to `.swap`; a `.swap` file found at start replaces the segments beside it.
    pub(super) fn rewrite<'a>(
        &mut self,
        base: i64,
        records: impl Iterator<Item = (i64, Option<&'a [u8]>, &'a [u8])>,
    ) -> io::Result<()> {
        let name = segment_name(base);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let swap = self.dir.join(format!("{name}.swap"));
        let mut out = BufWriter::new(File::create(&tmp).map_err(at(&tmp))?);
        let mut frame = Vec::new();
        let mut len = 0u64;
        for (offset, key, value) in records {
            encode_record(&mut frame, offset, key, value)?;
            out.write_all(&frame).map_err(at(&tmp))?;
            len += frame.len() as u64;
        }
        let file = out.into_inner().map_err(|e| e.into_error()).map_err(at(&tmp))?;
        file.sync_all().map_err(at(&tmp))?;
        drop(file);
        fs::rename(&tmp, &swap).map_err(at(&swap))?;
        sync_dir(&self.dir)?;
        for old in &self.segments {
            remove_quietly(&segment_path(&self.dir, *old));
        }
        let path = segment_path(&self.dir, base);
        fs::rename(&swap, &path).map_err(at(&path))?;
        sync_dir(&self.dir)?;
        self.active =
            Arc::new(SyncFile::new(OpenOptions::new().read(true).write(true).open(&path).map_err(at(&path))?));
        self.active_len = len;
        self.segments = VecDeque::from([base]);
        Ok(())
    }

    /// Base offsets of the segments (tests).
    #[cfg(test)]
    pub(super) fn segment_bases(&self) -> Vec<i64> {
        self.segments.iter().copied().collect()
    }
}

fn segment_name(base: i64) -> String {
    format!("{base:020}.log")
}

fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(segment_name(base))
}

fn parse_segment_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn create_segment(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).map_err(at(path))
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "Cannot remove a leftover queue file.");
        }
    }
}

/// Makes the creation, renaming or removal of the directory's entries durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// Names the path in an I/O error.
fn at(path: &Path) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn lock_dir(root: &Path) -> io::Result<File> {
    let path = root.join("lock");
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(at(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(io::Error::new(
                ErrorKind::WouldBlock,
                format!("{} is locked: another process uses this queue directory", path.display()),
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(at(&path)(e)),
    }
    Ok(file)
}

/// The directory name of a topic: `[A-Za-z0-9._-]` kept, every other byte as `%XX`.
pub(super) fn encode_topic(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}

/// The topic name of a directory name made by [`encode_topic`] (`None` for any other name).
pub(super) fn decode_topic(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    // Only the canonical form, so that two directories never mean the same topic.
    (!name.is_empty() && encode_topic(&name) == encoded).then_some(name)
}

fn write_meta(dir: &Path, partitions: i32, compacted: bool) -> io::Result<()> {
    let tmp = dir.join("meta.tmp");
    let text = format!(
        "# Tributary embedded queue topic.\nformat={META_FORMAT}\npartitions={partitions}\ncompacted={compacted}\n"
    );
    let mut file = File::create(&tmp).map_err(at(&tmp))?;
    file.write_all(text.as_bytes()).and_then(|_| file.sync_all()).map_err(at(&tmp))?;
    fs::rename(&tmp, dir.join("meta")).map_err(at(&tmp))
}

/// `(partitions, compacted)` from a meta file's text.
fn parse_meta(text: &str) -> Result<(i32, bool), String> {
    let mut values = HashMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (k, v) = line.split_once('=').ok_or_else(|| format!("line '{line}' is not key=value"))?;
        values.insert(k.trim(), v.trim());
    }
    match values.get("format") {
        Some(&META_FORMAT) => {}
        other => return Err(format!("unsupported format {other:?}")),
    }
    let partitions = values
        .get("partitions")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .ok_or("partitions missing or out of range")?;
    let compacted = match values.get("compacted") {
        Some(&"true") => true,
        Some(&"false") => false,
        other => return Err(format!("compacted is {other:?}, not true or false")),
    };
    Ok((partitions, compacted))
}

fn load_topic(dir: &Path, name: String, roll_bytes: u64, syncer: &Arc<Syncer>) -> io::Result<Option<LoadedTopic>> {
    let meta_path = dir.join("meta");
    let text = match fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            tracing::warn!(path = %dir.display(), "Topic directory without a meta file (an interrupted creation); ignored.");
            return Ok(None);
        }
        Err(e) => {
            metrics::counter!("queue_embedded_disk_errors_total").increment(1);
            tracing::error!(path = %meta_path.display(), error = %e, "Cannot read a topic's meta file; the topic is ignored.");
            return Ok(None);
        }
    };
    let (partitions, compacted) = match parse_meta(&text) {
        Ok(m) => m,
        Err(reason) => {
            metrics::counter!("queue_embedded_disk_errors_total").increment(1);
            tracing::error!(path = %meta_path.display(), reason, "Bad topic meta file; the topic is ignored.");
            return Ok(None);
        }
    };
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
        loaded.push(load_partition(&dir.join(p.to_string()), compacted, roll_bytes, syncer)?);
    }
    Ok(Some(LoadedTopic { name, compacted, partitions: loaded }))
}

fn load_partition(dir: &Path, compacted: bool, roll_bytes: u64, syncer: &Arc<Syncer>) -> io::Result<LoadedPartition> {
    if !dir.is_dir() {
        tracing::warn!(path = %dir.display(), "Missing partition directory; the partition starts empty.");
        fs::create_dir_all(dir).map_err(at(dir))?;
    }
    // An interrupted compaction: a `.swap` segment is complete and replaces the others.
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

    let mut records = Vec::new();
    let mut clean = bases.len() == 1;
    let mut last_offset: Option<i64> = None;
    let mut active_len = 0;
    for (i, &base) in bases.iter().enumerate() {
        let path = segment_path(dir, base);
        let is_last = i + 1 == bases.len();
        let limit = bases.get(i + 1).copied();
        let buf = fs::read(&path).map_err(at(&path))?;
        let buf = Bytes::from(buf);
        let mut pos = 0;
        let bad = loop {
            match next_frame(&buf, pos) {
                Scan::End => break None,
                Scan::Bad { torn, reason } => break Some((torn, reason)),
                Scan::Frame { body, end } => {
                    let Some((offset, key, value)) = decode_record(body) else {
                        break Some((false, "malformed record"));
                    };
                    if offset < base || last_offset.is_some_and(|l| offset <= l) || limit.is_some_and(|l| offset >= l) {
                        break Some((false, "offset out of order"));
                    }
                    let start = pos + HEADER;
                    let slice = |r: std::ops::Range<usize>| {
                        if compacted {
                            // Compacted partitions keep few records of many segments: copy them
                            // rather than keep whole segment buffers alive.
                            Bytes::copy_from_slice(&buf[start + r.start..start + r.end])
                        } else {
                            buf.slice(start + r.start..start + r.end)
                        }
                    };
                    records.push(StoredRecord { offset, key: key.map(&slice), value: slice(value) });
                    last_offset = Some(offset);
                    pos = end;
                }
            }
        };
        if let Some((torn, reason)) = bad {
            clean = false;
            let cut = buf.len() - pos;
            if is_last {
                if torn {
                    tracing::warn!(path = %path.display(), position = pos, bytes = cut, reason, "Queue segment ends with a torn record (the process died while writing it); it was cut off.");
                } else {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(path = %path.display(), position = pos, bytes = cut, reason, "Corrupt queue segment; the records before the damage are kept, the rest of the segment was cut off.");
                }
                OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(pos as u64)).map_err(at(&path))?;
            } else {
                metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                tracing::error!(path = %path.display(), position = pos, bytes = cut, reason, "Corrupt queue segment; the records before the damage are kept, the rest of this segment is skipped.");
            }
        }
        if is_last {
            active_len = pos as u64;
        }
    }
    let last_base = *bases.last().expect("at least one segment");
    let next_offset = last_offset.map_or(last_base, |o| (o + 1).max(last_base));
    let active_path = segment_path(dir, last_base);
    let active = OpenOptions::new().read(true).write(true).open(&active_path).map_err(at(&active_path))?;
    let store = PartitionStore::new(
        dir.to_path_buf(),
        bases.iter().copied().collect(),
        active,
        active_len,
        roll_bytes,
        syncer.clone(),
    );
    Ok(LoadedPartition { first_offset: bases[0], next_offset, records, single_clean_segment: clean, store })
}

enum Scan<'a> {
    Frame { body: &'a [u8], end: usize },
    End,
    Bad { torn: bool, reason: &'static str },
}

/// The frame at `pos`. A bad frame is `torn` when it reaches the end of the file (or only
/// zeros follow), as a record being written when the process or the machine died does.
fn next_frame(buf: &[u8], pos: usize) -> Scan<'_> {
    let rest = &buf[pos..];
    if rest.is_empty() {
        return Scan::End;
    }
    let zeros = || rest.iter().all(|b| *b == 0);
    if rest.len() < HEADER {
        return Scan::Bad { torn: true, reason: "incomplete frame header" };
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    let end = HEADER as u64 + u64::from(len);
    if end > rest.len() as u64 {
        return Scan::Bad { torn: true, reason: "frame runs past the end of the file" };
    }
    let body = &rest[HEADER..end as usize];
    if frame_crc(len, body) != crc {
        return Scan::Bad { torn: end == rest.len() as u64 || zeros(), reason: "CRC mismatch" };
    }
    Scan::Frame { body, end: pos + end as usize }
}

fn frame_crc(len: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// Starts a frame in `out` (cleared); [`finish_frame`] fills in the length and the CRC.
fn start_frame(out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0; HEADER]);
}

fn finish_frame(out: &mut [u8]) -> io::Result<()> {
    let len = u32::try_from(out.len() - HEADER)
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "a queue record cannot exceed 4 GiB"))?;
    let crc = frame_crc(len, &out[HEADER..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn encode_record(out: &mut Vec<u8>, offset: i64, key: Option<&[u8]>, value: &[u8]) -> io::Result<()> {
    start_frame(out);
    out.reserve(RECORD_FIXED + key.map_or(0, <[u8]>::len) + value.len());
    out.extend_from_slice(&offset.to_le_bytes());
    match key {
        Some(k) => {
            let len = i32::try_from(k.len())
                .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "a queue record key cannot exceed 2 GiB"))?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(k);
        }
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    out.extend_from_slice(value);
    finish_frame(out)
}

/// `(offset, key range, value range)` of a record body; ranges are within `body`.
#[allow(clippy::type_complexity)]
fn decode_record(body: &[u8]) -> Option<(i64, Option<std::ops::Range<usize>>, std::ops::Range<usize>)> {
    if body.len() < RECORD_FIXED {
        return None;
    }
    let offset = i64::from_le_bytes(body[0..8].try_into().ok()?);
    let key_len = i32::from_le_bytes(body[8..12].try_into().ok()?);
    let (key, value_start) = match key_len {
        -1 => (None, RECORD_FIXED),
        n if n >= 0 && RECORD_FIXED + n as usize <= body.len() => {
            (Some(RECORD_FIXED..RECORD_FIXED + n as usize), RECORD_FIXED + n as usize)
        }
        _ => return None,
    };
    (offset >= 0).then_some((offset, key, value_start..body.len()))
}

/// One entry of `groups.log`.
enum GroupEntry<'a> {
    Commit { group: &'a str, topic: &'a str, partition: i32, offset: i64 },
    DeleteGroup { group: &'a str },
    DeleteTopic { topic: &'a str },
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GroupEntry<'_> {
    fn encode(&self, out: &mut Vec<u8>) -> io::Result<()> {
        start_frame(out);
        match self {
            GroupEntry::Commit { group, topic, partition, offset } => {
                out.push(ENTRY_COMMIT);
                put_str(out, group);
                put_str(out, topic);
                out.extend_from_slice(&partition.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
            }
            GroupEntry::DeleteGroup { group } => {
                out.push(ENTRY_DELETE_GROUP);
                put_str(out, group);
            }
            GroupEntry::DeleteTopic { topic } => {
                out.push(ENTRY_DELETE_TOPIC);
                put_str(out, topic);
            }
        }
        finish_frame(out)
    }
}

/// A reader of an entry body.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))?;
        std::str::from_utf8(self.take(n as usize)?).ok()
    }
}

fn decode_entry(body: &[u8]) -> Option<GroupEntry<'_>> {
    let mut f = Fields(body);
    let entry = match f.u8()? {
        ENTRY_COMMIT => GroupEntry::Commit { group: f.str()?, topic: f.str()?, partition: f.i32()?, offset: f.i64()? },
        ENTRY_DELETE_GROUP => GroupEntry::DeleteGroup { group: f.str()? },
        ENTRY_DELETE_TOPIC => GroupEntry::DeleteTopic { topic: f.str()? },
        _ => return None,
    };
    f.0.is_empty().then_some(entry)
}

struct GroupsLog {
    path: PathBuf,
    file: Arc<SyncFile>,
    len: u64,
    rewrite_at: u64,
    scratch: Vec<u8>,
}

impl GroupsLog {
    /// Reads `groups.log`, keeps the latest offset per group and topic-partition, and rewrites
    /// the file with only those.
    fn load(path: PathBuf) -> io::Result<(GroupsLog, Commits)> {
        let buf = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(at(&path)(e)),
        };
        let mut commits: BTreeMap<(String, TopicPartition), i64> = BTreeMap::new();
        let mut pos = 0;
        loop {
            match next_frame(&buf, pos) {
                Scan::End => break,
                Scan::Bad { torn, reason } => {
                    let cut = buf.len() - pos;
                    if torn {
                        tracing::warn!(path = %path.display(), position = pos, bytes = cut, reason, "The committed offsets file ends with a torn entry (the process died while writing it); it was cut off.");
                    } else {
                        metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                        tracing::error!(path = %path.display(), position = pos, bytes = cut, reason, "Corrupt committed offsets file; the entries before the damage are kept.");
                    }
                    break;
                }
                Scan::Frame { body, end } => {
                    match decode_entry(body) {
                        Some(GroupEntry::Commit { group, topic, partition, offset }) => {
                            commits.insert((group.to_string(), TopicPartition::new(topic, partition)), offset);
                        }
                        Some(GroupEntry::DeleteGroup { group }) => commits.retain(|(g, _), _| g != group),
                        Some(GroupEntry::DeleteTopic { topic }) => commits.retain(|(_, tp), _| tp.topic != topic),
                        None => {
                            metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                            tracing::error!(path = %path.display(), position = pos, "Malformed entry in the committed offsets file; skipped.");
                        }
                    }
                    pos = end;
                }
            }
        }
        let commits: Commits = commits.into_iter().map(|((g, tp), o)| (g, tp, o)).collect();
        let (file, len) = write_groups_file(&path, commits.iter().map(|(g, tp, o)| (g.as_str(), tp, *o)))?;
        let log = GroupsLog {
            path,
            file: Arc::new(SyncFile::new(file)),
            len,
            rewrite_at: len + GROUPS_LOG_REWRITE_BYTES,
            scratch: Vec::new(),
        };
        Ok((log, commits))
    }

    fn append(&mut self, entry: &GroupEntry<'_>, syncer: &Syncer) -> io::Result<()> {
        entry.encode(&mut self.scratch)?;
        let len = self.scratch.len() as u64;
        match self.file.file.write_all_at(&self.scratch, self.len) {
            Ok(()) => {
                self.len += len;
                syncer.written(&self.file);
                Ok(())
            }
            Err(e) => {
                let _ = self.file.file.set_len(self.len);
                Err(at(&self.path)(e))
            }
        }
    }

    /// Replaces the file by one holding exactly `commits`.
    fn rewrite<'a>(&mut self, commits: impl Iterator<Item = (&'a str, &'a TopicPartition, i64)>) -> io::Result<()> {
        let (file, len) = write_groups_file(&self.path, commits)?;
        self.file = Arc::new(SyncFile::new(file));
        self.len = len;
        self.rewrite_at = len + GROUPS_LOG_REWRITE_BYTES;
        Ok(())
    }
}

/// Writes a committed offsets file holding exactly `commits` (write a temporary file, sync it,
/// rename it over `path`, sync the directory); returns it opened for appends, and its length.
fn write_groups_file<'a>(
    path: &Path,
    commits: impl Iterator<Item = (&'a str, &'a TopicPartition, i64)>,
) -> io::Result<(File, u64)> {
    let tmp = path.with_extension("log.tmp");
    let mut out = BufWriter::new(File::create(&tmp).map_err(at(&tmp))?);
    let mut frame = Vec::new();
    let mut len = 0u64;
    for (group, tp, offset) in commits {
        GroupEntry::Commit { group, topic: &tp.topic, partition: tp.partition, offset }.encode(&mut frame)?;
        out.write_all(&frame).map_err(at(&tmp))?;
        len += frame.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error()).map_err(at(&tmp))?;
    file.sync_all().map_err(at(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(at(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(at(path))?;
    Ok((file, len))
}

/// A file that is synced by the syncer thread after writes.
struct SyncFile {
    file: File,
    /// Written since the syncer last took it.
    dirty: AtomicBool,
}

impl SyncFile {
    fn new(file: File) -> Self {
        SyncFile { file, dirty: AtomicBool::new(false) }
    }
}

enum Dirty {
    File(Arc<SyncFile>),
    Dir(PathBuf),
}

/// Syncs written files and changed directories once a [`SYNC_INTERVAL`], on its own thread.
#[derive(Default)]
struct Syncer {
    dirty: Mutex<Vec<Dirty>>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Syncer {
    fn written(&self, file: &Arc<SyncFile>) {
        if !file.dirty.swap(true, Ordering::AcqRel) {
            self.dirty.lock().push(Dirty::File(file.clone()));
        }
    }

    fn dir_changed(&self, dir: PathBuf) {
        self.dirty.lock().push(Dirty::Dir(dir));
    }

    fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
    }

    fn run(&self) {
        loop {
            let stopped = {
                let mut stopped = self.stopped.lock();
                if !*stopped {
                    self.wake.wait_for(&mut stopped, SYNC_INTERVAL);
                }
                *stopped
            };
            self.sync_dirty();
            if stopped {
                return;
            }
        }
    }

    fn sync_dirty(&self) {
        let work = std::mem::take(&mut *self.dirty.lock());
        let mut dirs: Vec<PathBuf> = Vec::new();
        for item in work {
            match item {
                Dirty::File(f) => {
                    // Cleared first: a write during the sync marks the file again.
                    f.dirty.store(false, Ordering::Release);
                    if let Err(e) = f.file.sync_data() {
                        metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                        tracing::error!(error = %e, "Cannot sync a queue file to the disk.");
                    }
                }
                Dirty::Dir(d) => {
                    if !dirs.contains(&d) {
                        dirs.push(d);
                    }
                }
            }
        }
        for dir in dirs {
            if let Err(e) = sync_dir(&dir) {
                if e.kind() != ErrorKind::NotFound {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(path = %dir.display(), error = %e, "Cannot sync a queue directory to the disk.");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_encode_to_safe_directory_names_and_back() {
        for (name, encoded) in [
            ("tbmq.msg.ie.0123abcd", "tbmq.msg.ie.0123abcd"),
            ("a/b c", "a%2Fb%20c"),
            ("100%", "100%25"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("ü", "%C3%BC"),
        ] {
            assert_eq!(encode_topic(name), encoded);
            assert_eq!(decode_topic(encoded).as_deref(), Some(name));
        }
        // Non-canonical and broken forms are not topic directories.
        assert_eq!(decode_topic("%61"), None);
        assert_eq!(decode_topic("a%2"), None);
        assert_eq!(decode_topic("a%zz"), None);
        assert_eq!(decode_topic("a b"), None);
        assert_eq!(decode_topic(""), None);
    }

    #[test]
    fn frames_round_trip_and_damage_is_classified() {
        let mut frame = Vec::new();
        encode_record(&mut frame, 7, Some(b"key"), b"value").unwrap();
        let Scan::Frame { body, end } = next_frame(&frame, 0) else { panic!("frame not read back") };
        assert_eq!(end, frame.len());
        let (offset, key, value) = decode_record(body).unwrap();
        assert_eq!((offset, &body[key.unwrap()], &body[value]), (7, &b"key"[..], &b"value"[..]));

        let mut none = Vec::new();
        encode_record(&mut none, 8, None, b"").unwrap();
        let Scan::Frame { body, .. } = next_frame(&none, 0) else { panic!("frame not read back") };
        assert_eq!(decode_record(body).map(|(o, k, v)| (o, k, v.len())), Some((8, None, 0)));

        // Cut short: torn.
        assert!(matches!(next_frame(&frame[..frame.len() - 2], 0), Scan::Bad { torn: true, .. }));
        assert!(matches!(next_frame(&frame[..5], 0), Scan::Bad { torn: true, .. }));
        // A flipped bit in the last frame: torn; the same damage with a frame after it: corrupt.
        let mut flipped = frame.clone();
        flipped[HEADER + 9] ^= 1;
        assert!(matches!(next_frame(&flipped, 0), Scan::Bad { torn: true, reason: "CRC mismatch" }));
        flipped.extend_from_slice(&frame);
        assert!(matches!(next_frame(&flipped, 0), Scan::Bad { torn: false, reason: "CRC mismatch" }));
        // Zeros after the last record (a file extended but not written when the power went).
        let mut zeros = frame.clone();
        zeros.extend_from_slice(&[0; 32]);
        assert!(matches!(next_frame(&zeros, frame.len()), Scan::Bad { torn: true, .. }));
    }

    #[test]
    fn group_entries_round_trip() {
        let mut frame = Vec::new();
        GroupEntry::Commit { group: "g", topic: "t", partition: 3, offset: 42 }.encode(&mut frame).unwrap();
        let Scan::Frame { body, .. } = next_frame(&frame, 0) else { panic!("frame not read back") };
        assert!(matches!(
            decode_entry(body),
            Some(GroupEntry::Commit { group: "g", topic: "t", partition: 3, offset: 42 })
        ));
        GroupEntry::DeleteTopic { topic: "t" }.encode(&mut frame).unwrap();
        let Scan::Frame { body, .. } = next_frame(&frame, 0) else { panic!("frame not read back") };
        assert!(matches!(decode_entry(body), Some(GroupEntry::DeleteTopic { topic: "t" })));
        assert!(decode_entry(&[9]).is_none());
    }

    #[test]
    fn meta_files_parse_and_reject_nonsense() {
        assert_eq!(parse_meta("# c\nformat=1\npartitions=6\ncompacted=true\n"), Ok((6, true)));
        assert!(parse_meta("format=2\npartitions=6\ncompacted=true\n").is_err());
        assert!(parse_meta("format=1\npartitions=0\ncompacted=true\n").is_err());
        assert!(parse_meta("format=1\npartitions=1\ncompacted=yes\n").is_err());
        assert!(parse_meta("format=1\npartitions=1\n").is_err());
    }

    #[test]
    fn segments_roll_at_a_quarter_of_the_bound_within_limits() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(roll_bytes(10), MIB);
        assert_eq!(roll_bytes(16 * MIB as usize), 4 * MIB);
        assert_eq!(roll_bytes(super::super::DEFAULT_MAX_PARTITION_BYTES), 64 * MIB);
        assert_eq!(roll_bytes(usize::MAX), 64 * MIB);
    }
}
