//! `GET /api/subscription/integration?integrationId=`: this node's topic filters of an
//! integration, as TBMQ's `SubscriptionController` answers.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::support::{assert_error, integration, on_both_backends, read, stop_executor, Backend, Env};

on_both_backends!(integration_subscriptions_follow_saves);

fn path(id: impl std::fmt::Display) -> String {
    format!("/api/subscription/integration?integrationId={id}")
}

async fn integration_subscriptions_follow_saves(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    let mut body = integration("subs", true, json!({}));
    body["configuration"]["topicFilters"] = json!(["sensors/+/temp", "alarms/#", "sensors/+/temp"]);
    let saved = env.create_body(body.clone()).await;
    let id = saved["id"].as_str().expect("id").to_string();
    let (code, filters) = env.get(&path(&id)).await;
    assert_eq!(code, StatusCode::OK, "{filters}");
    assert_eq!(filters, json!(["alarms/#", "sensors/+/temp"]), "sorted, without duplicates");
    // An update replaces them; a disabled integration keeps its subscriptions (like TBMQ).
    body["id"] = json!(id);
    body["enabled"] = json!(false);
    body["configuration"]["topicFilters"] = json!(["other/#"]);
    let (code, got) = env.post("/api/integration", body.clone()).await;
    assert_eq!(code, StatusCode::OK, "{got}");
    assert_eq!(env.get(&path(&id)).await.1, json!(["other/#"]));
    let (code, _) = env.post_empty(&format!("/api/integration/{id}/enable")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(env.get(&path(&id)).await.1, json!(["other/#"]));
    // The sink got the same.
    let uuid = Uuid::parse_str(&id).expect("uuid");
    assert_eq!(env.sink.filters(uuid), Some(vec!["other/#".to_string()]));
    // Unknown and deleted integrations have none: an empty array, as TBMQ answers.
    let (code, none) = env.get(&path(Uuid::new_v4())).await;
    assert_eq!((code, none), (StatusCode::OK, json!([])));
    let (code, _) = env.delete(&format!("/api/integration/{id}")).await;
    assert_eq!(code, StatusCode::OK);
    let (code, gone) = env.get(&path(&id)).await;
    assert_eq!((code, gone), (StatusCode::OK, json!([])));
    // Bad and missing ids.
    let (code, got) = env.get(&path("not-a-uuid")).await;
    assert_eq!(assert_error(code, &got, 400, 31), "Invalid UUID string: not-a-uuid");
    let (code, got) = env.get(&path("")).await;
    assert_error(code, &got, 400, 31);
    let (code, got) = env.get("/api/subscription/integration").await;
    assert_error(code, &got, 400, 31);
    // Authentication.
    let r = env.client.get(env.url(&path(&id))).send().await.expect("request");
    let (code, got) = read(r).await;
    assert_error(code, &got, 401, 10);
    let r = env.client.get(env.url(&path(&id))).header("X-Authorization", "Bearer nope").send().await.expect("request");
    let (code, got): (StatusCode, Value) = read(r).await;
    assert_error(code, &got, 401, 10);
    stop_executor(executor);
    env.stop().await;
}
