//! Disk given back: segments deleted once every group that commits on a partition committed
//! past them, by `retention.ms` and `retention.bytes`, and once a group is deleted; what a
//! restart after that loads; and the partitions that keep their records (no committing group).
//!
//! Records are 4,000-byte values without a key: 4,020-byte frames, four to a 16 KiB segment.

use std::{fs::File, ops::Range, time::SystemTime};

use super::*;
use crate::now_ms;

const FRAME: u64 = 4020;
/// Four records to a segment.
const SMALL_SEGMENTS: &str = "segment.bytes:16384;retention.ms:-1";

/// The value of record `i`: 4,000 bytes starting with its number.
pub(super) fn value(i: usize) -> String {
    format!("{i:04}{}", "v".repeat(3996))
}

/// Stores the records `range` (values [`value`]) in partition 0 of `topic`, checking their offsets.
pub(super) fn fill(q: &EmbeddedQueue, topic: &str, range: Range<usize>) {
    for i in range {
        assert_eq!(put(q, topic, 0, None, &value(i)), i as i64);
    }
}

/// The offsets of a partition's records and its watermarks.
fn offsets(q: &EmbeddedQueue, topic: &str) -> (Vec<i64>, (i64, i64)) {
    let (records, marks) = contents(q, topic, 0);
    for (offset, _, v) in &records {
        assert_eq!(v, &value(*offset as usize), "record {offset} is intact");
    }
    (records.iter().map(|r| r.0).collect(), marks)
}

/// The base offsets of a partition directory's segment files.
pub(super) fn bases(pdir: &Path) -> Vec<i64> {
    segments(pdir).iter().map(|f| f.file_stem().unwrap().to_str().unwrap().parse().unwrap()).collect()
}

fn steps(range: Range<i64>, step: usize) -> Vec<i64> {
    range.step_by(step).collect()
}

#[test]
fn persistent_segments_go_once_every_group_committed_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "m", 0);
    let q = open(dir.path());
    q.create_topic(&spec_with("m", SMALL_SEGMENTS)).unwrap();
    fill(&q, "m", 0..100);
    assert_eq!((bases(&pdir), dir_bytes(&pdir)), (steps(0..100, 4), 100 * FRAME));
    // The slower group holds the segments back.
    commit(&q, "h", "m", 0, 21);
    commit(&q, "g", "m", 0, 50);
    assert_eq!(bases(&pdir), steps(20..100, 4), "the segment holding offset 21 is the oldest left");
    commit(&q, "h", "m", 0, 60);
    assert_eq!((bases(&pdir), dir_bytes(&pdir)), (steps(48..100, 4), 52 * FRAME));
    let state = q.inner.state.lock();
    let log = state.partition(&TopicPartition::new("m", 0)).unwrap();
    assert_eq!(log.segments.segment_bases(), bases(&pdir), "the bookkeeping is the files");
    drop(state);
    drop(q);

    let q = open(dir.path());
    assert_eq!(offsets(&q, "m"), ((48..100).collect(), (48, 100)));
    for (group, at) in [("g", 50), ("h", 60)] {
        let tp = TopicPartition::new("m", 0);
        let mut c = q.assign(group, "c", &tp).unwrap();
        let (records, _) = poll_records(c.as_mut(), 2);
        assert_eq!(values(&records[..2]), vec![value(at), value(at + 1)], "{group} resumes at {at}");
    }
    // Everything committed: the active segment (under 64 KiB) is all that is left.
    commit(&q, "g", "m", 0, 100);
    commit(&q, "h", "m", 0, 100);
    assert_eq!((bases(&pdir), dir_bytes(&pdir)), (vec![96], 4 * FRAME));
    assert_eq!(put(&q, "m", 0, None, &value(100)), 100);
}

#[test]
fn persistent_a_drained_partition_keeps_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "m", 0);
    let q = open(dir.path());
    // One segment of 1 MiB holds all 100 records.
    q.create_topic(&spec_with("m", "segment.bytes:1048576")).unwrap();
    fill(&q, "m", 0..100);
    assert_eq!(bases(&pdir), vec![0]);
    commit(&q, "g", "m", 0, 99);
    assert_eq!(dir_bytes(&pdir), 100 * FRAME, "the active segment holds a record not committed");
    commit(&q, "g", "m", 0, 100);
    assert_eq!((bases(&pdir), dir_bytes(&pdir)), (vec![100], 0), "closed and deleted once drained");
    drop(q);

    let q = open(dir.path());
    assert_eq!(offsets(&q, "m"), (Vec::new(), (100, 100)));
    assert_eq!(committed(&q, "g", "m", 0), Some(100));
    fill(&q, "m", 100..101);
    let mut c = q.assign("g", "c", &TopicPartition::new("m", 0)).unwrap();
    assert_eq!(values(&poll_records(c.as_mut(), 1).0), vec![value(100)]);
}

#[test]
fn persistent_retention_ms_deletes_old_segments_at_run_time_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "m", 0);
    let q = open(dir.path());
    q.create_topic(&spec_with("m", "segment.bytes:16384;retention.ms:60000")).unwrap();
    fill(&q, "m", 0..20);
    q.inner.state.lock().reclaim_all(now_ms(), false);
    assert_eq!(bases(&pdir), steps(0..20, 4), "nothing is a minute old");
    // A minute later every record is too old, the active segment's too.
    q.inner.state.lock().reclaim_all(now_ms() + 61_000, false);
    assert_eq!((bases(&pdir), offsets(&q, "m")), (vec![20], (Vec::new(), (20, 20))));
    fill(&q, "m", 20..40);
    drop(q);

    // Written two minutes ago, as far as the files say: gone at start, but the active segment.
    let old = SystemTime::now() - Duration::from_secs(120);
    for path in &segments(&pdir)[..4] {
        File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
    }
    let q = open(dir.path());
    assert_eq!(bases(&pdir), vec![36]);
    assert_eq!(offsets(&q, "m"), ((36..40).collect(), (36, 40)));
}

#[test]
fn persistent_retention_bytes_keeps_the_newest_segments_holding_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "m", 0);
    let q = open(dir.path());
    q.create_topic(&spec_with("m", "segment.bytes:16384;retention.bytes:40000;retention.ms:-1")).unwrap();
    // A group that commits nothing past 10 does not hold retention back (Kafka's rule).
    commit(&q, "g", "m", 0, 10);
    fill(&q, "m", 0..100);
    q.inner.state.lock().reclaim_all(now_ms(), false);
    // 3 full segments hold the limit (48,240 bytes); 2 would not (32,160).
    assert_eq!(bases(&pdir), vec![88, 92, 96]);
    assert_eq!(offsets(&q, "m"), ((88..100).collect(), (88, 100)));
    let mut c = q.assign("g", "c", &TopicPartition::new("m", 0)).unwrap();
    assert_eq!(poll_records(c.as_mut(), 1).0[0].offset, 88, "the group goes on from the oldest record left");
}

#[test]
fn persistent_deleting_the_slowest_group_lets_its_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "m", 0);
    let q = open(dir.path());
    q.create_topic(&spec_with("m", SMALL_SEGMENTS)).unwrap();
    commit(&q, "slow", "m", 0, 0);
    fill(&q, "m", 0..40);
    commit(&q, "g", "m", 0, 40);
    assert_eq!(bases(&pdir).len(), 10);
    q.delete_group("slow").unwrap();
    assert_eq!(bases(&pdir), vec![36]);
}

#[test]
fn persistent_records_nobody_commits_stay_until_retention() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "dlq", 0);
    let q = open(dir.path());
    q.create_topic(&spec_with("dlq", SMALL_SEGMENTS)).unwrap();
    fill(&q, "dlq", 0..40);
    // Read to the end by offset, as the dead letters are, without a commit.
    assert_eq!(offsets(&q, "dlq"), ((0..40).collect(), (0, 40)));
    q.inner.state.lock().reclaim_all(now_ms() + 365 * 24 * 3600 * 1000, false);
    assert_eq!(bases(&pdir), steps(0..40, 4));
    drop(q);
    let q = open(dir.path());
    assert_eq!(offsets(&q, "dlq"), ((0..40).collect(), (0, 40)));
}

#[test]
fn persistent_offsets_never_go_back_below_a_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "m", 0);
    {
        let q = open(dir.path());
        q.create_topic(&spec_with("m", SMALL_SEGMENTS)).unwrap();
        fill(&q, "m", 0..10);
        commit(&q, "g", "m", 0, 10);
    }
    // As after a power loss that kept the deletion of the segments but not the creation of the
    // next one: no segment is left.
    for path in segments(&pdir) {
        fs::remove_file(path).unwrap();
    }
    let q = open(dir.path());
    assert_eq!(put(&q, "m", 0, None, &value(10)), 10, "not 0, which the group would skip");
    let mut c = q.assign("g", "c", &TopicPartition::new("m", 0)).unwrap();
    assert_eq!(values(&poll_records(c.as_mut(), 1).0), vec![value(10)]);
}

#[test]
fn memory_only_partitions_give_records_back_by_the_same_rules() {
    let q = EmbeddedQueue::new();
    q.create_topic(&spec_with("m", SMALL_SEGMENTS)).unwrap();
    fill(&q, "m", 0..100);
    assert_eq!(q.cached_bytes(), 100 * 4000);
    commit(&q, "g", "m", 0, 50);
    assert_eq!((q.cached_bytes(), offsets(&q, "m").1), (52 * 4000, (48, 100)));
    // Drained: only the small active segment's records are left.
    commit(&q, "g", "m", 0, 100);
    assert_eq!((q.cached_bytes(), offsets(&q, "m").1), (4 * 4000, (96, 100)));
}
