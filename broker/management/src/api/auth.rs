//! `POST /api/auth/login`, `POST /api/auth/token` (refresh) and `POST /api/auth/changePassword`.

use poem::web::Data;
use poem_openapi::{payload::Json, OpenApi, Tags};

use super::{
    dto::{AdminPasswordChange, LoginRequest, LoginResponse, RefreshRequest},
    error::{ApiResult, AuthErrors},
    AdminUser, State,
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

    /// Change the password of the administrator the token belongs to (ThingsBoard's
    /// `changePassword`): 400 when the current password does not match or the new one is
    /// shorter than 6 characters or the same. Every access and refresh token issued before
    /// stops working (within 2 s on other broker nodes); the answer carries new ones.
    #[oai(path = "/auth/changePassword", method = "post", operation_id = "changePassword")]
    async fn change_password(
        &self,
        user: Data<&AdminUser>,
        body: Json<AdminPasswordChange>,
    ) -> ApiResult<Json<LoginResponse>, AuthErrors> {
        let tokens = self.0.auth.change_password(&user.0 .0, &body.current_password, &body.new_password).await?;
        Ok(Json(LoginResponse { token: tokens.token, refresh_token: tokens.refresh_token }))
    }

    /// Exchange a refresh token for new tokens.
    #[oai(path = "/auth/token", method = "post")]
    async fn refresh(&self, body: Json<RefreshRequest>) -> ApiResult<Json<LoginResponse>, AuthErrors> {
        let tokens = self.0.auth.refresh(&body.refresh_token).await?;
        Ok(Json(LoginResponse { token: tokens.token, refresh_token: tokens.refresh_token }))
    }
}
