//! Dead letters (ours): records written straight to an integration's dead-letter topic, as the
//! executor writes them, are listed field by field, paged by `limit` and `fromOffset`, replayed
//! once to the message topic with their original bytes and keys, and deleted with the integration.

use std::time::{Duration, Instant};

use prost::Message as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use trib_core::{
    queue::{ConsumerEvent, Partitioning, Record, TopicPartition},
    wire::{DeadLetterProto, PublishIntegrationMsgProto, PublishMsgProto, WIRE_VERSION},
};
use uuid::Uuid;

use super::support::{assert_error, on_both_backends, Backend, Env};
use crate::model::Integration;

on_both_backends!(
    dead_letters_are_listed_field_by_field,
    replay_moves_dead_letters_back_once,
    delete_removes_dead_letters
);

/// Bytes that are neither a `PublishIntegrationMsgProto` nor a `DeadLetterProto` (wire type 7
/// does not exist); checked below so that the test cannot pass by accident.
const GARBAGE: &[u8] = b"\xff\xff\xff\xff not protobuf";

/// An integration row, without asking an executor (nothing consumes its message topic).
async fn seed(env: &Env, name: &str, enabled: bool) -> Uuid {
    let integration = Integration {
        id: Uuid::new_v4(),
        created_time: trib_core::now_ms(),
        disconnected_time: if enabled { 0 } else { trib_core::now_ms() },
        name: name.into(),
        integration_type: "SCRIPTED".into(),
        enabled,
        configuration: json!({"clientConfiguration": {}, "topicFilters": ["#"]}),
        additional_info: None,
        status: None,
    };
    let db = env.db().await;
    db.save_integration(&integration).await.expect("seed");
    db.close().await;
    integration.id
}

/// A `PublishIntegrationMsgProto` as the broker queues it.
fn message(topic: &str, client: &str, qos: i32, retain: bool, payload: &[u8], ts: i64) -> Vec<u8> {
    PublishIntegrationMsgProto {
        publish_msg_proto: Some(PublishMsgProto {
            client_id: client.into(),
            packet_id: 7,
            payload: payload.to_vec().into(),
            retain,
            qos,
            topic_name: topic.into(),
            user_properties: vec![],
            mqtt_properties: None,
            client_cert_cn: None,
        }),
        tbmq_node: "broker-x".into(),
        timestamp: ts,
        wire_version: WIRE_VERSION,
    }
    .encode_to_vec()
}

/// Writes a record to the integration's dead-letter topic (created if missing); returns its offset.
async fn write_raw(env: &Env, id: Uuid, key: &str, value: &[u8]) -> i64 {
    let topics = &env.config.topics;
    env.queue.create_topic(&topics.dlq_spec(id).expect("spec")).expect("create");
    let stored = env.queue.producer().send(&topics.dlq(id), Partitioning::Fixed(0), Some(key.as_bytes()), value).await;
    stored.expect("answered").expect("stored").1
}

/// Writes a dead letter of `record`, as the executor does.
async fn write_letter(env: &Env, id: Uuid, key: &str, record: &[u8], msg_offset: i64, reason: &str) -> i64 {
    let letter = DeadLetterProto {
        record: record.to_vec(),
        offset: msg_offset,
        reason: reason.into(),
        attempts: 3,
        failed_at: 1_700_000_000_000 + msg_offset,
        service_id: "ie-7".into(),
        wire_version: WIRE_VERSION,
    };
    write_raw(env, id, key, &letter.encode_to_vec()).await
}

/// Every record of a topic's partition 0, read by a fresh group.
fn records(env: &Env, topic: &str) -> Vec<Record> {
    tokio::task::block_in_place(|| {
        let tp = TopicPartition::new(topic, 0);
        let mut consumer = env.queue.assign(&format!("test-{}", Uuid::new_v4()), "test", &tp).expect("assign");
        let (_, end) = consumer.watermarks(&tp).expect("watermarks");
        let mut out: Vec<Record> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.last().map_or(0, |r| r.offset + 1) < end {
            assert!(Instant::now() < deadline, "{topic} not read up to {end}");
            for event in consumer.poll(Duration::from_millis(100), 100).expect("poll") {
                if let ConsumerEvent::Records(rs) = event {
                    out.extend(rs);
                }
            }
        }
        out
    })
}

/// What the replay group committed on the dead-letter topic.
fn replay_committed(env: &Env, id: Uuid) -> Option<i64> {
    let topics = &env.config.topics;
    let tp = TopicPartition::new(topics.dlq(id), 0);
    env.queue.assign(&topics.dlq_replay_group(id), "test", &tp).expect("assign").committed(&tp).expect("committed")
}

fn offsets(page: &Value) -> Vec<i64> {
    page["data"].as_array().expect("data").iter().map(|d| d["offset"].as_i64().expect("offset")).collect()
}

async fn dead_letters_are_listed_field_by_field(backend: Backend) {
    let env = Env::start(backend).await;
    assert!(PublishIntegrationMsgProto::decode(GARBAGE).is_err() && DeadLetterProto::decode(GARBAGE).is_err());
    // Unknown integration: 404 in TBMQ's shape, for both endpoints.
    let unknown = Uuid::new_v4();
    let (code, body) = env.get(&format!("/api/integration/{unknown}/deadLetters")).await;
    assert_eq!(assert_error(code, &body, 404, 32), "Requested item wasn't found!");
    let (code, body) = env.post_empty(&format!("/api/integration/{unknown}/deadLetters/replay")).await;
    assert_error(code, &body, 404, 32);
    let (code, body) = env.get("/api/integration/nope/deadLetters").await;
    assert_eq!(assert_error(code, &body, 400, 31), "Invalid UUID string: nope");

    let id = seed(&env, "dead", true).await;
    let path = format!("/api/integration/{id}/deadLetters");
    // No dead-letter topic yet: an empty list.
    let (code, page) = env.get(&path).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!(page, json!({"total": 0, "replayedUpTo": null, "data": []}));
    assert!(!env.queue.topic_exists(&env.config.topics.dlq(id)).expect("queue"), "reading creates nothing");

    let first = message("sensors/1/temp", "client-1", 1, false, &[0, 1, 2, 255], 1_650_000_000_001);
    let third = message("alarms/fire", "client-2", 2, true, b"hello", 1_650_000_000_003);
    assert_eq!(write_letter(&env, id, "sensors/1/temp", &first, 41, "rejected: HTTP 404").await, 0);
    assert_eq!(write_letter(&env, id, "sensors/2/temp", GARBAGE, 42, "undecodable record").await, 1);
    assert_eq!(write_letter(&env, id, "alarms/fire", &third, 43, "retry: timeout").await, 2);
    assert_eq!(write_raw(&env, id, "x", GARBAGE).await, 3);

    let (code, page) = env.get(&path).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 4, "{page}");
    assert_eq!(page.get("replayedUpTo"), Some(&Value::Null), "{page}");
    assert_eq!(offsets(&page), [0, 1, 2, 3]);
    let data = &page["data"];
    assert_eq!(
        data[0],
        json!({
            "offset": 0, "msgOffset": 41, "reason": "rejected: HTTP 404", "attempts": 3,
            "failedAt": 1_700_000_000_041_i64, "serviceId": "ie-7",
            "topicName": "sensors/1/temp", "clientId": "client-1", "qos": 1, "retain": false,
            "payload": "AAEC/w==", "receivedAt": 1_650_000_000_001_i64, "undecodable": false
        })
    );
    // The dead letter decodes, the message in it does not.
    assert_eq!(
        data[1],
        json!({
            "offset": 1, "msgOffset": 42, "reason": "undecodable record", "attempts": 3,
            "failedAt": 1_700_000_000_042_i64, "serviceId": "ie-7",
            "topicName": null, "clientId": null, "qos": null, "retain": null,
            "payload": null, "receivedAt": null, "undecodable": true
        })
    );
    assert_eq!(
        (&data[2]["topicName"], &data[2]["qos"], &data[2]["retain"], &data[2]["payload"], &data[2]["receivedAt"]),
        (&json!("alarms/fire"), &json!(2), &json!(true), &json!("aGVsbG8="), &json!(1_650_000_000_003_i64))
    );
    assert_eq!((&data[2]["msgOffset"], &data[2]["reason"]), (&json!(43), &json!("retry: timeout")));
    // Not a dead letter at all: only the offset is known.
    assert_eq!(
        data[3],
        json!({
            "offset": 3, "msgOffset": null, "reason": null, "attempts": null, "failedAt": null, "serviceId": null,
            "topicName": null, "clientId": null, "qos": null, "retain": null,
            "payload": null, "receivedAt": null, "undecodable": true
        })
    );

    // limit and fromOffset.
    for (query, expected) in [
        ("?limit=2", vec![0, 1]),
        ("?limit=2&fromOffset=1", vec![1, 2]),
        ("?fromOffset=3", vec![3]),
        ("?fromOffset=3&limit=1000", vec![3]),
        ("?limit=1", vec![0]),
        ("?fromOffset=4", vec![]),
        ("?fromOffset=100", vec![]),
    ] {
        let (code, page) = env.get(&format!("{path}{query}")).await;
        assert_eq!(code, StatusCode::OK, "{query} {page}");
        assert_eq!(offsets(&page), expected, "{query}");
        assert_eq!(page["total"], 4, "{query} {page}");
    }
    // Default limit 100.
    for n in 4..105 {
        write_letter(&env, id, "t", &first, n, "rejected").await;
    }
    let (_, page) = env.get(&path).await;
    assert_eq!((page["total"].as_i64(), offsets(&page).len()), (Some(105), 100));
    assert_eq!(offsets(&page).last(), Some(&99));
    // Bad parameters: 400 in TBMQ's shape.
    for query in ["?limit=0", "?limit=5000", "?limit=1001", "?limit=-1", "?limit=x", "?fromOffset=-1", "?fromOffset=y"]
    {
        let (code, body) = env.get(&format!("{path}{query}")).await;
        assert_error(code, &body, 400, 31);
    }
    env.stop().await;
}

async fn replay_moves_dead_letters_back_once(backend: Backend) {
    let env = Env::start(backend).await;
    let topics = env.config.topics.clone();
    // Disabled: allowed, the messages wait in its topic until it is enabled.
    let id = seed(&env, "replayed", false).await;
    let replay = format!("/api/integration/{id}/deadLetters/replay");
    // Nothing to replay: 0, and no topic is created for it.
    let (code, body) = env.post_empty(&replay).await;
    assert_eq!((code, body), (StatusCode::OK, json!({"replayed": 0})));
    assert!(!env.queue.topic_exists(&topics.msg(id)).expect("queue"));
    assert!(!env.queue.topic_exists(&topics.dlq(id)).expect("queue"));

    let a = message("a/1", "c", 1, false, b"one", 1);
    let b = message("b/2", "c", 0, true, b"two", 2);
    write_letter(&env, id, "a/1", &a, 10, "rejected").await;
    write_letter(&env, id, "x/y", GARBAGE, 11, "undecodable record").await;
    write_raw(&env, id, "z", GARBAGE).await;
    write_letter(&env, id, "b/2", &b, 12, "retry: gave up").await;

    let (code, body) = env.post_empty(&replay).await;
    assert_eq!((code, &body), (StatusCode::OK, &json!({"replayed": 2})), "{body}");
    // The original bytes, in order, on partition 0 with the MQTT topic as key.
    let msgs = records(&env, &topics.msg(id));
    let got: Vec<_> = msgs.iter().map(|r| (r.offset, r.key.as_deref().map(<[u8]>::to_vec), r.value.to_vec())).collect();
    assert_eq!(got, [(0, Some(b"a/1".to_vec()), a.clone()), (1, Some(b"b/2".to_vec()), b.clone())]);
    assert!(msgs.iter().all(|r| r.tp.partition == 0));
    // The message topic was created for them with its first offset committed before them, so
    // the integration delivers them once enabled.
    let msg_tp = TopicPartition::new(topics.msg(id), 0);
    let msg_committed =
        env.queue.assign(&topics.msg_group(id), "test", &msg_tp).expect("assign").committed(&msg_tp).expect("c");
    assert_eq!(msg_committed, Some(0));
    assert_eq!(replay_committed(&env, id), Some(4));
    let (_, page) = env.get(&format!("/api/integration/{id}/deadLetters")).await;
    assert_eq!((page["total"].as_i64(), page["replayedUpTo"].as_i64()), (Some(4), Some(4)), "{page}");

    // A second call replays nothing new.
    let (code, body) = env.post_empty(&replay).await;
    assert_eq!((code, body), (StatusCode::OK, json!({"replayed": 0})));
    assert_eq!(records(&env, &topics.msg(id)).len(), 2);

    // A newer dead letter: only it goes.
    let c = message("c/3", "c", 1, false, b"three", 3);
    write_letter(&env, id, "c/3", &c, 13, "rejected").await;
    let (code, body) = env.post_empty(&replay).await;
    assert_eq!((code, body), (StatusCode::OK, json!({"replayed": 1})));
    let msgs = records(&env, &topics.msg(id));
    assert_eq!(msgs.len(), 3);
    assert_eq!((msgs[2].key.as_deref(), msgs[2].value.as_ref()), (Some(&b"c/3"[..]), &c[..]));
    let (_, page) = env.get(&format!("/api/integration/{id}/deadLetters?fromOffset=4")).await;
    assert_eq!((page["replayedUpTo"].as_i64(), offsets(&page)), (Some(5), vec![4]), "{page}");
    // Replaying does not remove dead letters.
    assert_eq!(page["total"], 5);
    env.stop().await;
}

async fn delete_removes_dead_letters(backend: Backend) {
    let env = Env::start(backend).await;
    let topics = env.config.topics.clone();
    let keep = seed(&env, "kept", true).await;
    write_letter(&env, keep, "k", &message("k", "c", 0, false, b"k", 1), 0, "rejected").await;
    for enabled in [false, true] {
        let id = seed(&env, &format!("deleted-{enabled}"), enabled).await;
        write_letter(&env, id, "a", &message("a", "c", 0, false, b"x", 1), 0, "rejected").await;
        let (code, body) = env.post_empty(&format!("/api/integration/{id}/deadLetters/replay")).await;
        assert_eq!((code, body), (StatusCode::OK, json!({"replayed": 1})));
        assert_eq!(replay_committed(&env, id), Some(1));
        let (code, body) = env.delete(&format!("/api/integration/{id}")).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert!(!env.queue.topic_exists(&topics.dlq(id)).expect("queue"), "enabled: {enabled}");
        assert_eq!(replay_committed(&env, id), None, "enabled: {enabled}");
        let (code, body) = env.get(&format!("/api/integration/{id}/deadLetters")).await;
        assert_error(code, &body, 404, 32);
    }
    // Other integrations keep theirs.
    assert!(env.queue.topic_exists(&topics.dlq(keep)).expect("queue"));
    let (_, page) = env.get(&format!("/api/integration/{keep}/deadLetters")).await;
    assert_eq!(page["total"], 1, "{page}");
    env.stop().await;
}
