//! The field-by-field reading of a `clientConfiguration` object: each field's type, default and
//! TBMQ validation message. Every problem becomes a [`FieldError`] named by its JSON path, and
//! reading goes on after one so that all problems are reported at once. Each field read is
//! noted ([`note_read`]) so that a test can hold the list against the schema in `crate::schema`.

use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{Map, Value};
use trib_plugin_api::{
    driver::FieldError,
    support::{credentials::Credentials, fields::note_read},
};
use ureq::http::{HeaderName, HeaderValue};

use super::{
    status_codes, url, BodyOptions, HttpConfig, Method, PayloadContentType, StatusCodes, TlsMaterial,
    DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_IN_MEMORY_BUFFER_KB, MAX_IN_MEMORY_BUFFER_LIMIT_KB,
};

/// The object being parsed and the errors found so far.
pub(super) struct Fields<'a> {
    pub(super) obj: &'a Map<String, Value>,
    pub(super) errors: Vec<FieldError>,
}

impl Fields<'_> {
    pub(super) fn config(&mut self) -> Option<HttpConfig> {
        let url = self.url();
        let method = self.method();
        let headers = self.headers();
        let errors_before = self.errors.len();
        let credentials = self.credentials();
        let credentials_ok = self.errors.len() == errors_before;
        let skip_verify = self.get::<bool>("skipCertificateVerification", "must be true or false").unwrap_or(false);
        // PEM parsing only makes sense (and only adds news) when the credentials' shape is right.
        let tls = match credentials_ok.then(|| TlsMaterial::parse(&credentials, skip_verify)) {
            Some(Ok(tls)) => Some(tls),
            Some(Err(errors)) => {
                self.errors.extend(errors);
                None
            }
            None => None,
        };
        let read_timeout_ms = self.non_negative("readTimeoutMs", "Read timeout (milliseconds) must not be less than 0");
        let max_parallel_requests =
            self.non_negative("maxParallelRequestsCount", "Max number of parallel requests must not be less than 0");
        let max_in_memory_buffer_kb = self.buffer_size();
        let connect_timeout_ms =
            self.non_negative("connectTimeoutMs", "Connect timeout (milliseconds) must not be less than 0");
        let body = BodyOptions {
            send_only_msg_payload: self.get::<bool>("sendOnlyMsgPayload", "must be true or false").unwrap_or(false),
            payload_content_type: self.payload_content_type(),
            send_binary_on_parse_failure: self
                .get::<bool>("sendBinaryOnParseFailure", "must be true or false")
                .unwrap_or(false),
        };
        let status_codes = self.status_codes();
        Some(HttpConfig {
            url: url?,
            method,
            headers,
            credentials,
            tls: tls?,
            read_timeout_ms: read_timeout_ms.unwrap_or(0),
            max_parallel_requests: max_parallel_requests.unwrap_or(0),
            max_in_memory_buffer_kb,
            connect_timeout_ms: connect_timeout_ms.unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
            body,
            status_codes,
        })
    }

    /// The value of `name` as `T`; `None` when absent, null or of the wrong type (then an error).
    fn get<T: DeserializeOwned>(&mut self, name: &str, wrong_type: &str) -> Option<T> {
        note_read(name);
        match self.obj.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => match T::deserialize(v) {
                Ok(t) => Some(t),
                Err(_) => {
                    self.errors.push(FieldError::new(name, wrong_type));
                    None
                }
            },
        }
    }

    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    fn url(&mut self) -> Option<String> {
        let raw = self.get::<String>("restEndpointUrl", "must be a string").unwrap_or_default();
        if raw.trim().is_empty() {
            if !self.errors.iter().any(|e| e.field.as_str() == "restEndpointUrl") {
                self.error("restEndpointUrl", "REST endpoint URL is required");
            }
            return None;
        }
        match url::encode(&raw) {
            Ok(url) => Some(url),
            Err(message) => {
                self.error("restEndpointUrl", message);
                None
            }
        }
    }

    fn method(&mut self) -> Method {
        let text = self.get::<String>("requestMethod", "must be a string").unwrap_or_default();
        match text.as_str() {
            "" | "POST" => Method::Post,
            "PUT" => Method::Put,
            "GET" => Method::Get,
            "DELETE" => Method::Delete,
            _ => {
                self.error("requestMethod", "Invalid request method. Allowed values: POST, PUT, GET, DELETE");
                Method::Post
            }
        }
    }

    fn headers(&mut self) -> Vec<(String, String)> {
        let Some(map) = self.get::<Map<String, Value>>("headers", "must be an object of header names to values") else {
            return Vec::new();
        };
        let mut headers = Vec::with_capacity(map.len());
        for (name, value) in map {
            let field = format!("headers.{name}");
            // Jackson turns scalar values into strings for a Map<String, String>; so do we.
            let value = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    self.error(field, "must be a string");
                    continue;
                }
            };
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.error(field, "is not a valid HTTP header name");
            } else if HeaderValue::from_str(&value).is_err() {
                self.error(field, "is not a valid HTTP header value (control characters are not allowed)");
            } else {
                headers.push((name, value));
            }
        }
        headers
    }

    fn credentials(&mut self) -> Credentials {
        note_read("credentials");
        match self.obj.get("credentials") {
            None | Some(Value::Null) => Credentials::Anonymous,
            Some(v) => match Credentials::deserialize(v) {
                Ok(c) => {
                    self.errors.extend(c.validate("credentials"));
                    c
                }
                Err(e) => {
                    self.error("credentials", format!("invalid credentials: {e}"));
                    Credentials::Anonymous
                }
            },
        }
    }

    /// An integer field that must be >= 0: `None` when absent or invalid.
    fn non_negative(&mut self, name: &str, negative: &str) -> Option<u64> {
        let n = self.get::<i64>(name, "must be an integer")?;
        match u64::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(name, negative);
                None
            }
        }
    }

    fn buffer_size(&mut self) -> u64 {
        const FIELD: &str = "maxInMemoryBufferSizeInKb";
        let Some(n) = self.get::<i64>(FIELD, "must be an integer") else {
            return DEFAULT_MAX_IN_MEMORY_BUFFER_KB;
        };
        if n <= 0 {
            self.error(FIELD, "Max response size (KB) must be greater than 0");
        } else if n.unsigned_abs() > MAX_IN_MEMORY_BUFFER_LIMIT_KB {
            self.error(
                FIELD,
                format!(
                    "The configured maximum in-memory buffer size (in KB) exceeds the system limit for this \
                     parameter. The system limit is {MAX_IN_MEMORY_BUFFER_LIMIT_KB} KB."
                ),
            );
        }
        n.unsigned_abs()
    }

    fn status_codes(&mut self) -> StatusCodes {
        let wrong_type = "must be an object with retry, reject and delivered lists";
        match self.get::<Map<String, Value>>(status_codes::FIELD, wrong_type) {
            Some(lists) => StatusCodes::parse(&lists, &mut self.errors),
            None => StatusCodes::default(),
        }
    }

    fn payload_content_type(&mut self) -> PayloadContentType {
        let text = self.get::<String>("payloadContentType", "must be a string").unwrap_or_default();
        match text.as_str() {
            "" | "BINARY" => PayloadContentType::Binary,
            "JSON" => PayloadContentType::Json,
            "TEXT" => PayloadContentType::Text,
            _ => {
                self.error("payloadContentType", "Invalid payload content type. Allowed values: JSON, TEXT, BINARY");
                PayloadContentType::Binary
            }
        }
    }
}
