//! Failures: a dead target, refused credentials, a broker that goes away mid-stream and comes
//! back, reconnecting switched off, connection checks, calls out of order.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde_json::json;
use trib_plugin_api::driver::{Connectivity, Driver, ErrorKind, Host, Outcome};

use super::{
    fake_broker::{self, Connect},
    proxy::Proxy,
    recorder::Recorder,
    support::{
        config_for, deadline, embedded, free_port, message, start_config, started, targets, unique, Extras, Target,
        PATIENCE,
    },
};
use crate::driver::MqttDriver;

fn dead_config(extra: serde_json::Value) -> (String, u16) {
    let port = free_port();
    let mut target = embedded().clone();
    target.port_v4 = port;
    (config_for(&target, 4, extra), port)
}

fn proxied(target: &Target, version: u8) -> Proxy {
    let addr: SocketAddr = format!("{}:{}", target.host, target.port(version)).parse().expect("broker address");
    Proxy::start(addr)
}

fn all_retry(outcomes: &[Outcome], needle: &str) {
    for o in outcomes {
        assert!(
            matches!(o, Outcome::Retry(r) if r.contains(needle)),
            "expected Retry containing {needle:?}, got {o:?}"
        );
    }
}

/// Processes `msgs` until every one is delivered; fails after [`PATIENCE`].
fn deliver_eventually(driver: &mut MqttDriver, msgs: &[trib_plugin_api::abi::Message<'_>]) {
    let start = Instant::now();
    loop {
        let outcomes = driver.process(msgs, Instant::now() + Duration::from_secs(2));
        if outcomes.iter().all(|o| *o == Outcome::Delivered) {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "never delivered again: {outcomes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dead_target_fails_start_with_tbmq_message() {
    let (cfg, port) = dead_config(json!({"topicName": "t"}));
    let mut driver = MqttDriver::create(Host::detached()).expect("create");
    let err = driver.start(&start_config(&cfg)).expect_err("nothing listens");
    assert_eq!(err.kind, ErrorKind::Connection);
    let prefix = format!("Failed to connect to MQTT broker at 127.0.0.1:{port}");
    assert!(err.message.starts_with(&prefix), "{}", err.message);
    all_retry(&driver.process(&[message("a", b"x", 1, false, Extras::default())], deadline()), "not started");
}

#[test]
fn check_connection_succeeds_and_fails() {
    for target in targets() {
        for version in [4, 5] {
            let cfg = config_for(&target, version, json!({"topicName": "t"}));
            let mut driver = MqttDriver::create(Host::detached()).expect("create");
            assert_eq!(driver.check_connection(&start_config(&cfg)), Ok(()), "{} v{version}", target.name);
        }
    }
    let (cfg, port) = dead_config(json!({"topicName": "t"}));
    let err =
        MqttDriver::create(Host::detached()).expect("create").check_connection(&start_config(&cfg)).expect_err("dead");
    assert_eq!(err.kind, ErrorKind::Connection);
    assert!(
        err.message.starts_with(&format!("Failed to connect to MQTT broker at 127.0.0.1:{port}")),
        "{}",
        err.message
    );
    let invalid = MqttDriver::create(Host::detached())
        .expect("create")
        .check_connection(&start_config("{}"))
        .expect_err("invalid");
    assert_eq!(invalid.kind, ErrorKind::Config);
}

#[test]
fn refused_connack_reports_the_code_and_connect_carries_the_login() {
    for (version, code, name) in
        [(4, 4, "BadUserNamePassword"), (5, 0x86, "BadUserNamePassword"), (4, 5, "NotAuthorized")]
    {
        let (port, connects) = fake_broker::refuse_with(code);
        let creds = json!({"type": "basic", "username": "user-1", "password": "pa:ss"});
        let cfg = config_for(
            embedded(),
            version,
            json!({"port": port, "topicName": "t", "credentials": creds, "clientId": "cid-1", "keepAliveSec": 0}),
        );
        let mut driver = MqttDriver::create(Host::detached()).expect("create");
        let err = driver.start(&start_config(&cfg)).expect_err("refused");
        assert_eq!(err.kind, ErrorKind::Connection);
        assert_eq!(
            err.message,
            format!("Failed to connect to MQTT broker at 127.0.0.1:{port}. Result code is: {name}")
        );
        let connect = connects.recv_timeout(PATIENCE).expect("CONNECT seen");
        // keepAliveSec 0 disables keep alive; rumqttc's MQTT 5 client cannot send 0 and sends the maximum.
        let keep_alive = if version == 5 { u16::MAX } else { 0 };
        let expected = Connect {
            level: version,
            clean: true,
            keep_alive,
            client_id: "cid-1".to_string(),
            username: Some("user-1".to_string()),
            password: Some(b"pa:ss".to_vec()),
        };
        assert_eq!(connect, expected, "v{version}");
    }
}

#[test]
fn wrong_credentials_on_the_embedded_broker_fail_start() {
    let target = embedded();
    let (auth_v4, auth_v5) = target.auth_ports.expect("embedded broker has auth listeners");
    for (version, port) in [(4, auth_v4), (5, auth_v5)] {
        let creds = json!({"type": "basic", "username": "intruder", "password": "guess"});
        let cfg = config_for(target, version, json!({"port": port, "topicName": "t", "credentials": creds}));
        let err =
            MqttDriver::create(Host::detached()).expect("create").start(&start_config(&cfg)).expect_err("refused");
        assert_eq!(err.kind, ErrorKind::Connection);
        assert_eq!(
            err.message,
            format!("Failed to connect to MQTT broker at 127.0.0.1:{port}. Result code is: BadUserNamePassword"),
            "v{version}"
        );
    }
}

#[test]
fn broker_gone_mid_stream_gives_retry_then_reconnects() {
    for target in targets() {
        for version in [4, 5] {
            let proxy = proxied(&target, version);
            let base = unique("trib/gone");
            let rec = Recorder::start(&target, version, &format!("{base}/#"));
            let cfg = config_for(
                &target,
                version,
                json!({"port": proxy.port, "topicName": format!("{base}/out"), "qos": 1, "sendOnlyMsgPayload": true, "reconnectPeriodSec": 1}),
            );
            let mut driver = started(&cfg);
            let payloads: Vec<Vec<u8>> = (0..10).map(|i| format!("p{i}").into_bytes()).collect();
            let msgs: Vec<_> = payloads.iter().map(|p| message("in", p, 1, false, Extras::default())).collect();

            // The broker gets every message but its PUBACKs never come back; then the line drops.
            proxy.hold_answers();
            let outcomes = std::thread::scope(|s| {
                let running = s.spawn(|| driver.process(&msgs, deadline()));
                assert_eq!(rec.expect(10).len(), 10, "{} v{version}", target.name);
                proxy.cut();
                running.join().expect("process")
            });
            assert_eq!(outcomes.len(), 10);
            all_retry(&outcomes, "lost before the broker acknowledged");

            // While the broker is unreachable, process answers Retry at once.
            let early = Instant::now() + PATIENCE;
            all_retry(&driver.process(&msgs[..2], early), "not connected to");

            proxy.restore();
            deliver_eventually(&mut driver, &msgs);
            let again: Vec<Vec<u8>> = rec.expect(10).into_iter().map(|r| r.payload).collect();
            assert_eq!(again, payloads, "{} v{version}: redelivered after reconnecting", target.name);
            driver.stop();
        }
    }
}

#[test]
fn process_never_hangs_past_the_deadline_when_acks_stop() {
    let target = embedded();
    let proxy = proxied(target, 4);
    let cfg = config_for(target, 4, json!({"port": proxy.port, "topicName": unique("trib/hang"), "qos": 1}));
    let mut driver = started(&cfg);
    proxy.hold_answers();
    let deadline = Instant::now() + Duration::from_millis(500);
    let outcomes = driver.process(&[message("in", b"x", 1, false, Extras::default())], deadline);
    let expected = format!("timeout waiting for 127.0.0.1:{} to acknowledge the message", proxy.port);
    assert_eq!(outcomes, vec![Outcome::Timeout(expected)]);
    assert!(Instant::now() < deadline + PATIENCE, "process returned long after its deadline");
}

#[test]
fn reconnect_disabled_stays_disconnected() {
    let target = embedded();
    let proxy = proxied(target, 4);
    let cfg =
        config_for(target, 4, json!({"port": proxy.port, "topicName": unique("trib/norec"), "reconnectPeriodSec": 0}));
    let mut driver = started(&cfg);
    let msgs = [message("in", b"x", 1, false, Extras::default())];
    assert_eq!(driver.process(&msgs, deadline()), vec![Outcome::Delivered]);
    assert_eq!(driver.connectivity(), Some(Connectivity::Connected));
    proxy.cut();
    proxy.restore();
    // The first attempts may still find the dying connection; once it is noticed, it stays down.
    let start = Instant::now();
    while driver.process(&msgs, Instant::now() + Duration::from_secs(2))
        != vec![Outcome::Retry(format!("not connected to 127.0.0.1:{}", proxy.port))]
    {
        assert!(start.elapsed() < PATIENCE, "the lost connection was never noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The host hears why.
    match driver.connectivity() {
        Some(Connectivity::Disconnected(reason)) => {
            assert!(reason.starts_with(&format!("127.0.0.1:{}: ", proxy.port)), "{reason}")
        }
        other => panic!("expected disconnected, got {other:?}"),
    }
    driver.stop();
    assert_eq!(driver.connectivity(), None, "a stopped instance knows nothing");
    driver.stop();
}

#[test]
fn start_twice_is_a_state_error() {
    let target = embedded();
    let cfg = config_for(target, 4, json!({"topicName": "t"}));
    let mut driver = started(&cfg);
    let err = driver.start(&start_config(&cfg)).expect_err("second start");
    assert_eq!(err.kind, ErrorKind::State);
}

#[test]
fn invalid_config_fails_start() {
    let mut driver = MqttDriver::create(Host::detached()).expect("create");
    let err = driver.start(&start_config(r#"{"host":"h","clientId":"c","topicName":"a/#"}"#)).expect_err("invalid");
    assert_eq!(err.kind, ErrorKind::Config);
    assert_eq!(err.message, "topicName: Topic name cannot contain wildcard characters");
}
