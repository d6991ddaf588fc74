//! Record keys with placeholders (`${topic}`, `${clientId}`): parsed once with the
//! configuration, rendered for each message by the request builder.

use trib_plugin_api::abi::Message;

/// A record key: literal text with optional `${topic}` (alias `${topicName}`) and `${clientId}`
/// placeholders, filled from each message. TBMQ only has a static key; a key without
/// placeholders behaves exactly like TBMQ's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<KeyPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyPart {
    Literal(String),
    Topic,
    ClientId,
}

/// The placeholders [`KeyTemplate`] knows, for error messages.
pub const KEY_PLACEHOLDERS: &str = "${clientId}, ${topic}, ${topicName}";

impl KeyTemplate {
    /// Parses a key; the error text follows TBMQ's template messages without the label.
    pub fn parse(text: &str) -> Result<KeyTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start + 2..].find('}') else {
                return Err(format!("unclosed placeholder in '{text}'"));
            };
            if start > 0 {
                parts.push(KeyPart::Literal(rest[..start].to_string()));
            }
            let name = rest[start + 2..start + 2 + len].trim();
            parts.push(match name {
                "topic" | "topicName" => KeyPart::Topic,
                "clientId" => KeyPart::ClientId,
                "" => return Err("empty placeholder '${}'".to_string()),
                other => return Err(format!("unknown placeholder '${{{other}}}'. Allowed: {KEY_PLACEHOLDERS}")),
            });
            rest = &rest[start + 2 + len + 1..];
        }
        if !rest.is_empty() {
            parts.push(KeyPart::Literal(rest.to_string()));
        }
        Ok(KeyTemplate { parts })
    }

    /// The key of `msg`; `None` when a placeholder's value is empty (as in TBMQ's templates,
    /// so that `dev-${clientId}` never becomes a bare `dev-`).
    pub fn render(&self, msg: &Message<'_>) -> Option<String> {
        let mut key = String::new();
        for part in &self.parts {
            let value = match part {
                KeyPart::Literal(text) => {
                    key.push_str(text);
                    continue;
                }
                KeyPart::Topic => msg.topic(),
                KeyPart::ClientId => msg.client_id(),
            };
            if value.is_empty() {
                return None;
            }
            key.push_str(value);
        }
        Some(key)
    }
}
