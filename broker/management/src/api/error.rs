//! TBMQ's error body `{"status","message","errorCode","timestamp"}` (plus `fieldErrors` when an
//! executor rejected fields), for our errors and for every error poem itself raises (bad JSON,
//! unknown fields, wrong types, oversized bodies, unknown routes), so no failure escapes in
//! another shape.

use std::marker::PhantomData;

use poem::{error::ResponseError, http::StatusCode, Body, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
    ApiResponse, Object,
};

use crate::{auth::AuthError, service::ServiceError};

/// TBMQ's `ThingsboardErrorCode` values we use.
pub mod code {
    /// Anything else (500, and our 503/504).
    pub const GENERAL: i32 = 2;
    /// Bad credentials or token (401).
    pub const AUTHENTICATION: i32 = 10;
    /// Expired token (401).
    pub const JWT_TOKEN_EXPIRED: i32 = 11;
    /// 403.
    pub const PERMISSION_DENIED: i32 = 20;
    /// Bad request parameters (400).
    pub const BAD_REQUEST_PARAMS: i32 = 31;
    /// Not found (404).
    pub const ITEM_NOT_FOUND: i32 = 32;
    /// 429.
    pub const TOO_MANY_REQUESTS: i32 = 33;
    /// Database failure (500).
    pub const DATABASE: i32 = 46;
}

/// `failure` of a configuration that failed a field check.
const CONFIGURATION_INVALID: &str = "CONFIGURATION_INVALID";

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// TBMQ error code.
    pub error_code: i32,
    /// Field-level errors `(field, message)`.
    pub field_errors: Vec<(String, String)>,
    /// What an executor said failed (`CONFIGURATION_INVALID`, `TARGET_UNREACHABLE`,
    /// `DRIVER_ERROR`), for save and check-connection answers.
    pub failure: Option<String>,
}

impl ApiError {
    /// An error with a status and a message; the code follows from the status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let error_code = match status.as_u16() {
            401 => code::AUTHENTICATION,
            403 => code::PERMISSION_DENIED,
            404 => code::ITEM_NOT_FOUND,
            429 => code::TOO_MANY_REQUESTS,
            400..=499 => code::BAD_REQUEST_PARAMS,
            _ => code::GENERAL,
        };
        ApiError { status, message: message.into(), error_code, field_errors: Vec::new(), failure: None }
    }

    /// A 400 with TBMQ's "bad request params" code.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// Turns any poem error into the TBMQ shape.
    pub fn from_poem(err: poem::Error) -> Response {
        if err.is::<ApiError>() {
            return err.into_response();
        }
        let status = err.status();
        let message = match status {
            StatusCode::NOT_FOUND => "Requested item wasn't found!".to_string(),
            StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large".to_string(),
            _ => tbmq_message(err.to_string()),
        };
        ApiError::new(status, message).as_response()
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut body = serde_json::json!({
            "status": self.status.as_u16(),
            "message": self.message,
            "errorCode": self.error_code,
            "timestamp": iso8601(trib_queue::now_ms()),
        });
        if !self.field_errors.is_empty() {
            body["fieldErrors"] = self
                .field_errors
                .iter()
                .map(|(field, message)| serde_json::json!({"field": field, "message": message}))
                .collect();
        }
        if let Some(failure) = &self.failure {
            body["failure"] = serde_json::json!(failure);
        }
        Response::builder()
            .status(self.status)
            .content_type("application/json")
            .body(Body::from_json(body).unwrap_or_default())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::NotFound => ApiError::new(StatusCode::NOT_FOUND, message),
            ServiceError::InvalidArgument(_) | ServiceError::TypeNotServed(_) => ApiError::bad_request(message),
            ServiceError::Rejected { field_errors, failure, .. } => {
                ApiError { field_errors, failure, ..ApiError::bad_request(message) }
            }
            ServiceError::InvalidFields { field_errors, .. } => {
                ApiError { field_errors, failure: Some(CONFIGURATION_INVALID.into()), ..ApiError::bad_request(message) }
            }
            ServiceError::Timeout(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, message),
            ServiceError::Queue(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message),
            ServiceError::Db(_) => {
                tracing::error!(error = %message, "Database request failed.");
                ApiError { error_code: code::DATABASE, ..ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message) }
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match e {
            AuthError::Expired => {
                ApiError { error_code: code::JWT_TOKEN_EXPIRED, ..ApiError::new(StatusCode::UNAUTHORIZED, message) }
            }
            AuthError::BadCredentials | AuthError::Invalid | AuthError::Locked => {
                ApiError::new(StatusCode::UNAUTHORIZED, message)
            }
            AuthError::Rejected(_) => ApiError::bad_request(message),
            AuthError::Db(_) => {
                ApiError { error_code: code::DATABASE, ..ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message) }
            }
        }
    }
}

impl From<ServiceError> for poem::Error {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<AuthError> for poem::Error {
    fn from(e: AuthError) -> Self {
        ApiError::from(e).into()
    }
}

/// A UUID or event type in a path or body that does not parse is reported as TBMQ does
/// ("Invalid UUID string: ..", "Event type: '..' is not supported!"), without poem-openapi's
/// wrapping around it.
fn tbmq_message(text: String) -> String {
    const MARKS: &[&str] = &["Invalid UUID string: ", "Event type: '"];
    let Some(start) = MARKS.iter().find_map(|mark| text.find(mark)) else { return text };
    let mut message = text[start..].to_string();
    if let Some(end) = message.find(" (occurred while parsing \"") {
        message.truncate(end);
    }
    message
}

/// The documented shape of every error response (the OpenAPI schema of [`ApiError`]'s body).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ErrorBody {
    /// HTTP status.
    pub status: u16,
    /// Human-readable message.
    pub message: String,
    /// TBMQ error code: 2 general, 10 authentication, 11 expired token, 31 bad request, 32 not
    /// found, 46 database.
    pub error_code: i32,
    /// When the error happened, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub timestamp: String,
    /// Fields an executor rejected, or that failed a field check (`name`, `additionalInfo`).
    pub field_errors: Option<Vec<FieldError>>,
    /// Ours, on save and check-connection answers: `CONFIGURATION_INVALID` (fix the fields),
    /// `TARGET_UNREACHABLE` (the configuration is valid, the target did not answer or refused)
    /// or `DRIVER_ERROR`.
    pub failure: Option<String>,
}

/// One rejected field.
#[derive(Debug, Object)]
pub struct FieldError {
    /// Field path.
    pub field: String,
    /// Why.
    pub message: String,
}

/// The error statuses one operation can answer with, for its OpenAPI document.
pub trait ErrorSet: Send + Sync + 'static {
    /// The statuses.
    const CODES: &'static [u16];
}

macro_rules! error_sets {
    ($($(#[$doc:meta])* $name:ident = [$($code:literal),*];)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl ErrorSet for $name {
            const CODES: &'static [u16] = &[$($code),*];
        }
    )*};
}

error_sets! {
    /// Login and refresh: bad body, bad credentials, body limit, media type, database.
    AuthErrors = [400, 401, 413, 415, 500];
    /// Read one integration: bad id, token, missing, database.
    GetErrors = [400, 401, 404, 500];
    /// A page (integrations, events by type): bad parameters, token, database.
    PageErrors = [400, 401, 500];
    /// Operations with a JSON body on events: bad input, token, body limit, media type, database.
    EventBodyErrors = [400, 401, 413, 415, 500];
    /// Save and check: also the queue (503) and the executor's timeout (504).
    SaveErrors = [400, 401, 413, 415, 500, 503, 504];
    /// Restart, delete, enable, disable: bad id, token, missing, database, queue.
    ChangeErrors = [400, 401, 404, 500, 503];
    /// Dead letters (read, replay): bad id or parameter, token, missing, database, queue.
    DeadLetterErrors = [400, 401, 404, 500, 503];
    /// Token only.
    TokenErrors = [401];
    /// A query parameter and the token.
    QueryErrors = [400, 401];
}

/// An [`ApiError`] as the error half of an operation's result, documenting the statuses `S`.
pub struct Failure<S: ErrorSet>(pub ApiError, PhantomData<fn() -> S>);

/// An operation's result: `T` or one of the errors of `S`.
pub type ApiResult<T, S> = Result<T, Failure<S>>;

impl<S: ErrorSet> From<ApiError> for Failure<S> {
    fn from(e: ApiError) -> Self {
        Failure(e, PhantomData)
    }
}

impl<S: ErrorSet> From<ServiceError> for Failure<S> {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}

impl<S: ErrorSet> From<AuthError> for Failure<S> {
    fn from(e: AuthError) -> Self {
        ApiError::from(e).into()
    }
}

impl<S: ErrorSet> From<Failure<S>> for poem::Error {
    fn from(f: Failure<S>) -> Self {
        f.0.into()
    }
}

/// What a status means here, for the document.
fn describe(status: u16) -> &'static str {
    match status {
        400 => "Bad request: malformed JSON, unknown fields, wrong types, a bad UUID or paging parameter, or refused by a business rule (errorCode 31; `fieldErrors` when an executor rejected fields or a name or additionalInfo holds HTML markup)",
        401 => "Missing, invalid or expired token, or bad credentials (errorCode 10, or 11 when expired)",
        404 => "Not found (errorCode 32)",
        413 => "Request body over the limit (errorCode 31)",
        415 => "Content-Type missing or not application/json (errorCode 31)",
        500 => "Database failure (errorCode 46)",
        503 => "Queue unavailable, or a topic not read in time (errorCode 2)",
        504 => "No integration executor answered in time; nothing was saved (errorCode 2)",
        _ => "Error",
    }
}

impl<S: ErrorSet> ApiResponse for Failure<S> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: S::CODES
                .iter()
                .map(|&status| MetaResponse {
                    description: describe(status),
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType { content_type: "application/json", schema: ErrorBody::schema_ref() }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso8601(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}
