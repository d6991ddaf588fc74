//! The byte bounds of session queues, the process-wide budget and the drop policy.

use std::sync::Arc;

use bytes::Bytes;

use super::queue::{held_size, QueueLimits};
use super::{Delivery, Session};
use crate::message::{PublishedMessage, RoutedMessage};
use crate::metrics::DropReason;
use crate::protocol::QoS;

/// A message whose payload is `tag` followed by zeros up to 1000 bytes.
fn message(tag: u8, qos: QoS) -> Arc<RoutedMessage> {
    let mut payload = vec![0u8; 1000];
    payload[0] = tag;
    RoutedMessage::new(PublishedMessage::plain("t", Bytes::from(payload), qos, false, "publisher"))
}

fn delivery(tag: u8, qos: QoS) -> Delivery {
    Delivery { msg: message(tag, qos), qos, retain: false, sub_ids: Vec::new() }
}

/// The size every test message counts.
fn unit() -> usize {
    held_size(&message(0, QoS::AtMostOnce))
}

/// A connected session (QoS 0 is queued only for connected sessions).
fn connected(limits: &QueueLimits) -> Arc<Session> {
    let s = Session::new("c".into(), limits.clone());
    s.state.lock().conn_id = Some(1);
    s
}

/// The tags and QoS of the queued messages, oldest first.
fn queued(s: &Session) -> Vec<(u8, QoS)> {
    let mut st = s.state.lock();
    let mut out = Vec::new();
    while let Some(d) = st.pop_queued() {
        out.push((d.msg.msg.payload[0], d.qos));
        st.release(&d);
    }
    out
}

#[test]
fn the_byte_bound_drops_the_oldest_message() {
    let limits = QueueLimits::new(100, 3 * unit(), usize::MAX);
    let s = connected(&limits);
    for tag in 1..=5 {
        assert!(s.enqueue(delivery(tag, QoS::AtLeastOnce)));
    }
    assert_eq!(s.state.lock().held_bytes(), 3 * unit());
    assert_eq!(limits.budget.used_bytes(), 3 * unit());
    assert_eq!(limits.budget.drop_count(DropReason::SessionBytes), 2);
    assert_eq!(s.state.lock().dropped, 2);
    let q1 = QoS::AtLeastOnce;
    assert_eq!(queued(&s), vec![(3, q1), (4, q1), (5, q1)]);
    assert_eq!(limits.budget.used_bytes(), 0);
}

/// A session with message `tag` in flight.
fn with_one_in_flight(limits: &QueueLimits, tag: u8) -> Arc<Session> {
    let s = connected(limits);
    assert!(s.enqueue(delivery(tag, QoS::AtLeastOnce)));
    send_one(&s);
    s
}

/// Moves the oldest queued message into the in-flight window, as a connection sending it does.
fn send_one(s: &Session) -> u16 {
    let mut st = s.state.lock();
    let d = st.pop_queued().expect("a queued message");
    let pkid = st.out.alloc();
    st.out.push(pkid, d);
    pkid
}

#[test]
fn the_message_bound_counts_queued_messages_only() {
    let limits = QueueLimits::new(3, usize::MAX, usize::MAX);
    let s = with_one_in_flight(&limits, 9);
    for tag in 1..=4 {
        assert!(s.enqueue(delivery(tag, QoS::AtLeastOnce)));
    }
    assert_eq!(limits.budget.drop_count(DropReason::SessionMessages), 1);
    assert_eq!(s.state.lock().held_messages(), 4);
    let q1 = QoS::AtLeastOnce;
    assert_eq!(queued(&s), vec![(2, q1), (3, q1), (4, q1)]);
}

#[test]
fn the_byte_bound_counts_messages_in_flight_too() {
    let limits = QueueLimits::new(100, 3 * unit(), usize::MAX);
    let s = with_one_in_flight(&limits, 9);
    for tag in 1..=3 {
        assert!(s.enqueue(delivery(tag, QoS::AtLeastOnce)));
    }
    assert_eq!(limits.budget.drop_count(DropReason::SessionBytes), 1);
    assert_eq!(s.state.lock().held_bytes(), 3 * unit());
    assert_eq!(limits.budget.used_bytes(), 3 * unit());
    let q1 = QoS::AtLeastOnce;
    assert_eq!(queued(&s), vec![(2, q1), (3, q1)]);
}

#[test]
fn qos_0_messages_are_dropped_first_and_never_push_out_qos_1() {
    let limits = QueueLimits::new(100, 3 * unit(), usize::MAX);
    let s = connected(&limits);
    let (q0, q1) = (QoS::AtMostOnce, QoS::AtLeastOnce);
    assert!(s.enqueue(delivery(1, q1)));
    assert!(s.enqueue(delivery(2, q0)));
    assert!(s.enqueue(delivery(3, q1)));
    // Full: a QoS 1 message pushes out the QoS 0 one although it is not the oldest.
    assert!(s.enqueue(delivery(4, q1)));
    // Full of QoS 1: a QoS 0 message is refused rather than pushing one out.
    assert!(!s.enqueue(delivery(5, q0)));
    assert_eq!(limits.budget.drop_count(DropReason::SessionBytes), 2);
    assert_eq!(queued(&s), vec![(1, q1), (3, q1), (4, q1)]);
}

#[test]
fn a_message_larger_than_the_session_bound_is_refused() {
    let limits = QueueLimits::new(100, unit() - 1, usize::MAX);
    let s = connected(&limits);
    assert!(!s.enqueue(delivery(1, QoS::AtLeastOnce)));
    assert_eq!(limits.budget.drop_count(DropReason::SessionBytes), 1);
    assert_eq!(limits.budget.used_bytes(), 0);
}

#[test]
fn the_budget_bounds_all_sessions_and_a_full_session_gives_way_to_its_own_new_messages() {
    let limits = QueueLimits::new(100, 10 * unit(), 3 * unit());
    let slow = connected(&limits);
    let other = Session::new("other".into(), limits.clone());
    other.state.lock().conn_id = Some(2);
    for tag in 1..=3 {
        assert!(slow.enqueue(delivery(tag, QoS::AtLeastOnce)));
    }
    // The budget is full and `other` holds nothing it could drop.
    assert!(!other.enqueue(delivery(10, QoS::AtLeastOnce)));
    assert_eq!(limits.budget.drop_count(DropReason::MemoryBudget), 1);
    // `slow` drops its own oldest message for its new one.
    assert!(slow.enqueue(delivery(4, QoS::AtLeastOnce)));
    assert_eq!(limits.budget.drop_count(DropReason::MemoryBudget), 2);
    assert_eq!(limits.budget.used_bytes(), 3 * unit());
    let q1 = QoS::AtLeastOnce;
    assert_eq!(queued(&slow), vec![(2, q1), (3, q1), (4, q1)]);
    assert!(other.enqueue(delivery(11, QoS::AtLeastOnce)));
}

#[test]
fn bytes_come_back_when_acknowledged_and_when_the_session_goes() {
    let limits = QueueLimits::new(100, 10 * unit(), 10 * unit());
    let s = connected(&limits);
    for tag in 1..=4 {
        assert!(s.enqueue(delivery(tag, QoS::AtLeastOnce)));
    }
    let pkid = send_one(&s);
    assert_eq!(limits.budget.used_bytes(), 4 * unit(), "a message in flight still counts");
    assert!(s.state.lock().out.ack(pkid));
    assert_eq!(limits.budget.used_bytes(), 3 * unit());
    assert_eq!(limits.budget.held_messages(), 3);
    send_one(&s);
    drop(s);
    assert_eq!(limits.budget.used_bytes(), 0);
    assert_eq!(limits.budget.held_messages(), 0);
}

#[test]
fn offline_sessions_drop_qos_0_and_count_it() {
    let limits = QueueLimits::new(100, 10 * unit(), 10 * unit());
    let s = Session::new("off".into(), limits.clone());
    assert!(!s.enqueue(delivery(1, QoS::AtMostOnce)));
    assert!(s.enqueue(delivery(2, QoS::AtLeastOnce)));
    assert_eq!(limits.budget.drop_count(DropReason::Offline), 1);
}
