//! Login, tokens and the administrator created at first start.

use reqwest::StatusCode;
use serde_json::json;

use super::support::{assert_error, on_both_backends, Backend, Env, ADMIN, JWT_KEY, PASSWORD};

on_both_backends!(
    login_and_token_checks,
    generated_admin_when_none_configured,
    a_password_change_invalidates_earlier_tokens,
    a_renamed_administrator_leaves_no_old_account,
    metrics_can_require_a_token
);

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
    // Signed with the right key but without the fingerprint of the password it was issued under.
    let unbound = sign(claims(now, now + 600, "access"), JWT_KEY);
    let (code, body) = get_with(&env, "X-Authorization", &format!("Bearer {unbound}")).await;
    assert_error(code, &body, 401, 10);
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

async fn change_password(env: &Env, token: &str, current: &str, new: &str) -> (StatusCode, serde_json::Value) {
    let r = env
        .client
        .post(env.url("/api/auth/changePassword"))
        .header("X-Authorization", format!("Bearer {token}"))
        .json(&json!({"currentPassword": current, "newPassword": new}))
        .send()
        .await
        .expect("request");
    super::support::read(r).await
}

async fn refresh(env: &Env, refresh_token: &str) -> (StatusCode, serde_json::Value) {
    let r = env
        .client
        .post(env.url("/api/auth/token"))
        .json(&json!({"refreshToken": refresh_token}))
        .send()
        .await
        .expect("request");
    super::support::read(r).await
}

async fn a_password_change_invalidates_earlier_tokens(backend: Backend) {
    let env = Env::start(backend).await;
    let (_, first) = env.login(ADMIN, PASSWORD).await;
    let (old_access, old_refresh) =
        (first["token"].as_str().expect("token").to_string(), first["refreshToken"].as_str().expect("r").to_string());
    assert_eq!(refresh(&env, &old_refresh).await.0, StatusCode::OK);
    // Refused: no token, a wrong current password, a short or unchanged new one.
    let r = env
        .client
        .post(env.url("/api/auth/changePassword"))
        .json(&json!({"currentPassword": PASSWORD, "newPassword": "n3w-password"}))
        .send()
        .await;
    let (code, body) = super::support::read(r.expect("request")).await;
    assert_error(code, &body, 401, 10);
    let (code, body) = change_password(&env, &old_access, "wrong", "n3w-password").await;
    assert_eq!(assert_error(code, &body, 400, 31), "Current password doesn't match!");
    let (code, body) = change_password(&env, &old_access, PASSWORD, "short").await;
    assert_eq!(assert_error(code, &body, 400, 31), "Password must be at least 6 characters long");
    let (code, body) = change_password(&env, &old_access, PASSWORD, PASSWORD).await;
    assert_eq!(assert_error(code, &body, 400, 31), "New password should be different from existing!");
    assert_eq!(get_with(&env, "X-Authorization", &format!("Bearer {old_access}")).await.0, StatusCode::OK);

    let (code, fresh) = change_password(&env, &old_access, PASSWORD, "n3w-password").await;
    assert_eq!(code, StatusCode::OK, "{fresh}");
    let new_access = fresh["token"].as_str().expect("token");
    // Every token issued before is refused, on this node at once; the new ones work.
    let (code, body) = get_with(&env, "X-Authorization", &format!("Bearer {old_access}")).await;
    assert_error(code, &body, 401, 10);
    let (code, body) = refresh(&env, &old_refresh).await;
    assert_error(code, &body, 401, 10);
    assert_eq!(get_with(&env, "X-Authorization", &format!("Bearer {new_access}")).await.0, StatusCode::OK);
    let (code, body) = refresh(&env, fresh["refreshToken"].as_str().expect("r")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_error(env.login(ADMIN, PASSWORD).await.0, &env.login(ADMIN, PASSWORD).await.1, 401, 10);
    assert_eq!(env.login(ADMIN, "n3w-password").await.0, StatusCode::OK);

    // Another node of the cluster refuses the old token too, within its cache time.
    let node2 = env.join().await;
    let (code, body) = get_with(&node2, "X-Authorization", &format!("Bearer {old_access}")).await;
    assert_error(code, &body, 401, 10);
    node2.stop().await;
    env.stop().await;
}

/// Renaming the administrator (`TB_ADMIN_USERNAME`) removes the old account and its tokens.
async fn a_renamed_administrator_leaves_no_old_account(backend: Backend) {
    let env = Env::start(backend).await;
    let old_token = env.token.clone();
    let renamed = super::support::test_config("unused");
    let config = crate::config::ManagementConfig {
        service_id: renamed.service_id,
        admin: Some(crate::config::AdminCredentials { username: "root@example.com".into(), password: PASSWORD.into() }),
        ..env.config.clone()
    };
    let restarted = env.restart_with(config).await;
    assert_error(restarted.login(ADMIN, PASSWORD).await.0, &restarted.login(ADMIN, PASSWORD).await.1, 401, 10);
    assert_eq!(restarted.login("root@example.com", PASSWORD).await.0, StatusCode::OK);
    let (code, body) = get_with(&restarted, "X-Authorization", &format!("Bearer {old_token}")).await;
    assert_error(code, &body, 401, 10);
    restarted.stop().await;
}

/// `SECURITY_METRICS_REQUIRE_TOKEN`: `/metrics` (whose series name integration ids) needs a token.
async fn metrics_can_require_a_token(backend: Backend) {
    let open = Env::start(backend.clone()).await;
    let r = open.client.get(open.url("/metrics")).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    open.stop().await;

    let env = Env::start_with(backend, |c| c.metrics_require_token = true).await;
    let r = env.client.get(env.url("/metrics")).send().await.expect("request");
    let (code, body) = super::support::read(r).await;
    assert_error(code, &body, 401, 10);
    let r = env.client.get(env.url("/metrics")).header("X-Authorization", format!("Bearer {}", env.token)).send().await;
    assert_eq!(r.expect("request").status(), StatusCode::OK);
    // Health stays open for load balancers.
    let r = env.client.get(env.url("/health/live")).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    env.stop().await;
}
