//! A server that is not there: a closed port gives retry outcomes at once, a listener that never
//! answers gives timeout outcomes by the deadline, and the connection check says why. No
//! database needed.

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use serde_json::json;
use trib_plugin_api::driver::{Connectivity, Driver, ErrorKind, Outcome};
use trib_plugin_testkit::{target::BlackHole, Batch, FakeHost, TestMessage};

use super::{config, start_config};
use crate::driver::PostgresqlDriver;

fn target(port: u16) -> String {
    config(json!({"port": port, "sslMode": "disable", "connectTimeoutMs": 5000})).to_string()
}

fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn messages() -> Vec<TestMessage> {
    (0..3).map(|n| TestMessage::new(format!("t/{n}"), "{}")).collect()
}

#[test]
fn connectivity_says_why_no_session_opens() {
    let port = closed_port();
    let fake = FakeHost::new();
    let mut driver = PostgresqlDriver::create(fake.host()).expect("create");
    assert_eq!(driver.connectivity(), None, "not started");
    driver.start(&start_config(&target(port))).expect("start does not need the server");
    match driver.connectivity() {
        Some(Connectivity::Disconnected(reason)) => {
            assert!(reason.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    driver.stop();
    assert_eq!(driver.connectivity(), None, "stopped");
}

#[test]
fn a_refused_connection_gives_retry_outcomes_within_the_deadline() {
    let port = closed_port();
    let text = target(port);
    let fake = FakeHost::new();
    let mut driver = PostgresqlDriver::create(fake.host()).expect("create");
    driver.start(&start_config(&text)).expect("start does not need the server");
    assert!(fake.logged(trib_plugin_api::abi::log_level::WARN, "cannot connect yet"), "{:?}", fake.lines());
    let messages = messages();
    let batch = Batch::new(&messages);
    for _ in 0..2 {
        let started = Instant::now();
        let outcomes = driver.process(&batch.messages(), started + Duration::from_secs(2));
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        assert_eq!(outcomes.len(), 3);
        for outcome in &outcomes {
            assert!(
                matches!(outcome, Outcome::Retry(r) if r.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}/test"))),
                "{outcomes:?}"
            );
        }
    }
    assert_eq!(fake.counter("postgresql_rows_not_written_total"), 6);
    let error = driver.check_connection(&start_config(&text)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Connection);
    assert!(error.message.contains("Connection refused"), "{error:?}");
}

#[test]
fn a_server_that_never_answers_gives_timeout_outcomes_by_the_deadline() {
    let hole = BlackHole::start().expect("black hole");
    let text = target(hole.port());
    let mut driver = PostgresqlDriver::create(FakeHost::new().host()).expect("create");
    let text_fast = text.replace("5000", "300");
    driver.start(&start_config(&text_fast)).expect("start");
    let messages = messages();
    let batch = Batch::new(&messages);
    let started = Instant::now();
    let outcomes = driver.process(&batch.messages(), started + Duration::from_millis(400));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(800), "took {took:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Timeout(_))), "{outcomes:?}");
    let started = Instant::now();
    let error = driver.check_connection(&start_config(&text_fast)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        (error.kind, error.message.as_str()),
        (
            ErrorKind::Connection,
            &*format!("connecting to PostgreSQL at 127.0.0.1:{}/test took longer than 300 ms", hole.port())
        )
    );
}

#[test]
fn process_before_start_retries_and_start_refuses_a_bad_configuration() {
    let mut driver = PostgresqlDriver::create(FakeHost::new().host()).expect("create");
    let messages = messages();
    let outcomes = driver.process(&Batch::new(&messages).messages(), Instant::now() + Duration::from_secs(1));
    assert!(outcomes.iter().all(|o| *o == Outcome::Retry("PostgreSQL driver is not started".into())), "{outcomes:?}");
    let error = driver.start(&start_config(r#"{"host": "h"}"#)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert_eq!(
        error.message,
        "database: Database is required; username: Username is required; table: Table is required; \
         columns: At least one column mapping is required"
    );
}
