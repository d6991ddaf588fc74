//! The save flow's validation round-trip against a real executor: no executor, a silent one,
//! a rejected configuration, and a valid one that starts and becomes Active.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::support::{assert_error, integration, on_both_backends, stop_executor, Backend, Env};

on_both_backends!(
    no_executor_is_refused_at_once,
    silent_executor_times_out,
    rejected_configuration_has_field_errors,
    check_tells_an_invalid_configuration_from_an_unreachable_target,
    valid_integration_is_saved_and_starts
);

async fn no_executor_is_refused_at_once(backend: Backend) {
    let env = Env::start(backend).await;
    let started = Instant::now();
    let (code, body) = env.post("/api/integration", integration("no-exec", true, json!({}))).await;
    let message = assert_error(code, &body, 400, 31);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(message.contains("'SCRIPTED'") && message.contains("not served"), "{message}");
    // The check endpoint behaves the same.
    let (code, body) = env.post("/api/integration/check", integration("no-exec", true, json!({}))).await;
    assert_error(code, &body, 400, 31);
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["totalElements"], 0);
    assert!(env.sink.calls.lock().is_empty());
    env.stop().await;
}

async fn silent_executor_times_out(backend: Backend) {
    let env = Env::start_with(backend, |c| {
        c.validation_timeout = Duration::from_millis(800);
        c.executor_announce_interval = Duration::from_secs(10);
    })
    .await;
    // It announces SCRIPTED, then stops: the type still counts as served for three intervals.
    let executor = env.start_executor("ie-gone").await;
    stop_executor(executor);
    let started = Instant::now();
    let (code, body) = env.post("/api/integration", integration("silent", true, json!({}))).await;
    let message = assert_error(code, &body, 504, 2);
    assert!(started.elapsed() >= Duration::from_millis(700), "answered too early: {:?}", started.elapsed());
    assert!(message.contains("'SCRIPTED'") && message.contains("answered"), "{message}");
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["totalElements"], 0, "{page}");
    assert!(env.sink.calls.lock().is_empty());
    let (code, body) = env.post("/api/integration/check", integration("silent", true, json!({}))).await;
    assert_error(code, &body, 504, 2);
    env.stop().await;
}

async fn rejected_configuration_has_field_errors(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    let (code, body) = env.post("/api/integration", integration("bad", true, json!({"invalid": true}))).await;
    let message = assert_error(code, &body, 400, 31);
    assert_eq!(message, "invalid: is set");
    assert_eq!(body["fieldErrors"], json!([{"field": "invalid", "message": "is set"}]));
    // No clientConfiguration at all: the executor's own message.
    let mut no_client = integration("bad2", true, json!({}));
    no_client["configuration"].as_object_mut().expect("object").remove("clientConfiguration");
    let (code, body) = env.post("/api/integration", no_client).await;
    assert_eq!(assert_error(code, &body, 400, 31), "clientConfiguration field is missing!");
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["totalElements"], 0);
    assert!(env.sink.calls.lock().is_empty());
    // Check connection passes for a valid configuration and saves nothing.
    let (code, body) = env.post("/api/integration/check", integration("checked", true, json!({}))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["totalElements"], 0);
    stop_executor(executor);
    env.stop().await;
}

/// `POST /api/integration/check` answers field errors like a save does, and says in `failure`
/// whether the configuration is invalid (nothing was tried) or the target is unreachable.
async fn check_tells_an_invalid_configuration_from_an_unreachable_target(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-check").await;
    let invalid = integration("c1", true, json!({"invalid": true, "unreachable": true}));
    let (code, body) = env.post("/api/integration/check", invalid).await;
    assert_eq!(assert_error(code, &body, 400, 31), "invalid: is set");
    assert_eq!(body["fieldErrors"], json!([{"field": "invalid", "message": "is set"}]));
    assert_eq!(body["failure"], "CONFIGURATION_INVALID", "{body}");
    let (code, body) = env.post("/api/integration/check", integration("c2", true, json!({"unreachable": true}))).await;
    assert_eq!(assert_error(code, &body, 400, 31), "scripted target unreachable");
    assert_eq!(body["failure"], "TARGET_UNREACHABLE", "{body}");
    assert!(body.get("fieldErrors").is_none(), "{body}");
    // A save answers in the same shape.
    let (code, body) = env.post("/api/integration", integration("c3", true, json!({"invalid": true}))).await;
    assert_error(code, &body, 400, 31);
    assert_eq!(body["failure"], "CONFIGURATION_INVALID", "{body}");
    stop_executor(executor);
    env.stop().await;
}

async fn valid_integration_is_saved_and_starts(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    let saved = env.create("good", true, json!({})).await;
    let id = saved["id"].as_str().expect("id").to_string();
    let uuid = Uuid::parse_str(&id).expect("uuid");
    assert_eq!(
        (saved["name"].as_str(), saved["type"].as_str(), saved["enabled"].as_bool()),
        (Some("good"), Some("SCRIPTED"), Some(true))
    );
    assert_eq!(saved["disconnectedTime"], 0);
    assert!(saved["createdTime"].as_i64().expect("createdTime") > 0);
    assert_eq!(saved["additionalInfo"], json!({"description": "test"}));
    // Through `tbmq.client.subscriptions`, as a set: sorted, without duplicates.
    assert_eq!(env.sink.filters(uuid), Some(vec!["alarms/#".to_string(), "sensors/+/temp".to_string()]));
    assert!(env.queue.topic_exists(&env.config.topics.msg(uuid)).expect("queue"), "message topic created");
    let status = env.wait_state(&id, "Active").await;
    assert_eq!(status["status"], json!({"success": true}));
    assert_eq!(status["lastLifecycleEvent"]["body"]["event"], "STARTED");
    assert_eq!(status["lastLifecycleEvent"]["body"]["server"], "ie-1");
    // The broker's own CREATED event is there too.
    let (_, events) =
        env.get(&format!("/api/events/{id}/LC_EVENT?pageSize=10&page=0&sortProperty=createdTime&sortOrder=ASC")).await;
    let names: Vec<&str> =
        events["data"].as_array().expect("data").iter().filter_map(|e| e["body"]["event"].as_str()).collect();
    assert_eq!(names.first(), Some(&"CREATED"), "{events}");
    assert!(names.contains(&"STARTED"), "{events}");
    assert_eq!(events["data"][0]["body"]["server"], env.config.service_id.as_str());
    // Update: a rename keeps the id and creation time; the type cannot change.
    let mut renamed = integration("good-renamed", true, json!({}));
    renamed["id"] = json!(id);
    let (code, body) = env.post("/api/integration", renamed.clone()).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!((body["id"].as_str(), body["createdTime"].clone()), (Some(id.as_str()), saved["createdTime"].clone()));
    let (_, fetched) = env.get(&format!("/api/integration/{id}")).await;
    assert_eq!(fetched["name"], "good-renamed");
    let names = lifecycle_names(&env, &id).await;
    assert!(names.contains(&"UPDATED".to_string()), "{names:?}");
    stop_executor(executor);
    env.stop().await;
}

pub async fn lifecycle_names(env: &Env, id: &str) -> Vec<String> {
    let (_, events) = env.get(&format!("/api/events/{id}/lc_event?pageSize=100&page=0&sortProperty=createdTime")).await;
    events["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["body"]["event"].as_str().map(str::to_string))
        .collect()
}
