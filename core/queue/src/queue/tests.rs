//! Backend conformance tests: every function here takes any [`Queue`] and a unique topic
//! prefix, so the same checks run on the embedded backend and on Kafka.

use std::time::{Duration, Instant};

use super::{
    embedded::EmbeddedQueue, wait_delivery, Consumer, ConsumerEvent, Partitioning, Queue, Record, TopicPartition,
    TopicSpec,
};

const WAIT: Duration = Duration::from_secs(20);

pub(super) fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec::from_properties(name, &format!("partitions:{partitions}")).unwrap()
}

pub(super) fn send(q: &dyn Queue, topic: &str, partitioning: Partitioning, key: &str, value: &str) -> (i32, i64) {
    wait_delivery(q.producer().send(topic, partitioning, Some(key.as_bytes()), value.as_bytes())).unwrap()
}

/// Polls until `n` records arrived (or fails after a generous timeout), collecting events.
pub(super) fn poll_records(c: &mut dyn Consumer, n: usize) -> (Vec<Record>, Vec<ConsumerEvent>) {
    let deadline = Instant::now() + WAIT;
    let (mut records, mut other) = (Vec::new(), Vec::new());
    while records.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} records arrived", records.len());
        for e in c.poll(Duration::from_millis(200), 100).unwrap() {
            match e {
                ConsumerEvent::Records(r) => records.extend(r),
                e => other.push(e),
            }
        }
    }
    (records, other)
}

/// Polls until an assignment event arrives; returns the partitions assigned.
pub(super) fn poll_assigned(c: &mut dyn Consumer) -> Vec<TopicPartition> {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no assignment arrived");
        for e in c.poll(Duration::from_millis(200), 100).unwrap() {
            if let ConsumerEvent::Assigned(tps) = e {
                return tps;
            }
        }
    }
}

pub(super) fn values(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect()
}

pub fn keyed_records_keep_order(q: &dyn Queue, prefix: &str) {
    let topic = format!("{prefix}.order");
    q.create_topic(&spec(&topic, 1)).unwrap();
    for i in 0..50 {
        send(q, &topic, Partitioning::Fixed(0), "k", &format!("m{i}"));
    }
    let mut c = q.assign(&format!("{prefix}.g"), "c1", &TopicPartition::new(&topic, 0)).unwrap();
    let (records, _) = poll_records(c.as_mut(), 50);
    assert_eq!(values(&records), (0..50).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert!(records.windows(2).all(|w| w[0].offset < w[1].offset));
    assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
}

pub fn compacted_topic_keeps_latest_per_key(q: &dyn Queue, prefix: &str) {
    let topic = format!("{prefix}.compact");
    q.create_topic(&spec(&topic, 1).compacted()).unwrap();
    send(q, &topic, Partitioning::Fixed(0), "a", "a1");
    send(q, &topic, Partitioning::Fixed(0), "b", "b1");
    send(q, &topic, Partitioning::Fixed(0), "a", "a2");
    let mut c = q.assign(&format!("{prefix}.g"), "c1", &TopicPartition::new(&topic, 0)).unwrap();
    // Kafka compacts lazily, so only the latest value per key is guaranteed to be last.
    let (records, _) = poll_records(c.as_mut(), 2);
    let last_a = records.iter().rev().find(|r| r.key.as_deref() == Some(&b"a"[..])).unwrap();
    assert_eq!(&last_a.value[..], b"a2");
}

pub fn committed_offsets_are_resumed(q: &dyn Queue, prefix: &str) {
    let topic = format!("{prefix}.commit");
    let group = format!("{prefix}.g");
    let tp = TopicPartition::new(&topic, 0);
    q.create_topic(&spec(&topic, 1)).unwrap();
    for i in 0..10 {
        send(q, &topic, Partitioning::Fixed(0), "k", &format!("m{i}"));
    }
    {
        let mut c = q.assign(&group, "c1", &tp).unwrap();
        assert_eq!(c.committed(&tp).unwrap(), None);
        let (records, _) = poll_records(c.as_mut(), 10);
        c.commit(&tp, records[4].offset + 1).unwrap();
    }
    let mut c = q.assign(&group, "c2", &tp).unwrap();
    assert_eq!(c.committed(&tp).unwrap().map(|o| o >= 5), Some(true));
    let (records, _) = poll_records(c.as_mut(), 5);
    assert_eq!(values(&records[..5]), vec!["m5", "m6", "m7", "m8", "m9"]);
    let (_, next) = c.watermarks(&tp).unwrap();
    assert_eq!(next, records[4].offset + 1);
}

pub fn group_members_split_and_take_over(q: &dyn Queue, prefix: &str) {
    let topic = format!("{prefix}.group");
    let group = format!("{prefix}.g");
    q.create_topic(&spec(&topic, 4)).unwrap();
    let topics = vec![topic.clone()];
    let mut a = q.subscribe(&group, "a", &topics).unwrap();
    let first = poll_assigned(a.as_mut());
    assert_eq!(first.len(), 4, "a single member owns every partition");
    let mut b = q.subscribe(&group, "b", &topics).unwrap();
    // a loses some partitions, b gets them; together they cover all four exactly once.
    // Both members are polled: on Kafka a rebalance waits for every member, and a member only
    // takes part in it (gives up partitions, rejoins) while it is polled.
    let deadline = Instant::now() + WAIT;
    let (mut b_parts, mut a_revoked) = (Vec::new(), Vec::new());
    while b_parts.is_empty() || a_revoked.is_empty() {
        assert!(Instant::now() < deadline, "b got nothing or a was never revoked");
        for e in a.poll(Duration::from_millis(100), 10).unwrap() {
            if let ConsumerEvent::Revoked(tps) = e {
                a_revoked.extend(tps);
            }
        }
        for e in b.poll(Duration::from_millis(100), 10).unwrap() {
            if let ConsumerEvent::Assigned(tps) = e {
                if b_parts.is_empty() {
                    b_parts = tps;
                }
            }
        }
    }
    b_parts.sort();
    a_revoked.sort();
    assert!(!b_parts.is_empty() && b_parts.len() < 4, "{b_parts:?}");
    for tp in &b_parts {
        assert!(a_revoked.contains(tp), "{tp} moved to b without leaving a");
    }
    // b leaves: a gets everything back.
    drop(b);
    let deadline = Instant::now() + WAIT;
    let mut regained = Vec::new();
    while regained.len() < b_parts.len() {
        assert!(Instant::now() < deadline, "a did not take over b's partitions");
        for e in a.poll(Duration::from_millis(200), 10).unwrap() {
            if let ConsumerEvent::Assigned(tps) = e {
                regained.extend(tps);
            }
        }
    }
    regained.sort();
    for tp in &b_parts {
        assert!(regained.contains(tp), "{tp} was not reassigned");
    }
}

pub fn deleted_topics_are_gone(q: &dyn Queue, prefix: &str) {
    let topic = format!("{prefix}.delete");
    q.create_topic(&spec(&topic, 1)).unwrap();
    assert!(q.topic_exists(&topic).unwrap());
    q.delete_topic(&topic).unwrap();
    let deadline = Instant::now() + WAIT;
    while q.topic_exists(&topic).unwrap() {
        assert!(Instant::now() < deadline, "topic still exists");
        std::thread::sleep(Duration::from_millis(100));
    }
    q.delete_topic(&topic).unwrap();
    q.delete_group(&format!("{prefix}.never-existed")).unwrap();
}

#[test]
fn embedded_keyed_records_keep_order() {
    keyed_records_keep_order(&EmbeddedQueue::new(), "t");
}

#[test]
fn embedded_compacted_topic_keeps_latest_per_key() {
    let q = EmbeddedQueue::new();
    compacted_topic_keeps_latest_per_key(&q, "t");
    // The embedded backend compacts eagerly: exactly one record per key is left.
    let mut c = q.assign("t.g2", "c", &TopicPartition::new("t.compact", 0)).unwrap();
    let (records, _) = poll_records(c.as_mut(), 2);
    assert_eq!(values(&records), vec!["b1", "a2"]);
}

#[test]
fn embedded_committed_offsets_are_resumed() {
    committed_offsets_are_resumed(&EmbeddedQueue::new(), "t");
}

#[test]
fn embedded_group_members_split_and_take_over() {
    group_members_split_and_take_over(&EmbeddedQueue::new(), "t");
}

#[test]
fn embedded_deleted_topics_are_gone() {
    deleted_topics_are_gone(&EmbeddedQueue::new(), "t");
}

/// A full partition refuses what it cannot store (the producer hears `Full`) and keeps every
/// record it stored: nothing acknowledged is dropped to make room.
#[test]
fn embedded_full_partitions_refuse_records_and_keep_the_stored_ones() {
    // 24-byte frames (20 bytes of framing, a 4-byte value): two fit in 50 bytes.
    let q = EmbeddedQueue::with_max_partition_bytes(50);
    q.create_topic(&spec("b", 1)).unwrap();
    let send = |v: &str| wait_delivery(q.producer().send("b", Partitioning::Fixed(0), None, v.as_bytes()));
    send("aaaa").unwrap();
    send("bbbb").unwrap();
    assert!(matches!(send("cccc"), Err(super::QueueError::Full(_))));
    let mut c = q.assign("g", "c", &TopicPartition::new("b", 0)).unwrap();
    let (records, _) = poll_records(c.as_mut(), 2);
    assert_eq!(values(&records), vec!["aaaa", "bbbb"]);
    assert_eq!(c.watermarks(&TopicPartition::new("b", 0)).unwrap(), (0, 2));
}

/// The conformance checks on a persistent embedded queue; each queue is dropped and its
/// directory opened again before the check runs once more on other topics (prefix `r`).
fn persistent(check: fn(&dyn Queue, &str)) {
    let dir = tempfile::tempdir().expect("temp dir");
    check(&EmbeddedQueue::open(dir.path(), super::embedded::DEFAULT_MAX_PARTITION_BYTES).unwrap(), "t");
    check(&EmbeddedQueue::open(dir.path(), super::embedded::DEFAULT_MAX_PARTITION_BYTES).unwrap(), "r");
}

#[test]
fn persistent_keyed_records_keep_order() {
    persistent(keyed_records_keep_order);
}

#[test]
fn persistent_compacted_topic_keeps_latest_per_key() {
    persistent(compacted_topic_keeps_latest_per_key);
}

#[test]
fn persistent_committed_offsets_are_resumed() {
    persistent(committed_offsets_are_resumed);
}

#[test]
fn persistent_group_members_split_and_take_over() {
    persistent(group_members_split_and_take_over);
}

#[test]
fn persistent_deleted_topics_are_gone() {
    persistent(deleted_topics_are_gone);
}

#[test]
fn embedded_unknown_topic_is_an_error() {
    let q = EmbeddedQueue::new();
    let err = wait_delivery(q.producer().send("nope", Partitioning::Fixed(0), None, b"x")).unwrap_err();
    assert_eq!(err, super::QueueError::UnknownTopic("nope".into()));
}

fn check_spec(properties: &str, partitions: i32, configs: &[(&str, &str)]) {
    let s = TopicSpec::from_properties("t", properties).unwrap();
    assert_eq!(s.partitions, partitions, "{properties}");
    let expected: Vec<(String, String)> = configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(s.configs.into_iter().collect::<Vec<_>>(), expected, "{properties}");
}

#[test]
fn topic_properties_tbmq_default() {
    check_spec(
        "retention.ms:604800000;segment.bytes:26214400;retention.bytes:1048576000;partitions:6;replication.factor:1",
        6,
        &[("retention.bytes", "1048576000"), ("retention.ms", "604800000"), ("segment.bytes", "26214400")],
    );
}

#[test]
fn topic_properties_escaped_semicolon_and_defaults() {
    check_spec(r"a:x\;y", 1, &[("a", "x;y")]);
    check_spec("", 1, &[]);
}

#[test]
fn topic_properties_errors() {
    assert!(TopicSpec::from_properties("t", "novalue").is_err());
    assert!(TopicSpec::from_properties("t", "partitions:abc").is_err());
    assert!(TopicSpec::from_properties("t", "partitions:0").is_err());
}
