//! Every request body refuses a JSON value of the wrong type with a 400 in TBMQ's shape:
//! poem-openapi would turn a boolean or number into a string (`"name": true` saved as "true").
//! An executor serves the type, so a coerced body would have been saved.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::support::{assert_error, integration, on_both_backends, read, stop_executor, Backend, Env};

on_both_backends!(wrong_json_types_are_refused);

/// POSTs without a token (login and refresh are public).
async fn post_public(env: &Env, path: &str, body: Value) -> (StatusCode, Value) {
    read(env.client.post(env.url(path)).json(&body).send().await.expect("request")).await
}

fn with(base: &Value, field: &str, value: Value) -> Value {
    let mut body = base.clone();
    body[field] = value;
    body
}

async fn wrong_json_types_are_refused(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;

    // Login and refresh.
    for body in [
        json!({"username": true, "password": "x"}),
        json!({"username": 1, "password": "x"}),
        json!({"username": ["a"], "password": "x"}),
        json!({"username": "a", "password": 123_456}),
        json!({"username": "a", "password": false}),
        json!({"username": "a", "password": {"p": 1}}),
        json!({"username": null, "password": "x"}),
        json!({"password": "x"}),
    ] {
        let (code, got) = post_public(&env, "/api/auth/login", body.clone()).await;
        assert_error(code, &got, 400, 31);
        assert!(got.get("token").is_none(), "{body}: {got}");
    }
    let (code, got) = post_public(&env, "/api/auth/login", json!({"username": true, "password": "x"})).await;
    assert!(assert_error(code, &got, 400, 31).contains("expected a string, found boolean"), "{got}");
    for body in [json!({"refreshToken": 1}), json!({"refreshToken": true}), json!({"refreshToken": []})] {
        let (code, got) = post_public(&env, "/api/auth/token", body).await;
        assert_error(code, &got, 400, 31);
    }

    // Save and check.
    let base = integration("typed", true, json!({}));
    let mut bodies = Vec::new();
    for value in [json!(true), json!(5), json!(1.5), json!(["typed"]), json!({"n": "typed"})] {
        bodies.push(with(&base, "name", value.clone()));
        bodies.push(with(&base, "type", value));
    }
    for value in [json!("true"), json!(1), json!([true])] {
        bodies.push(with(&base, "enabled", value));
    }
    for value in [json!("1"), json!(1.5), json!(true)] {
        bodies.push(with(&base, "createdTime", value.clone()));
        bodies.push(with(&base, "disconnectedTime", value));
    }
    for value in [json!("x"), json!(5), json!(true), json!(["a/#"])] {
        bodies.push(with(&base, "configuration", value));
    }
    bodies.push(with(&base, "id", json!(5)));
    bodies.push(with(&base, "id", json!(true)));
    for body in &bodies {
        for path in ["/api/integration", "/api/integration/check"] {
            let (code, got) = env.post(path, body.clone()).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{path} {body}: {got}");
            assert_error(code, &got, 400, 31);
        }
    }
    let (code, got) = env.post("/api/integration", with(&base, "name", json!(true))).await;
    assert!(assert_error(code, &got, 400, 31).contains("expected a string, found boolean"), "{got}");
    let (code, got) = env.post("/api/integration", with(&base, "configuration", json!("x"))).await;
    assert!(assert_error(code, &got, 400, 31).contains("expected an object, found string"), "{got}");
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["totalElements"], 0, "nothing was saved: {page}");
    // The same body with the right types is saved, so the refusals above were about types.
    let (code, got) = env.post("/api/integration", base.clone()).await;
    assert_eq!((code, got["name"].as_str()), (StatusCode::OK, Some("typed")), "{got}");
    // `additionalInfo` is free-form JSON (TBMQ's JsonNode): any type is accepted.
    for (i, info) in [json!("text"), json!(5), json!([1, 2]), json!(null)].into_iter().enumerate() {
        let body = with(&integration(&format!("info-{i}"), false, json!({})), "additionalInfo", info.clone());
        let (code, got) = env.post("/api/integration", body).await;
        assert_eq!(code, StatusCode::OK, "{info}: {got}");
        assert_eq!(got["additionalInfo"], info);
    }

    // Event filters, for a page and for clear.
    let id = Uuid::new_v4();
    let filters = [
        json!({"eventType": true}),
        json!({"eventType": 1}),
        json!({"eventType": "ERROR", "method": true}),
        json!({"eventType": "ERROR", "server": 1}),
        json!({"eventType": "ERROR", "errorStr": ["x"]}),
        json!({"eventType": "LC_EVENT", "server": false}),
        json!({"eventType": "LC_EVENT", "event": 3}),
        json!({"eventType": "LC_EVENT", "status": true}),
        json!({"eventType": "LC_EVENT", "errorStr": 2.5}),
        json!({"eventType": "STATS", "server": true}),
        json!({"eventType": "STATS", "minMessagesProcessed": "1"}),
        json!({"eventType": "STATS", "maxMessagesProcessed": 1.5}),
        json!({"eventType": "STATS", "minErrorsOccurred": true}),
        json!({"eventType": "STATS", "maxErrorsOccurred": "9"}),
    ];
    for filter in &filters {
        for path in [format!("/api/events/{id}?pageSize=5&page=0"), format!("/api/events/{id}/clear")] {
            let (code, got) = env.post(&path, filter.clone()).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{path} {filter}: {got}");
            assert_error(code, &got, 400, 31);
        }
    }
    for filter in [
        json!({"eventType": "ERROR", "method": "onMsgProcess", "server": "ie", "errorStr": "x"}),
        json!({"eventType": "LC_EVENT", "event": "STARTED", "status": "Success", "server": null}),
        json!({"eventType": "STATS", "minMessagesProcessed": 1, "maxErrorsOccurred": 9}),
    ] {
        let (code, got) = env.post(&format!("/api/events/{id}?pageSize=5&page=0"), filter.clone()).await;
        assert_eq!(code, StatusCode::OK, "{filter}: {got}");
        let (code, got) = env.post(&format!("/api/events/{id}/clear"), filter.clone()).await;
        assert_eq!(code, StatusCode::OK, "{filter}: {got}");
    }
    stop_executor(executor);
    env.stop().await;
}
