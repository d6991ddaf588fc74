//! Memory given back and bounded: cached records leave memory once every group committed them,
//! the queue's cache budget holds however much is produced, and a backlog larger than the
//! cache is read back from the files, in order, before and after a restart.

use super::{
    reclaim::{fill, value},
    *,
};

const KIB: usize = 1024;

/// Reads partition 0 of `topic` in `group` from its committed offset until `n` records came,
/// checking that the cache stays within `budget`; returns their offsets.
fn drain(q: &EmbeddedQueue, group: &str, topic: &str, n: usize, budget: usize) -> Vec<i64> {
    let tp = TopicPartition::new(topic, 0);
    let mut c = q.assign(group, "c", &tp).unwrap();
    let mut offsets = Vec::new();
    for _ in 0..n {
        for event in c.poll(Duration::ZERO, 7).unwrap() {
            if let ConsumerEvent::Records(records) = event {
                for r in records {
                    assert_eq!(r.value, value(r.offset as usize).as_bytes(), "record {} is intact", r.offset);
                    offsets.push(r.offset);
                }
            }
        }
        assert!(q.cached_bytes() <= budget, "{} bytes cached, budget {budget}", q.cached_bytes());
        if offsets.len() >= n {
            break;
        }
    }
    offsets
}

#[test]
fn persistent_cached_records_leave_memory_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(dir.path());
    for topic in ["a", "b", "c"] {
        q.create_topic(&spec(topic, 1)).unwrap();
        fill(&q, topic, 0..50);
    }
    assert_eq!(q.cached_bytes(), 150 * 4000);
    commit(&q, "g", "a", 0, 50);
    commit(&q, "g", "b", 0, 25);
    assert_eq!(q.cached_bytes(), 75 * 4000);
    // Records are released from memory, not lost: every one of b is read back.
    assert_eq!(contents(&q, "b", 0).0.len(), 50);
    commit(&q, "g", "c", 0, 50);
    commit(&q, "g", "b", 0, 50);
    assert_eq!(q.cached_bytes(), 0, "all delivered: nothing held in memory");
}

#[test]
fn persistent_a_consumed_burst_leaves_no_index_room_behind() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(dir.path());
    let topics: Vec<String> = (0..20).map(|i| format!("burst{i}")).collect();
    for topic in &topics {
        q.create_topic(&spec(topic, 1)).unwrap();
        for i in 0..10_000 {
            put(&q, topic, 0, None, &i.to_string());
        }
    }
    let during = q.index_bytes();
    // 20 partitions of 10,000 slots at least.
    assert!(during >= 20 * 10_000 * 16, "{during}");
    for topic in &topics {
        commit(&q, "g", topic, 0, 10_000);
    }
    assert_eq!(q.cached_bytes(), 0);
    let after = q.index_bytes();
    // Each partition keeps room for at most KEEP_CAPACITY slots.
    assert!(after * 100 < during, "index room after the burst: {after} bytes (during: {during})");
    // The partitions still take records at their next offsets.
    assert_eq!(put(&q, &topics[0], 0, None, "next"), 10_000);
}

#[test]
fn persistent_records_no_group_committed_stay_cached_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let q = open_with(dir.path(), DEFAULT_MAX_PARTITION_BYTES, 100 * 4000);
    q.create_topic(&spec("uncommitted", 1)).unwrap();
    fill(&q, "uncommitted", 0..80);
    assert_eq!(q.cached_bytes(), 80 * 4000);
    fill(&q, "uncommitted", 80..120);
    // Past the budget, evicted down to seven eighths of it.
    assert!(q.cached_bytes() <= 100 * 4000, "{}", q.cached_bytes());
    assert_eq!(contents(&q, "uncommitted", 0).0.len(), 120);
}

#[test]
fn persistent_backlog_larger_than_the_cache_is_read_in_order_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 64 * KIB;
    {
        let q = open_with(dir.path(), DEFAULT_MAX_PARTITION_BYTES, budget);
        for topic in ["x", "y"] {
            q.create_topic(&spec_with(topic, "segment.bytes:65536")).unwrap();
        }
        for i in 0..150 {
            fill(&q, "x", i..i + 1);
            fill(&q, "y", i..i + 1);
            assert!(q.cached_bytes() <= budget, "{} bytes cached after {i}", q.cached_bytes());
        }
        assert_eq!(drain(&q, "g", "x", 150, budget), (0..150).collect::<Vec<_>>());
        commit(&q, "g", "x", 0, 60);
    }
    let q = open_with(dir.path(), DEFAULT_MAX_PARTITION_BYTES, budget);
    assert_eq!(q.cached_bytes(), 0, "nothing is loaded into memory at start");
    assert_eq!(drain(&q, "g", "x", 90, budget), (60..150).collect::<Vec<_>>(), "g resumes at its offset");
    assert_eq!(drain(&q, "h", "y", 150, budget), (0..150).collect::<Vec<_>>(), "a new group reads everything");
}

#[test]
fn persistent_reads_from_the_files_start_at_any_offset_and_take_large_records() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing cached: every read goes to the files, before and after the restart.
    let q = open_with(dir.path(), DEFAULT_MAX_PARTITION_BYTES, 0);
    q.create_topic(&spec("t", 1)).unwrap();
    let large = "L".repeat(3 * 1024 * 1024 + 7);
    for i in 0..5000 {
        let v = if i == 4000 { large.clone() } else { format!("small-{i}") };
        assert_eq!(put(&q, "t", 0, Some("k"), &v), i);
    }
    assert_eq!(q.cached_bytes(), 0);
    read_from_the_middle(&q, &large);
    drop(q);
    // The index is rebuilt by the scan at start.
    read_from_the_middle(&open_with(dir.path(), DEFAULT_MAX_PARTITION_BYTES, 0), &large);
}

/// Reads from offset 3777, past several index entries of the one segment, to the end.
fn read_from_the_middle(q: &EmbeddedQueue, large: &str) {
    let tp = TopicPartition::new("t", 0);
    let mut c = q.assign("reader", "c", &tp).unwrap();
    c.seek(&tp, 3777).unwrap();
    let (records, _) = poll_records(c.as_mut(), 1223);
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (3777..5000).collect::<Vec<_>>());
    assert_eq!(records[0].value, "small-3777".as_bytes());
    assert_eq!((&records[223].value[..], records[223].key.as_deref()), (large.as_bytes(), Some(&b"k"[..])));
    assert_eq!(records[1222].value, "small-4999".as_bytes());
}
