//! The persistent part of an embedded queue ([`super::EmbeddedQueue::open`]): the queue
//! directory as a whole ([`Store`]), its lock, topic creation and deletion, and the hand-off of
//! committed offsets to `groups.log`.
//! Deliberately not here: reading the directory at start (`load`), segment files (`segments`),
//! `groups.log` itself (`groups`), names (`layout`), bytes (`frame`), syncing (`sync`).
//!
//! Layout of the queue directory:
//!
//! * `lock`: held with `flock(2)` while a process uses the directory (a second process is refused).
//! * `topics/<encoded name>/meta`: `format=1`, `partitions=N` and `compacted=true|false` lines,
//!   and the topic's cleanup settings (see `layout`). Topic names keep `[A-Za-z0-9._-]` and
//!   percent-encode every other byte.
//! * `topics/<encoded name>/<partition>/<20-digit base offset>.log`: the segments of a partition,
//!   oldest first; the last one is the active segment that appends go to. Old segments are
//!   deleted once committed or past retention (see `retention`).
//! * `groups.log`: committed offsets of consumer groups, and deletions of groups and topics.
//! * `trash/`: topic directories being deleted (emptied at start).
//!
//! Every record and every `groups.log` entry is one frame (see `frame`): the body's length, a
//! CRC32 of the length and the body, the body.
//!
//! Durability: an append is one `pwrite(2)` made before the producer is answered, so a stored
//! record survives the death of the process; a background thread calls `fdatasync` on written
//! files once a second, so power loss can lose about the last second (Kafka's default without
//! replication is no better). Topic creation and deletion and the rewrites of compacted
//! partitions and of `groups.log` are synced at once (they are rare).

use std::{
    fs::{self, File, OpenOptions},
    io::{self, ErrorKind, Write as _},
    path::{Path, PathBuf},
    sync::Arc,
    thread::JoinHandle,
};

use super::{
    frame::GroupEntry,
    groups::{Commits, GroupsLog},
    layout::{encode_topic, meta_text, TopicMeta},
    load::{self, LoadedTopic},
    segments::PartitionStore,
    sync::{sync_dir, Syncer},
};
use crate::queue::TopicPartition;

/// What [`Store::open`] found in the directory.
pub(super) struct Loaded {
    pub(super) topics: Vec<LoadedTopic>,
    pub(super) commits: Commits,
}

/// The persistent part of an embedded queue. Used under the queue's state lock.
pub(super) struct Store {
    root: PathBuf,
    /// The queue's segment size (a topic's `segment.bytes` may make it smaller).
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
        let topics = load::topics(&topics_dir, roll_bytes, &syncer)?;
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
        meta: &TopicMeta,
        now_ms: i64,
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
        let roll_bytes = meta.retention.roll_bytes(self.roll_bytes);
        let mut stores = Vec::new();
        for p in 0..meta.partitions {
            let partition = dir.join(p.to_string());
            stores.push(PartitionStore::create(partition, roll_bytes, self.syncer.clone(), now_ms)?);
        }
        write_meta(&dir, meta)?;
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
        self.groups.is_large()
    }

    /// Notes a commit `groups.log` could not take for lack of space (kept in memory).
    pub(super) fn groups_unsaved(&mut self, e: &io::Error) {
        self.groups.mark_unsaved(e);
    }

    /// Whether commits are kept in memory only, waiting for room on the disk.
    pub(super) fn groups_are_unsaved(&self) -> bool {
        self.groups.is_unsaved()
    }

    /// Rewrites `groups.log` with exactly these committed offsets.
    pub(super) fn rewrite_groups<'a>(
        &mut self,
        commits: impl Iterator<Item = (&'a str, &'a TopicPartition, i64)>,
    ) -> io::Result<()> {
        self.groups.rewrite(commits)
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

/// Names the path in an I/O error.
pub(super) fn at(path: &Path) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Removes a leftover file; a failure is only logged (it goes at the next start).
pub(super) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "Cannot remove a leftover queue file.");
        }
    }
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

fn write_meta(dir: &Path, meta: &TopicMeta) -> io::Result<()> {
    let tmp = dir.join("meta.tmp");
    let mut file = File::create(&tmp).map_err(at(&tmp))?;
    file.write_all(meta_text(meta).as_bytes()).and_then(|_| file.sync_all()).map_err(at(&tmp))?;
    fs::rename(&tmp, dir.join("meta")).map_err(at(&tmp))
}
