//! The `clientConfiguration` of a KAFKA integration: TBMQ's field names, defaults and
//! validation messages, parsed into the checked [`KafkaConfig`].
//!
//! Parsing reads the JSON object field by field so that every problem becomes its own
//! [`FieldError`]; unknown fields are ignored, as TBMQ's UI sends extra ones. The librdkafka
//! side of validation (does librdkafka accept the resulting properties) lives in
//! [`crate::properties`], and the key template in [`crate::key`].

use trib_plugin_api::{
    driver::FieldError,
    support::fields::{self, Fields},
};

use crate::{charset::Charset, key::KeyTemplate};

/// A checked configuration; only [`KafkaConfig::parse`] builds one.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrapServers`: comma-separated `host:port` list, passed to librdkafka as is.
    pub bootstrap_servers: String,
    /// `topic`: the one topic every record goes to.
    pub topic: String,
    /// `key`: the record key template; `None` (absent or empty) sends records without a key.
    pub key: Option<KeyTemplate>,
    /// `clientIdPrefix`: prefix of the producer's `client.id`.
    pub client_id_prefix: String,
    /// `retries`: librdkafka `retries`.
    pub retries: i64,
    /// `batchSize`: librdkafka `batch.size` in bytes.
    pub batch_size: i64,
    /// `linger`: librdkafka `linger.ms`.
    pub linger_ms: i64,
    /// `bufferMemory`: bytes of the producer queue, mapped to `queue.buffering.max.kbytes`.
    pub buffer_memory: i64,
    /// `acks`: `0`, `1`, `-1` or `all`.
    pub acks: String,
    /// `compression`: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: String,
    /// `otherProperties` in their JSON order, names and values as the user wrote them.
    pub other_properties: Vec<(String, String)>,
    /// `kafkaHeaders` in their JSON order.
    pub headers: Vec<(String, String)>,
    /// `kafkaHeadersCharset`.
    pub headers_charset: Charset,
    /// `sendOnlyMsgPayload`: the payload alone instead of the JSON envelope.
    pub send_only_msg_payload: bool,
}

/// Default of `clientIdPrefix` (also used when it is empty).
pub fn default_client_id_prefix() -> &'static str {
    "tbmq-ie-kafka-producer"
}
/// Default of `batchSize` (also used when it is 0).
pub fn default_batch_size() -> i64 {
    16384
}
/// Default of `bufferMemory` (also used when it is 0).
pub fn default_buffer_memory() -> i64 {
    33_554_432
}
/// Default of `acks` when absent or null; TBMQ has none and fails validation (a quirk).
pub fn default_acks() -> &'static str {
    "-1"
}
/// Default of `compression` when absent or null; TBMQ has none and fails validation (a quirk).
pub fn default_compression() -> &'static str {
    "none"
}

const ACKS: [&str; 4] = ["0", "1", "-1", "all"];
const COMPRESSIONS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const SSL_MISSING_PROTOCOL: &str = "Detected SSL-related configurations, but 'security.protocol' is missing. \
The default protocol is 'PLAINTEXT'. Please ensure 'security.protocol' is set correctly";

impl KafkaConfig {
    /// Parses and checks a `clientConfiguration` JSON text (without asking librdkafka).
    pub fn parse(json: &str) -> Result<KafkaConfig, Vec<FieldError>> {
        let root = fields::object(json)?;
        let mut f = Fields::new(&root);
        let bootstrap_servers = f.string("bootstrapServers").unwrap_or_default();
        if !f.failed("bootstrapServers") {
            check_bootstrap_servers(&bootstrap_servers, &mut f);
        }
        let topic = f.string("topic").unwrap_or_default();
        if topic.is_empty() && !f.failed("topic") {
            f.error("topic", "Topic is required");
        }
        let key = f.string("key").filter(|k| !k.is_empty());
        let key = key.and_then(|k| KeyTemplate::parse(&k).map_err(|e| f.error("key", format!("Key: {e}"))).ok());
        let client_id_prefix = f.string("clientIdPrefix").filter(|p| !p.is_empty());
        let retries = non_negative(&mut f, "retries", "Retries", 0);
        let batch_size = non_negative(&mut f, "batchSize", "Batch size", 0);
        let linger_ms = non_negative(&mut f, "linger", "Linger ms", 0);
        let buffer_memory = non_negative(&mut f, "bufferMemory", "Buffer memory", 0);
        let acks = f.string("acks").unwrap_or_else(|| default_acks().to_string());
        if !ACKS.contains(&acks.as_str()) {
            f.error("acks", "Invalid acks value");
        }
        let compression = f.string("compression").unwrap_or_else(|| default_compression().to_string());
        if !COMPRESSIONS.contains(&compression.as_str()) {
            f.error("compression", "Invalid compression type");
        }
        let other_properties = f.string_map("otherProperties");
        let ssl_present = other_properties.iter().any(|(k, _)| k.contains("ssl."));
        if ssl_present && !other_properties.iter().any(|(k, _)| k == "security.protocol") {
            f.error("otherProperties", SSL_MISSING_PROTOCOL);
        }
        let headers = f.string_map("kafkaHeaders");
        let charset_name = f.string("kafkaHeadersCharset").filter(|c| !c.is_empty()).unwrap_or_else(|| "UTF-8".into());
        let headers_charset = Charset::from_name(&charset_name).unwrap_or_else(|| {
            let message = format!("Unsupported charset: {charset_name}. Supported: {}", crate::charset::SUPPORTED);
            f.error("kafkaHeadersCharset", message);
            Charset::Utf8
        });
        let send_only_msg_payload = f.boolean("sendOnlyMsgPayload");
        // keySerializer / valueSerializer are Java class names; records are bytes here.
        f.string("keySerializer");
        f.string("valueSerializer");
        f.finish(KafkaConfig {
            bootstrap_servers,
            topic,
            key,
            client_id_prefix: client_id_prefix.unwrap_or_else(|| default_client_id_prefix().to_string()),
            retries,
            batch_size: if batch_size == 0 { default_batch_size() } else { batch_size },
            linger_ms,
            buffer_memory: if buffer_memory == 0 { default_buffer_memory() } else { buffer_memory },
            acks,
            compression,
            other_properties,
            headers,
            headers_charset,
            send_only_msg_payload,
        })
    }

    /// The producer's `client.id`: `<clientIdPrefix>-<integrationId>-<serviceId>`, as in TBMQ.
    pub fn client_id(&self, integration_id: &str, service_id: &str) -> String {
        format!("{}-{integration_id}-{service_id}", self.client_id_prefix)
    }
}

/// TBMQ's bootstrap check: not empty, and each comma-separated entry is `host:port` with a port
/// in 1..=65535. Beyond TBMQ, a bracketed IPv6 host (`[::1]:9092`) is accepted.
fn check_bootstrap_servers(servers: &str, f: &mut Fields<'_>) {
    if servers.is_empty() {
        f.error("bootstrapServers", "Bootstrap servers cannot be empty");
        return;
    }
    // Java's String.split drops trailing empty entries, so "a:1," passes in TBMQ too.
    let entries: Vec<&str> = servers.trim_end_matches(',').split(',').collect();
    if let Some(bad) = entries.iter().find(|s| !is_host_port(s.trim())) {
        f.error("bootstrapServers", format!("Invalid bootstrap server format: {bad}"));
    }
}

fn is_host_port(server: &str) -> bool {
    let (host, port) = match server.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some((host, port)) => (host, port),
            None => return false,
        },
        None => match server.split(':').collect::<Vec<_>>()[..] {
            [host, port] => (host, port),
            _ => return false,
        },
    };
    !host.trim().is_empty() && matches!(port.trim().parse::<i32>(), Ok(1..=65535))
}

/// An integer field that must not be negative nor exceed a Java `int`; absent, null or invalid
/// gives `default`.
fn non_negative(f: &mut Fields<'_>, field: &str, label: &str, default: i64) -> i64 {
    match f.integer_opt(field) {
        Some(v) if v < 0 => f.error(field, format!("{label} must not be less than 0")),
        Some(v) if v > i64::from(i32::MAX) => f.error(field, format!("{label} must not exceed {}", i32::MAX)),
        Some(v) => return v,
        None => {}
    }
    default
}
