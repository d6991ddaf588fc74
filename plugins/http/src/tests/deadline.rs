//! Dead and hung targets, the deadline rule (never send after reporting a timeout), and the
//! bound on requests in flight.

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use serde_json::json;
use trib_plugin_api::driver::{Driver, Outcome};

use super::{config, deliver, deliver_by, message, retry_reason, started, timeout_reason, GENEROUS};
use crate::test_server::{Recorded, Reply, TestServer};

/// A loopback port that nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn closed_port_is_retry_without_waiting_for_the_deadline() {
    let url = format!("http://127.0.0.1:{}/ingest", closed_port());
    let outcomes = deliver(&config(&url, json!({})), &[b"a", b"b"]);
    for outcome in &outcomes {
        let reason = retry_reason(outcome);
        // A refused connection is reported as such, not as the batch timing out.
        assert!(reason.starts_with(&format!("POST {url} failed: ")), "{reason}");
        assert!(!reason.contains("timeout"), "{reason}");
    }
    assert_eq!(outcomes.len(), 2);
}

#[test]
fn hung_server_is_a_timeout_at_the_deadline() {
    let server = TestServer::start(|_, _| Reply::Hang);
    let deadline = Instant::now() + Duration::from_millis(300);
    let outcomes = deliver_by(&config(&server.url("/slow"), json!({})), &[b"a", b"b", b"c"], deadline);
    assert_eq!(outcomes.len(), 3);
    for outcome in &outcomes {
        assert!(timeout_reason(outcome).starts_with("timeout waiting for the response from POST "), "{outcome:?}");
    }
}

#[test]
fn read_timeout_cuts_a_hung_request_short() {
    let server = TestServer::start(|_, _| Reply::Hang);
    let extra = json!({"readTimeoutMs": 100});
    let outcomes = deliver(&config(&server.url("/slow"), extra), &[b"a"]);
    // The worker's own timeout answers, long before the batch deadline would.
    assert!(timeout_reason(&outcomes[0]).starts_with("timeout (global) on POST "), "{outcomes:?}");
}

#[test]
fn past_deadline_sends_nothing() {
    let server = TestServer::status(200);
    let outcomes = deliver_by(&config(&server.url("/x"), json!({})), &[b"a"], Instant::now());
    assert!(timeout_reason(&outcomes[0]).starts_with("timeout before send"), "{outcomes:?}");
    let mut driver = started(&config(&server.url("/x"), json!({})));
    // The instance is still usable, and the late message was never sent.
    assert_eq!(driver.process(&[message(b"b")], Instant::now() + GENEROUS), vec![Outcome::Delivered]);
    driver.stop();
    assert_eq!(server.requests().iter().map(Recorded::body_text).filter(|b| b.contains("\"YQ==\"")).count(), 0);
}

#[test]
fn a_batch_already_past_its_deadline_is_never_reported_as_sent() {
    // The worker may see the passed deadline (and cancel the request) before the batch's own
    // check does; either way the outcome is "not sent", never "no reply".
    let server = TestServer::status(200);
    let mut driver = started(&config(&server.url("/x"), json!({})));
    for _ in 0..300 {
        let outcomes = driver.process(&[message(b"a")], Instant::now());
        assert!(timeout_reason(&outcomes[0]).starts_with("timeout before send"), "{outcomes:?}");
    }
    driver.stop();
    assert!(server.requests().is_empty());
}

#[test]
fn requests_not_started_by_the_deadline_are_never_sent() {
    // One worker; the first request hangs, so the next two cannot start before the deadline.
    let server = TestServer::start(|n, _| if n == 0 { Reply::Hang } else { Reply::Status(200) });
    let mut driver =
        started(&config(&server.url("/x"), json!({"maxParallelRequestsCount": 1, "sendOnlyMsgPayload": true})));
    let first = [message(b"m0"), message(b"m1"), message(b"m2")];
    let outcomes = driver.process(&first, Instant::now() + Duration::from_millis(300));
    // Sent and unanswered: either the request's own timeout or the batch's reports it.
    let first_reason = timeout_reason(&outcomes[0]);
    assert!(
        first_reason.starts_with("timeout waiting for the response from POST ")
            || first_reason.starts_with("timeout (global) on POST "),
        "{outcomes:?}"
    );
    for outcome in &outcomes[1..] {
        assert!(timeout_reason(outcome).starts_with("timeout before send"), "{outcome:?}");
    }
    // The same single worker sends the next batch. Had m1 or m2 been sent late, the server would
    // have recorded them before m3, because that worker sends in queue order and waits for each answer.
    let outcomes = driver.process(&[message(b"m3")], Instant::now() + GENEROUS);
    assert_eq!(outcomes, vec![Outcome::Delivered]);
    driver.stop();
    let bodies: Vec<String> = server.requests().iter().map(Recorded::body_text).collect();
    assert_eq!(bodies, vec!["m0", "m3"]);
}

#[test]
fn requests_in_flight_never_exceed_max_parallel_requests() {
    let server = TestServer::start(|_, _| Reply::Delayed(200, Duration::from_millis(50)));
    let payloads: Vec<Vec<u8>> = (0..12).map(|i| format!("m{i}").into_bytes()).collect();
    let payloads: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let outcomes = deliver(&config(&server.url("/x"), json!({"maxParallelRequestsCount": 3})), &payloads);
    assert_eq!(outcomes, vec![Outcome::Delivered; 12]);
    assert_eq!(server.requests().len(), 12);
    assert!(server.max_in_flight() <= 3, "max in flight {}", server.max_in_flight());
    // Each request holds its worker for 50 ms, so the three workers overlap.
    assert!(server.max_in_flight() >= 2, "max in flight {}", server.max_in_flight());
    assert!(server.connections() <= 3, "connections {}", server.connections());
}

#[test]
fn stop_and_drop_release_the_workers() {
    let server = TestServer::status(200);
    let mut driver = started(&config(&server.url("/x"), json!({})));
    driver.stop();
    driver.stop();
    assert_eq!(driver.process(&[message(b"a")], Instant::now() + GENEROUS).len(), 1);
    drop(started(&config(&server.url("/x"), json!({}))));
    assert!(server.requests().is_empty());
}
