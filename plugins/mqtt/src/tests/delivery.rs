//! Delivery to a live broker: what the subscriber receives (topic, payload bytes, QoS, retain,
//! MQTT 5 properties) for each mode, and that every message is reported `Delivered`.

use serde_json::json;
use trib_plugin_api::{
    abi::UserProperty,
    abi_stable::std_types::RStr,
    driver::{Driver, Outcome},
    support::envelope::EnvelopeContext,
};

use super::{
    recorder::{retained, Received, Recorder},
    support::{config_for, deadline, message, started, targets, unique, Extras, METADATA, SERVICE_ID},
};

fn delivered(n: usize) -> Vec<Outcome> {
    vec![Outcome::Delivered; n]
}

fn summary(r: &[Received]) -> Vec<(String, Vec<u8>, u8)> {
    r.iter().map(|r| (r.topic.clone(), r.payload.clone(), r.qos)).collect()
}

#[test]
fn envelope_to_static_topic() {
    for target in targets() {
        for version in [4, 5] {
            let base = unique("trib/env");
            let rec = Recorder::start(&target, version, &format!("{base}/#"));
            let cfg = config_for(&target, version, json!({"topicName": format!("{base}/out"), "qos": 1}));
            let mut driver = started(&cfg);
            let msgs = [message("sensors/1/temp", br#"{"t":25}"#, 0, false, Extras::default())];
            assert_eq!(driver.process(&msgs, deadline()), delivered(1), "{} v{version}", target.name);
            let envelope = EnvelopeContext::new(SERVICE_ID, METADATA).to_vec_base64(&msgs[0]);
            assert_eq!(summary(&rec.expect(1)), vec![(format!("{base}/out"), envelope, 1)], "{} v{version}", target.name);
            driver.stop();
        }
    }
}

#[test]
fn payload_only_to_source_topics() {
    for target in targets() {
        let base = unique("trib/src");
        let rec = Recorder::start(&target, 4, &format!("{base}/#"));
        let cfg = config_for(&target, 4, json!({"useMsgTopicName": true, "sendOnlyMsgPayload": true, "qos": 1}));
        let mut driver = started(&cfg);
        let topics = [format!("{base}/a"), format!("{base}/b/c"), format!("{base}/a")];
        let payloads: [&[u8]; 3] = [b"\x00\x01\xfe\xff", b"", b"plain text"];
        let msgs: Vec<_> = topics.iter().zip(payloads).map(|(t, p)| message(t, p, 0, false, Extras::default())).collect();
        assert_eq!(driver.process(&msgs, deadline()), delivered(3), "{}", target.name);
        let expected: Vec<_> = topics.iter().zip(payloads).map(|(t, p)| (t.clone(), p.to_vec(), 1)).collect();
        assert_eq!(summary(&rec.expect(3)), expected, "{}", target.name);
    }
}

#[test]
fn topic_template_from_source_topic_and_client_id() {
    for target in targets() {
        let base = unique("trib/tpl");
        let rec = Recorder::start(&target, 4, &format!("{base}/#"));
        let cfg = config_for(&target, 4, json!({"topicName": format!("{base}/${{topic}}/by/${{clientId}}"), "sendOnlyMsgPayload": true}));
        let mut driver = started(&cfg);
        let msgs = [message("plant/7/line", b"x", 1, false, Extras::default())];
        assert_eq!(driver.process(&msgs, deadline()), delivered(1), "{}", target.name);
        assert_eq!(summary(&rec.expect(1)), vec![(format!("{base}/plant/7/line/by/device-1"), b"x".to_vec(), 1)]);
    }
}

#[test]
fn message_qos_and_retain_are_used() {
    for target in targets() {
        for version in [4, 5] {
            let base = unique("trib/msgqos");
            let rec = Recorder::start(&target, version, &format!("{base}/#"));
            let cfg = config_for(
                &target,
                version,
                json!({"useMsgTopicName": true, "useMsgQoS": true, "useMsgRetain": true, "sendOnlyMsgPayload": true, "qos": 1}),
            );
            let mut driver = started(&cfg);
            let topics: Vec<String> = (0..4).map(|i| format!("{base}/m{i}")).collect();
            let shape = [(0, false), (1, true), (2, false), (2, true)];
            let msgs: Vec<_> =
                topics.iter().zip(shape).map(|(t, (q, r))| message(t, b"v", q, r, Extras::default())).collect();
            assert_eq!(driver.process(&msgs, deadline()), delivered(4), "{} v{version}", target.name);
            let mut got: Vec<_> = rec.expect(4).into_iter().map(|r| (r.topic, r.qos)).collect();
            got.sort();
            let expected: Vec<_> = topics.iter().zip(shape).map(|(t, (q, _))| (t.clone(), q)).collect();
            assert_eq!(got, expected, "{} v{version}", target.name);
            let mut kept: Vec<_> = retained(&target, version, &base).into_iter().map(|r| r.topic).collect();
            kept.sort();
            assert_eq!(kept, vec![topics[1].clone(), topics[3].clone()], "{} v{version}", target.name);
        }
    }
}

#[test]
fn configured_qos_and_retain_override_the_message() {
    for target in targets() {
        let base = unique("trib/fixed");
        let rec = Recorder::start(&target, 4, &format!("{base}/#"));
        let cfg = config_for(&target, 4, json!({"topicName": format!("{base}/out"), "qos": 2, "retained": true, "sendOnlyMsgPayload": true}));
        let mut driver = started(&cfg);
        let msgs = [message("in/x", b"kept", 0, false, Extras::default())];
        assert_eq!(driver.process(&msgs, deadline()), delivered(1), "{}", target.name);
        assert_eq!(summary(&rec.expect(1)), vec![(format!("{base}/out"), b"kept".to_vec(), 2)]);
        let kept: Vec<_> = retained(&target, 4, &base).into_iter().map(|r| (r.topic, r.payload)).collect();
        assert_eq!(kept, vec![(format!("{base}/out"), b"kept".to_vec())], "{}", target.name);
    }
}

#[test]
fn qos0_without_retain_is_not_retained() {
    for target in targets() {
        let base = unique("trib/q0");
        let rec = Recorder::start(&target, 4, &format!("{base}/#"));
        let cfg = config_for(&target, 4, json!({"topicName": format!("{base}/out"), "qos": 0, "sendOnlyMsgPayload": true}));
        let mut driver = started(&cfg);
        let msgs = [message("in/x", b"q0", 2, true, Extras::default())];
        assert_eq!(driver.process(&msgs, deadline()), delivered(1), "{}", target.name);
        assert_eq!(summary(&rec.expect(1)), vec![(format!("{base}/out"), b"q0".to_vec(), 0)]);
        assert_eq!(retained(&target, 4, &base), Vec::new(), "{}", target.name);
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
        for (version, qos) in [(4, 1), (5, 1), (4, 2), (4, 0)] {
            let base = unique("trib/many");
            let rec = Recorder::start(&target, version, &format!("{base}/#"));
            let cfg = config_for(&target, version, json!({"topicName": format!("{base}/out"), "qos": qos, "sendOnlyMsgPayload": true}));
            let mut driver = started(&cfg);
            let payloads: Vec<Vec<u8>> = (0..3000).map(|i| format!("m{i}").into_bytes()).collect();
            let msgs: Vec<_> = payloads.iter().map(|p| message("in", p, 0, false, Extras::default())).collect();
            for chunk in msgs.chunks(500) {
                assert_eq!(driver.process(chunk, deadline()), delivered(chunk.len()), "{} v{version} qos {qos}", target.name);
            }
            let got: Vec<Vec<u8>> = rec.expect(payloads.len()).into_iter().map(|r| r.payload).collect();
            assert_eq!(got, payloads, "{} v{version} qos {qos}", target.name);
        }
    }
}

#[test]
fn basic_credentials_are_sent() {
    for target in targets() {
        let Some((auth_v4, auth_v5)) = target.auth_ports else { continue };
        for (version, port) in [(4, auth_v4), (5, auth_v5)] {
            let base = unique("trib/auth");
            let rec = Recorder::start(&target, version, &format!("{base}/#"));
            let creds = json!({"type": "basic", "username": super::support::USER, "password": super::support::PASSWORD});
            let cfg = config_for(&target, version, json!({"port": port, "topicName": format!("{base}/out"), "credentials": creds, "sendOnlyMsgPayload": true}));
            let mut driver = started(&cfg);
            let msgs = [message("in", b"authed", 1, false, Extras::default())];
            assert_eq!(driver.process(&msgs, deadline()), delivered(1), "v{version}");
            assert_eq!(summary(&rec.expect(1)), vec![(format!("{base}/out"), b"authed".to_vec(), 1)]);
        }
    }
}
