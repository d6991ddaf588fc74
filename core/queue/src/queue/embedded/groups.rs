//! Consumer groups: their members and the assignment of partitions to them (rebalance), their
//! committed offsets, and `groups.log`, the file that keeps the committed offsets of a
//! persistent queue. Membership is never stored: members are live consumers.
//! Deliberately not here: the consumers themselves (`consumer`) and the bytes of a `groups.log`
//! entry (`frame`).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, ErrorKind, Write as _},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    disk_error,
    frame::{self, GroupEntry},
    space,
    store::{at, remove_quietly},
    sync::{sync_dir, SyncFile, Syncer},
    State,
};
use crate::{
    now_ms,
    queue::{ConsumerEvent, QueueResult, TopicPartition},
};

/// `groups.log` is rewritten with only the live offsets when it grows past this (less in tests,
/// so that they can reach it).
const GROUPS_LOG_REWRITE_BYTES: u64 = if cfg!(test) { 4096 } else { 16 * 1024 * 1024 };

/// Committed offsets: group, topic-partition, next offset.
pub(super) type Commits = Vec<(String, TopicPartition, i64)>;

#[derive(Default)]
pub(super) struct GroupState {
    pub(super) committed: HashMap<TopicPartition, i64>,
    pub(super) members: BTreeMap<u64, Member>,
}

pub(super) struct Member {
    pub(super) topics: Vec<String>,
    pub(super) assigned: Vec<TopicPartition>,
    pub(super) pending: VecDeque<ConsumerEvent>,
}

impl State {
    /// Recomputes a group's assignment: partitions of each topic are dealt round-robin over the
    /// members subscribed to it (ordered by join order); members get the difference as events.
    pub(super) fn rebalance(&mut self, group: &str) {
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

    /// Rebalances every group with a member subscribed to `topic` (created or deleted).
    pub(super) fn rebalance_groups_of(&mut self, topic: &str) {
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

    /// Commits a group's next offset of a partition: stored first in a persistent queue (a
    /// failed write commits nothing), then in memory; then the partition's cleanup runs, since
    /// records may now be consumed by every group.
    pub(super) fn commit(&mut self, group: &str, tp: &TopicPartition, next_offset: i64) -> QueueResult<()> {
        let State { groups, store, .. } = self;
        let committed = &mut groups.entry(group.to_string()).or_default().committed;
        if committed.get(tp) == Some(&next_offset) {
            return Ok(());
        }
        if let Some(store) = store.as_mut() {
            match store.commit(group, tp, next_offset) {
                Ok(()) => {}
                // Kept in memory, so that consumed records still free their segments (and with
                // them the disk); written with the next rewrite. A crash meanwhile only reads
                // again what was already consumed.
                Err(e) if space::is_full(&e) => store.groups_unsaved(&e),
                Err(e) => return Err(disk_error("store a committed offset", e)),
            }
        }
        committed.insert(tp.clone(), next_offset);
        if let Some(store) = store.as_mut().filter(|s| s.groups_log_is_large() || s.groups_are_unsaved()) {
            let all = groups.iter().flat_map(|(g, s)| s.committed.iter().map(move |(tp, o)| (g.as_str(), tp, *o)));
            match store.rewrite_groups(all) {
                Ok(()) => {}
                Err(e) if space::is_full(&e) && store.groups_are_unsaved() => {}
                Err(e) => {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(error = %e, "Cannot rewrite the committed offsets file; it keeps growing.");
                }
            }
        }
        self.reclaim(tp, now_ms(), false);
        Ok(())
    }

    /// Forgets a group's committed offsets (and the group, when it has no members). Its
    /// partitions are cleaned up again: the group no longer holds their records back.
    pub(super) fn delete_group(&mut self, group: &str) -> QueueResult<()> {
        let State { groups, store, .. } = self;
        let mut partitions = Vec::new();
        if let Some(g) = groups.get_mut(group) {
            if let (Some(store), false) = (store.as_mut(), g.committed.is_empty()) {
                store.delete_group(group).map_err(|e| disk_error(&format!("delete group {group}"), e))?;
            }
            partitions.extend(g.committed.drain().map(|(tp, _)| tp));
            if g.members.is_empty() {
                groups.remove(group);
            }
        }
        let now = now_ms();
        for tp in &partitions {
            self.reclaim(tp, now, false);
        }
        Ok(())
    }
}

/// `groups.log`: one entry per commit and per deletion of a group or a topic, appended; the
/// latest entry wins. Rewritten with only the live offsets at start and when it grows large.
/// On a full disk it is kept as it is at start, and commits that cannot be appended are kept in
/// memory (`unsaved`) until a rewrite succeeds.
pub(super) struct GroupsLog {
    path: PathBuf,
    file: Arc<SyncFile>,
    len: u64,
    rewrite_at: u64,
    scratch: Vec<u8>,
    /// Commits were kept in memory only (the disk was full): the next commit rewrites the file.
    unsaved: bool,
}

impl GroupsLog {
    /// Reads `groups.log`, keeps the latest offset per group and topic-partition, and rewrites
    /// the file with only those. On a full disk the file is kept as it is (cut after its last
    /// good entry) and appended to: a start needs no room.
    pub(super) fn load(path: PathBuf) -> io::Result<(GroupsLog, Commits)> {
        let buf = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(at(&path)(e)),
        };
        let (commits, good) = replay(&path, &buf);
        let (file, len) = match write_groups_file(&path, commits.iter().map(|(g, tp, o)| (g.as_str(), tp, *o))) {
            Ok(written) => written,
            Err(e) if space::is_full(&e) => {
                tracing::warn!(error = %e, "Cannot rewrite the committed offsets file at start for lack of disk space; it is kept as it is.");
                let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
                let file = file.map_err(at(&path))?;
                // Cutting a torn tail needs no room.
                file.set_len(good).map_err(at(&path))?;
                (file, good)
            }
            Err(e) => return Err(e),
        };
        let log = GroupsLog {
            path,
            file: Arc::new(SyncFile::new(file)),
            len,
            rewrite_at: len + GROUPS_LOG_REWRITE_BYTES,
            scratch: Vec::new(),
            unsaved: false,
        };
        Ok((log, commits))
    }

    pub(super) fn append(&mut self, entry: &GroupEntry<'_>, syncer: &Syncer) -> io::Result<()> {
        entry.encode(&mut self.scratch).map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let len = self.scratch.len() as u64;
        match space::check(&self.path).and_then(|()| self.file.file.write_all_at(&self.scratch, self.len)) {
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

    /// Whether the file should be rewritten with only the live offsets.
    pub(super) fn is_large(&self) -> bool {
        self.len >= self.rewrite_at
    }

    /// Notes a commit the file could not take for lack of space (see [`GroupsLog::unsaved`]);
    /// logged once until a rewrite succeeds.
    pub(super) fn mark_unsaved(&mut self, e: &io::Error) {
        if !std::mem::replace(&mut self.unsaved, true) {
            metrics::counter!("queue_embedded_disk_errors_total").increment(1);
            tracing::warn!(error = %e, "The disk is full: committed offsets are kept in memory and written once there is room (a crash meanwhile delivers the records since the last written commit again).");
        }
    }

    /// Whether commits are kept in memory only.
    pub(super) fn is_unsaved(&self) -> bool {
        self.unsaved
    }

    /// Replaces the file by one holding exactly `commits`. After a failure, the next try comes
    /// only once as much again was written.
    pub(super) fn rewrite<'a>(
        &mut self,
        commits: impl Iterator<Item = (&'a str, &'a TopicPartition, i64)>,
    ) -> io::Result<()> {
        let (file, len) = match write_groups_file(&self.path, commits) {
            Ok(written) => written,
            Err(e) => {
                self.rewrite_at = self.len + GROUPS_LOG_REWRITE_BYTES;
                return Err(e);
            }
        };
        self.file = Arc::new(SyncFile::new(file));
        self.len = len;
        self.rewrite_at = len + GROUPS_LOG_REWRITE_BYTES;
        if std::mem::take(&mut self.unsaved) {
            tracing::info!("Committed offsets are written to the disk again.");
        }
        Ok(())
    }
}

/// The committed offsets `buf` (the contents of `path`) leaves, and where its good part ends:
/// entries are replayed in order up to the end or the first damaged frame; a malformed entry is
/// skipped.
fn replay(path: &Path, buf: &[u8]) -> (Commits, u64) {
    let mut commits: BTreeMap<(String, TopicPartition), i64> = BTreeMap::new();
    let mut pos = 0;
    loop {
        match frame::decode_frame(&buf[pos..]) {
            Ok(None) => break,
            Err(e) => {
                let (cut, reason) = (buf.len() - pos, e.reason());
                if e.is_torn() {
                    tracing::warn!(path = %path.display(), position = pos, bytes = cut, reason, "The committed offsets file ends with a torn entry (the process died while writing it); it was cut off.");
                } else {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(path = %path.display(), position = pos, bytes = cut, reason, "Corrupt committed offsets file; the entries before the damage are kept.");
                }
                break;
            }
            Ok(Some(frame)) => {
                match GroupEntry::decode(frame.body) {
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
                pos += frame.len;
            }
        }
    }
    (commits.into_iter().map(|((g, tp), o)| (g, tp, o)).collect(), pos as u64)
}

/// Writes a committed offsets file holding exactly `commits` (write a temporary file, sync it,
/// rename it over `path`, sync the directory); returns it opened for appends, and its length.
fn write_groups_file<'a>(
    path: &Path,
    commits: impl Iterator<Item = (&'a str, &'a TopicPartition, i64)>,
) -> io::Result<(File, u64)> {
    let tmp = path.with_extension("log.tmp");
    let written = write_groups_tmp(&tmp, commits);
    if written.is_err() {
        remove_quietly(&tmp);
    }
    let len = written?;
    fs::rename(&tmp, path).map_err(at(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(at(path))?;
    Ok((file, len))
}

/// Writes `commits` to `tmp` and syncs it; returns the length written.
fn write_groups_tmp<'a>(
    tmp: &Path,
    commits: impl Iterator<Item = (&'a str, &'a TopicPartition, i64)>,
) -> io::Result<u64> {
    space::check(tmp)?;
    let mut out = BufWriter::new(File::create(tmp).map_err(at(tmp))?);
    let mut frame = Vec::new();
    let mut len = 0u64;
    for (group, tp, offset) in commits {
        GroupEntry::Commit { group, topic: &tp.topic, partition: tp.partition, offset }
            .encode(&mut frame)
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        out.write_all(&frame).map_err(at(tmp))?;
        len += frame.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error()).map_err(at(tmp))?;
    file.sync_all().map_err(at(tmp))?;
    Ok(len)
}
