//! Events: stored from the uplink topic as an executor sends them (ids and times assigned on
//! receipt, errors truncated), paged, filtered and cleared through the REST API.

use prost::Message as _;
use reqwest::StatusCode;
use serde_json::json;
use trib_core::{
    queue::Partitioning,
    wire::{
        uuid_to_bits, ErrorEventProto, IntegrationEventProto, LifecycleEventProto, StatisticsEventProto,
        UplinkIntegrationMsgProto, WIRE_VERSION,
    },
};
use uuid::Uuid;

use super::support::{assert_error, on_both_backends, Backend, Env};
use crate::model::{Event, EventBody};

on_both_backends!(uplink_events_are_stored_and_truncated, paging_time_window_and_filters, clear_by_filter);

async fn send_uplink(env: &Env, id: Uuid, service: &str, build: impl FnOnce(&mut IntegrationEventProto)) {
    let (msb, lsb) = uuid_to_bits(id);
    let mut event = IntegrationEventProto {
        source: 0,
        event_source_id_msb: msb,
        event_source_id_lsb: lsb,
        service_id: service.into(),
        ..Default::default()
    };
    build(&mut event);
    let msg =
        UplinkIntegrationMsgProto { event_proto: Some(event), service_info_proto: None, wire_version: WIRE_VERSION };
    let topic = env.config.topics.uplink();
    let delivery =
        env.queue.producer().send(&topic, Partitioning::ByKey, Some(id.to_string().as_bytes()), &msg.encode_to_vec());
    delivery.await.expect("delivery").expect("uplink send");
}

async fn uplink_events_are_stored_and_truncated(backend: Backend) {
    let env = Env::start(backend).await;
    let id = Uuid::new_v4();
    let long = "é".repeat(5000);
    send_uplink(&env, id, "ie-x", |e| {
        e.error = Some(ErrorEventProto { method: "onMsgProcess".into(), error: Some(long.clone()) })
    })
    .await;
    send_uplink(&env, id, "ie-x", |e| {
        e.statistics = Some(StatisticsEventProto { messages_processed: 7, errors_occurred: 1 })
    })
    .await;
    send_uplink(&env, id, "ie-x", |e| {
        e.lifecycle =
            Some(LifecycleEventProto { lc_event_type: "FAILED".into(), success: false, error: Some("boom".into()) })
    })
    .await;
    let path = format!("/api/events/{id}/ERROR?pageSize=10&page=0");
    env.wait_until("error event stored", || async { env.get(&path).await.1["totalElements"] == 1 }).await;
    let (_, errors) = env.get(&path).await;
    let e = &errors["data"][0];
    assert_eq!((e["type"].as_str(), e["entityId"].as_str()), (Some("ERROR"), Some(id.to_string().as_str())));
    assert_eq!(e["body"]["method"], "onMsgProcess");
    assert_eq!(e["body"]["server"], "ie-x");
    assert_eq!(e["body"]["error"].as_str().map(|s| s.chars().count()), Some(4096));
    assert!(Uuid::parse_str(e["id"].as_str().expect("id")).is_ok());
    assert!(e["createdTime"].as_i64().expect("ts") > 0);
    let stats_path = format!("/api/events/{id}/stats?pageSize=10&page=0");
    env.wait_until("stats stored", || async { env.get(&stats_path).await.1["totalElements"] == 1 }).await;
    let (_, stats) = env.get(&stats_path).await;
    assert_eq!(stats["data"][0]["body"], json!({"server": "ie-x", "messagesProcessed": 7, "errorsOccurred": 1}));
    let lc_path = format!("/api/events/{id}/LC_EVENT?pageSize=10&page=0");
    env.wait_until("lifecycle stored", || async { env.get(&lc_path).await.1["totalElements"] == 1 }).await;
    let (_, lc) = env.get(&lc_path).await;
    assert_eq!(lc["data"][0]["body"], json!({"server": "ie-x", "event": "FAILED", "success": false, "error": "boom"}));
    let (code, body) = env.get(&format!("/api/events/{id}/BOGUS?pageSize=10&page=0")).await;
    assert_eq!(assert_error(code, &body, 400, 31), "Event type: 'BOGUS' is not supported!");
    env.stop().await;
}

fn lc(entity: Uuid, ts: i64, server: &str, event: &str, error: Option<&str>) -> Event {
    Event {
        id: Uuid::new_v4(),
        ts,
        entity_id: entity,
        service_id: server.into(),
        body: EventBody::Lifecycle { event: event.into(), success: error.is_none(), error: error.map(str::to_string) },
    }
}

fn stats(entity: Uuid, ts: i64, processed: i64, errors: i64) -> Event {
    Event {
        id: Uuid::new_v4(),
        ts,
        entity_id: entity,
        service_id: "ie-s".into(),
        body: EventBody::Stats { messages_processed: processed, errors_occurred: errors },
    }
}

async fn paging_time_window_and_filters(backend: Backend) {
    let env = Env::start(backend).await;
    let db = env.db().await;
    let id = Uuid::new_v4();
    for i in 0..30 {
        let (server, event, error) =
            if i % 3 == 0 { ("ie-A", "FAILED", Some("Connection REFUSED")) } else { ("ie-b", "STARTED", None) };
        db.insert_event(&lc(id, 1000 + i, server, event, error)).await.expect("seed");
        db.insert_event(&stats(id, 1000 + i, i, i % 4)).await.expect("seed");
    }
    db.insert_event(&lc(Uuid::new_v4(), 1005, "ie-b", "STARTED", None)).await.expect("other entity");
    // Paging newest first.
    let (_, page) =
        env.get(&format!("/api/events/{id}/LC_EVENT?pageSize=7&page=0&sortProperty=createdTime&sortOrder=DESC")).await;
    assert_eq!(
        (page["totalElements"].as_u64(), page["totalPages"].as_u64(), page["hasNext"].as_bool()),
        (Some(30), Some(5), Some(true))
    );
    let ts: Vec<i64> =
        page["data"].as_array().expect("data").iter().filter_map(|e| e["createdTime"].as_i64()).collect();
    assert_eq!(ts, (1023..=1029).rev().collect::<Vec<_>>());
    let (_, last) = env.get(&format!("/api/events/{id}/LC_EVENT?pageSize=7&page=4&sortProperty=createdTime")).await;
    assert_eq!((last["data"].as_array().map(Vec::len), last["hasNext"].as_bool()), (Some(2), Some(false)));
    // Time window, both ends inclusive.
    let (_, window) =
        env.get(&format!("/api/events/{id}/LC_EVENT?pageSize=100&page=0&startTime=1010&endTime=1019")).await;
    assert_eq!(window["totalElements"], 10);
    let filter = |body: serde_json::Value, query: &str| {
        let env = &env;
        let path = format!("/api/events/{id}?pageSize=100&page=0{query}");
        async move {
            let (code, page) = env.post(&path, body).await;
            assert_eq!(code, StatusCode::OK, "{page}");
            page["totalElements"].as_u64().expect("total")
        }
    };
    assert_eq!(filter(json!({"eventType": "LC_EVENT"}), "").await, 30);
    assert_eq!(filter(json!({"eventType": "LC_EVENT", "server": "IE-a"}), "").await, 10);
    assert_eq!(filter(json!({"eventType": "LC_EVENT", "status": "Success"}), "").await, 20);
    assert_eq!(filter(json!({"eventType": "LC_EVENT", "status": "Failure"}), "").await, 10);
    assert_eq!(filter(json!({"eventType": "LC_EVENT", "event": "start"}), "").await, 20);
    assert_eq!(
        filter(json!({"eventType": "LC_EVENT", "errorStr": "refused"}), "&startTime=1000&endTime=1011").await,
        4
    );
    assert_eq!(
        filter(json!({"eventType": "STATS", "minMessagesProcessed": 10, "maxMessagesProcessed": 20}), "").await,
        10
    );
    assert_eq!(filter(json!({"eventType": "STATS", "minErrorsOccurred": 3}), "").await, 7);
    assert_eq!(filter(json!({"eventType": "STATS", "minMessagesProcessed": 0, "maxErrorsOccurred": 0}), "").await, 30);
    assert_eq!(filter(json!({"eventType": "ERROR", "method": "x"}), "").await, 0);
    // A filter of an unknown type, or with an unknown field, is a 400.
    let (code, body) = env.post(&format!("/api/events/{id}?pageSize=10&page=0"), json!({"eventType": "NOPE"})).await;
    assert_error(code, &body, 400, 31);
    let (code, body) =
        env.post(&format!("/api/events/{id}?pageSize=10&page=0"), json!({"eventType": "ERROR", "colour": "red"})).await;
    assert_error(code, &body, 400, 31);
    db.close().await;
    env.stop().await;
}

async fn clear_by_filter(backend: Backend) {
    let env = Env::start(backend).await;
    let db = env.db().await;
    let id = Uuid::new_v4();
    for i in 0..10 {
        db.insert_event(&lc(id, 2000 + i, "ie-a", if i < 4 { "STOPPED" } else { "STARTED" }, None))
            .await
            .expect("seed");
    }
    db.insert_event(&stats(id, 2000, 1, 0)).await.expect("seed");
    let (code, body) = env
        .post(
            &format!("/api/events/{id}/clear?startTime=2000&endTime=2002"),
            json!({"eventType": "LC_EVENT", "event": "STOPPED"}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, page) = env.get(&format!("/api/events/{id}/LC_EVENT?pageSize=100&page=0")).await;
    assert_eq!(page["totalElements"], 7);
    let (code, _) = env.post(&format!("/api/events/{id}/clear"), json!({"eventType": "LC_EVENT"})).await;
    assert_eq!(code, StatusCode::OK);
    let (_, page) = env.get(&format!("/api/events/{id}/LC_EVENT?pageSize=100&page=0")).await;
    assert_eq!(page["totalElements"], 0);
    let (_, page) = env.get(&format!("/api/events/{id}/STATS?pageSize=100&page=0")).await;
    assert_eq!(page["totalElements"], 1, "other kinds stay");
    db.close().await;
    env.stop().await;
}
