//! The status tells the truth: Active only while a live executor runs the integration and its
//! deliveries succeed; failing deliveries, a lost executor and a type nobody serves say why, with
//! the delivery figures the executor announces.

use prost::Message as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use trib_queue::{
    queue::Partitioning,
    wire::{
        uuid_to_bits, IntegrationStatusProto, PublishIntegrationMsgProto, PublishMsgProto, ServiceInfo, WIRE_VERSION,
    },
};
use uuid::Uuid;

use super::support::{on_both_backends, stop_executor, Backend, Env};

on_both_backends!(status_follows_deliveries_and_executors, a_lost_executor_is_reported);

/// Queues one message for integration `id` as the broker would.
async fn queue_message(env: &Env, id: Uuid, payload: &str) {
    let msg = PublishIntegrationMsgProto {
        publish_msg_proto: Some(PublishMsgProto {
            client_id: "device".into(),
            payload: payload.as_bytes().to_vec().into(),
            qos: 1,
            topic_name: "sensors/1/temp".into(),
            ..Default::default()
        }),
        tbmq_node: "broker-x".into(),
        timestamp: trib_queue::now_ms(),
        wire_version: WIRE_VERSION,
    };
    let topic = env.config.topics.msg(id);
    let stored = env.queue.producer().send(&topic, Partitioning::Fixed(0), Some(b"k"), &msg.encode_to_vec()).await;
    stored.expect("answered").expect("stored");
}

async fn status(env: &Env, id: &str) -> Value {
    let (code, body) = env.get(&format!("/api/integration/{id}/status")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

async fn wait_status(env: &Env, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    env.wait_until(what, || async { check(&status(env, id).await) }).await;
    status(env, id).await
}

async fn status_follows_deliveries_and_executors(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    let saved = env.create("truthful", true, json!({})).await;
    let id = saved["id"].as_str().expect("id").to_string();
    let uuid = Uuid::parse_str(&id).expect("uuid");
    let active = env.wait_state(&id, "Active").await;
    assert_eq!((active["reasonCode"].clone(), active["delivery"]["serviceId"].clone()), (Value::Null, json!("ie-1")));

    // Deliveries: counted, with the time of the last one.
    for n in 0..3 {
        queue_message(&env, uuid, &format!("m{n}")).await;
    }
    let s = wait_status(&env, &id, "3 delivered", |s| s["delivery"]["deliveredMsgs"] == 3).await;
    assert_eq!(s["state"], "Active", "{s}");
    assert!(s["delivery"]["lastDeliveredTime"].as_i64().is_some_and(|t| t > 0), "{s}");
    assert_eq!(s["delivery"]["totalMsgs"], 3, "{s}");
    let s = wait_status(&env, &id, "backlog 0", |s| s["delivery"]["backlog"] == 0).await;
    assert_eq!(s["delivery"]["consecutiveFailures"], 0, "{s}");
    // The history the console charts: one point per announcement, with rates between them.
    env.wait_until("two history points", || async {
        let (_, h) = env.get(&format!("/api/integration/{id}/deliveryHistory")).await;
        h.as_array().is_some_and(|p| p.len() >= 2 && p.iter().all(|p| p["serviceId"] == "ie-1"))
    })
    .await;
    let (code, body) = env.get(&format!("/api/integration/{}/deliveryHistory", Uuid::new_v4())).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    // The list filtered by type.
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0&type=scripted").await;
    assert_eq!(page["totalElements"], 1, "{page}");
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0&type=HTTP").await;
    assert_eq!(page["totalElements"], 0, "{page}");

    // A target that refuses everything: Failed, FAILING, with the driver's reason.
    queue_message(&env, uuid, "retry").await;
    let s = wait_status(&env, &id, "failing", |s| s["reasonCode"] == "FAILING").await;
    assert_eq!(s["state"], "Failed", "{s}");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("Failing since ") && reason.contains("scripted retry"), "{s}");
    assert!(s["delivery"]["failingSince"].as_i64().is_some_and(|t| t > 0), "{s}");
    // The tests' executors skip failures (SKIP_ALL): the message is given up on and dead-lettered.
    assert_eq!(
        (s["delivery"]["failedMsgs"].as_u64(), s["delivery"]["deadLetteredMsgs"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );

    // The list of states the console shows agrees, and leaves out ids that do not exist.
    let missing = Uuid::new_v4();
    let (code, list) = env.get(&format!("/api/integrations/status?integrationIds={id},{missing}")).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(
        (list.len(), list[0]["integrationId"].as_str(), list[0]["reasonCode"].as_str()),
        (1, Some(id.as_str()), Some("FAILING"))
    );
    let (code, body) = env.get("/api/integrations/status?integrationIds=nope").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");

    // The executor stops (gracefully): nobody serves the type any more.
    stop_executor(executor);
    let s = wait_status(&env, &id, "no executor", |s| s["reasonCode"] == "NO_EXECUTOR").await;
    assert_eq!(s["state"], "Pending", "{s}");
    assert_eq!(s["delivery"], Value::Null, "{s}");
    env.stop().await;
}

/// An executor that stops announcing without stopping anything (as under SIGKILL: no STOPPED
/// event) leaves its integrations Failed with EXECUTOR_LOST once it counts as gone.
async fn a_lost_executor_is_reported(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    let saved = env.create("orphan", true, json!({})).await;
    let id = saved["id"].as_str().expect("id").to_string();
    env.wait_state(&id, "Active").await;
    stop_executor(executor);
    env.wait_until("no executor", || async { status(&env, &id).await["reasonCode"] == "NO_EXECUTOR" }).await;

    // Executor "ie-killed" announces that it runs the integration, then is never heard again.
    let (msb, lsb) = uuid_to_bits(Uuid::parse_str(&id).expect("uuid"));
    let info = ServiceInfo {
        service_id: "ie-killed".into(),
        service_type: Some("tbmq-integration-executor".into()),
        integration_types: vec!["SCRIPTED@0.1.0".into()],
        timestamp: trib_queue::now_ms(),
        integrations: vec![IntegrationStatusProto {
            integration_id_msb: msb,
            integration_id_lsb: lsb,
            started: true,
            delivered_msgs: 5,
            ..Default::default()
        }],
        ..Default::default()
    };
    env.announce_executor(info).await;
    let s = wait_status(&env, &id, "held by ie-killed", |s| s["delivery"]["serviceId"] == "ie-killed").await;
    assert_eq!((s["state"].as_str(), s["delivery"]["executorLive"].as_bool()), (Some("Active"), Some(true)), "{s}");
    // Three announce intervals (2 s in the tests) later it counts as gone.
    let s = wait_status(&env, &id, "executor lost", |s| s["reasonCode"] == "EXECUTOR_LOST").await;
    assert_eq!((s["state"].as_str(), s["delivery"]["executorLive"].as_bool()), (Some("Failed"), Some(false)), "{s}");
    assert!(
        s["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ie-killed") && r.contains("no running executor serves type SCRIPTED")),
        "{s}"
    );
    env.stop().await;
}
