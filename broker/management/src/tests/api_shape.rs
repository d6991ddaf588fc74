//! Malformed requests get TBMQ's error shape with a 4xx (never a 500), and the API documents itself.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::{assert_error, integration, on_both_backends, Backend, Env};

on_both_backends!(bad_requests_are_4xx_in_tbmq_shape, swagger_ui_and_openapi_document);

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
    let (code, body) = raw(&env, "POST", "/api/integration", "application/json", big.clone().into_bytes()).await;
    assert_error(code, &body, 413, 31);
    let stream = futures_stream(big.into_bytes());
    let r = env
        .client
        .post(env.url("/api/integration"))
        .header("X-Authorization", format!("Bearer {}", env.token))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("request");
    let (code, body) = super::support::read(r).await;
    assert_error(code, &body, 413, 31);
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
        "/executors",
        "/events/{entityId}/{eventType}",
        "/events/{entityId}/clear",
        "/auth/login",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert_eq!(spec["servers"][0]["url"], "/api");
    env.stop().await;
}
