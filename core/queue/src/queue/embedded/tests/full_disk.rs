//! A full disk: the queue refuses records with [`QueueError::Full`] (not a disk failure), keeps
//! serving what it stored, opens again with no room at all (no `groups.log.tmp`, no compaction
//! needed), lets consumed records free their segments, and takes records again once there is
//! room, losing nothing it acknowledged.
//!
//! The disk is made full on demand through `space::fill` (works anywhere), and, when the tests
//! run as root, a real 512 KiB tmpfs is filled too.

use std::process::Command;

use super::{reclaim::bases, *};
use crate::queue::{embedded::space, QueueError};

/// Sends `value-<i>` records to partition 0 of `topic` until one is refused (at most `limit`);
/// returns how many were stored and the refusal.
fn send_until_refused(q: &EmbeddedQueue, topic: &str, first: usize, limit: usize, size: usize) -> (usize, QueueError) {
    let producer = q.producer();
    for i in first..first + limit {
        match wait_delivery(producer.send(topic, Partitioning::Fixed(0), None, record(i, size).as_bytes())) {
            Ok((_, offset)) => assert_eq!(offset, i as i64),
            Err(e) => return (i - first, e),
        }
    }
    panic!("{limit} records were all stored on a full disk");
}

fn record(i: usize, size: usize) -> String {
    format!("{i:06}{}", "r".repeat(size.saturating_sub(6)))
}

fn assert_disk_full(e: &QueueError) {
    assert!(matches!(e, QueueError::Full(m) if m.contains("no space left")), "{e:?}");
}

/// The values of a partition's records, in offset order, checked to be offsets `0..n`.
fn stored_values(q: &EmbeddedQueue, topic: &str) -> Vec<String> {
    let (records, _) = contents(q, topic, 0);
    records.iter().enumerate().for_each(|(i, r)| assert_eq!(r.0, i as i64, "offsets of {topic}"));
    records.into_iter().map(|r| r.2).collect()
}

#[test]
fn full_disk_refuses_serves_restarts_and_recovers_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(dir.path());
    q.create_topic(&spec("t", 1)).unwrap();
    q.create_topic(&spec("c", 1).compacted()).unwrap();
    for i in 0..10 {
        put(&q, "t", 0, None, &record(i, 100));
    }
    // Superseded records: a start compacts the partition (a rewrite that needs room).
    for (k, v) in [("a", "1"), ("b", "1"), ("a", "2")] {
        put(&q, "c", 0, Some(k), v);
    }
    commit(&q, "g", "t", 0, 4);

    space::fill(dir.path(), true);
    let (stored, e) = send_until_refused(&q, "t", 10, 5, 100);
    assert_eq!(stored, 0);
    assert_disk_full(&e);
    // A commit the file cannot take is kept in memory.
    commit(&q, "g", "t", 0, 7);
    assert_eq!(committed(&q, "g", "t", 0), Some(7));
    drop(q);

    // A start with no room: nothing to write before serving.
    let q = open(dir.path());
    assert_eq!(stored_values(&q, "t"), (0..10).map(|i| record(i, 100)).collect::<Vec<_>>());
    let (compacted, _) = contents(&q, "c", 0);
    let latest: Vec<_> = compacted.into_iter().map(|(_, k, v)| (k.unwrap(), v)).collect();
    assert_eq!(latest, [("b".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())]);
    // The commit kept in memory only was lost with the process: records 4..7 come again, none
    // is skipped.
    assert_eq!(committed(&q, "g", "t", 0), Some(4));
    assert_disk_full(&send_until_refused(&q, "t", 10, 5, 100).1);

    space::fill(dir.path(), false);
    assert_eq!(put(&q, "t", 0, None, &record(10, 100)), 10);
    put(&q, "c", 0, Some("b"), "2");
    commit(&q, "g", "t", 0, 11);
    drop(q);
    let q = open(dir.path());
    assert_eq!(stored_values(&q, "t"), (0..11).map(|i| record(i, 100)).collect::<Vec<_>>());
    assert_eq!(committed(&q, "g", "t", 0), Some(11));
    assert!(!dir.path().join("groups.log.tmp").exists());
}

#[test]
fn on_a_full_disk_consumed_records_free_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "t", 0);
    let q = open(dir.path());
    q.create_topic(&spec_with("t", "segment.bytes:4096")).unwrap();
    commit(&q, "g", "t", 0, 0);
    for i in 0..8 {
        put(&q, "t", 0, None, &record(i, 1000));
    }
    assert!(segments(&pdir).len() > 1, "{:?}", segments(&pdir));
    space::fill(dir.path(), true);
    // Every record consumed; the commit is kept in memory, and the refused send cleans up as a
    // waiting producer does: the fully committed segments go, the disk gets room back.
    commit(&q, "g", "t", 0, 8);
    assert_disk_full(&send_until_refused(&q, "t", 8, 1, 1000).1);
    assert_eq!(bases(&pdir), [8]);
    space::fill(dir.path(), false);
    assert_eq!(put(&q, "t", 0, None, &record(8, 1000)), 8);
}

#[test]
fn ten_thousand_records_refused_on_a_full_disk_write_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(dir.path());
    q.create_topic(&spec("t", 1)).unwrap();
    let text = trib_test_support::logs::captured("info", || {
        space::fill(dir.path(), true);
        let producer = q.producer();
        for _ in 0..10_000 {
            assert_disk_full(&wait_delivery(producer.send("t", Partitioning::Fixed(0), None, b"x")).unwrap_err());
        }
        space::fill(dir.path(), false);
        assert_eq!(put(&q, "t", 0, None, "y"), 0);
    });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("ERROR") && lines[0].contains("disk is full"), "{text}");
    assert!(lines[1].contains("INFO") && lines[1].contains("room again"), "{text}");
}

/// A real full filesystem: a 512 KiB tmpfs (needs root; skipped elsewhere).
#[test]
fn full_tmpfs_refuses_restarts_and_frees_room_by_consumption() {
    let Some(mount) = Tmpfs::mount("512k") else {
        return;
    };
    let dir = mount.path.join("queue");
    let q = open(&dir);
    q.create_topic(&spec("t", 1)).unwrap();
    let (stored, e) = send_until_refused(&q, "t", 0, 10_000, 1024);
    assert_disk_full(&e);
    assert!(stored > 100, "only {stored} records of 1 KiB fit in 512 KiB");
    drop(q);
    // Not a byte left, not even for a temporary file.
    let filler = mount.path.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    while file.write_all(&[0u8; 4096]).is_ok() {}
    while file.write_all(&[0u8]).is_ok() {}
    drop(file);

    let q = open(&dir);
    let expected: Vec<String> = (0..stored).map(|i| record(i, 1024)).collect();
    assert_eq!(stored_values(&q, "t"), expected);
    assert_disk_full(&send_until_refused(&q, "t", stored, 5, 1024).1);
    // Consuming everything frees the queue's own room, even with the filler still there.
    commit(&q, "g", "t", 0, stored as i64);
    assert_eq!(put(&q, "t", 0, None, &record(stored, 1024)), stored as i64);
    drop(q);
    fs::remove_file(&filler).unwrap();
    let q = open(&dir);
    assert_eq!(contents(&q, "t", 0).0.last().map(|r| r.2.clone()), Some(record(stored, 1024)));
}

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a "skipped" line) when mounting is not allowed here.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        fs::create_dir(&path).unwrap();
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&path).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { path, _dir: dir }),
            Ok(o) => skipped(&String::from_utf8_lossy(&o.stderr)),
            Err(e) => skipped(&e.to_string()),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[allow(clippy::print_stderr)]
fn skipped(why: &str) -> Option<Tmpfs> {
    eprintln!("skipped: a real full filesystem needs `mount -t tmpfs` (root): {}", why.trim());
    None
}
