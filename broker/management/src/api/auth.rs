//! `POST /api/auth/login` and `POST /api/auth/token` (refresh).

use poem_openapi::{payload::Json, OpenApi, Tags};

use super::{
    dto::{LoginRequest, LoginResponse, RefreshRequest},
    error::{ApiResult, AuthErrors},
    State,
};

#[derive(Tags)]
enum Tag {
    /// Login and tokens.
    Auth,
}

/// Login endpoints.
pub struct AuthApi(pub State);

#[OpenApi(tag = "Tag::Auth")]
impl AuthApi {
    /// Log in with a user name and password; returns a JWT for `X-Authorization: Bearer <token>`.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(&self, body: Json<LoginRequest>) -> ApiResult<Json<LoginResponse>, AuthErrors> {
        let tokens = self.0.auth.login(&body.username, &body.password).await?;
        Ok(Json(LoginResponse { token: tokens.token, refresh_token: tokens.refresh_token }))
    }

    /// Exchange a refresh token for new tokens.
    #[oai(path = "/auth/token", method = "post")]
    async fn refresh(&self, body: Json<RefreshRequest>) -> ApiResult<Json<LoginResponse>, AuthErrors> {
        let tokens = self.0.auth.refresh(&body.refresh_token).await?;
        Ok(Json(LoginResponse { token: tokens.token, refresh_token: tokens.refresh_token }))
    }
}
