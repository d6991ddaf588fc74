//! The producer exists only while the integration has work (issue 13, section 5), and the
//! driver reports its connectivity (issue 13, section 3), against rdkafka's mock cluster.

use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use trib_plugin_api::{
    abi::capabilities,
    driver::{Connectivity, Driver, Outcome},
};

use super::support::{config, message, started};
use crate::driver::{KafkaDriver, IDLE_CLOSE_FOR_TESTS};

/// Calls `connectivity` (as the executor does, about once a second between batches) every
/// 20 ms until `done` holds or `within` has passed; whether it held.
fn poll_until(driver: &KafkaDriver, within: Duration, done: impl Fn(&KafkaDriver) -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        let _ = driver.connectivity();
        if done(driver) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn deliver_one(driver: &mut KafkaDriver) -> Vec<Outcome> {
    driver.process(&[message(b"x")], Instant::now() + Duration::from_secs(20))
}

#[test]
fn metadata_announces_connectivity() {
    assert_ne!(KafkaDriver::metadata().capabilities & capabilities::CONNECTIVITY, 0);
}

#[test]
fn the_producer_exists_only_while_the_integration_has_work() {
    IDLE_CLOSE_FOR_TESTS.set(Some(Duration::from_millis(300)));
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("idle", 1, 1).expect("topic");
    let mut driver = started(&config(&mock.bootstrap_servers(), "idle", ""));
    IDLE_CLOSE_FOR_TESTS.set(None);
    assert!(!driver.has_producer(), "start creates no producer");
    assert!(!poll_until(&driver, Duration::from_millis(100), KafkaDriver::has_producer), "nor does connectivity");

    assert_eq!(deliver_one(&mut driver), vec![Outcome::Delivered]);
    assert!(driver.has_producer(), "the first batch creates the producer");
    let _ = driver.connectivity();
    assert!(driver.has_producer(), "a producer used just now is kept");

    assert!(poll_until(&driver, Duration::from_secs(5), |d| !d.has_producer()), "idle producer not closed");

    assert_eq!(deliver_one(&mut driver), vec![Outcome::Delivered], "a later batch gets a new producer");
    assert!(driver.has_producer());
    driver.stop();
    assert!(!driver.has_producer());
}

#[test]
fn pipelined_batches_keep_the_producer_until_collected() {
    IDLE_CLOSE_FOR_TESTS.set(Some(Duration::ZERO));
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("idle-pipe", 1, 1).expect("topic");
    let mut driver = started(&config(&mock.bootstrap_servers(), "idle-pipe", ""));
    IDLE_CLOSE_FOR_TESTS.set(None);
    let deadline = Instant::now() + Duration::from_secs(20);
    for payload in [b"1", b"2"] {
        assert!(matches!(driver.submit(&[message(payload)], deadline), trib_plugin_api::driver::Submitted::Pending));
    }
    // With an idle period of zero, only pending work keeps the producer.
    let _ = driver.connectivity();
    assert!(driver.has_producer(), "a producer with pending batches is never closed");
    for _ in 0..2 {
        assert_eq!(driver.collect(deadline), Some(vec![Outcome::Delivered]));
    }
    assert!(poll_until(&driver, Duration::from_secs(5), |d| !d.has_producer()), "idle producer not closed");
}

#[test]
fn connectivity_follows_deliveries_and_broker_failures() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("links", 1, 1).expect("topic");
    let mut driver = started(&config(&mock.bootstrap_servers(), "links", ""));
    assert_eq!(driver.connectivity(), None, "nothing is known before the first batch");

    assert_eq!(deliver_one(&mut driver), vec![Outcome::Delivered]);
    assert_eq!(driver.connectivity(), Some(Connectivity::Connected));

    mock.broker_down(1).expect("broker down");
    let down = |d: &KafkaDriver| matches!(d.connectivity(), Some(Connectivity::Disconnected(_)));
    assert!(poll_until(&driver, Duration::from_secs(10), down), "still {:?}", driver.connectivity());
    let Some(Connectivity::Disconnected(reason)) = driver.connectivity() else { unreachable!() };
    assert!(reason.starts_with("no broker reachable: ") && reason.contains("brokers are down"), "{reason}");

    mock.broker_up(1).expect("broker up");
    assert_eq!(deliver_one(&mut driver), vec![Outcome::Delivered]);
    assert_eq!(driver.connectivity(), Some(Connectivity::Connected));
}

#[test]
fn connectivity_keeps_the_last_state_once_the_producer_is_closed() {
    IDLE_CLOSE_FOR_TESTS.set(Some(Duration::from_millis(200)));
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("kept", 1, 1).expect("topic");
    let mut driver = started(&config(&mock.bootstrap_servers(), "kept", ""));
    IDLE_CLOSE_FOR_TESTS.set(None);
    assert_eq!(deliver_one(&mut driver), vec![Outcome::Delivered]);
    assert!(poll_until(&driver, Duration::from_secs(5), |d| !d.has_producer()), "idle producer not closed");
    assert_eq!(driver.connectivity(), Some(Connectivity::Connected));
}

#[test]
fn start_still_refuses_what_librdkafka_refuses() {
    let mut driver = KafkaDriver::create(trib_plugin_api::driver::Host::detached()).expect("create");
    let text = config("127.0.0.1:9092", "t", r#""otherProperties":{"no.such.property":"1"}"#);
    let error = driver.start(&super::support::start_config(&text)).unwrap_err();
    assert_eq!(error.kind, trib_plugin_api::driver::ErrorKind::Config);
    assert!(error.message.contains("No such configuration property"), "{}", error.message);
    assert!(!driver.has_producer());
}
