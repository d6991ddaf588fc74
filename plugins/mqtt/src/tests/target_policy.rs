//! The host's target policy: a refused broker is never connected to, and the error names the rule.

use std::{
    net::{SocketAddr, TcpListener},
    time::{Duration, Instant},
};

use serde_json::json;
use trib_plugin_api::{
    abi::{capabilities, log_level},
    driver::{Connectivity, Driver, Host},
};
use trib_plugin_testkit::{
    target::{deny_local_port, expect_refused},
    FakeHost,
};

use super::{
    proxy::Proxy,
    support::{embedded, start_config, unique, PATIENCE},
};
use crate::driver::MqttDriver;

/// A configuration for `host:port` that gives up quickly.
fn config(host: &str, port: u16) -> String {
    let config = json!({
        "host": host, "port": port, "clientId": unique("policy-test"), "topicName": "t",
        "connectTimeoutSec": 1, "reconnectPeriodSec": 1, "credentials": {"type": "anonymous"}, "ssl": false,
    });
    config.to_string()
}

/// The errors of `start` and of a connection check against `host:port`, both CONNECTION.
fn refused(host: &str, port: u16) -> [String; 2] {
    expect_refused::<MqttDriver>(&start_config(&config(host, port)))
}

#[test]
fn metadata_announces_the_target_policy() {
    assert_ne!(MqttDriver::metadata().capabilities & capabilities::TARGET_POLICY, 0);
}

#[test]
fn the_cloud_metadata_address_is_refused_by_default() {
    for text in refused("169.254.169.254", 1883) {
        assert!(text.contains("169.254.169.254:1883") && text.contains("169.254.0.0/16"), "{text}");
    }
    for text in refused("::ffff:169.254.169.254", 1883) {
        assert!(text.contains("169.254.0.0/16"), "{text}");
    }
}

#[test]
fn the_hosts_policy_reaches_the_driver_and_nothing_connects_to_a_denied_broker() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    // The host denies every address of this machine on the port (as it does for its own
    // listeners), through the module operation, as the executor sends it.
    deny_local_port::<MqttDriver>(port, "own listener: test").expect("the driver takes the policy");
    for host in ["127.0.0.1", "localhost"] {
        for text in refused(host, port) {
            assert!(text.contains(&format!("local:{port}")) && text.contains("own listener: test"), "{host}: {text}");
        }
    }
    let accepted = listener.accept();
    assert!(accepted.is_err(), "nothing may connect to a refused broker: {accepted:?}");
    // Another broker on this machine is still reachable.
    let target = embedded();
    let mut driver = MqttDriver::create(Host::detached()).expect("create");
    let text = config(&target.host, target.port(4));
    assert_eq!(driver.check_connection(&start_config(&text)), Ok(()));
}

/// A connection whose target comes to be denied (here: the host's policy changes; in the wild:
/// its name comes to resolve elsewhere) is not re-established after it drops.
#[test]
fn a_dropped_connection_is_not_reestablished_to_a_target_denied_since() {
    let target = embedded();
    let upstream: SocketAddr = format!("{}:{}", target.host, target.port(4)).parse().expect("broker address");
    let proxy = Proxy::start(upstream);
    let fake = FakeHost::new();
    let mut driver = MqttDriver::create(fake.host()).expect("create");
    driver.start(&start_config(&config("127.0.0.1", proxy.port))).expect("the proxy is allowed at start");
    deny_local_port::<MqttDriver>(proxy.port, "own listener: reconnect test").expect("the driver takes the policy");
    // The line drops and the proxy takes connections again at once: only the policy keeps the
    // driver from reconnecting.
    proxy.cut();
    proxy.restore();
    let needle = format!("local:{}", proxy.port);
    let waited = Instant::now();
    while !fake.lines_at(log_level::WARN).iter().any(|l| l.starts_with("Not reconnecting") && l.contains(&needle)) {
        assert!(waited.elapsed() < PATIENCE, "no refused reconnect was logged: {:?}", fake.lines());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(matches!(driver.connectivity(), Some(Connectivity::Disconnected(_))), "{:?}", driver.connectivity());
    driver.stop();
}
