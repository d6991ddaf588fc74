//! Outcome classification (statuses through a real server, errors as a pure table), keep-alive,
//! and the connection check.

use serde_json::json;
use trib_plugin_api::driver::{Driver, ErrorKind, Host, Outcome};

use super::{config, deliver, single, start_config};
use crate::{
    config::StatusCodes,
    driver::HttpDriver,
    retry::{classify, Exchange},
    test_server::TestServer,
};

/// Delivers one message to a server answering `status` and checks the outcome; `reason` of
/// Retry and Rejected is the expected text with `{url}` standing for the endpoint.
fn check(status: u16, expected: Outcome) {
    let server = TestServer::status(status);
    let url = server.url("/ingest");
    let outcomes = deliver(&config(&url, json!({})), &[b"x"]);
    let expected = match expected {
        Outcome::Retry(r) => Outcome::Retry(r.replace("{url}", &url)),
        Outcome::Rejected(r) => Outcome::Rejected(r.replace("{url}", &url)),
        Outcome::Timeout(r) => Outcome::Timeout(r.replace("{url}", &url)),
        Outcome::Delivered => Outcome::Delivered,
    };
    assert_eq!(outcomes, vec![expected], "status {status}");
    assert_eq!(single(&server.requests()).method, "POST");
}

fn retry(reason: &str) -> Outcome {
    Outcome::Retry(reason.to_string())
}

fn timeout(reason: &str) -> Outcome {
    Outcome::Timeout(reason.to_string())
}

fn rejected(reason: &str) -> Outcome {
    Outcome::Rejected(reason.to_string())
}

#[test]
fn status_200_is_delivered() {
    check(200, Outcome::Delivered);
}

#[test]
fn status_201_is_delivered() {
    check(201, Outcome::Delivered);
}

#[test]
fn status_204_is_delivered() {
    check(204, Outcome::Delivered);
}

#[test]
fn status_404_is_rejected() {
    check(404, rejected("404 Not Found from POST {url}"));
}

#[test]
fn status_400_is_rejected() {
    check(400, rejected("400 Bad Request from POST {url}"));
}

#[test]
fn status_408_is_retry() {
    check(408, retry("408 Request Timeout from POST {url}"));
}

#[test]
fn status_429_is_retry() {
    check(429, retry("429 Too Many Requests from POST {url}"));
}

#[test]
fn status_500_is_retry() {
    check(500, retry("500 Internal Server Error from POST {url}"));
}

#[test]
fn status_503_is_retry() {
    check(503, retry("503 Service Unavailable from POST {url}"));
}

#[test]
fn status_302_is_rejected_and_not_followed() {
    // The test server's Location points at an unresolvable host: following it would fail differently.
    check(302, rejected("302 Found from POST {url} (redirect to http://elsewhere.invalid/ not followed)"));
}

/// Pure classification of failures that a server cannot easily produce.
fn check_error(error: ureq::Error, expected: Outcome) {
    assert_eq!(classify("POST", "http://h/p", &Exchange::Failed(error), &StatusCodes::default()), expected);
}

#[test]
fn timeout_error_is_a_timeout() {
    check_error(ureq::Error::Timeout(ureq::Timeout::Global), timeout("timeout (global) on POST http://h/p"));
}

#[test]
fn a_socket_read_that_timed_out_is_a_timeout() {
    let error = ureq::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out"));
    check_error(error, timeout("timeout (read timed out) on POST http://h/p"));
}

#[test]
fn connect_failure_is_retry() {
    check_error(ureq::Error::ConnectionFailed, retry("POST http://h/p failed: connection failed"));
}

#[test]
fn unknown_host_is_retry() {
    check_error(ureq::Error::HostNotFound, retry("POST http://h/p failed: host not found"));
}

#[test]
fn malformed_request_is_rejected() {
    check_error(ureq::Error::BadUri("x".into()), rejected("invalid request POST http://h/p: bad uri: x"));
}

#[test]
fn unknown_status_keeps_its_number() {
    let exchange = Exchange::Response { status: 599, location: None, body_excerpt: String::new() };
    assert_eq!(classify("PUT", "http://h/p", &exchange, &StatusCodes::default()), retry("599 from PUT http://h/p"));
}

#[test]
fn keep_alive_reuses_one_connection() {
    let server = TestServer::status(200);
    let mut driver = super::started(&config(&server.url("/k"), json!({"maxParallelRequestsCount": 1})));
    for _ in 0..3 {
        let payload = b"x";
        let batch = [super::message(payload), super::message(payload)];
        let outcomes = driver.process(&batch, std::time::Instant::now() + super::GENEROUS);
        assert_eq!(outcomes, vec![Outcome::Delivered, Outcome::Delivered]);
    }
    driver.stop();
    assert_eq!(server.requests().len(), 6);
    assert_eq!(server.connections(), 1);
}

fn check_connection(config: &serde_json::Value) -> Result<(), trib_plugin_api::driver::Error> {
    let mut driver = HttpDriver::create(Host::detached()).expect("create");
    let text = config.to_string();
    driver.check_connection(&start_config(&text))
}

#[test]
fn check_connection_sends_head_with_headers_and_auth() {
    let server = TestServer::status(200);
    let extra =
        json!({"headers": {"X-Probe": "1"}, "credentials": {"type": "basic", "username": "u", "password": "p"}});
    assert_eq!(check_connection(&config(&server.url("/health"), extra)), Ok(()));
    let requests = server.requests();
    let request = single(&requests);
    assert_eq!((request.method.as_str(), request.target.as_str()), ("HEAD", "/health"));
    assert_eq!(request.header("x-probe"), Some("1"));
    assert_eq!(request.header("authorization"), Some("Basic dTpw"));
}

#[test]
fn check_connection_reports_a_non_2xx_status() {
    let server = TestServer::status(404);
    let url = server.url("/missing");
    let error = check_connection(&config(&url, json!({}))).expect_err("404 fails the check");
    assert_eq!(error.kind, ErrorKind::Connection);
    assert_eq!(error.message, format!("404 Not Found from HEAD {url}"));
}

#[test]
fn check_connection_to_a_closed_port_fails() {
    let url = format!("http://127.0.0.1:{}/x", super::deadline::closed_port());
    let error = check_connection(&config(&url, json!({}))).expect_err("nobody listens");
    assert_eq!(error.kind, ErrorKind::Connection);
    assert!(error.message.starts_with(&format!("HEAD {url} failed: ")), "{}", error.message);
}

#[test]
fn check_connection_refuses_an_invalid_config() {
    let error = check_connection(&json!({"restEndpointUrl": ""})).expect_err("invalid");
    assert_eq!(error.kind, ErrorKind::Config);
    assert_eq!(error.message, "restEndpointUrl: REST endpoint URL is required");
}
