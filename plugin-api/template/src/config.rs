//! The `clientConfiguration` of a `TEMPLATE` integration, parsed into the checked
//! [`TemplateConfig`] that the rest of the driver uses. Every problem is reported at once, named
//! by its field; unknown fields are ignored (TBMQ's UI sends extra ones).

use std::path::{Path, PathBuf};

use trib_plugin_api::{
    driver::FieldError,
    support::fields::{object, Fields},
};

/// How the MQTT payload appears in the line's `payload` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// Standard base64 (the default; any payload).
    Base64,
    /// The payload as a string; invalid UTF-8 becomes U+FFFD.
    Text,
    /// The payload parsed as JSON and embedded as a value; a payload that is not JSON is rejected.
    Json,
}

impl PayloadFormat {
    /// Reads a `payloadFormat` value.
    pub fn parse(name: &str) -> Option<PayloadFormat> {
        match name {
            "BASE64" => Some(PayloadFormat::Base64),
            "TEXT" => Some(PayloadFormat::Text),
            "JSON" => Some(PayloadFormat::Json),
            _ => None,
        }
    }
}

/// `payloadFormat` when absent.
pub fn default_payload_format() -> PayloadFormat {
    PayloadFormat::Base64
}

/// A checked `clientConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateConfig {
    /// `path`: the file lines are appended to (absolute; created when missing).
    pub path: PathBuf,
    /// `payloadFormat`.
    pub payload_format: PayloadFormat,
    /// `syncEveryBatch`: flush every batch to disk (fsync) before reporting it delivered.
    pub sync_every_batch: bool,
}

impl TemplateConfig {
    /// Parses and checks a `clientConfiguration` JSON text.
    pub fn parse(text: &str) -> Result<TemplateConfig, Vec<FieldError>> {
        let obj = object(text)?;
        let mut f = Fields::new(&obj);
        let path = f.strict_string("path").unwrap_or_default();
        if !f.failed("path") {
            if let Some(problem) = path_problem(&path) {
                f.error("path", problem);
            }
        }
        let payload_format = match f.string("payloadFormat") {
            None => default_payload_format(),
            Some(name) => PayloadFormat::parse(&name).unwrap_or_else(|| {
                f.error("payloadFormat", "Invalid payload format. Allowed values: BASE64, TEXT, JSON");
                default_payload_format()
            }),
        };
        let sync_every_batch = f.boolean("syncEveryBatch");
        f.finish(TemplateConfig { path: PathBuf::from(path), payload_format, sync_every_batch })
    }
}

/// Field errors of a `clientConfiguration` JSON text (empty = valid).
pub fn validate(text: &str) -> Vec<FieldError> {
    TemplateConfig::parse(text).err().unwrap_or_default()
}

/// What is wrong with a `path` value, if anything.
fn path_problem(path: &str) -> Option<&'static str> {
    if path.trim().is_empty() {
        Some("File path is required")
    } else if path.contains('\0') {
        Some("File path must not contain NUL characters")
    } else if !Path::new(path).is_absolute() {
        Some("File path must be absolute")
    } else if path.ends_with('/') {
        Some("File path must name a file, not a directory")
    } else {
        None
    }
}
