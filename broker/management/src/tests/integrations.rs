//! Integration CRUD through the REST API: TBMQ's DAO checks, paging and text search, delete,
//! restart, enable/disable with the status they lead to, and subscriptions restored at startup.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    support::{assert_error, integration, on_both_backends, stop_executor, Backend, Env},
    validation::lifecycle_names,
};
use crate::model::Integration;
use trib_core::queue::{Partitioning, TopicPartition};

on_both_backends!(
    dao_checks_use_tbmq_messages,
    paging_178_by_23_and_text_search,
    delete_then_404,
    restart_enable_disable,
    subscriptions_restored_at_startup,
    first_offset_is_committed_when_saved,
    too_many_or_shared_topic_filters_are_field_errors
);

async fn dao_checks_use_tbmq_messages(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    let expect_400 = |body: Value, message: &'static str| {
        let env = &env;
        async move {
            let (code, got) = env.post("/api/integration", body).await;
            assert_eq!(assert_error(code, &got, 400, 31), message);
        }
    };
    let mut no_name = integration("x", true, json!({}));
    no_name.as_object_mut().expect("object").remove("name");
    expect_400(no_name, "Integration name should be specified!").await;
    let mut no_type = integration("x", true, json!({}));
    no_type.as_object_mut().expect("object").remove("type");
    expect_400(no_type, "Integration type should be specified!").await;
    expect_400(
        integration(&"n".repeat(256), true, json!({})),
        "Integration name length must be equal or less than 255",
    )
    .await;
    let mut no_filters = integration("x", true, json!({}));
    no_filters["configuration"].as_object_mut().expect("object").remove("topicFilters");
    expect_400(no_filters, "Topic filters should be specified!").await;
    let mut filters_not_array = integration("x", true, json!({}));
    filters_not_array["configuration"]["topicFilters"] = json!("a/b");
    expect_400(filters_not_array, "Topic filters should be an array!").await;
    let mut bad_filter = integration("x", true, json!({}));
    bad_filter["configuration"]["topicFilters"] = json!(["a/#/b"]);
    expect_400(bad_filter, "Topic filter 'a/#/b' is invalid: '#' must be the last level and alone in it").await;
    let mut unknown_id = integration("x", true, json!({}));
    unknown_id["id"] = json!(Uuid::new_v4().to_string());
    expect_400(unknown_id, "Unable to update non-existent Integration!").await;
    let first = env.create("taken", true, json!({})).await;
    expect_400(integration("taken", false, json!({})), "Integration with such name already exists!").await;
    let second = env.create("other", true, json!({})).await;
    let mut steal = integration("taken", true, json!({}));
    steal["id"] = second["id"].clone();
    expect_400(steal, "Integration with such name already exists!").await;
    // Type names are case-insensitive and stored upper case.
    let mut lower = integration("lower", true, json!({}));
    lower["type"] = json!("scripted");
    let (code, body) = env.post("/api/integration", lower).await;
    assert_eq!((code, body["type"].as_str()), (StatusCode::OK, Some("SCRIPTED")), "{body}");
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["totalElements"], 3, "{page}");
    assert_ne!(first["id"], second["id"]);
    stop_executor(executor);
    env.stop().await;
}

async fn too_many_or_shared_topic_filters_are_field_errors(backend: Backend) {
    let env = Env::start_with(backend, |c| c.max_topic_filters = 3).await;
    let executor = env.start_executor("ie-1").await;
    let save = |filters: Value| {
        let env = &env;
        let mut body = integration("capped", true, json!({}));
        body["configuration"]["topicFilters"] = filters;
        async move { env.post("/api/integration", body).await }
    };
    let (code, body) = save(json!(["a", "b", "c", "d"])).await;
    assert_eq!(
        assert_error(code, &body, 400, 31),
        "Validation error: topicFilters must hold at most 3 topic filters (got 4)"
    );
    assert_eq!(
        body["fieldErrors"],
        json!([{"field": "topicFilters", "message": "must hold at most 3 topic filters (got 4)"}])
    );
    // Shared subscriptions would be saved and then never receive anything: refused.
    let (code, body) = save(json!(["a", "$share/group/sensors/#"])).await;
    let message = "shared subscription '$share/group/sensors/#' cannot be an integration's topic filter";
    assert_eq!(assert_error(code, &body, 400, 31), format!("Validation error: topicFilters {message}"));
    assert_eq!(body["fieldErrors"], json!([{"field": "topicFilters", "message": message}]));
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["totalElements"], 0, "nothing saved: {page}");
    // At the cap, and `$share` as a plain level further in, are fine.
    let (code, body) = save(json!(["a", "b/$share/x", "c"])).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let id: Uuid = body["id"].as_str().expect("id").parse().expect("uuid");
    assert_eq!(env.sink.filters(id), Some(vec!["a".to_owned(), "b/$share/x".to_owned(), "c".to_owned()]));
    stop_executor(executor);
    env.stop().await;
}

fn seeded(name: String) -> Integration {
    Integration {
        id: Uuid::new_v4(),
        created_time: trib_core::now_ms(),
        disconnected_time: 0,
        name,
        integration_type: "SCRIPTED".into(),
        enabled: true,
        configuration: json!({"clientConfiguration": {}, "topicFilters": ["t/#"]}),
        additional_info: None,
        status: None,
    }
}

async fn collect_pages(env: &Env, query: &str, page_size: usize) -> (BTreeSet<String>, usize) {
    let mut ids = BTreeSet::new();
    let mut pages = 0;
    loop {
        let (code, page) = env.get(&format!("/api/integrations?pageSize={page_size}&page={pages}{query}")).await;
        assert_eq!(code, StatusCode::OK, "{page}");
        let data = page["data"].as_array().expect("data");
        assert!(data.len() <= page_size);
        ids.extend(data.iter().map(|i| i["id"].as_str().expect("id").to_string()));
        pages += 1;
        if page["hasNext"] != true {
            assert_eq!(page["totalPages"], pages, "{page}");
            return (ids, pages);
        }
    }
}

async fn paging_178_by_23_and_text_search(backend: Backend) {
    let env = Env::start(backend).await;
    let db = env.db().await;
    let mut all = BTreeSet::new();
    for i in 0..178 {
        let it = seeded(format!("Integration {i}"));
        all.insert(it.id.to_string());
        db.save_integration(&it).await.expect("seed");
    }
    let (ids, pages) = collect_pages(&env, "", 23).await;
    assert_eq!((ids.len(), pages), (178, 8));
    assert_eq!(ids, all);
    let (_, first) = env.get("/api/integrations?pageSize=23&page=0").await;
    assert_eq!(
        (first["totalElements"].as_u64(), first["totalPages"].as_u64(), first["hasNext"].as_bool()),
        (Some(178), Some(8), Some(true))
    );
    // TBMQ's text search case: 143 + 75 names in mixed case, matched case-insensitively.
    let mut matching = BTreeSet::new();
    for i in 0..143 {
        let name = if i % 2 == 0 { format!("Test Title {i}") } else { format!("tEST tiTLe {i}") };
        let it = seeded(name);
        matching.insert(it.id.to_string());
        db.save_integration(&it).await.expect("seed");
    }
    for i in 0..75 {
        db.save_integration(&seeded(format!("Other {i}"))).await.expect("seed");
    }
    let (found, _) = collect_pages(&env, "&textSearch=TITLE", 7).await;
    assert_eq!(found, matching);
    // Sorting by name descending.
    let (_, page) =
        env.get("/api/integrations?pageSize=3&page=0&textSearch=other&sortProperty=name&sortOrder=desc").await;
    let names: Vec<&str> = page["data"].as_array().expect("data").iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, ["Other 9", "Other 8", "Other 74"]);
    // Wildcards in the search text are literal.
    let (_, page) = env.get("/api/integrations?pageSize=3&page=0&textSearch=%25").await;
    assert_eq!(page["totalElements"], 0, "{page}");
    for id in &matching {
        let (code, _) = env.delete(&format!("/api/integration/{id}")).await;
        assert_eq!(code, StatusCode::OK);
    }
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0&textSearch=title").await;
    assert_eq!((page["totalElements"].as_u64(), page["data"].as_array().map(Vec::len)), (Some(0), Some(0)));
    db.close().await;
    env.stop().await;
}

async fn delete_then_404(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    let enabled = env.create("enabled", true, json!({})).await;
    let disabled = env.create("disabled", false, json!({})).await;
    for it in [&enabled, &disabled] {
        let id = it["id"].as_str().expect("id");
        let uuid = Uuid::parse_str(id).expect("uuid");
        assert!(env.queue.topic_exists(&env.config.topics.msg(uuid)).expect("queue"));
        let (code, body) = env.delete(&format!("/api/integration/{id}")).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let (code, body) = env.get(&format!("/api/integration/{id}")).await;
        assert_eq!(assert_error(code, &body, 404, 32), "Requested item wasn't found!");
        assert_eq!(env.sink.filters(uuid), None);
        assert!(env.sink.calls.lock().contains(&format!("remove {uuid}")));
        let (code, body) = env.delete(&format!("/api/integration/{id}")).await;
        assert_error(code, &body, 404, 32);
        assert!(lifecycle_names(&env, id).await.contains(&"DELETED".to_string()));
    }
    // A disabled integration's queue data goes at once (no executor would remove it).
    let disabled_id = Uuid::parse_str(disabled["id"].as_str().expect("id")).expect("uuid");
    assert!(!env.queue.topic_exists(&env.config.topics.msg(disabled_id)).expect("queue"));
    // The enabled one's executor removes its topic when it stops it for good.
    let enabled_id = Uuid::parse_str(enabled["id"].as_str().expect("id")).expect("uuid");
    let topic = env.config.topics.msg(enabled_id);
    env.wait_until("executor deletes the topic", || async { !env.queue.topic_exists(&topic).expect("queue") }).await;
    stop_executor(executor);
    env.stop().await;
}

/// The integration's consumer group gets its first offset when the integration is saved, before
/// its topic filters reach the broker: its first start delivers what matched from then on.
async fn first_offset_is_committed_when_saved(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    // Disabled, so that no executor consumes (and commits) while the test looks.
    let mut saved = env.create("offsets", false, json!({})).await;
    let uuid = Uuid::parse_str(saved["id"].as_str().expect("id")).expect("uuid");
    let tp = TopicPartition::new(env.config.topics.msg(uuid), 0);
    let group = env.config.topics.msg_group(uuid);
    let committed = || env.queue.assign(&group, "test", &tp).expect("assign").committed(&tp).expect("committed");
    assert_eq!(committed(), Some(0));
    // Messages that match it while it waits stay ahead of that offset, also across later saves.
    for n in 0..3 {
        let value = format!("m{n}");
        let stored = env.queue.producer().send(&tp.topic, Partitioning::Fixed(0), None, value.as_bytes()).await;
        stored.expect("answered").expect("stored");
    }
    saved["name"] = json!("offsets renamed");
    let (code, body) = env.post("/api/integration", saved).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(committed(), Some(0));
    stop_executor(executor);
    env.stop().await;
}

async fn restart_enable_disable(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    let saved = env.create("flip", true, json!({})).await;
    let id = saved["id"].as_str().expect("id").to_string();
    env.wait_state(&id, "Active").await;
    // Restart returns the integration and records REINIT.
    let (code, body) = env.post_empty(&format!("/api/integration/{id}")).await;
    assert_eq!((code, body["id"].as_str()), (StatusCode::OK, Some(id.as_str())), "{body}");
    assert!(lifecycle_names(&env, &id).await.contains(&"REINIT".to_string()));
    env.wait_state(&id, "Active").await;
    // Disable: the executor stops it; the status says Disabled, not Pending.
    let (code, body) = env.post_empty(&format!("/api/integration/{id}/disable")).await;
    assert_eq!((code, body["enabled"].as_bool()), (StatusCode::OK, Some(false)), "{body}");
    assert!(body["disconnectedTime"].as_i64().expect("time") > 0);
    let uuid = Uuid::parse_str(&id).expect("uuid");
    env.wait_until("STOPPED stored", || async { lifecycle_names(&env, &id).await.contains(&"STOPPED".to_string()) })
        .await;
    let status = env.wait_state(&id, "Disabled").await;
    assert_eq!(status["lastLifecycleEvent"]["body"]["event"], "STOPPED", "{status}");
    // Subscriptions stay while disabled (messages keep queuing, like TBMQ).
    assert!(env.sink.filters(uuid).is_some_and(|f| !f.is_empty()));
    let (code, body) = env.post_empty(&format!("/api/integration/{id}")).await;
    assert_eq!(assert_error(code, &body, 400, 31), "Integration is disabled");
    // Enable: Pending until the executor reports STARTED, then Active.
    let (code, body) = env.post_empty(&format!("/api/integration/{id}/enable")).await;
    assert_eq!(
        (code, body["enabled"].as_bool(), body["disconnectedTime"].as_i64()),
        (StatusCode::OK, Some(true), Some(0)),
        "{body}"
    );
    assert_eq!(body["status"], Value::Null);
    env.wait_state(&id, "Active").await;
    // A failing start shows Failed with the executor and its error.
    let mut failing = integration("flip", true, json!({"failStart": true}));
    failing["id"] = json!(id);
    let (code, body) = env.post("/api/integration", failing).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let status = env.wait_state(&id, "Failed").await;
    assert_eq!(status["status"]["success"], false);
    assert_eq!(status["status"]["serviceId"], "ie-1");
    assert!(status["status"]["error"].as_str().is_some_and(|e| e.contains("scripted start failure")), "{status}");
    for path in ["enable", "disable", "status"] {
        let (code, body) = if path == "status" {
            env.get(&format!("/api/integration/{}/{path}", Uuid::new_v4())).await
        } else {
            env.post_empty(&format!("/api/integration/{}/{path}", Uuid::new_v4())).await
        };
        assert_error(code, &body, 404, 32);
    }
    let (code, body) = env.post_empty(&format!("/api/integration/{}", Uuid::new_v4())).await;
    assert_error(code, &body, 404, 32);
    stop_executor(executor);
    env.stop().await;
}

async fn subscriptions_restored_at_startup(backend: Backend) {
    let env = Env::start(backend).await;
    let db = env.db().await;
    let mut it = seeded("restored".into());
    it.configuration = json!({"clientConfiguration": {}, "topicFilters": ["a/+", "b/#"]});
    it.enabled = false;
    db.save_integration(&it).await.expect("seed");
    db.close().await;
    // A second node on the same database restores every integration's filters, disabled ones too.
    let sink = std::sync::Arc::new(super::support::RecordingSink::default());
    let mut config = env.config.clone();
    config.service_id = "broker-2".into();
    let second = crate::Management::start(config, env.queue.clone(), sink.clone()).await.expect("second node");
    assert_eq!(sink.filters(it.id), Some(vec!["a/+".to_string(), "b/#".to_string()]));
    second.shutdown().await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reports_a_taken_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = super::support::test_config(&format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display()));
    config.bind = taken.local_addr().expect("addr");
    let queue: std::sync::Arc<dyn trib_core::queue::Queue> =
        std::sync::Arc::new(trib_core::queue::embedded::EmbeddedQueue::new());
    let sink = std::sync::Arc::new(super::support::RecordingSink::default());
    match crate::Management::start(config, queue, sink).await {
        Err(crate::StartError::Bind(addr, _)) => assert_eq!(addr, taken.local_addr().expect("addr")),
        other => panic!("expected a bind error, got {other:?}"),
    }
}
