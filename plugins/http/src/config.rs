//! The HTTP integration's `clientConfiguration`: TBMQ's field names, defaults and validation
//! messages, parsed into the checked [`HttpConfig`] that the rest of the driver uses.
//!
//! Parsing goes field by field over a JSON object (instead of one derived struct) so that every
//! problem is reported with its JSON path, and all problems at once. Unknown fields are ignored,
//! as in TBMQ, whose UI sends extra ones (`caCertFileName`, ...). The URL encoding lives in
//! [`url`], the PEM parsing of the credentials in [`tls`], `statusCodes` in [`status_codes`],
//! the reading of each field in `fields`.

mod fields;
pub mod status_codes;
pub mod tls;
pub mod url;

use serde_json::Value;
use trib_plugin_api::{driver::FieldError, support::credentials::Credentials};

use self::fields::Fields;

pub use self::{status_codes::StatusCodes, tls::TlsMaterial};

/// `maxInMemoryBufferSizeInKb` when the field is absent or null (TBMQ's UI default, and what
/// TBMQ's client falls back to).
pub const DEFAULT_MAX_IN_MEMORY_BUFFER_KB: u64 = 256;
/// TBMQ's system limit for `maxInMemoryBufferSizeInKb`.
pub const MAX_IN_MEMORY_BUFFER_LIMIT_KB: u64 = 25_000;
/// `connectTimeoutMs` when absent (our addition).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Worker threads, and so requests in flight, when `maxParallelRequestsCount` is 0 ("unlimited").
pub const DEFAULT_WORKERS: usize = 16;

/// The HTTP method; TBMQ allows exactly these four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `POST` (the default), with a body.
    Post,
    /// `PUT`, with a body.
    Put,
    /// `GET`, without a body.
    Get,
    /// `DELETE`, without a body.
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Get => "GET",
            Method::Delete => "DELETE",
        }
    }

    /// Whether TBMQ attaches a body (only POST and PUT).
    pub fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put)
    }
}

/// `payloadContentType`: how the MQTT payload is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadContentType {
    /// Parsed as JSON and embedded as a JSON value.
    Json,
    /// As a UTF-8 string (invalid bytes become U+FFFD).
    Text,
    /// Raw bytes, or base64 inside the envelope (the default).
    Binary,
}

/// How a message becomes a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyOptions {
    /// `sendOnlyMsgPayload`: the payload alone instead of the JSON envelope.
    pub send_only_msg_payload: bool,
    /// `payloadContentType`.
    pub payload_content_type: PayloadContentType,
    /// `sendBinaryOnParseFailure`: fall back to bytes when a JSON payload does not parse.
    pub send_binary_on_parse_failure: bool,
}

/// A checked `clientConfiguration`.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `restEndpointUrl`, percent-encoded as TBMQ does (see [`url::encode`]).
    pub url: String,
    /// `requestMethod`.
    pub method: Method,
    /// `headers`, in the order given.
    pub headers: Vec<(String, String)>,
    /// `credentials`.
    pub credentials: Credentials,
    /// Parsed PEM material of `cert.PEM` credentials plus `skipCertificateVerification`.
    pub tls: TlsMaterial,
    /// `readTimeoutMs`; 0 = no limit of its own (the batch deadline still applies).
    pub read_timeout_ms: u64,
    /// `maxParallelRequestsCount`; 0 = [`DEFAULT_WORKERS`].
    pub max_parallel_requests: u64,
    /// `maxInMemoryBufferSizeInKb`: how much of a response body is read.
    pub max_in_memory_buffer_kb: u64,
    /// `connectTimeoutMs` (our addition); 0 = no limit of its own.
    pub connect_timeout_ms: u64,
    /// Body rendering.
    pub body: BodyOptions,
    /// `statusCodes` (our addition): the statuses whose outcome the integration sets itself.
    pub status_codes: StatusCodes,
}

impl HttpConfig {
    /// Parses and checks a `clientConfiguration` JSON text.
    pub fn parse(text: &str) -> Result<HttpConfig, Vec<FieldError>> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| vec![FieldError::new("", format!("clientConfiguration is not valid JSON: {e}"))])?;
        let Value::Object(obj) = value else {
            return Err(vec![FieldError::new("", "clientConfiguration must be a JSON object")]);
        };
        let mut f = Fields { obj: &obj, errors: Vec::new() };
        let config = f.config();
        if f.errors.is_empty() {
            config.ok_or_else(|| vec![FieldError::new("", "invalid configuration")])
        } else {
            Err(f.errors)
        }
    }

    /// Number of worker threads: `maxParallelRequestsCount`, or [`DEFAULT_WORKERS`] for 0.
    pub fn workers(&self) -> usize {
        match self.max_parallel_requests {
            0 => DEFAULT_WORKERS,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }
}

/// Field errors of a `clientConfiguration` JSON text (empty = valid).
pub fn validate(text: &str) -> Vec<FieldError> {
    HttpConfig::parse(text).err().unwrap_or_default()
}
