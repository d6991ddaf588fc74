//! What each event puts on `tbmq.ie.uplink`, read back from an embedded queue: TBMQ's lifecycle
//! names, the error method, the statistics fields and the rate-limit notice.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use prost::Message as _;
use uuid::Uuid;

use super::{ErrorMethod, Events};
use crate::{
    queue::{embedded::EmbeddedQueue, Consumer, ConsumerEvent, Queue},
    stats::Stats,
    topics::TopicNames,
    wire::{uuid_to_bits, ComponentLifecycleEvent as Lc, IntegrationEventProto, UplinkIntegrationMsgProto},
};

/// An [`Events`] on a fresh embedded queue, and a consumer of what it sends.
struct Uplink {
    events: Events,
    consumer: Box<dyn Consumer>,
}

impl Uplink {
    fn new(error_limits: Option<&str>) -> Self {
        let (queue, topics) = (EmbeddedQueue::new(), TopicNames::default());
        queue.create_topic(&topics.uplink_spec().unwrap()).unwrap();
        let consumer = queue.subscribe("test-broker", "test", &[topics.uplink()]).unwrap();
        let events = Events::new(queue.producer(), topics.uplink(), "ie-t".into(), error_limits, Arc::default());
        Uplink { events, consumer }
    }

    /// The integration events sent so far, waiting until there are `n`.
    fn received(&mut self, n: usize) -> Vec<IntegrationEventProto> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < n {
            assert!(Instant::now() < deadline, "only {} of {n} events: {got:?}", got.len());
            for e in self.consumer.poll(Duration::from_millis(50), 100).unwrap() {
                if let ConsumerEvent::Records(rs) = e {
                    got.extend(
                        rs.into_iter().filter_map(|r| UplinkIntegrationMsgProto::decode(r.value).unwrap().event_proto),
                    );
                }
            }
        }
        got
    }
}

/// Sends one lifecycle event and checks its `(lcEventType, success, error)` on the wire.
fn check_lifecycle(event: Lc, error: Option<&str>, expected: (&str, bool, Option<&str>)) {
    let mut uplink = Uplink::new(None);
    let id = Uuid::new_v4();
    uplink.events.lifecycle(id, event, error);
    let sent = uplink.received(1).remove(0);
    assert_eq!((sent.event_source_id_msb, sent.event_source_id_lsb), uuid_to_bits(id));
    assert_eq!(sent.service_id, "ie-t");
    let lc = sent.lifecycle.expect("a lifecycle event");
    assert_eq!((lc.lc_event_type.as_str(), lc.success, lc.error.as_deref()), expected, "{event:?}");
}

#[test]
fn started_on_the_wire() {
    check_lifecycle(Lc::Started, None, ("STARTED", true, None));
}

#[test]
fn stopped_on_the_wire() {
    check_lifecycle(Lc::Stopped, None, ("STOPPED", true, None));
}

#[test]
fn failed_on_the_wire_carries_the_error() {
    check_lifecycle(Lc::Failed, Some("connection refused"), ("FAILED", false, Some("connection refused")));
}

#[test]
fn reinit_on_the_wire() {
    check_lifecycle(Lc::Reinit, None, ("REINIT", true, None));
}

#[test]
fn error_method_name() {
    assert_eq!(ErrorMethod::OnMsgProcess.name(), "onMsgProcess");
}

#[test]
fn an_error_event_names_its_method_and_error() {
    let mut uplink = Uplink::new(None);
    uplink.events.error(Uuid::new_v4(), ErrorMethod::OnMsgProcess, "retry: 503");
    let error = uplink.received(1).remove(0).error.expect("an error event");
    assert_eq!((error.method.as_str(), error.error.as_deref()), ("onMsgProcess", Some("retry: 503")));
}

#[test]
fn a_statistics_event_carries_both_counts() {
    let mut uplink = Uplink::new(None);
    uplink.events.statistics(Uuid::new_v4(), 7, 2);
    let stats = uplink.received(1).remove(0).statistics.expect("a statistics event");
    assert_eq!((stats.messages_processed, stats.errors_occurred), (7, 2));
}

#[test]
fn past_the_rate_limit_one_notice_replaces_the_errors() {
    let mut uplink = Uplink::new(Some("1:3600"));
    let id = Uuid::new_v4();
    for text in ["first", "second", "third"] {
        uplink.events.error(id, ErrorMethod::OnMsgProcess, text);
    }
    uplink.events.statistics(id, 0, 3);
    let texts: Vec<Option<String>> = uplink.received(3).into_iter().map(|e| e.error.and_then(|e| e.error)).collect();
    let notice = "Integration error rate limits reached!";
    assert_eq!(texts, [Some("first".to_string()), Some(notice.to_string()), None], "the third error is dropped");
}

#[test]
fn stored_events_are_counted_in_the_uplink_stats() {
    // The uplink-ack thread counts stored events into the executor's stats.
    let (queue, topics) = (EmbeddedQueue::new(), TopicNames::default());
    queue.create_topic(&topics.uplink_spec().unwrap()).unwrap();
    let stats = Arc::new(Stats::default());
    let events = Events::new(queue.producer(), topics.uplink(), "ie-t".into(), None, stats.clone());
    events.statistics(Uuid::new_v4(), 1, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.uplink_successful.load(std::sync::atomic::Ordering::Relaxed) != 1 {
        assert!(Instant::now() < deadline, "the stored event was not counted");
        std::thread::sleep(Duration::from_millis(10));
    }
}
