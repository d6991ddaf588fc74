//! Secrets are write-only over REST: every answer that carries an integration shows the values
//! its driver's schema marks secret as a mask, and a save that sends the mask back keeps the
//! stored value (which is what executors get).

use reqwest::StatusCode;
use serde_json::{json, Value};
use trib_queue::wire::{DriverInfoProto, ServiceInfo};
use uuid::Uuid;

use super::support::{on_both_backends, stop_executor, Backend, Env};

on_both_backends!(secrets_are_masked_and_kept);

const MASK: &str = "******";

/// Announces, as executor `ie-schema`, a SCRIPTED driver whose schema marks `password` and the
/// `token` header secret.
async fn announce_schema(env: &Env) {
    let schema = json!({
        "type": "object",
        "properties": {
            "user": {"type": "string", "title": "User", "description": "u", "default": ""},
            "password": {"type": "string", "title": "Password", "description": "p", "default": "", "writeOnly": true, "x-secret": true},
            "headers": {
                "type": "object", "title": "Headers", "description": "h", "default": {},
                "additionalProperties": {"type": "string"},
                "patternProperties": {"^[Tt]oken$": {"type": "string", "writeOnly": true, "x-secret": true}}
            }
        }
    });
    let info = ServiceInfo {
        service_id: "ie-schema".into(),
        service_type: Some("tbmq-integration-executor".into()),
        integration_types: vec!["SCRIPTED@9.9.9".into()],
        timestamp: trib_queue::now_ms(),
        drivers: vec![DriverInfoProto {
            integration_type: "SCRIPTED".into(),
            driver_version: "9.9.9".into(),
            config_schema: Some(schema.to_string()),
            ..Default::default()
        }],
        ..Default::default()
    };
    env.announce_executor(info).await;
    env.wait_until("schema announced", || async {
        let (_, types) = env.get("/api/integration/types").await;
        types.as_array().is_some_and(|t| t.iter().any(|t| t["configSchema"]["properties"]["password"].is_object()))
    })
    .await;
}

async fn stored_client(env: &Env, id: &str) -> Value {
    let db = env.db().await;
    let stored = db.integration(Uuid::parse_str(id).expect("uuid")).await.expect("db").expect("stored");
    db.close().await;
    stored.configuration["clientConfiguration"].clone()
}

async fn secrets_are_masked_and_kept(backend: Backend) {
    let env = Env::start(backend).await;
    let executor = env.start_executor("ie-1").await;
    announce_schema(&env).await;
    let client = json!({"user": "u", "password": "s3cret", "headers": {"token": "t0k", "Accept": "json"}});
    let saved = env.create("with-secrets", true, client.clone()).await;
    let id = saved["id"].as_str().expect("id").to_string();
    let masked = json!({"user": "u", "password": MASK, "headers": {"token": MASK, "Accept": "json"}});
    assert_eq!(saved["configuration"]["clientConfiguration"], masked, "save answers masked");
    let (_, got) = env.get(&format!("/api/integration/{id}")).await;
    assert_eq!(got["configuration"]["clientConfiguration"], masked, "{got}");
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["data"][0]["configuration"]["clientConfiguration"], masked, "{page}");
    for path in ["disable", "enable"] {
        let (code, body) = env.post_empty(&format!("/api/integration/{id}/{path}")).await;
        assert_eq!((code, &body["configuration"]["clientConfiguration"]), (StatusCode::OK, &masked), "{body}");
    }
    assert_eq!(stored_client(&env, &id).await, client, "stored in clear for the executors");

    // What was read, sent back with a change: the secrets stay.
    let mut back = got.clone();
    back["configuration"]["clientConfiguration"]["user"] = json!("v");
    let (code, body) = env.post("/api/integration", back).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let mut expected = client.clone();
    expected["user"] = json!("v");
    assert_eq!(stored_client(&env, &id).await, expected);
    // Check connection of a masked configuration checks the stored one.
    let (code, body) = env.post("/api/integration/check", got.clone()).await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // A new secret replaces the stored one.
    let mut changed = got;
    changed["configuration"]["clientConfiguration"]["password"] = json!("n3w");
    let (code, body) = env.post("/api/integration", changed).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(stored_client(&env, &id).await["password"], "n3w");

    // A new integration sent with a mask keeps the mask as its value (nothing stored to keep).
    let fresh = env.create("fresh", true, json!({"password": MASK})).await;
    assert_eq!(stored_client(&env, fresh["id"].as_str().expect("id")).await["password"], MASK);
    stop_executor(executor);
    env.stop().await;
}
