//! The REST API (poem + poem-openapi): TBMQ's integration and event endpoints, ours for
//! enable/disable/status/executors, login, Swagger UI at `/swagger-ui` and the OpenAPI
//! document at `/api/openapi.json`.
//!
//! The web console (`crate::console`) is served at `/` and `/console/*`.
//!
//! Every route except login, token refresh, the OpenAPI document, Swagger UI and the console's
//! files needs `X-Authorization: Bearer <token>` (or `Authorization: Bearer <token>`). Bodies
//! are limited to `max_body_bytes` (413), and every error has TBMQ's JSON shape.

mod auth;
mod cluster;
mod credentials;
mod dto;
pub mod error;
mod events;
mod integrations;
pub mod json;
mod subscriptions;

use std::{borrow::Cow, sync::Arc};

use poem::{
    http::{header, HeaderValue, StatusCode},
    Endpoint, EndpointExt, IntoEndpoint, Request, Response, Route,
};
use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
    OpenApiService,
};
use serde_json::Value;
use uuid::Uuid;

use self::error::ApiError;
use crate::{
    auth::Auth,
    model::{EventKind, PageLink, SortOrder},
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
    /// MQTT client credentials.
    pub credentials: Arc<crate::credentials::Credentials>,
    /// What else `/health/ready` asks (the in-process executor of the all-in-one mode).
    pub readiness: crate::ReadinessChecks,
    /// The cluster as this node sees it.
    pub cluster: Arc<crate::cluster::Cluster>,
    /// `/metrics` needs a token (`SECURITY_METRICS_REQUIRE_TOKEN`).
    pub metrics_require_token: bool,
}

/// Builds the whole HTTP application.
pub fn app(state: State, max_body_bytes: usize) -> impl Endpoint<Output = Response> {
    let api = OpenApiService::new(
        (
            auth::AuthApi(state.clone()),
            integrations::IntegrationApi(state.clone()),
            events::EventApi(state.clone()),
            subscriptions::SubscriptionApi(state.clone()),
            credentials::CredentialsApi(state.clone()),
            cluster::ClusterApi(state.clone()),
        ),
        "Tributary management API",
        env!("CARGO_PKG_VERSION"),
    )
    .server("/api");
    let document = openapi_document(&api.spec());
    let allowed = Arc::new(AllowedMethods::from_spec(&document));
    let spec = {
        let document = document.clone();
        poem::endpoint::make(move |_| {
            let document = document.clone();
            async move { Response::builder().content_type("application/json; charset=utf-8").body(document) }
        })
    };
    let ui = api.swagger_ui();
    let auth = state.auth.clone();
    let metrics_require_token = state.metrics_require_token;
    Route::new()
        .at("/health/live", poem::get(live))
        .at("/health/ready", poem::get(ready))
        .at("/metrics", poem::get(metrics_text))
        .at("/api/openapi.json", spec)
        .nest("/api", api)
        .nest("/swagger-ui", ui)
        .at("/", poem::get(crate::console::index))
        .at("/console/*path", poem::get(crate::console::file))
        .around(move |ep, req| {
            let (auth, allowed) = (auth.clone(), allowed.clone());
            async move { guarded(ep, req, &auth, &allowed, max_body_bytes, metrics_require_token).await }
        })
        .catch_all_error(|err| async move { ApiError::from_poem(err) })
        .data(state)
        .into_endpoint()
}

/// Request bodies declared with `deny_unknown_fields`: poem-openapi does not say so in their
/// schemas, so the document adds `additionalProperties: false` to them.
pub const CLOSED_SCHEMAS: &[&str] = &[
    "LoginRequest",
    "RefreshRequest",
    "IntegrationRequest",
    "MqttClientCredentialsRequest",
    "ChangePasswordRequest",
    "LcEventFilter",
    "ErrorEventFilter",
    "StatsEventFilter",
];

/// Fields of `IntegrationRequest` without which a save or check is always refused (400 with
/// TBMQ's messages, raised by the service so that the messages stay TBMQ's).
pub const INTEGRATION_REQUIRED: &[&str] = &["name", "type", "configuration"];

/// poem-openapi's document with what its derives cannot express: closed request bodies and
/// the fields a save requires.
pub fn openapi_document(generated: &str) -> String {
    let mut spec: Value = match serde_json::from_str(generated) {
        Ok(spec) => spec,
        Err(_) => return generated.to_string(),
    };
    if let Some(schemas) = spec.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for name in CLOSED_SCHEMAS {
            if let Some(schema) = schemas.get_mut(*name).and_then(Value::as_object_mut) {
                schema.insert("additionalProperties".into(), Value::Bool(false));
            }
        }
        if let Some(schema) = schemas.get_mut("IntegrationRequest").and_then(Value::as_object_mut) {
            schema.insert("required".into(), INTEGRATION_REQUIRED.iter().map(|f| Value::from(*f)).collect());
        }
    }
    spec.to_string()
}

/// Liveness: the process answers.
#[poem::handler]
fn live() -> &'static str {
    "UP"
}

/// Readiness: the database answers and every registered check passes.
#[poem::handler]
async fn ready(poem::web::Data(state): poem::web::Data<&State>) -> Response {
    if let Err(e) = state.service.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")).into_response();
    }
    match state.readiness.check() {
        Ok(()) => "READY".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}

/// Prometheus text format of every metric of the process.
#[poem::handler]
fn metrics_text() -> String {
    trib_ops::render_metrics()
}

/// The administrator a request's token belongs to (set by the guard).
#[derive(Debug, Clone)]
pub struct AdminUser(pub String);

/// The 413 answer to a body over the limit. The rest of the body is never read, so the
/// connection cannot carry another request: `Connection: close` makes the server close it and
/// tells the client not to reuse it (without it, a client's pool could send its next request on
/// the connection the server is closing, and see it fail with no answer).
fn too_large() -> Response {
    let error = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large");
    let mut response = ApiError::from_poem(error.into());
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Authentication and the body limit, before routing.
async fn guarded<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    auth: &Auth,
    allowed: &AllowedMethods,
    max_body_bytes: usize,
    metrics_require_token: bool,
) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    let protected = path.starts_with("/api/") && !PUBLIC.contains(&path.as_str());
    if protected || (metrics_require_token && path == "/metrics") {
        let token = bearer(&req, "x-authorization").or_else(|| bearer(&req, "authorization")).ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "Authentication failed: no token in X-Authorization")
        })?;
        let user = auth.verify_access(&token).await?;
        req.extensions_mut().insert(AdminUser(user));
    }
    let declared = req.header("content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body_bytes) {
        return Ok(too_large());
    }
    // A body without a length (chunked) is read up to the limit here.
    let body = match req.take_body().into_bytes_limit(max_body_bytes).await {
        Ok(body) => body,
        Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
        Err(other) => return Err(ApiError::bad_request(other.to_string()).into()),
    };
    req.set_body(body);
    match ep.call(req).await {
        Ok(response) => Ok(response.into_response()),
        // RFC 9110: a 405 lists the methods the resource supports.
        Err(err) if err.status() == StatusCode::METHOD_NOT_ALLOWED => {
            let mut response = ApiError::from_poem(err);
            if let Some(methods) = allowed.lookup(&path) {
                response.headers_mut().insert(header::ALLOW, methods);
            }
            Ok(response)
        }
        Err(err) => Err(err),
    }
}

/// The keys of an OpenAPI path item that are methods.
const OPENAPI_METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"];

/// The methods of every route, for the `Allow` header of a 405: the OpenAPI document's paths
/// under `/api`, plus the plain routes.
#[derive(Debug, Default)]
pub struct AllowedMethods {
    /// Path segments (`None` = a `{parameter}`) and the `Allow` value.
    routes: Vec<(Vec<Option<String>>, HeaderValue)>,
}

impl AllowedMethods {
    /// Reads the paths and methods of an OpenAPI document served under `/api`.
    pub fn from_spec(spec: &str) -> Self {
        let mut allowed = AllowedMethods::default();
        let spec: Value = serde_json::from_str(spec).unwrap_or_default();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            let methods: Vec<String> = item
                .as_object()
                .into_iter()
                .flatten()
                .map(|(m, _)| m.to_ascii_uppercase())
                .filter(|m| OPENAPI_METHODS.contains(&m.as_str()))
                .collect();
            allowed.add(&format!("/api{path}"), &methods.join(", "));
        }
        for path in ["/api/openapi.json", "/health/live", "/health/ready", "/metrics"] {
            allowed.add(path, "GET, HEAD");
        }
        for path in crate::console::paths() {
            allowed.add(&path, "GET, HEAD");
        }
        allowed
    }

    fn add(&mut self, path: &str, methods: &str) {
        let Ok(value) = HeaderValue::from_str(methods) else { return };
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
            .collect();
        self.routes.push((segments, value));
    }

    /// The `Allow` value of the route that serves `path`: the match with the most literal
    /// segments, as the router prefers them.
    pub fn lookup(&self, path: &str) -> Option<HeaderValue> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.routes
            .iter()
            .filter(|(route, _)| {
                route.len() == segments.len()
                    && route.iter().zip(&segments).all(|(r, s)| r.as_deref().is_none_or(|r| r == *s))
            })
            .max_by_key(|(route, _)| route.iter().filter(|r| r.is_some()).count())
            .map(|(_, value)| value.clone())
    }
}

/// An event type in a path (`LC_EVENT`, `ERROR`, `STATS`, any case): documented with a pattern,
/// refused as TBMQ does ("Event type: '..' is not supported!", 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKindParam(pub EventKind);

impl Type for EventKindParam {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_event_type".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some(r"^([Ll][Cc]_[Ee][Vv][Ee][Nn][Tt]|[Ee][Rr][Rr][Oo][Rr]|[Ss][Tt][Aa][Tt][Ss])$".into()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for EventKindParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        EventKind::parse(value)
            .map(EventKindParam)
            .ok_or_else(|| ParseError::custom(format!("Event type: '{value}' is not supported!")))
    }
}

/// A UUID in a path or body: documented as `format: uuid`, refused as TBMQ does
/// ("Invalid UUID string: ..", 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UuidParam(pub Uuid);

impl UuidParam {
    fn parse(text: &str) -> ParseResult<Self> {
        Uuid::parse_str(text).map(UuidParam).map_err(|_| ParseError::custom(format!("Invalid UUID string: {text}")))
    }
}

impl Type for UuidParam {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_uuid".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "uuid")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for UuidParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        UuidParam::parse(value)
    }
}

impl ParseFromJSON for UuidParam {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => UuidParam::parse(&text),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for UuidParam {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.to_string()))
    }
}

fn bearer(req: &Request, header: &str) -> Option<String> {
    let value = req.header(header)?.trim();
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

use poem::IntoResponse as _;

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

/// Dead letters per request when `limit` is absent.
pub const DEAD_LETTERS_DEFAULT_LIMIT: i64 = 100;
/// The largest `limit` of a dead-letter request.
pub const DEAD_LETTERS_MAX_LIMIT: i64 = 1000;

/// The dead-letter parameters, checked: `(limit, fromOffset)`.
pub fn dead_letter_range(limit: Option<i64>, from_offset: Option<i64>) -> Result<(usize, Option<i64>), ApiError> {
    let limit = limit.unwrap_or(DEAD_LETTERS_DEFAULT_LIMIT);
    if !(1..=DEAD_LETTERS_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("Limit must be between 1 and {DEAD_LETTERS_MAX_LIMIT}")));
    }
    if from_offset.is_some_and(|o| o < 0) {
        return Err(ApiError::bad_request("From offset must not be negative"));
    }
    Ok((limit as usize, from_offset))
}
