//! Delivery to a live broker: what the subscriber receives (topic, payload bytes, MQTT 5
//! properties, retained messages), what the driver put on the wire (QoS, retain flag, read by
//! the tapping proxy), and that every message is reported `Delivered`.

use serde_json::{json, Value};
use trib_plugin_api::{
    abi::UserProperty,
    abi_stable::std_types::RStr,
    driver::{Driver, Outcome},
    support::envelope::EnvelopeContext,
};

use super::{
    proxy::{Proxy, Seen},
    recorder::{retained, Received, Recorder},
    support::{config_for, deadline, message, started, targets, unique, Extras, Target, METADATA, SERVICE_ID},
};
use crate::driver::MqttDriver;

/// A recorder on `<base>/#`, a tapping proxy in front of the broker and a driver started on it.
struct Setup {
    base: String,
    rec: Recorder,
    proxy: Proxy,
    driver: MqttDriver,
}

fn setup(target: &Target, version: u8, port: u16, extra: impl FnOnce(&str) -> Value) -> Setup {
    let base = unique("trib/d");
    let rec = Recorder::start(target, version, &format!("{base}/#"));
    let proxy = Proxy::start(format!("{}:{port}", target.host).parse().expect("broker address"));
    let mut cfg = extra(&base);
    super::support::merge(&mut cfg, json!({"port": proxy.port}));
    let driver = started(&config_for(target, version, cfg));
    Setup { base, rec, proxy, driver }
}

fn delivered(n: usize) -> Vec<Outcome> {
    vec![Outcome::Delivered; n]
}

fn summary(r: &[Received]) -> Vec<(String, Vec<u8>)> {
    r.iter().map(|r| (r.topic.clone(), r.payload.clone())).collect()
}

fn seen(topic: &str, qos: u8, retain: bool) -> Seen {
    Seen { topic: topic.to_string(), qos, retain }
}

#[test]
fn envelope_to_static_topic() {
    for target in targets() {
        for version in [4, 5] {
            let mut s =
                setup(&target, version, target.port(version), |b| json!({"topicName": format!("{b}/out"), "qos": 1}));
            let msgs = [message("sensors/1/temp", br#"{"t":25}"#, 0, false, Extras::default())];
            assert_eq!(s.driver.process(&msgs, deadline()), delivered(1), "{} v{version}", target.name);
            let envelope = EnvelopeContext::new(SERVICE_ID, METADATA).to_vec_base64(&msgs[0]);
            let out = format!("{}/out", s.base);
            assert_eq!(summary(&s.rec.expect(1)), vec![(out.clone(), envelope)], "{} v{version}", target.name);
            assert_eq!(s.proxy.published(1), vec![seen(&out, 1, false)]);
            s.driver.stop();
        }
    }
}

#[test]
fn payload_only_to_source_topics() {
    for target in targets() {
        let mut s = setup(
            &target,
            4,
            target.port_v4,
            |_| json!({"useMsgTopicName": true, "sendOnlyMsgPayload": true, "qos": 1}),
        );
        let topics = [format!("{}/a", s.base), format!("{}/b/c", s.base), format!("{}/a", s.base)];
        let payloads: [&[u8]; 3] = [b"\x00\x01\xfe\xff", b"", b"plain text"];
        let msgs: Vec<_> =
            topics.iter().zip(payloads).map(|(t, p)| message(t, p, 0, false, Extras::default())).collect();
        assert_eq!(s.driver.process(&msgs, deadline()), delivered(3), "{}", target.name);
        let expected: Vec<_> = topics.iter().zip(payloads).map(|(t, p)| (t.clone(), p.to_vec())).collect();
        assert_eq!(summary(&s.rec.expect(3)), expected, "{}", target.name);
    }
}

#[test]
fn topic_template_from_source_topic_and_client_id() {
    for target in targets() {
        let mut s = setup(
            &target,
            4,
            target.port_v4,
            |b| json!({"topicName": format!("{b}/${{topic}}/by/${{clientId}}"), "sendOnlyMsgPayload": true}),
        );
        let msgs = [message("plant/7/line", b"x", 1, false, Extras::default())];
        assert_eq!(s.driver.process(&msgs, deadline()), delivered(1), "{}", target.name);
        let out = format!("{}/plant/7/line/by/device-1", s.base);
        assert_eq!(summary(&s.rec.expect(1)), vec![(out, b"x".to_vec())], "{}", target.name);
    }
}

#[test]
fn message_qos_and_retain_are_used() {
    for target in targets() {
        for version in [4, 5] {
            let mut s = setup(
                &target,
                version,
                target.port(version),
                |_| json!({"useMsgTopicName": true, "useMsgQoS": true, "useMsgRetain": true, "sendOnlyMsgPayload": true, "qos": 1}),
            );
            let topics: Vec<String> = (0..4).map(|i| format!("{}/m{i}", s.base)).collect();
            let shape = [(0, false), (1, true), (2, false), (2, true)];
            let msgs: Vec<_> =
                topics.iter().zip(shape).map(|(t, (q, r))| message(t, b"v", q, r, Extras::default())).collect();
            assert_eq!(s.driver.process(&msgs, deadline()), delivered(4), "{} v{version}", target.name);
            let expected: Vec<_> = topics.iter().zip(shape).map(|(t, (q, r))| seen(t, q, r)).collect();
            assert_eq!(s.proxy.published(4), expected, "{} v{version}", target.name);
            assert_eq!(s.rec.expect(4).len(), 4);
            let mut kept: Vec<_> = retained(&target, version, &s.base).into_iter().map(|r| r.topic).collect();
            kept.sort();
            assert_eq!(kept, vec![topics[1].clone(), topics[3].clone()], "{} v{version}", target.name);
        }
    }
}

#[test]
fn configured_qos_and_retain_override_the_message() {
    for target in targets() {
        let mut s = setup(
            &target,
            4,
            target.port_v4,
            |b| json!({"topicName": format!("{b}/out"), "qos": 2, "retained": true, "useMsgQoS": false, "sendOnlyMsgPayload": true}),
        );
        let msgs = [message("in/x", b"kept", 0, false, Extras::default())];
        assert_eq!(s.driver.process(&msgs, deadline()), delivered(1), "{}", target.name);
        let out = format!("{}/out", s.base);
        assert_eq!(s.proxy.published(1), vec![seen(&out, 2, true)], "{}", target.name);
        assert_eq!(summary(&s.rec.expect(1)), vec![(out.clone(), b"kept".to_vec())]);
        let kept: Vec<_> = retained(&target, 4, &s.base).into_iter().map(|r| (r.topic, r.payload)).collect();
        assert_eq!(kept, vec![(out, b"kept".to_vec())], "{}", target.name);
    }
}

#[test]
fn qos0_without_retain_is_not_retained() {
    for target in targets() {
        let mut s = setup(
            &target,
            4,
            target.port_v4,
            |b| json!({"topicName": format!("{b}/out"), "qos": 0, "sendOnlyMsgPayload": true}),
        );
        let msgs = [message("in/x", b"q0", 2, true, Extras::default())];
        assert_eq!(s.driver.process(&msgs, deadline()), delivered(1), "{}", target.name);
        let out = format!("{}/out", s.base);
        assert_eq!(s.proxy.published(1), vec![seen(&out, 0, false)], "{}", target.name);
        assert_eq!(summary(&s.rec.expect(1)), vec![(out, b"q0".to_vec())]);
        assert_eq!(retained(&target, 4, &s.base), Vec::new(), "{}", target.name);
    }
}

#[test]
fn mqtt5_properties_arrive() {
    for target in targets() {
        let base = unique("trib/v5");
        let rec = Recorder::start(&target, 5, &format!("{base}/#"));
        let cfg = config_for(&target, 5, json!({"topicName": format!("{base}/out"), "sendOnlyMsgPayload": true}));
        let mut driver = started(&cfg);
        let props = [
            UserProperty { key: RStr::from_str("site"), value: RStr::from_str("A") },
            UserProperty { key: RStr::from_str("site"), value: RStr::from_str("B") },
        ];
        let extras = Extras {
            props: &props,
            content_type: Some("application/json"),
            correlation: Some(b"\x01\x02"),
            response_topic: Some("reply/to"),
            expiry: Some(3600),
            utf8: Some(true),
        };
        let msgs = [message("in/x", br#"{"a":1}"#, 1, false, extras)];
        assert_eq!(driver.process(&msgs, deadline()), delivered(1), "{}", target.name);
        let got = rec.expect(1).remove(0);
        assert_eq!(got.user, vec![("site".to_string(), "A".to_string()), ("site".to_string(), "B".to_string())]);
        assert_eq!(got.content_type.as_deref(), Some("application/json"), "{}", target.name);
        assert_eq!(got.correlation.as_deref(), Some(&b"\x01\x02"[..]), "{}", target.name);
        assert_eq!(got.response_topic.as_deref(), Some("reply/to"), "{}", target.name);
        assert!(got.expiry.is_some_and(|e| e > 3500 && e <= 3600), "expiry {:?} on {}", got.expiry, target.name);
        assert_eq!(got.payload_format, Some(1), "{}", target.name);
        assert_eq!(got.payload, br#"{"a":1}"#.to_vec());
    }
}

#[test]
fn many_messages_in_order() {
    for target in targets() {
        for (version, qos) in [(4, 1), (5, 1), (4, 2), (5, 2), (4, 0)] {
            let base = unique("trib/many");
            let rec = Recorder::start(&target, version, &format!("{base}/#"));
            let cfg = config_for(
                &target,
                version,
                json!({"topicName": format!("{base}/out"), "qos": qos, "sendOnlyMsgPayload": true}),
            );
            let mut driver = started(&cfg);
            let payloads: Vec<Vec<u8>> = (0..3000).map(|i| format!("m{i}").into_bytes()).collect();
            let msgs: Vec<_> = payloads.iter().map(|p| message("in", p, 0, false, Extras::default())).collect();
            // Chunks are awaited at the subscriber, as brokers drop messages for a subscriber whose
            // queue overflows (Mosquitto's max_queued_messages is 1000).
            for (chunk, expected) in msgs.chunks(250).zip(payloads.chunks(250)) {
                assert_eq!(
                    driver.process(chunk, deadline()),
                    delivered(chunk.len()),
                    "{} v{version} qos {qos}",
                    target.name
                );
                let got: Vec<Vec<u8>> = rec.expect(chunk.len()).into_iter().map(|r| r.payload).collect();
                assert_eq!(got, expected, "{} v{version} qos {qos}", target.name);
            }
        }
    }
}

#[test]
fn basic_credentials_are_accepted() {
    for target in targets() {
        let Some((auth_v4, auth_v5)) = target.auth_ports else {
            continue;
        };
        for (version, port) in [(4, auth_v4), (5, auth_v5)] {
            let creds =
                json!({"type": "basic", "username": super::support::USER, "password": super::support::PASSWORD});
            let mut s = setup(
                &target,
                version,
                port,
                |b| json!({"topicName": format!("{b}/out"), "credentials": creds, "sendOnlyMsgPayload": true}),
            );
            let msgs = [message("in", b"authed", 1, false, Extras::default())];
            assert_eq!(s.driver.process(&msgs, deadline()), delivered(1), "v{version}");
            assert_eq!(summary(&s.rec.expect(1)), vec![(format!("{}/out", s.base), b"authed".to_vec())]);
        }
    }
}

/// An idle connection gives rumqttc's per-packet-id bookkeeping back (issue 13: 1,000 idle MQTT
/// integrations cost 300 MiB while each kept 4,097 slots): the window opens for the first
/// batch, closes once nothing was sent for the idle period, and opens again for the next
/// batch, which is delivered like the first.
#[test]
fn the_window_opens_for_a_batch_and_closes_when_idle() {
    crate::tracker::IDLE_CLOSE_FOR_TESTS.set(Some(std::time::Duration::from_millis(300)));
    for target in targets() {
        for version in [4, 5] {
            let base = unique("trib/window");
            let rec = Recorder::start(&target, version, &format!("{base}/#"));
            let cfg = config_for(
                &target,
                version,
                json!({"topicName": format!("{base}/out"), "qos": 1, "sendOnlyMsgPayload": true}),
            );
            let mut driver = started(&cfg);
            assert_eq!(driver.window_open(), Some(false), "{} v{version}: nothing sent yet", target.name);
            for round in 0..2 {
                let payloads: Vec<Vec<u8>> = (0..50).map(|i| format!("r{round}m{i}").into_bytes()).collect();
                let msgs: Vec<_> = payloads.iter().map(|p| message("in", p, 0, false, Extras::default())).collect();
                assert_eq!(
                    driver.process(&msgs, deadline()),
                    delivered(50),
                    "{} v{version} round {round}",
                    target.name
                );
                assert_eq!(driver.window_open(), Some(true), "{} v{version} round {round}", target.name);
                let got: Vec<Vec<u8>> = rec.expect(50).into_iter().map(|r| r.payload).collect();
                assert_eq!(got, payloads, "{} v{version} round {round}", target.name);
                let until = std::time::Instant::now() + super::support::PATIENCE;
                while driver.window_open() == Some(true) && std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                assert_eq!(driver.window_open(), Some(false), "{} v{version} round {round}: idle", target.name);
            }
        }
    }
    crate::tracker::IDLE_CLOSE_FOR_TESTS.set(None);
}
