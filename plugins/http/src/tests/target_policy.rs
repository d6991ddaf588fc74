//! The host's target policy: refused addresses get no request, with the rule in the reason.

use std::time::Instant;

use serde_json::json;
use trib_plugin_api::{
    abi::capabilities,
    driver::{Driver, Host, Outcome},
};
use trib_plugin_testkit::target::deny_local_port;

use super::{config, message, rejected_reason, start_config, started, GENEROUS};
use crate::{driver::HttpDriver, test_server::TestServer};

/// The outcome of one message to `url` and the error of a connection check against it.
fn refused(url: &str) -> (String, String) {
    let configuration = config(url, json!({})).to_string();
    let mut driver = started(&config(url, json!({})));
    let outcomes = driver.process(&[message(b"{}")], Instant::now() + GENEROUS);
    driver.stop();
    let reason = rejected_reason(&outcomes[0]).to_string();
    let mut checker = HttpDriver::create(Host::detached()).expect("create");
    let check = checker.check_connection(&start_config(&configuration)).expect_err("check must fail");
    (reason, check.message)
}

#[test]
fn metadata_announces_the_target_policy() {
    assert_ne!(HttpDriver::metadata().capabilities & capabilities::TARGET_POLICY, 0);
}

#[test]
fn the_cloud_metadata_address_is_refused_by_default() {
    let (reason, check) = refused("http://169.254.169.254/latest/meta-data/");
    for text in [&reason, &check] {
        assert!(text.contains("169.254.169.254:80") && text.contains("169.254.0.0/16"), "{text}");
    }
}

#[test]
fn an_ipv4_mapped_metadata_address_is_refused_by_default() {
    let (reason, _) = refused("http://[::ffff:169.254.169.254]:8080/");
    assert!(reason.contains("169.254.0.0/16"), "{reason}");
}

#[test]
fn the_hosts_policy_reaches_the_driver_and_applies_to_resolved_names() {
    let server = TestServer::status(200);
    let port = server.url("/").rsplit_once(':').and_then(|(_, p)| p.trim_end_matches('/').parse::<u16>().ok());
    let port = port.expect("test server port");
    // Before: the server is reachable.
    let before = super::deliver(&config(&server.url("/before"), json!({})), &[b"{}"]);
    assert_eq!(before, vec![Outcome::Delivered]);
    // The host denies every address of this machine on the port (as it does for its own
    // listeners), through the module operation, as the executor sends it.
    deny_local_port::<HttpDriver>(port, "own listener: test").expect("the driver takes the policy");
    // A name that resolves to this machine is refused, and so is the literal address.
    for url in [format!("http://localhost:{port}/after"), server.url("/after")] {
        let (reason, check) = refused(&url);
        for text in [&reason, &check] {
            assert!(text.contains(&format!("local:{port}")) && text.contains("own listener: test"), "{url}: {text}");
        }
    }
    let paths: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(paths, vec!["/before".to_string()], "nothing may reach a refused target");
}
