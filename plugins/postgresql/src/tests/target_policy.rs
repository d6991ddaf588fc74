//! The host's target policy: a refused server is never connected to, and the error names the
//! rule. No database needed.

use std::net::TcpListener;

use serde_json::json;
use trib_plugin_api::{
    abi::capabilities,
    driver::{Driver, ErrorKind},
};
use trib_plugin_testkit::target::deny_local_port;

use super::{config, driver, start_config};
use crate::driver::PostgresqlDriver;

/// The error of a connection check against `host:port`, a CONNECTION error.
fn refused(host: &str, port: u16) -> String {
    let text = config(json!({"host": host, "port": port, "sslMode": "disable", "connectTimeoutMs": 1000})).to_string();
    let error = driver().check_connection(&start_config(&text)).expect_err("check must be refused");
    assert_eq!(error.kind, ErrorKind::Connection, "{}", error.message);
    error.message
}

#[test]
fn metadata_announces_the_target_policy() {
    assert_ne!(PostgresqlDriver::metadata().capabilities & capabilities::TARGET_POLICY, 0);
}

#[test]
fn the_cloud_metadata_address_is_refused_by_default() {
    let text = refused("169.254.169.254", 5432);
    assert!(text.contains("169.254.169.254:5432") && text.contains("169.254.0.0/16"), "{text}");
}

#[test]
fn the_hosts_policy_reaches_the_driver_and_nothing_connects_to_a_denied_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    // The host denies every address of this machine on the port (as it does for its own
    // listeners), through the module operation, as the executor sends it.
    deny_local_port::<PostgresqlDriver>(port, "own listener: test").expect("the driver takes the policy");
    for host in ["127.0.0.1", "localhost"] {
        let text = refused(host, port);
        assert!(text.contains(&format!("local:{port}")) && text.contains("own listener: test"), "{host}: {text}");
    }
    let accepted = listener.accept();
    assert!(accepted.is_err(), "nothing may connect to a refused server: {accepted:?}");
}
