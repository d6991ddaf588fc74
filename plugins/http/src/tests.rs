//! Unit tests of the HTTP driver, called through the `Driver` trait against the in-process
//! server of [`crate::test_server`]. Each test asserts what the server actually received.
//! Shared helpers live here; the tests are grouped by topic in `tests/`.

mod body;
mod conformance;
mod deadline;
mod shared_pool;
mod status;
mod status_codes;
mod target_policy;
mod tls;
mod url;
mod validation;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use trib_plugin_api::{
    abi_stable::std_types::RStr,
    driver::{Driver, Host, Message, Outcome, StartConfig},
};

use crate::{driver::HttpDriver, test_server::Recorded};

/// The deadline of batches that are expected to finish well before it.
const GENEROUS: Duration = Duration::from_secs(10);

/// The envelope metadata every test instance gets.
const METADATA: &str = r#"{"integrationName":"My HTTP","site":"A"}"#;

/// A message on `sensors/1/temp` from `device-1`, as in the reference's envelope example.
fn message(payload: &[u8]) -> Message<'_> {
    Message {
        qos: 1,
        client_id: RStr::from_str("device-1"),
        broker_node: RStr::from_str("tbmq1"),
        timestamp_ms: 1717000000000,
        ..Message::new("sensors/1/temp", payload)
    }
}

/// `{"restEndpointUrl": url}` plus the fields of `extra` (an object).
fn config(url: &str, extra: Value) -> Value {
    let mut config = json!({ "restEndpointUrl": url });
    if let (Some(target), Value::Object(fields)) = (config.as_object_mut(), extra) {
        target.extend(fields);
    }
    config
}

fn start_config(client_configuration: &str) -> StartConfig<'_> {
    StartConfig {
        integration_id: RStr::from_str("3f1c2d4e-0000-4000-8000-000000000001"),
        integration_name: RStr::from_str("My HTTP"),
        service_id: RStr::from_str("tbmq-ie1"),
        client_configuration: RStr::from_str(client_configuration),
        metadata: RStr::from_str(METADATA),
    }
}

/// A started driver for `config`.
fn started(config: &Value) -> HttpDriver {
    let mut driver = HttpDriver::create(Host::detached()).expect("create");
    let text = config.to_string();
    driver.start(&start_config(&text)).expect("start");
    driver
}

/// Delivers one message per payload with a generous deadline and returns the outcomes.
fn deliver(config: &Value, payloads: &[&[u8]]) -> Vec<Outcome> {
    deliver_by(config, payloads, Instant::now() + GENEROUS)
}

fn deliver_by(config: &Value, payloads: &[&[u8]], deadline: Instant) -> Vec<Outcome> {
    let mut driver = started(config);
    let batch: Vec<Message<'_>> = payloads.iter().map(|p| message(p)).collect();
    let outcomes = driver.process(&batch, deadline);
    driver.stop();
    outcomes
}

/// The only request a server received.
fn single(requests: &[Recorded]) -> &Recorded {
    assert_eq!(requests.len(), 1, "expected exactly one request, got {requests:?}");
    &requests[0]
}

fn retry_reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Retry(reason) => reason,
        other => panic!("expected Retry, got {other:?}"),
    }
}

fn timeout_reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Timeout(reason) => reason,
        other => panic!("expected Timeout, got {other:?}"),
    }
}

fn rejected_reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Rejected(reason) => reason,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[test]
fn metadata_names_the_http_type_and_announces_check_connection() {
    let meta = HttpDriver::metadata();
    assert_eq!((meta.name, meta.integration_type), ("http", "HTTP"));
    assert_eq!(meta.capabilities & trib_plugin_api::abi::capabilities::CHECK_CONNECTION, 1);
}

#[test]
fn process_before_start_is_retry() {
    let mut driver = HttpDriver::create(Host::detached()).expect("create");
    let payload = b"x";
    let outcomes = driver.process(&[message(payload)], Instant::now() + GENEROUS);
    assert_eq!(outcomes, vec![Outcome::Retry("HTTP driver is not started".into())]);
}

/// Host counters as `(name, total)` pairs, collected by a host whose context is a leaked Mutex.
mod counting_host {
    use std::{ffi::c_void, sync::Mutex};

    use trib_plugin_api::{
        abi::HostServices,
        abi_stable::std_types::RStr,
        host::{host_vtable, Host},
    };

    pub type Counters = Mutex<Vec<(String, u64)>>;

    extern "C" fn log(_: *const c_void, _: u8, _: RStr<'_>) {}

    extern "C" fn enabled(_: *const c_void, _: u8) -> bool {
        true
    }

    extern "C" fn add(ctx: *const c_void, name: RStr<'_>, value: u64) {
        // SAFETY: ctx is the leaked `Counters` given to `host` below; it lives for the whole test run.
        let counters = unsafe { &*ctx.cast::<Counters>() };
        let mut counters = counters.lock().expect("lock");
        match counters.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some(entry) => entry.1 += value,
            None => counters.push((name.to_string(), value)),
        }
    }

    pub fn host() -> (Host, &'static Counters) {
        let counters: &'static Counters = Box::leak(Box::new(Mutex::new(Vec::new())));
        let services =
            HostServices { ctx: (counters as *const Counters).cast(), vtable: host_vtable(log, enabled, add) };
        (Host::from_abi(services), counters)
    }
}

#[test]
fn counters_count_sent_failed_and_rejected_messages() {
    let server = crate::test_server::TestServer::start(|_, r| {
        crate::test_server::Reply::Status(if r.body_text() == r#""bad""# { 500 } else { 200 })
    });
    let (host, counters) = counting_host::host();
    let mut driver = HttpDriver::create(host).expect("create");
    let extra = serde_json::json!({"sendOnlyMsgPayload": true, "payloadContentType": "JSON"});
    let text = config(&server.url("/c"), extra).to_string();
    driver.start(&start_config(&text)).expect("start");
    let payloads: [&[u8]; 4] = [b"1", b"\"bad\"", b"{oops", b"2"];
    let batch: Vec<Message<'_>> = payloads.iter().map(|p| message(p)).collect();
    let outcomes = driver.process(&batch, Instant::now() + GENEROUS);
    driver.stop();
    assert_eq!(outcomes[0], Outcome::Delivered);
    assert!(matches!(outcomes[1], Outcome::Retry(_)) && matches!(outcomes[2], Outcome::Rejected(_)));
    let mut counted = counters.lock().expect("lock").clone();
    counted.sort();
    let expected = [("http_messages_rejected_total", 1), ("http_request_errors_total", 1), ("http_requests_total", 3)];
    assert_eq!(counted, expected.map(|(n, v)| (n.to_string(), v)).to_vec());
}
