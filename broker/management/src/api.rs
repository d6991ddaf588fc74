//! The REST API (poem + poem-openapi): TBMQ's integration and event endpoints, ours for
//! enable/disable/status/executors, login, Swagger UI at `/swagger-ui` and the OpenAPI
//! document at `/api/openapi.json`.
//!
//! Every route except login, token refresh, the OpenAPI document and Swagger UI needs
//! `X-Authorization: Bearer <token>` (or `Authorization: Bearer <token>`). Bodies are limited
//! to `max_body_bytes` (413), and every error has TBMQ's JSON shape.

mod auth;
mod dto;
pub mod error;
mod events;
mod integrations;

use std::sync::Arc;

use poem::{http::StatusCode, Endpoint, EndpointExt, IntoEndpoint, Request, Response, Route};
use poem_openapi::OpenApiService;
use uuid::Uuid;

use self::error::ApiError;
use crate::{
    auth::Auth,
    model::{PageLink, SortOrder},
    service::Service,
};

/// Paths reachable without a token.
const PUBLIC: &[&str] = &["/api/auth/login", "/api/auth/token", "/api/openapi.json"];

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct State {
    /// Integrations.
    pub service: Arc<Service>,
    /// Tokens.
    pub auth: Arc<Auth>,
}

/// Builds the whole HTTP application.
pub fn app(state: State, max_body_bytes: usize) -> impl Endpoint<Output = Response> {
    let api = OpenApiService::new(
        (auth::AuthApi(state.clone()), integrations::IntegrationApi(state.clone()), events::EventApi(state.clone())),
        "Tributary management API",
        env!("CARGO_PKG_VERSION"),
    )
    .server("/api");
    let spec = api.spec_endpoint();
    let ui = api.swagger_ui();
    let auth = state.auth.clone();
    Route::new()
        .at("/health/live", poem::get(live))
        .at("/health/ready", poem::get(ready))
        .at("/metrics", poem::get(metrics_text))
        .at("/api/openapi.json", spec)
        .nest("/api", api)
        .nest("/swagger-ui", ui)
        .around(move |ep, req| {
            let auth = auth.clone();
            async move { guarded(ep, req, &auth, max_body_bytes).await }
        })
        .catch_all_error(|err| async move { ApiError::from_poem(err) })
        .data(state)
        .into_endpoint()
}

/// Liveness: the process answers.
#[poem::handler]
fn live() -> &'static str {
    "UP"
}

/// Readiness: the database answers.
#[poem::handler]
async fn ready(poem::web::Data(state): poem::web::Data<&State>) -> Response {
    match state.service.ping().await {
        Ok(()) => "READY".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")).into_response(),
    }
}

/// Prometheus text format of every metric of the process.
#[poem::handler]
fn metrics_text() -> String {
    trib_core::service::prometheus().render()
}

/// Authentication and the body limit, before routing.
async fn guarded<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    auth: &Auth,
    max_body_bytes: usize,
) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    if path.starts_with("/api/") && !PUBLIC.contains(&path.as_str()) {
        let token = bearer(&req, "x-authorization").or_else(|| bearer(&req, "authorization")).ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "Authentication failed: no token in X-Authorization")
        })?;
        auth.verify_access(&token)?;
    }
    let declared = req.header("content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body_bytes) {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large").into());
    }
    // A body without a length (chunked) is read up to the limit here.
    let body = req.take_body().into_bytes_limit(max_body_bytes).await.map_err(|e| match e {
        poem::error::ReadBodyError::PayloadTooLarge => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large")
        }
        other => ApiError::bad_request(other.to_string()),
    })?;
    req.set_body(body);
    Ok(ep.call(req).await?.into_response())
}

fn bearer(req: &Request, header: &str) -> Option<String> {
    let value = req.header(header)?.trim();
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

use poem::IntoResponse as _;

/// Parses a UUID from a path or body (TBMQ: 400 "Invalid UUID string: ..").
pub fn parse_uuid(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::bad_request(format!("Invalid UUID string: {text}")))
}

/// TBMQ's page parameters, checked.
pub fn page_link(
    page_size: i64,
    page: i64,
    text_search: Option<String>,
    sort_property: Option<String>,
    sort_order: Option<String>,
    allowed_sort: &[&str],
) -> Result<PageLink, ApiError> {
    if !(1..=100_000).contains(&page_size) {
        return Err(ApiError::bad_request("Page size must be between 1 and 100000"));
    }
    if !(0..=1_000_000_000).contains(&page) {
        return Err(ApiError::bad_request("Page must be between 0 and 1000000000"));
    }
    let order = match sort_order.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("") | Some("ASC") => SortOrder::Asc,
        Some("DESC") => SortOrder::Desc,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "Unsupported sort order '{}'! Only 'ASC' or 'DESC' allowed!",
                sort_order.unwrap_or_default()
            )))
        }
    };
    let sort = match sort_property.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) if !p.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') => {
            return Err(ApiError::bad_request(format!("Invalid sort property: {p}")))
        }
        Some(p) if !allowed_sort.contains(&p.as_str()) => {
            return Err(ApiError::bad_request(format!(
                "Unsupported sort property '{p}'; use one of {}",
                allowed_sort.join(", ")
            )))
        }
        Some(p) => Some((p, order)),
    };
    Ok(PageLink { page_size: page_size as u64, page: page as u64, text_search, sort })
}
