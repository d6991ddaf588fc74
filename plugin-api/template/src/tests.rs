//! Unit tests: validation as data, delivery into a temporary file read back line by line, and the
//! plugin-boundary contract through `trib-plugin-testkit`'s conformance suite.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use trib_plugin_api::{
    abi::log_level,
    abi_stable::std_types::RStr,
    driver::{Driver, ErrorKind, Outcome, StartConfig},
};
use trib_plugin_testkit::{
    conformance::{assert_conforms, Scenario},
    Batch, FakeHost, TestMessage,
};

use crate::driver::TemplateDriver;

/// The plugin-boundary contract. A driver that talks to a network service writes its target
/// as `127.0.0.1:{{closed_port}}` (unreachable) and `127.0.0.1:{{blackhole_port}}` (accepts,
/// never answers); for a file, a missing directory is unreachable and `/dev/full` swallows
/// nothing.
#[test]
fn driver_conforms() {
    let dir = TempDir::new();
    assert_conforms::<TemplateDriver>(
        &Scenario::new(json!({"path": dir.file("out.jsonl")}))
            .unreachable(json!({"path": dir.file("missing/out.jsonl")}))
            .black_hole(json!({"path": "/dev/full"}))
            .invalid(json!({"path": "relative.jsonl"}))
            .invalid(json!({"path": dir.file("out.jsonl"), "payloadFormat": "XML"})),
    );
}

/// Asserts the field errors of `config` as `(field, message)` pairs.
fn check(config: Value, expected: &[(&str, &str)]) {
    let errors = crate::config::validate(&config.to_string());
    let got: Vec<(String, String)> = errors.iter().map(|e| (e.field.to_string(), e.message.to_string())).collect();
    let expected: Vec<(String, String)> = expected.iter().map(|(f, m)| (f.to_string(), m.to_string())).collect();
    assert_eq!(got, expected, "{config}");
}

#[test]
fn a_minimal_configuration_is_valid() {
    check(json!({"path": "/var/lib/out.jsonl"}), &[]);
}

#[test]
fn every_field_may_be_given() {
    check(json!({"path": "/tmp/o.jsonl", "payloadFormat": "JSON", "syncEveryBatch": true, "unknown": 1}), &[]);
}

#[test]
fn the_path_is_required() {
    check(json!({}), &[("path", "File path is required")]);
    check(json!({"path": "  "}), &[("path", "File path is required")]);
}

#[test]
fn the_path_must_be_an_absolute_file_name() {
    check(json!({"path": "out.jsonl"}), &[("path", "File path must be absolute")]);
    check(json!({"path": "/tmp/"}), &[("path", "File path must name a file, not a directory")]);
    check(json!({"path": "/tmp/a\u{0}b"}), &[("path", "File path must not contain NUL characters")]);
    check(json!({"path": 5}), &[("path", "must be a string")]);
}

#[test]
fn all_problems_are_reported_at_once() {
    check(
        json!({"payloadFormat": "XML", "syncEveryBatch": "yes"}),
        &[
            ("path", "File path is required"),
            ("payloadFormat", "Invalid payload format. Allowed values: BASE64, TEXT, JSON"),
            ("syncEveryBatch", "must be a boolean"),
        ],
    );
}

#[test]
fn messages_become_one_envelope_line_each() {
    let dir = TempDir::new();
    let messages =
        [TestMessage::new("sensors/1", "25").user_property("site", "A"), TestMessage::new("sensors/2", "26")];
    let (outcomes, fake) = deliver(&json!({"path": dir.file("o.jsonl")}), &messages);
    assert_eq!(outcomes, [Outcome::Delivered, Outcome::Delivered]);
    let lines = read_lines(&dir.file("o.jsonl"));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["topicName"], "sensors/1");
    assert_eq!(lines[0]["payload"], "MjU=");
    assert_eq!(lines[0]["props"], json!({"site": "A"}));
    assert_eq!(lines[0]["metadata"], json!({"integrationName": "test"}));
    assert_eq!(lines[1]["topicName"], "sensors/2");
    assert_eq!(fake.counter("template_lines_written_total"), 2);
    assert!(fake.logged(log_level::INFO, "started: appending to"));
}

#[test]
fn json_payloads_are_embedded_and_others_rejected_alone() {
    let dir = TempDir::new();
    let config = json!({"path": dir.file("o.jsonl"), "payloadFormat": "JSON"});
    let messages = [TestMessage::new("t", r#"{"t":1}"#), TestMessage::new("t", "{oops"), TestMessage::new("t", "2")];
    let (outcomes, fake) = deliver(&config, &messages);
    assert_eq!(outcomes[0], Outcome::Delivered);
    assert!(matches!(&outcomes[1], Outcome::Rejected(r) if r.starts_with("payload is not JSON: ")), "{outcomes:?}");
    assert_eq!(outcomes[2], Outcome::Delivered);
    let payloads: Vec<Value> = read_lines(&dir.file("o.jsonl")).iter().map(|l| l["payload"].clone()).collect();
    assert_eq!(payloads, [json!({"t": 1}), json!(2)]);
    assert_eq!(fake.counter("template_messages_rejected_total"), 1);
}

#[test]
fn text_payloads_are_strings() {
    let dir = TempDir::new();
    let config = json!({"path": dir.file("o.jsonl"), "payloadFormat": "TEXT", "syncEveryBatch": true});
    deliver(&config, &[TestMessage::new("t", b"caf\xc3\xa9 \xff")]);
    assert_eq!(read_lines(&dir.file("o.jsonl"))[0]["payload"], "café \u{fffd}");
}

#[test]
fn a_failed_write_is_retry_and_counted() {
    let (outcomes, fake) = deliver(&json!({"path": "/dev/full"}), &[TestMessage::default(), TestMessage::default()]);
    for outcome in &outcomes {
        assert!(matches!(outcome, Outcome::Retry(r) if r.starts_with("write to /dev/full failed: ")), "{outcome:?}");
    }
    assert_eq!(fake.counter("template_write_errors_total"), 2);
    assert_eq!(fake.lines_at(log_level::WARN).len(), 1);
}

#[test]
fn nothing_is_written_after_the_deadline() {
    let dir = TempDir::new();
    let config = json!({"path": dir.file("o.jsonl")}).to_string();
    let mut driver = TemplateDriver::create(FakeHost::new().host()).expect("create");
    driver.start(&start_config(&config)).expect("start");
    let messages = [TestMessage::default()];
    let outcomes = driver.process(&Batch::new(&messages).messages(), Instant::now());
    assert_eq!(outcomes, [Outcome::Timeout("deadline passed before the write".into())]);
    assert_eq!(std::fs::read_to_string(dir.file("o.jsonl")).expect("created at start"), "");
}

#[test]
fn the_connection_check_needs_a_writable_place() {
    let dir = TempDir::new();
    let mut driver = TemplateDriver::create(FakeHost::new().host()).expect("create");
    let ok = json!({"path": dir.file("o.jsonl")}).to_string();
    assert_eq!(driver.check_connection(&start_config(&ok)), Ok(()));
    let missing = json!({"path": dir.file("no/such/dir.jsonl")}).to_string();
    let error = driver.check_connection(&start_config(&missing)).expect_err("missing directory");
    assert_eq!(error.kind, ErrorKind::Connection);
    assert!(error.message.starts_with("cannot open "), "{}", error.message);
}

#[test]
fn a_second_start_is_a_state_error() {
    let dir = TempDir::new();
    let config = json!({"path": dir.file("o.jsonl")}).to_string();
    let mut driver = TemplateDriver::create(FakeHost::new().host()).expect("create");
    driver.start(&start_config(&config)).expect("start");
    assert_eq!(driver.start(&start_config(&config)).map_err(|e| e.kind), Err(ErrorKind::State));
}

/// Starts a driver for `config`, delivers `messages` and stops it.
fn deliver(config: &Value, messages: &[TestMessage]) -> (Vec<Outcome>, FakeHost) {
    let fake = FakeHost::new();
    let mut driver = TemplateDriver::create(fake.host()).expect("create");
    driver.start(&start_config(&config.to_string())).expect("start");
    let outcomes = driver.process(&Batch::new(messages).messages(), Instant::now() + Duration::from_secs(5));
    driver.stop();
    (outcomes, fake)
}

fn start_config(client_configuration: &str) -> StartConfig<'_> {
    StartConfig {
        integration_id: RStr::from_str("3f1c2d4e-0000-4000-8000-000000000001"),
        integration_name: RStr::from_str("test"),
        service_id: RStr::from_str("tbmq-ie-test"),
        client_configuration: RStr::from_str(client_configuration),
        metadata: RStr::from_str(r#"{"integrationName":"test"}"#),
    }
}

fn read_lines(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read output");
    text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("trib-driver-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
