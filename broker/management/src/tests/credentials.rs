//! `/api/mqtt/client/credentials*`: TBMQ's JSON, validation errors, hashed passwords that are never
//! returned, and the lookups the broker makes; plus the administrator login's hardening.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::{assert_error, on_both_backends, Backend, Env, ADMIN, PASSWORD};
use crate::credentials::CredentialStore;

on_both_backends!(
    crud_with_sanitized_answers,
    validation_errors,
    lookups_for_connect,
    x509_chain_walk,
    admin_login_locks
);

const PATH: &str = "/api/mqtt/client/credentials";

fn basic_body(name: &str, value: Value) -> Value {
    json!({"name": name, "clientType": "DEVICE", "credentialsType": "MQTT_BASIC", "credentialsValue": value.to_string()})
}

fn all_topics() -> Value {
    json!({"pubAuthRulePatterns": [".*"], "subAuthRulePatterns": [".*"]})
}

fn value_of(saved: &Value) -> Value {
    serde_json::from_str(saved["credentialsValue"].as_str().expect("credentialsValue")).expect("JSON text")
}

async fn crud_with_sanitized_answers(backend: Backend) {
    let env = Env::start(backend).await;
    let body =
        basic_body("dev", json!({"clientId": "c1", "userName": "u1", "password": "pw", "authRules": all_topics()}));
    let (code, saved) = env.post(PATH, body).await;
    assert_eq!(code, StatusCode::OK, "{saved}");
    assert_eq!(saved["credentialsId"], "mixed|u1|c1");
    assert_eq!(saved["clientType"], "DEVICE");
    assert_eq!(saved["credentialsType"], "MQTT_BASIC");
    assert_eq!(value_of(&saved)["password"], Value::Null);
    assert_eq!(saved["additionalInfo"]["mqttBasicPasswordIsSet"], true);
    let id = saved["id"].as_str().expect("id").to_owned();
    // Stored hashed, never in clear.
    let stored = env.db().await.mqtt_credentials(id.parse().expect("uuid")).await.expect("db").expect("row");
    assert!(stored.credentials_value.contains("$argon2id$") && !stored.credentials_value.contains("\"pw\""));

    let (code, got) = env.get(&format!("{PATH}/{id}")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!((got["name"].as_str(), value_of(&got)["password"].clone()), (Some("dev"), Value::Null));

    env.post(PATH, basic_body("other", json!({"userName": "u2", "authRules": all_topics()}))).await;
    let (code, page) =
        env.get(&format!("{PATH}?pageSize=10&page=0&textSearch=DE&sortProperty=name&sortOrder=ASC")).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!((page["totalElements"].as_u64(), page["data"][0]["name"].as_str()), (Some(1), Some("dev")));
    assert!(page["data"][0].get("credentialsValue").is_none());
    let (code, page) = env.get(&format!("{PATH}?pageSize=1&page=0")).await;
    assert_eq!((code, page["totalPages"].as_u64(), page["hasNext"].as_bool()), (StatusCode::OK, Some(2), Some(true)));

    // An update keeps the stored password even when the body carries none.
    let update = json!({"id": id, "name": "dev-renamed", "credentialsType": "MQTT_BASIC",
                        "credentialsValue": json!({"clientId": "c1", "userName": "u1", "authRules": all_topics()}).to_string()});
    let (code, updated) = env.post(PATH, update).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["additionalInfo"]["mqttBasicPasswordIsSet"], true);

    let change = |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});
    let (code, body) = env.post(&format!("{PATH}/{id}"), change("wrong", "new")).await;
    assert_eq!(assert_error(code, &body, 400, 31), "Current password doesn't match!");
    let (code, body) = env.post(&format!("{PATH}/{id}"), change("pw", "pw")).await;
    assert_eq!(assert_error(code, &body, 400, 31), "New password should be different from existing!");
    let (code, body) = env.post(&format!("{PATH}/{id}"), change("pw", "new")).await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let (code, _) = env.delete(&format!("{PATH}/{id}")).await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = env.get(&format!("{PATH}/{id}")).await;
    assert_error(code, &body, 404, 32);
    let (code, body) = env.delete(&format!("{PATH}/{id}")).await;
    assert_error(code, &body, 404, 32);
    env.stop().await;
}

async fn validation_errors(backend: Backend) {
    let env = Env::start(backend).await;
    let basic = |value: &str| json!({"name": "n", "credentialsType": "MQTT_BASIC", "credentialsValue": value});
    let rules = all_topics();
    for (body, expected) in [
        (basic("{not json"), "Could not parse client credentials!"),
        (
            basic(&json!({"password": "x", "authRules": rules}).to_string()),
            "Both mqtt client id and user name are empty!",
        ),
        (basic(&json!({"userName": "u"}).to_string()), "AuthRules are null!"),
        (
            basic(&json!({"userName": "u", "authRules": {"pubAuthRulePatterns": ["("]}}).to_string()),
            "Publish auth rule patterns should be a valid regexes!",
        ),
        (
            basic(&json!({"userName": "u", "authRules": {"subAuthRulePatterns": ["a[" ]}}).to_string()),
            "Subscribe auth rule patterns should be a valid regexes!",
        ),
        (
            basic(&json!({"userName": "u", "surprise": 1, "authRules": rules}).to_string()),
            "Could not parse client credentials!",
        ),
        (json!({"name": "n", "credentialsValue": "{}"}), "MQTT Client credentials type should be specified"),
        (
            json!({"name": "n", "credentialsType": "X_509", "credentialsValue": json!({"certCnIsRegex": true}).to_string()}),
            "Certificate common name pattern should be specified!",
        ),
        (
            json!({"name": "n", "credentialsType": "X_509", "credentialsValue": json!({"certCnPattern": "(", "certCnIsRegex": true, "authRulesMapping": {".*": rules}}).to_string()}),
            "Certificate common name pattern [(] must be a valid regex",
        ),
        (
            json!({"name": "n", "credentialsType": "X_509", "credentialsValue": json!({"certCnPattern": "dev"}).to_string()}),
            "Authorization rules mapping should be specified!",
        ),
    ] {
        let (code, answer) = env.post(PATH, body.clone()).await;
        let message = assert_error(code, &answer, 400, 31);
        assert!(message.starts_with(expected), "{body}: {message}");
    }
    // Poem-level refusals: an unknown body field, an unknown type.
    let (code, answer) = env.post(PATH, json!({"name": "n", "bogus": 1})).await;
    assert_error(code, &answer, 400, 31);
    let (code, answer) =
        env.post(PATH, json!({"name": "n", "credentialsType": "SCRAM", "credentialsValue": "{}"})).await;
    assert_error(code, &answer, 400, 31);

    let first = basic_body("first", json!({"userName": "dup", "authRules": rules}));
    assert_eq!(env.post(PATH, first).await.0, StatusCode::OK);
    let (code, answer) = env.post(PATH, basic_body("second", json!({"userName": "dup", "authRules": rules}))).await;
    assert_eq!(assert_error(code, &answer, 400, 31), "Such MQTT Client credentials are already created!");
    let (code, answer) = env.post(PATH, basic_body("first", json!({"userName": "other", "authRules": rules}))).await;
    assert_eq!(assert_error(code, &answer, 400, 31), "MQTT Client credentials with such name are already created!");
    let missing = json!({"id": uuid::Uuid::new_v4().to_string(), "name": "x", "credentialsType": "MQTT_BASIC",
                         "credentialsValue": json!({"userName": "x", "authRules": rules}).to_string()});
    let (code, answer) = env.post(PATH, missing).await;
    assert_eq!(assert_error(code, &answer, 400, 31), "Unable to update non-existent MQTT Client credentials!");
    let (code, answer) = env.get(&format!("{PATH}?pageSize=0&page=0")).await;
    assert_error(code, &answer, 400, 31);
    env.stop().await;
}

async fn lookups_for_connect(backend: Backend) {
    let env = Env::start(backend).await;
    let rules = json!({"pubAuthRulePatterns": ["p/.*"], "subAuthRulePatterns": ["s/.*"]});
    env.post(
        PATH,
        basic_body("bound", json!({"clientId": "c1", "userName": "u1", "password": "pw", "authRules": rules})),
    )
    .await;
    env.post(PATH, basic_body("user-only", json!({"userName": "u2", "authRules": rules}))).await;
    let ssl = json!({"certCnPattern": "^dev-.*$", "certCnIsRegex": true,
                     "authRulesMapping": {"dev-": {"pubAuthRulePatterns": ["devices/${cn}/.*"]}}});
    let (code, body) =
        env.post(PATH, json!({"name": "certs", "credentialsType": "X_509", "credentialsValue": ssl.to_string()})).await;
    assert_eq!((code, body["credentialsId"].as_str()), (StatusCode::OK, Some("ssl|^dev-.*$")), "{body}");

    let store = CredentialStore::new(env.db().await);
    let found = store.basic("c1", Some("u1")).await.expect("lookup");
    assert!(found.client_id_bound);
    assert_eq!(found.candidates.len(), 1);
    assert_eq!(
        (found.candidates[0].publish.clone(), found.candidates[0].subscribe.clone()),
        (vec!["p/.*".to_owned()], vec!["s/.*".to_owned()])
    );
    assert!(found.candidates[0].password_hash.as_deref().is_some_and(|h| h.starts_with("$argon2id$")));
    // Valid credentials of another user cannot use the bound id.
    let stolen = store.basic("c1", Some("u2")).await.expect("lookup");
    assert!(stolen.client_id_bound && stolen.candidates.is_empty());
    let own = store.basic("any-id", Some("u2")).await.expect("lookup");
    assert_eq!((own.client_id_bound, own.candidates.len()), (false, 1));
    assert!(store.basic("any-id", Some("nobody")).await.expect("lookup").candidates.is_empty());

    let cert = store.ssl(&["dev-7"]).await.expect("lookup").expect("a match");
    assert_eq!(cert.publish, ["devices/dev\\-7/.*"]);
    assert!(store.ssl(&["other"]).await.expect("lookup").is_none());
    env.stop().await;
}

/// TBMQ's X.509 chain walk: the chain's certificates leaf first, the first with a record decides,
/// and that record's mapping is applied to the leaf's CN.
async fn x509_chain_walk(backend: Backend) {
    let env = Env::start(backend).await;
    let x509 = |name: &str, pattern: &str, regex: bool, mapping: Value| {
        let value = json!({"certCnPattern": pattern, "certCnIsRegex": regex, "authRulesMapping": mapping});
        json!({"name": name, "credentialsType": "X_509", "credentialsValue": value.to_string()})
    };
    let publish = |topic: &str| json!({"pubAuthRulePatterns": [topic], "subAuthRulePatterns": []});
    for body in [
        x509("fleet-ca", "Fleet CA", false, json!({"^sensor-": publish("sensors/${cn}/.*")})),
        x509("sensor-1", "sensor-1", false, json!({".*": publish("own/.*")})),
        x509("lab", "Intermediate$", true, json!({".*": publish("lab/.*")})),
    ] {
        let (code, saved) = env.post(PATH, body).await;
        assert_eq!(code, StatusCode::OK, "{saved}");
    }
    let store = CredentialStore::new(env.db().await);
    for (chain, expected) in [
        // A record for the CA admits a device it signed, with the rules for the device's CN.
        (&["sensor-2", "Fleet CA"][..], Some(("fleet-ca", "sensors/sensor\\-2/.*"))),
        // The leaf is looked at first: its own record wins over its issuer's.
        (&["sensor-1", "Fleet CA"], Some(("sensor-1", "own/.*"))),
        // An intermediate matching a regex record comes before the CA's exact record.
        (&["sensor-9", "Lab Intermediate", "Fleet CA"], Some(("lab", "lab/.*"))),
        // The CA's record has no mapping entry for this leaf: refused, not walked on.
        (&["camera-1", "Fleet CA"], None),
        // No certificate of the chain has a record.
        (&["sensor-3", "Other CA"], None),
        (&[], None),
    ] {
        let found = store.ssl(chain).await.expect("lookup");
        let found = found.as_ref().map(|m| (m.name.as_str(), m.publish.concat()));
        assert_eq!(found, expected.map(|(n, p)| (n, p.to_owned())), "{chain:?}");
    }
    env.stop().await;
}

async fn admin_login_locks(backend: Backend) {
    let env = Env::start(backend).await;
    for _ in 0..trib_ops::login::DEFAULT_MAX_FAILED_ATTEMPTS {
        let (code, body) = env.login(ADMIN, "wrong").await;
        assert_eq!(assert_error(code, &body, 401, 10), "Invalid username or password");
    }
    let (code, body) = env.login(ADMIN, PASSWORD).await;
    assert_eq!(assert_error(code, &body, 401, 10), "User account is locked due to security policy");
    env.stop().await;
}

/// The login's hash runs on the blocking pool: this test's current-thread runtime is the only
/// async worker, and no verification may run on it.
#[tokio::test]
async fn admin_login_hashes_off_the_async_worker() {
    let env = Env::start(Backend::Sqlite).await;
    let pool = trib_ops::login::PasswordPool::shared();
    let before = pool.stats().completed;
    let (code, body) = env.login("nobody@x", "pw").await;
    assert_error(code, &body, 401, 10);
    let stats = pool.stats();
    assert!(stats.completed > before, "the unknown user was verified against the dummy hash: {stats:?}");
    assert_ne!(stats.last_thread, Some(std::thread::current().id()));
    env.stop().await;
}
