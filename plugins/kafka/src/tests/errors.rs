//! Retry vs Rejected as the driver reports them: broker errors injected into the mock cluster,
//! librdkafka's own size check, and calls outside the started state.

use std::time::{Duration, Instant};

use rdkafka::{mocking::MockCluster, types::RDKafkaApiKey, types::RDKafkaRespErr as Resp};
use trib_plugin_api::driver::{Driver, ErrorKind, Host, Outcome};

use super::support::{config, deliver, message, peers, start_config, started};
use crate::driver::KafkaDriver;

/// Injects `error` into the next produce requests of a mock cluster and returns the outcome.
fn injected(error: Resp) -> Outcome {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("injected", 1, 1).expect("topic");
    mock.request_errors(RDKafkaApiKey::Produce, &[error; 5]);
    let mut outcomes = deliver(&config(&mock.bootstrap_servers(), "injected", ""), &[message(b"x")]);
    outcomes.pop().expect("one outcome")
}

fn check(error: Resp, rejected: bool) {
    let outcome = injected(error);
    match outcome {
        Outcome::Rejected(_) if rejected => {}
        Outcome::Retry(_) if !rejected => {}
        other => panic!("{error:?}: expected rejected={rejected}, got {other:?}"),
    }
}

#[test]
fn message_too_large_is_rejected() {
    check(Resp::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, true);
}

#[test]
fn topic_authorization_failure_is_rejected() {
    check(Resp::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, true);
}

#[test]
fn invalid_record_is_rejected() {
    check(Resp::RD_KAFKA_RESP_ERR_INVALID_RECORD, true);
}

#[test]
fn not_enough_replicas_is_retried() {
    check(Resp::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, false);
}

#[test]
fn leader_change_is_handled_inside_librdkafka() {
    // librdkafka refreshes metadata and resends after NOT_LEADER without using up `retries`.
    assert_eq!(injected(Resp::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION), Outcome::Delivered);
}

#[test]
fn record_over_message_max_bytes_is_rejected_locally() {
    static BIG: [u8; 4096] = [b'a'; 4096];
    for peer in peers() {
        let topic = peer.topic("big");
        let extra = r#""sendOnlyMsgPayload":true,"otherProperties":{"message.max.bytes":"2000"}"#;
        let outcomes = deliver(&config(&peer.bootstrap(), &topic, extra), &[message(&BIG), message(b"small")]);
        assert!(matches!(&outcomes[0], Outcome::Rejected(r) if r.contains("too large")), "{outcomes:?}");
        assert_eq!(outcomes[1], Outcome::Delivered);
    }
}

#[test]
fn process_before_start_and_after_stop_is_retry() {
    let mut driver = KafkaDriver::create(Host::detached()).expect("create");
    let deadline = Instant::now() + Duration::from_secs(1);
    assert!(matches!(&driver.process(&[message(b"1")], deadline)[..], [Outcome::Retry(_)]));
    let mock = MockCluster::new(1).expect("mock cluster");
    let mut driver = started(&config(&mock.bootstrap_servers(), "t", ""));
    driver.stop();
    driver.stop();
    assert!(matches!(&driver.process(&[message(b"1")], deadline)[..], [Outcome::Retry(_)]));
}

#[test]
fn second_start_is_a_state_error() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let cfg = config(&mock.bootstrap_servers(), "t", "");
    let mut driver = started(&cfg);
    assert_eq!(driver.start(&start_config(&cfg)).map_err(|e| e.kind), Err(ErrorKind::State));
}

#[test]
fn passed_deadline_sends_nothing() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let mut driver = started(&config(&mock.bootstrap_servers(), "t", ""));
    let outcomes = driver.process(&[message(b"1")], Instant::now());
    assert!(matches!(&outcomes[..], [Outcome::Timeout(_)]), "{outcomes:?}");
}
