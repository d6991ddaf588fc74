//! Malformed requests get TBMQ's error shape with a 4xx (never a 500), and the API documents itself.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::{assert_error, integration, on_both_backends, Backend, Env};

on_both_backends!(
    bad_requests_are_4xx_in_tbmq_shape,
    swagger_ui_and_openapi_document,
    fuzzed_parameters_are_documented_and_enforced,
    method_not_allowed_lists_allowed_methods
);

async fn raw(env: &Env, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = env
        .client
        .request(method.parse().expect("method"), env.url(path))
        .header("X-Authorization", format!("Bearer {}", env.token))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    super::support::read(r).await
}

async fn bad_requests_are_4xx_in_tbmq_shape(backend: Backend) {
    // A small limit, so that an oversized body still fits the loopback socket buffers: the
    // server answers 413 before reading it all, and a client still writing would see a reset.
    let env = Env::start_with(backend, |c| c.max_body_bytes = 16 * 1024).await;
    let mut unknown = integration("x", true, json!({}));
    unknown["colour"] = json!("red");
    let (code, body) = env.post("/api/integration", unknown).await;
    assert!(assert_error(code, &body, 400, 31).contains("colour"), "{body}");
    let mut wrong_type = integration("x", true, json!({}));
    wrong_type["name"] = json!(5);
    let (code, body) = env.post("/api/integration", wrong_type).await;
    assert_error(code, &body, 400, 31);
    let mut wrong_enabled = integration("x", true, json!({}));
    wrong_enabled["enabled"] = json!("yes");
    let (code, body) = env.post("/api/integration", wrong_enabled).await;
    assert_error(code, &body, 400, 31);
    let (code, body) = raw(&env, "POST", "/api/integration", "application/json", b"{\"name\": ".to_vec()).await;
    assert_error(code, &body, 400, 31);
    let (code, body) = raw(&env, "POST", "/api/integration", "application/json", b"[1,2]".to_vec()).await;
    assert_error(code, &body, 400, 31);
    let (code, body) = raw(&env, "POST", "/api/integration", "text/plain", b"hello".to_vec()).await;
    assert!(code.is_client_error(), "{code} {body}");
    assert_eq!(body["status"], code.as_u16());
    // Oversized, with and without a declared length.
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(40 * 1024));
    let r = env
        .client
        .post(env.url("/api/integration"))
        .header("X-Authorization", format!("Bearer {}", env.token))
        .header("Content-Type", "application/json")
        .body(big.clone().into_bytes())
        .send()
        .await
        .expect("request");
    // The rest of the body is never read: the connection must not be reused (a pooled client
    // sending its next request on it would see it closed under that request).
    assert_eq!(r.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
    let (code, body) = super::support::read(r).await;
    assert_error(code, &body, 413, 31);
    let stream = futures_stream(big.into_bytes());
    let sent = env
        .client
        .post(env.url("/api/integration"))
        .header("X-Authorization", format!("Bearer {}", env.token))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    // Without a declared length the server learns the size only while reading: it answers 413
    // and closes, and a client that is still writing may see the connection reset instead of
    // the answer. Either refuses the body; anything else (a 2xx, another status) fails.
    match sent {
        Ok(r) => {
            let (code, body) = super::support::read(r).await;
            assert_error(code, &body, 413, 31);
        }
        Err(e) => assert!(e.is_request() || e.is_body(), "unexpected client error: {e:?}"),
    }
    // Paths and parameters.
    let (code, body) = env.get("/api/integration/not-a-uuid").await;
    assert_eq!(assert_error(code, &body, 400, 31), "Invalid UUID string: not-a-uuid");
    let mut bad_id = integration("x", true, json!({}));
    bad_id["id"] = json!("nope");
    let (code, body) = env.post("/api/integration", bad_id).await;
    assert_eq!(assert_error(code, &body, 400, 31), "Invalid UUID string: nope");
    for query in [
        "",
        "?pageSize=10",
        "?pageSize=0&page=0",
        "?pageSize=10&page=-1",
        "?pageSize=x&page=0",
        "?pageSize=10&page=0&sortOrder=UP",
        "?pageSize=10&page=0&sortProperty=password",
        "?pageSize=10&page=0&sortProperty=a%20b",
    ] {
        let (code, body) = env.get(&format!("/api/integrations{query}")).await;
        assert_error(code, &body, 400, 31);
    }
    let (code, body) = env.get("/api/integrations?pageSize=10&page=0&sortProperty=createdTime&sortOrder=desc").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = env.get("/api/nothing-here").await;
    assert_error(code, &body, 404, 32);
    let (code, body) = env.login("", "").await;
    assert_error(code, &body, 401, 10);
    let r = env
        .client
        .post(env.url("/api/auth/login"))
        .json(&json!({"username": "a", "password": "b", "extra": 1}))
        .send()
        .await
        .expect("request");
    let (code, body) = super::support::read(r).await;
    assert_error(code, &body, 400, 31);
    env.stop().await;
}

fn futures_stream(bytes: Vec<u8>) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    ChunkStream { chunks: bytes.chunks(4 * 1024).map(<[u8]>::to_vec).collect::<Vec<_>>().into_iter() }
}

struct ChunkStream {
    chunks: std::vec::IntoIter<Vec<u8>>,
}

impl futures_core::Stream for ChunkStream {
    type Item = Result<Vec<u8>, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.chunks.next().map(Ok))
    }
}

async fn swagger_ui_and_openapi_document(backend: Backend) {
    let env = Env::start(backend).await;
    let r = env.client.get(env.url("/swagger-ui")).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("text").contains("swagger"), "Swagger UI page");
    let r = env.client.get(env.url("/api/openapi.json")).send().await.expect("request");
    let (code, spec) = super::support::read(r).await;
    assert_eq!(code, StatusCode::OK);
    let paths = spec["paths"].as_object().expect("paths");
    for p in [
        "/integration",
        "/integrations",
        "/integration/check",
        "/integration/{integrationId}",
        "/integration/{integrationId}/status",
        "/integration/{integrationId}/deadLetters",
        "/integration/{integrationId}/deadLetters/replay",
        "/executors",
        "/events/{entityId}/{eventType}",
        "/events/{entityId}/clear",
        "/auth/login",
        "/subscription/integration",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert_eq!(spec["servers"][0]["url"], "/api");
    env.stop().await;
}

/// Schema fuzzing (schemathesis, `fuzz-api.sh`): the document declares every error status an
/// operation answers with, in TBMQ's error shape; UUIDs, paging and sorting parameters carry
/// the constraints the server enforces; closed bodies say so; a save names its required fields.
async fn fuzzed_parameters_are_documented_and_enforced(backend: Backend) {
    let env = Env::start(backend).await;
    let r = env.client.get(env.url("/api/openapi.json")).send().await.expect("request");
    let (code, spec) = super::support::read(r).await;
    assert_eq!(code, StatusCode::OK);
    let op = |path: &str, method: &str| spec["paths"][path][method].clone();
    let statuses = |path: &str, method: &str| {
        let mut codes: Vec<String> =
            op(path, method)["responses"].as_object().expect("responses").keys().cloned().collect();
        codes.sort();
        codes
    };
    assert_eq!(statuses("/integration/{integrationId}", "get"), ["200", "400", "401", "404", "500"]);
    assert_eq!(statuses("/integration", "post"), ["200", "400", "401", "413", "415", "500", "503", "504"]);
    assert_eq!(statuses("/integration/check", "post"), ["200", "400", "401", "413", "415", "500", "503", "504"]);
    assert_eq!(statuses("/integration/{integrationId}", "delete"), ["200", "400", "401", "404", "500", "503"]);
    assert_eq!(statuses("/integrations", "get"), ["200", "400", "401", "500"]);
    assert_eq!(statuses("/events/{entityId}/{eventType}", "get"), ["200", "400", "401", "500"]);
    assert_eq!(statuses("/events/{entityId}/clear", "post"), ["200", "400", "401", "413", "415", "500"]);
    assert_eq!(statuses("/auth/login", "post"), ["200", "400", "401", "413", "415", "500"]);
    assert_eq!(statuses("/executors", "get"), ["200", "401"]);
    assert_eq!(statuses("/subscription/integration", "get"), ["200", "400", "401"]);
    assert_eq!(statuses("/integration/{integrationId}/deadLetters", "get"), ["200", "400", "401", "404", "500", "503"]);
    assert_eq!(
        statuses("/integration/{integrationId}/deadLetters/replay", "post"),
        ["200", "400", "401", "404", "500", "503"]
    );
    let error_schema =
        &op("/integration/{integrationId}", "get")["responses"]["404"]["content"]["application/json"]["schema"];
    assert_eq!(error_schema["$ref"], "#/components/schemas/ErrorBody", "{error_schema}");
    let error_body = &spec["components"]["schemas"]["ErrorBody"];
    let mut required: Vec<&str> =
        error_body["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
    required.sort_unstable();
    assert_eq!(required, ["errorCode", "message", "status", "timestamp"]);
    // Parameters.
    let param = |path: &str, method: &str, name: &str| {
        op(path, method)["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} of {method} {path}"))["schema"]
            .clone()
    };
    assert_eq!(param("/integration/{integrationId}", "get", "integrationId")["format"], "uuid");
    assert_eq!(param("/subscription/integration", "get", "integrationId")["format"], "uuid");
    assert_eq!(param("/events/{entityId}/clear", "post", "entityId")["format"], "uuid");
    let page_size = param("/integrations", "get", "pageSize");
    assert_eq!((page_size["minimum"].as_f64(), page_size["maximum"].as_f64()), (Some(1.0), Some(100_000.0)));
    let limit = param("/integration/{integrationId}/deadLetters", "get", "limit");
    assert_eq!((limit["minimum"].as_f64(), limit["maximum"].as_f64()), (Some(1.0), Some(1000.0)));
    assert_eq!(param("/integration/{integrationId}/deadLetters", "get", "fromOffset")["minimum"].as_f64(), Some(0.0));
    assert_eq!(param("/integration/{integrationId}/deadLetters/replay", "post", "integrationId")["format"], "uuid");
    let page = param("/events/{entityId}/{eventType}", "get", "page");
    assert_eq!((page["minimum"].as_f64(), page["maximum"].as_f64()), (Some(0.0), Some(1_000_000_000.0)));
    assert!(param("/integrations", "get", "sortOrder")["pattern"].is_string());
    assert!(param("/integrations", "get", "sortProperty")["pattern"].is_string());
    assert!(param("/events/{entityId}/{eventType}", "get", "eventType")["pattern"].is_string());
    // Bodies.
    for name in crate::api::CLOSED_SCHEMAS {
        assert_eq!(spec["components"]["schemas"][name]["additionalProperties"], false, "{name}");
    }
    assert_eq!(
        spec["components"]["schemas"]["IntegrationRequest"]["required"],
        json!(["name", "type", "configuration"])
    );
    let request = &spec["components"]["schemas"]["IntegrationRequest"]["properties"];
    assert_eq!(request["id"]["format"], "uuid");
    assert_eq!((request["name"]["type"].as_str(), request["type"]["type"].as_str()), (Some("string"), Some("string")));
    assert_eq!(request["configuration"]["type"], "object", "{request}");

    // What the document says is what the server does.
    let id = uuid::Uuid::new_v4();
    for query in [
        "?pageSize=-9223372036854775808&page=-9223372036854775808",
        "?pageSize=100001&page=0",
        "?pageSize=10&page=1000000001",
        "?pageSize=10&page=0&sortOrder=up",
    ] {
        let (code, body) = env.get(&format!("/api/integrations{query}")).await;
        assert_error(code, &body, 400, 31);
        let (code, body) = env.get(&format!("/api/events/{id}/STATS{query}")).await;
        assert_error(code, &body, 400, 31);
    }
    for query in ["?pageSize=100000&page=1000000000&sortOrder=desc&sortProperty=name", "?pageSize=1&page=0&sortOrder="]
    {
        let (code, body) = env.get(&format!("/api/integrations{query}")).await;
        assert_eq!(code, StatusCode::OK, "{query} {body}");
    }
    for kind in ["lc_event", "Error", "STATS"] {
        let (code, body) = env.get(&format!("/api/events/{id}/{kind}?pageSize=5&page=0&sortProperty=ts")).await;
        assert_eq!(code, StatusCode::OK, "{kind} {body}");
    }
    let (code, body) = env.get(&format!("/api/events/{id}/DEBUG?pageSize=5&page=0")).await;
    assert_error(code, &body, 400, 31);
    let (code, body) = env.get("/api/integration/0/status").await;
    assert_eq!(assert_error(code, &body, 400, 31), "Invalid UUID string: 0");
    let (code, body) = env.post("/api/events/0/clear", json!({"eventType": "LC_EVENT"})).await;
    assert_eq!(assert_error(code, &body, 400, 31), "Invalid UUID string: 0");
    // A body without a Content-Type: the documented 415, in TBMQ's shape.
    let r = env
        .client
        .post(env.url("/api/integration"))
        .header("X-Authorization", format!("Bearer {}", env.token))
        .send()
        .await
        .expect("request");
    let (code, body) = super::support::read(r).await;
    assert_error(code, &body, 415, 31);
    // Unknown fields of an event filter: refused, as `additionalProperties: false` says.
    let (code, body) =
        env.post(&format!("/api/events/{id}?pageSize=5&page=0"), json!({"eventType": "STATS", "r": 1})).await;
    assert_error(code, &body, 400, 31);
    env.stop().await;
}

/// Schema fuzzing found 405s without `Allow` (RFC 9110 requires it).
async fn method_not_allowed_lists_allowed_methods(backend: Backend) {
    let env = Env::start(backend).await;
    let id = uuid::Uuid::new_v4();
    for (path, allowed) in [
        (format!("/api/integration/{id}/enable"), "POST"),
        (format!("/api/integration/{id}/status"), "GET"),
        (format!("/api/integration/{id}/deadLetters"), "GET"),
        (format!("/api/integration/{id}/deadLetters/replay"), "POST"),
        ("/api/integration/check".to_string(), "POST"),
        ("/api/executors".to_string(), "GET"),
        ("/api/auth/login".to_string(), "POST"),
        (format!("/api/events/{id}/clear"), "POST"),
    ] {
        for method in ["TRACE", "PUT", "PATCH"] {
            let r = env
                .client
                .request(method.parse().expect("method"), env.url(&path))
                .header("X-Authorization", format!("Bearer {}", env.token))
                .send()
                .await
                .expect("request");
            let allow = r.headers().get("allow").map(|v| v.to_str().expect("ascii").to_string());
            let (code, body) = super::support::read(r).await;
            assert_error(code, &body, 405, 31);
            assert_eq!(allow.as_deref(), Some(allowed), "{method} {path}");
        }
    }
    let r = env
        .client
        .request("TRACE".parse().expect("method"), env.url(&format!("/api/integration/{id}")))
        .header("X-Authorization", format!("Bearer {}", env.token))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = r.headers().get("allow").expect("allow").to_str().expect("ascii").to_string();
    let mut methods: Vec<&str> = allow.split(", ").collect();
    methods.sort_unstable();
    assert_eq!(methods, ["DELETE", "GET", "POST"]);
    env.stop().await;
}
