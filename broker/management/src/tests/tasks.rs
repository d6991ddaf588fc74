//! The periodic tasks with short periods: queue data of long-disabled integrations is removed
//! and comes back on enable; old events expire.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::support::{on_both_backends, stop_executor, Backend, Env};
use crate::model::{Event, EventBody};

on_both_backends!(cleanup_removes_topic_of_long_disabled_and_enable_recreates_it, event_ttl_deletes_old_events);

async fn cleanup_removes_topic_of_long_disabled_and_enable_recreates_it(backend: Backend) {
    let env = Env::start_with(backend, |c| {
        c.cleanup_period = Duration::from_millis(200);
        c.cleanup_ttl = Duration::from_secs(2);
    })
    .await;
    let executor = env.start_executor("ie-1").await;
    let disabled = env.create("sleeping", false, json!({})).await;
    let saved_at = tokio::time::Instant::now();
    let enabled = env.create("awake", true, json!({})).await;
    let id = |v: &serde_json::Value| Uuid::parse_str(v["id"].as_str().expect("id")).expect("uuid");
    let (disabled_id, enabled_id) = (id(&disabled), id(&enabled));
    let topic = env.config.topics.msg(disabled_id);
    assert!(env.queue.topic_exists(&topic).expect("queue"), "created with the integration");
    // Not before the TTL.
    tokio::time::sleep_until(saved_at + Duration::from_millis(800)).await;
    assert!(env.queue.topic_exists(&topic).expect("queue"), "deleted before the TTL");
    env.wait_until("topic of the disabled integration deleted", || async {
        !env.queue.topic_exists(&topic).expect("queue")
    })
    .await;
    assert!(env.queue.topic_exists(&env.config.topics.msg(enabled_id)).expect("queue"), "enabled ones keep theirs");
    // The row and its subscriptions stay.
    assert!(env.sink.filters(disabled_id).is_some());
    let (code, _) = env.get(&format!("/api/integration/{disabled_id}")).await;
    assert_eq!(code, reqwest::StatusCode::OK);
    let (code, body) = env.post_empty(&format!("/api/integration/{disabled_id}/enable")).await;
    assert_eq!(code, reqwest::StatusCode::OK, "{body}");
    assert!(env.queue.topic_exists(&topic).expect("queue"), "re-enabling recreates the topic");
    env.wait_state(&disabled_id.to_string(), "Active").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(env.queue.topic_exists(&topic).expect("queue"), "enabled now, so it stays");
    stop_executor(executor);
    env.stop().await;
}

async fn event_ttl_deletes_old_events(backend: Backend) {
    let env = Env::start_with(backend, |c| {
        c.events_ttl = Duration::from_secs(5);
        c.events_ttl_execution_interval = Duration::from_millis(200);
    })
    .await;
    let db = env.db().await;
    let id = Uuid::new_v4();
    let now = trib_core::now_ms();
    for (i, ts) in [now - 60_000, now - 6_000, now + 60_000].into_iter().enumerate() {
        let body = EventBody::Stats { messages_processed: i as i64, errors_occurred: 0 };
        db.insert_event(&Event { id: Uuid::new_v4(), ts, entity_id: id, service_id: "ie".into(), body })
            .await
            .expect("seed");
    }
    let path = format!("/api/events/{id}/STATS?pageSize=10&page=0");
    env.wait_until("old events deleted", || async { env.get(&path).await.1["totalElements"] == 1 }).await;
    let (_, page) = env.get(&path).await;
    assert_eq!(page["data"][0]["body"]["messagesProcessed"], 2);
    db.close().await;
    env.stop().await;
}
