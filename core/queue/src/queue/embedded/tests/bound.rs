//! The partition bound: a full partition refuses records with [`QueueError::Full`] instead of
//! dropping stored ones, takes them again once its consumers commit, and every record it
//! acknowledged is still there, across a restart too.

use super::{
    reclaim::{bases, fill, value},
    *,
};
use crate::queue::QueueError;

/// 64 KiB: sixteen 4,020-byte frames.
const BOUND: usize = 64 * 1024;

/// Sends [`value`]s from `first` until the queue refuses one (at most `limit`); returns how many
/// it stored (checking their offsets) and the refusal.
fn fill_until_refused(q: &EmbeddedQueue, topic: &str, first: usize, limit: usize) -> (usize, QueueError) {
    let producer = q.producer();
    for i in first..first + limit {
        match wait_delivery(producer.send(topic, Partitioning::Fixed(0), None, value(i).as_bytes())) {
            Ok((_, offset)) => assert_eq!(offset, i as i64),
            Err(e) => return (i - first, e),
        }
    }
    panic!("{limit} records were all stored under a {BOUND}-byte bound");
}

fn assert_full(e: &QueueError) {
    assert!(matches!(e, QueueError::Full(_)), "{e:?}");
}

#[test]
fn persistent_full_partition_refuses_and_drops_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "m", 0);
    {
        let q = open_with(dir.path(), BOUND, DEFAULT_CACHE_MAX_BYTES);
        q.create_topic(&spec_with("m", "segment.bytes:16384")).unwrap();
        // The group is there before the first record, as the broker commits it when an
        // integration is saved.
        commit(&q, "g", "m", 0, 0);
        let (stored, e) = fill_until_refused(&q, "m", 0, 100);
        assert_eq!(stored, 16);
        assert_full(&e);
        assert!(e.to_string().contains("m[0]"), "the error names the partition: {e}");
        // Refused again while nothing is committed; everything acknowledged is there.
        assert_full(&fill_until_refused(&q, "m", 16, 1).1);
        assert_eq!(contents(&q, "m", 0).0.len(), 16);
        // The consumer commits half: two segments go, and as many records fit again.
        commit(&q, "g", "m", 0, 8);
        assert_eq!(bases(&pdir), vec![8, 12]);
        let (stored, e) = fill_until_refused(&q, "m", 16, 100);
        assert_eq!(stored, 8);
        assert_full(&e);
    }
    let q = open_with(dir.path(), BOUND, DEFAULT_CACHE_MAX_BYTES);
    let (records, marks) = contents(&q, "m", 0);
    assert_eq!(marks, (8, 24));
    let expected: Vec<String> = (8..24).map(value).collect();
    assert_eq!(records.into_iter().map(|r| r.2).collect::<Vec<_>>(), expected, "every acknowledged record");
    assert_full(&fill_until_refused(&q, "m", 24, 1).1);
    // Drained: even a small active segment goes when the producer needs the room.
    commit(&q, "g", "m", 0, 24);
    fill(&q, "m", 24..40);
}

#[test]
fn memory_only_full_partition_refuses_until_its_consumer_commits() {
    let q = EmbeddedQueue::with_max_partition_bytes(BOUND);
    q.create_topic(&spec_with("m", "segment.bytes:16384")).unwrap();
    commit(&q, "g", "m", 0, 0);
    let (stored, e) = fill_until_refused(&q, "m", 0, 100);
    assert_eq!(stored, 16);
    assert_full(&e);
    assert_eq!(contents(&q, "m", 0).0.len(), 16);
    commit(&q, "g", "m", 0, 16);
    assert_eq!(fill_until_refused(&q, "m", 16, 100).0, 16);
}

#[test]
fn a_record_larger_than_the_bound_is_refused_at_once() {
    let q = EmbeddedQueue::with_max_partition_bytes(1000);
    q.create_topic(&spec("m", 1)).unwrap();
    let e = wait_delivery(q.producer().send("m", Partitioning::Fixed(0), None, &[0; 1000])).unwrap_err();
    assert_full(&e);
    assert!(e.to_string().contains("exceeds"), "{e}");
    assert_eq!(put(&q, "m", 0, None, "fits"), 0);
}

#[test]
fn compacted_partition_bound_counts_the_latest_record_per_key() {
    // Key "k0".."k9" and value "v": 23-byte frames; four fit in 100 bytes.
    let q = EmbeddedQueue::with_max_partition_bytes(100);
    q.create_topic(&spec("c", 1).compacted()).unwrap();
    for k in ["k0", "k1", "k2", "k3"] {
        put(&q, "c", 0, Some(k), "v");
    }
    let send = |key: &str| wait_delivery(q.producer().send("c", Partitioning::Fixed(0), Some(key.as_bytes()), b"v"));
    assert_full(&send("k4").unwrap_err());
    // A new record of a kept key replaces it: it fits.
    for _ in 0..100 {
        send("k0").unwrap();
    }
    assert_eq!(contents(&q, "c", 0).0.len(), 4);
}
