//! The host's target policy: a refused bootstrap server is never connected to, and the error
//! names the rule.

use rdkafka::mocking::MockCluster;
use trib_plugin_api::{
    abi::capabilities,
    driver::{Driver, Host},
};
use trib_plugin_testkit::target::{deny_local_port, expect_refused};

use super::support::{config, start_config};
use crate::driver::KafkaDriver;

/// The errors of `start` and of a connection check with `bootstrap`, both CONNECTION.
fn refused(bootstrap: &str) -> [String; 2] {
    expect_refused::<KafkaDriver>(&start_config(&config(bootstrap, "t", "")))
}

#[test]
fn metadata_announces_the_target_policy() {
    assert_ne!(KafkaDriver::metadata().capabilities & capabilities::TARGET_POLICY, 0);
}

#[test]
fn the_cloud_metadata_address_is_refused_by_default() {
    for text in refused("10.0.0.1:9092,169.254.169.254:9092") {
        assert!(text.contains("169.254.169.254:9092") && text.contains("169.254.0.0/16"), "{text}");
    }
}

#[test]
fn the_hosts_policy_reaches_the_driver_and_applies_to_every_bootstrap_server() {
    let denied = MockCluster::new(1).expect("mock cluster");
    let port = denied.bootstrap_servers().rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
    let port = port.expect("mock cluster port");
    // The host denies every address of this machine on the port (as it does for its own
    // listeners), through the module operation, as the executor sends it.
    deny_local_port::<KafkaDriver>(port, "own listener: test").expect("the driver takes the policy");
    for bootstrap in [denied.bootstrap_servers(), format!("localhost:{port}")] {
        for text in refused(&bootstrap) {
            assert!(text.contains(&format!("local:{port}")) && text.contains("own listener: test"), "{text}");
        }
    }
    // Another cluster on this machine is still reachable.
    let allowed = MockCluster::new(1).expect("mock cluster");
    allowed.create_topic("t", 1, 1).expect("topic");
    let mut driver = KafkaDriver::create(Host::detached()).expect("create");
    let text = config(&allowed.bootstrap_servers(), "t", "");
    assert_eq!(driver.check_connection(&start_config(&text)), Ok(()));
}
