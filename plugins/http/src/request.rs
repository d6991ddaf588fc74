//! Pure: what is sent for a message (the body bytes and their default Content-Type, TBMQ §3.2)
//! and the fixed headers of every request. No IO here; [`crate::service`] sends it.

use base64::{engine::general_purpose::STANDARD, Engine};
use trib_plugin_api::{
    driver::Message,
    support::{
        credentials::Credentials,
        envelope::{EnvelopeContext, PayloadField},
    },
};

use crate::{
    config::{BodyOptions, PayloadContentType},
    error::Error,
};

/// Content-Type of the envelope and of a JSON payload.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content-Type of a TEXT payload sent alone (Spring's choice for a `String` body).
pub const CONTENT_TYPE_TEXT: &str = "text/plain;charset=UTF-8";
/// Content-Type of raw bytes.
pub const CONTENT_TYPE_BINARY: &str = "application/octet-stream";

/// A request body and the Content-Type it gets unless the configured headers name one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The bytes on the wire.
    pub bytes: Vec<u8>,
    /// The default Content-Type for these bytes.
    pub content_type: &'static str,
}

/// The body TBMQ sends for `msg`.
///
/// With `sendOnlyMsgPayload` the body is the payload alone: JSON re-serialized, TEXT as UTF-8
/// (lossy), BINARY raw. Otherwise it is the JSON envelope whose `payload` is the parsed JSON
/// value, the text, or base64. A JSON payload that does not parse falls back to the raw bytes (or
/// base64 in the envelope) with `sendBinaryOnParseFailure`, and is an error without it.
pub fn body(options: &BodyOptions, envelope: &EnvelopeContext, msg: &Message<'_>) -> Result<Body, Error> {
    let payload = msg.payload();
    let json = match options.payload_content_type {
        PayloadContentType::Json => match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(value) => Some(value),
            Err(_) if options.send_binary_on_parse_failure => None,
            Err(e) => return Err(Error::PayloadNotJson(e.to_string())),
        },
        _ => None,
    };
    if options.send_only_msg_payload {
        return Ok(match (options.payload_content_type, json) {
            (PayloadContentType::Json, Some(value)) => {
                Body { bytes: json_bytes(&value), content_type: CONTENT_TYPE_JSON }
            }
            (PayloadContentType::Text, _) => Body {
                bytes: String::from_utf8_lossy(payload).into_owned().into_bytes(),
                content_type: CONTENT_TYPE_TEXT,
            },
            _ => Body { bytes: payload.to_vec(), content_type: CONTENT_TYPE_BINARY },
        });
    }
    let text;
    let field = match (options.payload_content_type, &json) {
        (PayloadContentType::Json, Some(value)) => PayloadField::Json(value),
        (PayloadContentType::Text, _) => {
            text = String::from_utf8_lossy(payload);
            PayloadField::Text(&text)
        }
        _ => PayloadField::Base64(payload),
    };
    let mut bytes = Vec::with_capacity(256 + payload.len() * 4 / 3);
    envelope.write(msg, field, &mut bytes);
    Ok(Body { bytes, content_type: CONTENT_TYPE_JSON })
}

/// The headers of every request: the configured ones in order, then `Authorization: Basic ..`
/// for basic credentials (after them, as in TBMQ, so a configured `Authorization` is not replaced).
pub fn headers(configured: &[(String, String)], credentials: &Credentials) -> Vec<(String, String)> {
    let mut headers = configured.to_vec();
    if let Credentials::Basic { username, password } = credentials {
        let token = STANDARD.encode(format!("{username}:{password}"));
        headers.push(("Authorization".to_string(), format!("Basic {token}")));
    }
    headers
}

/// Whether `headers` already carry a Content-Type (names compare case-insensitively).
pub fn has_content_type(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
}

fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a serde_json::Value always serializes")
}
