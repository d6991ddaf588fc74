//! Login, tokens and the administrator created at first start.

use reqwest::StatusCode;
use serde_json::json;

use super::support::{assert_error, on_both_backends, Backend, Env, ADMIN, JWT_KEY, PASSWORD};

on_both_backends!(login_and_token_checks, generated_admin_when_none_configured);

fn sign(claims: serde_json::Value, key: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("sign")
}

async fn get_with(env: &Env, header: &str, value: &str) -> (StatusCode, serde_json::Value) {
    let r = env
        .client
        .get(env.url("/api/integrations?pageSize=5&page=0"))
        .header(header, value)
        .send()
        .await
        .expect("request");
    super::support::read(r).await
}

async fn login_and_token_checks(backend: Backend) {
    let env = Env::start(backend).await;
    let (code, body) = env.login(ADMIN, "wrong").await;
    assert_eq!(assert_error(code, &body, 401, 10), "Invalid username or password");
    let (code, body) = env.login("nobody@x", PASSWORD).await;
    assert_error(code, &body, 401, 10);
    let (code, body) = env.login(ADMIN, PASSWORD).await;
    assert_eq!(code, StatusCode::OK);
    let refresh = body["refreshToken"].as_str().expect("refresh token").to_string();
    // Both headers work.
    assert_eq!(get_with(&env, "X-Authorization", &format!("Bearer {}", env.token)).await.0, StatusCode::OK);
    assert_eq!(get_with(&env, "Authorization", &format!("Bearer {}", env.token)).await.0, StatusCode::OK);
    // No token, a bad one, one signed with another key, an expired one, a refresh token.
    let r = env.client.get(env.url("/api/integrations?pageSize=5&page=0")).send().await.expect("request");
    let (code, body) = super::support::read(r).await;
    assert_error(code, &body, 401, 10);
    let (code, body) = get_with(&env, "X-Authorization", "Bearer not-a-jwt").await;
    assert_error(code, &body, 401, 10);
    let now = (trib_core::now_ms() / 1000) as u64;
    let claims = |iat: u64, exp: u64, typ: &str| json!({"sub": ADMIN, "scopes": ["SYS_ADMIN"], "iat": iat, "exp": exp, "typ": typ});
    let foreign = sign(claims(now, now + 600, "access"), "some-other-key-of-some-length-000000");
    let (code, body) = get_with(&env, "X-Authorization", &format!("Bearer {foreign}")).await;
    assert_error(code, &body, 401, 10);
    let expired = sign(claims(now - 7200, now - 3600, "access"), JWT_KEY);
    let (code, body) = get_with(&env, "X-Authorization", &format!("Bearer {expired}")).await;
    assert_eq!(assert_error(code, &body, 401, 11), "Token has expired");
    let valid = sign(claims(now, now + 600, "access"), JWT_KEY);
    assert_eq!(get_with(&env, "X-Authorization", &format!("Bearer {valid}")).await.0, StatusCode::OK);
    let (code, body) = get_with(&env, "X-Authorization", &format!("Bearer {refresh}")).await;
    assert_error(code, &body, 401, 10);
    // Every protected endpoint refuses without a token.
    let id = uuid::Uuid::new_v4();
    for (method, path) in [
        ("GET", format!("/api/integration/{id}")),
        ("POST", "/api/integration".to_string()),
        ("POST", "/api/integration/check".to_string()),
        ("POST", format!("/api/integration/{id}")),
        ("DELETE", format!("/api/integration/{id}")),
        ("POST", format!("/api/integration/{id}/enable")),
        ("POST", format!("/api/integration/{id}/disable")),
        ("GET", format!("/api/integration/{id}/status")),
        ("GET", format!("/api/integration/{id}/deadLetters")),
        ("POST", format!("/api/integration/{id}/deadLetters/replay")),
        ("GET", "/api/executors".to_string()),
        ("GET", format!("/api/events/{id}/LC_EVENT?pageSize=1&page=0")),
        ("POST", format!("/api/events/{id}?pageSize=1&page=0")),
        ("POST", format!("/api/events/{id}/clear")),
        ("GET", format!("/api/subscription/integration?integrationId={id}")),
    ] {
        let r = env
            .client
            .request(method.parse().expect("method"), env.url(&path))
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        let (code, body) = super::support::read(r).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
    }
    // Refresh gives a working pair.
    let r = env
        .client
        .post(env.url("/api/auth/token"))
        .json(&json!({"refreshToken": refresh}))
        .send()
        .await
        .expect("request");
    let (code, body) = super::support::read(r).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let fresh = body["token"].as_str().expect("token");
    assert_eq!(get_with(&env, "X-Authorization", &format!("Bearer {fresh}")).await.0, StatusCode::OK);
    let r = env
        .client
        .post(env.url("/api/auth/token"))
        .json(&json!({"refreshToken": env.token}))
        .send()
        .await
        .expect("request");
    let (code, body) = super::support::read(r).await;
    assert_error(code, &body, 401, 10);
    env.stop().await;
}

async fn generated_admin_when_none_configured(backend: Backend) {
    let env = Env::start(backend).await;
    let db = env.db().await;
    // A second start with no administrator configured and a user present creates nobody.
    let mut config = env.config.clone();
    config.admin = None;
    let auth = crate::auth::Auth::new(db.clone(), &config);
    auth.ensure_admin(&config).await.expect("ensure");
    assert_eq!(db.admin_count().await.expect("count"), 1);
    // On an empty database it creates one with a random password (not a known default).
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = crate::db::Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("e.db").display()), 1)
        .await
        .expect("db");
    let auth = crate::auth::Auth::new(empty.clone(), &config);
    auth.ensure_admin(&config).await.expect("ensure");
    assert_eq!(empty.admin_count().await.expect("count"), 1);
    for guess in ["", "admin", "sysadmin", "password", PASSWORD] {
        assert!(auth.login(crate::auth::GENERATED_ADMIN, guess).await.is_err(), "{guess}");
    }
    // A configured password replaces a stored one.
    config.admin = Some(crate::AdminCredentials { username: ADMIN.into(), password: "new-password".into() });
    crate::auth::Auth::new(db.clone(), &config).ensure_admin(&config).await.expect("ensure");
    assert_eq!(env.login(ADMIN, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(env.login(ADMIN, "new-password").await.0, StatusCode::OK);
    empty.close().await;
    db.close().await;
    env.stop().await;
}
