//! `Consumer::on_records` on the embedded queue: when a registered waker is called (a record
//! appended to a topic the consumer reads, records already waiting, a change of a group
//! member's partitions) and when it is forgotten uncalled (a poll, a new waker, a drop).
//! The waker runs on the appending thread before `send` answers, so every check here is made
//! right after the call that must (or must not) have fired it, without waiting.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use super::put;
use crate::queue::{
    embedded::EmbeddedQueue,
    tests::{poll_assigned, spec},
    Consumer, ConsumerEvent, Queue, RecordWaker, TopicPartition,
};

/// A waker that counts its calls; the counter's strong count tells whether the queue still
/// holds the waker (2) or dropped it (1).
fn counting_waker() -> (RecordWaker, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    (
        Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }),
        calls,
    )
}

fn calls(counter: &Arc<AtomicUsize>) -> usize {
    counter.load(Ordering::SeqCst)
}

/// Whether the queue still holds the waker of `counter` (uncalled).
fn held(counter: &Arc<AtomicUsize>) -> bool {
    Arc::strong_count(counter) > 1
}

/// A queue with topics `a` and `b` (one partition each) and a consumer of `a` that read
/// everything there is (nothing).
fn reader_of_a() -> (EmbeddedQueue, Box<dyn Consumer>) {
    let q = EmbeddedQueue::new();
    q.create_topic(&spec("a", 1)).unwrap();
    q.create_topic(&spec("b", 1)).unwrap();
    let mut c = q.assign("g", "reader", &TopicPartition::new("a", 0)).unwrap();
    assert!(c.poll(Duration::ZERO, 10).unwrap().is_empty());
    (q, c)
}

#[test]
fn a_record_appended_to_a_read_topic_calls_the_waker_once() {
    let (q, mut c) = reader_of_a();
    let (waker, counter) = counting_waker();
    assert!(c.on_records(waker), "the embedded queue calls back");
    assert_eq!((calls(&counter), held(&counter)), (0, true), "nothing to read yet");
    put(&q, "a", 0, None, "r0");
    assert_eq!((calls(&counter), held(&counter)), (1, false), "called on append, then let go");
    put(&q, "a", 0, None, "r1");
    assert_eq!(calls(&counter), 1, "a waker is called once");
    let records: Vec<_> = c.poll(Duration::ZERO, 10).unwrap();
    assert!(matches!(&records[..], [ConsumerEvent::Records(r)] if r.len() == 2), "{records:?}");
}

#[test]
fn records_already_waiting_call_the_waker_before_on_records_returns() {
    let (q, mut c) = reader_of_a();
    put(&q, "a", 0, None, "r0");
    let (waker, counter) = counting_waker();
    assert!(c.on_records(waker));
    assert_eq!((calls(&counter), held(&counter)), (1, false));
}

#[test]
fn a_record_read_from_the_committed_offset_counts_as_waiting() {
    // A fresh consumer has no position yet: it starts at the group's committed offset.
    let q = EmbeddedQueue::new();
    q.create_topic(&spec("a", 1)).unwrap();
    put(&q, "a", 0, None, "r0");
    put(&q, "a", 0, None, "r1");
    let tp = TopicPartition::new("a", 0);
    q.assign("g", "committer", &tp).unwrap().commit(&tp, 2).unwrap();
    let mut c = q.assign("g", "reader", &tp).unwrap();
    let (waker, counter) = counting_waker();
    assert!(c.on_records(waker));
    assert_eq!(calls(&counter), 0, "everything up to the committed offset was read");
    put(&q, "a", 0, None, "r2");
    assert_eq!(calls(&counter), 1);
}

#[test]
fn records_of_other_topics_do_not_call_the_waker() {
    let (q, mut c) = reader_of_a();
    let (waker, counter) = counting_waker();
    assert!(c.on_records(waker));
    put(&q, "b", 0, None, "elsewhere");
    q.create_topic(&spec("c", 1)).unwrap();
    assert_eq!((calls(&counter), held(&counter)), (0, true));
    put(&q, "a", 0, None, "here");
    assert_eq!(calls(&counter), 1);
}

#[test]
fn a_poll_forgets_the_waker_uncalled() {
    let (q, mut c) = reader_of_a();
    let (waker, counter) = counting_waker();
    assert!(c.on_records(waker));
    assert!(c.poll(Duration::ZERO, 10).unwrap().is_empty());
    assert!(!held(&counter), "the poll let the waker go");
    put(&q, "a", 0, None, "r0");
    assert_eq!(calls(&counter), 0);
}

#[test]
fn a_new_waker_replaces_the_old_one() {
    let (q, mut c) = reader_of_a();
    let (first, first_counter) = counting_waker();
    let (second, second_counter) = counting_waker();
    assert!(c.on_records(first));
    assert!(c.on_records(second));
    assert!(!held(&first_counter), "the first waker was let go");
    put(&q, "a", 0, None, "r0");
    assert_eq!((calls(&first_counter), calls(&second_counter)), (0, 1));
}

#[test]
fn a_dropped_consumer_forgets_its_waker_uncalled() {
    let (q, mut c) = reader_of_a();
    let (waker, counter) = counting_waker();
    assert!(c.on_records(waker));
    drop(c);
    assert!(!held(&counter), "the drop let the waker go");
    put(&q, "a", 0, None, "r0");
    assert_eq!(calls(&counter), 0);
}

#[test]
fn a_deleted_topic_calls_the_waker_of_its_readers() {
    let (q, mut c) = reader_of_a();
    let (waker, counter) = counting_waker();
    assert!(c.on_records(waker));
    q.delete_topic("b").unwrap();
    assert_eq!(calls(&counter), 0);
    q.delete_topic("a").unwrap();
    assert_eq!(calls(&counter), 1);
}

#[test]
fn partition_changes_call_the_waker_of_a_group_member() {
    let q = EmbeddedQueue::new();
    q.create_topic(&spec("m", 2)).unwrap();
    let topics = ["m".to_string()];
    let mut first = q.subscribe("g", "first", &topics).unwrap();
    assert_eq!(poll_assigned(first.as_mut()).len(), 2);
    assert!(first.poll(Duration::ZERO, 10).unwrap().is_empty());

    // A second member takes one partition away from the first.
    let (waker, counter) = counting_waker();
    assert!(first.on_records(waker));
    assert_eq!(calls(&counter), 0);
    let mut second = q.subscribe("g", "second", &topics).unwrap();
    assert_eq!(calls(&counter), 1, "a revocation is news for the first member");
    let events = first.poll(Duration::ZERO, 10).unwrap();
    assert!(events.iter().any(|e| matches!(e, ConsumerEvent::Revoked(_))), "{events:?}");
    assert_eq!(poll_assigned(second.as_mut()).len(), 1);
    assert!(first.poll(Duration::ZERO, 10).unwrap().is_empty());

    // The second member leaves: its partition comes back to the first.
    let (waker, counter) = counting_waker();
    assert!(first.on_records(waker));
    assert_eq!(calls(&counter), 0);
    drop(second);
    assert_eq!(calls(&counter), 1, "an assignment is news for the first member");
    assert_eq!(poll_assigned(first.as_mut()).len(), 1);
}
