//! librdkafka properties of the producer: the fields of [`KafkaConfig`] mapped to librdkafka
//! names, our delivery defaults, then `otherProperties` (which win), with Java client names
//! translated where librdkafka spells them differently. Also the librdkafka half of validation:
//! every property is offered to librdkafka, and then a producer is built without brokers.
//!
//! What is sent and how deliveries are sorted lives elsewhere ([`crate::request`], [`crate::retry`]).

use rdkafka::{
    config::ClientConfig,
    error::KafkaError,
    producer::{BaseProducer, DefaultProducerContext},
};
use trib_plugin_api::driver::FieldError;

use crate::config::KafkaConfig;

/// Default `message.timeout.ms`: TBMQ's pack-processing timeout, so librdkafka gives up on a
/// message at about the time the executor stops waiting for it. `otherProperties` may change it.
pub fn default_message_timeout_ms() -> u32 {
    30_000
}

/// One librdkafka property and the configuration field it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// librdkafka property name.
    pub key: String,
    /// Value as librdkafka expects it.
    pub value: String,
    /// JSON path of the field in `clientConfiguration` that produced it.
    pub field: String,
}

/// Groups of librdkafka names for one setting; a user property in a group replaces ours.
const ALIASES: [&[&str]; 8] = [
    &["bootstrap.servers", "metadata.broker.list"],
    &["retries", "message.send.max.retries"],
    &["acks", "request.required.acks"],
    &["compression.type", "compression.codec"],
    &["linger.ms", "queue.buffering.max.ms"],
    &["message.timeout.ms", "delivery.timeout.ms"],
    &["max.in.flight.requests.per.connection", "max.in.flight"],
    &["sasl.mechanism", "sasl.mechanisms"],
];

/// Java client property names whose value librdkafka takes under another name.
const RENAMED: [(&str, &str); 3] = [
    ("ssl.truststore.certificates", "ssl.ca.pem"),
    ("ssl.keystore.certificate.chain", "ssl.certificate.pem"),
    ("ssl.keystore.key", "ssl.key.pem"),
];

/// PEM properties in which a literal `\n` (backslash, n) becomes a newline, as in TBMQ.
const PEM_VALUES: [&str; 3] = ["ssl.ca.pem", "ssl.certificate.pem", "ssl.key.pem"];

/// The producer's properties, in the order they are applied; keys are unique.
pub fn producer_properties(config: &KafkaConfig, client_id: &str) -> Result<Vec<Property>, Vec<FieldError>> {
    let kbytes = (config.buffer_memory + 1023) / 1024;
    let mut props: Vec<Property> = [
        ("bootstrap.servers", config.bootstrap_servers.clone(), "bootstrapServers"),
        ("client.id", client_id.to_string(), "clientIdPrefix"),
        ("retries", config.retries.to_string(), "retries"),
        ("batch.size", config.batch_size.to_string(), "batchSize"),
        ("linger.ms", config.linger_ms.to_string(), "linger"),
        ("queue.buffering.max.kbytes", kbytes.max(1).to_string(), "bufferMemory"),
        ("acks", config.acks.clone(), "acks"),
        ("compression.type", config.compression.clone(), "compression"),
        ("message.timeout.ms", default_message_timeout_ms().to_string(), "otherProperties"),
    ]
    .into_iter()
    .map(|(key, value, field)| Property { key: key.into(), value, field: field.into() })
    .collect();
    let mut errors = Vec::new();
    for (name, value) in &config.other_properties {
        let field = format!("otherProperties.{name}");
        match translate(name, value, &config.other_properties) {
            Ok(translated) => translated.into_iter().for_each(|(k, v)| set(&mut props, k, v, &field)),
            Err(message) => errors.push(FieldError::new(field, message)),
        }
    }
    add_ordering(&mut props);
    if errors.is_empty() {
        Ok(props)
    } else {
        Err(errors)
    }
}

/// Checks that librdkafka accepts the configuration: each property on its own (so that every bad
/// one is named), then a whole producer built without `bootstrap.servers` (which catches
/// combinations, e.g. idempotence with `acks=1`, and unreadable PEM material) and never connects.
pub fn check(config: &KafkaConfig) -> Vec<FieldError> {
    let props = match producer_properties(config, "validation") {
        Ok(props) => props,
        Err(errors) => return errors,
    };
    let errors: Vec<FieldError> = props
        .iter()
        .filter_map(|p| {
            let mut single = ClientConfig::new();
            single.set(&p.key, &p.value);
            single.create_native_config().err().map(|e| FieldError::new(p.field.as_str(), describe(&e)))
        })
        .collect();
    if !errors.is_empty() {
        return errors;
    }
    let mut client = client_config(&props);
    client.remove("bootstrap.servers").remove("metadata.broker.list");
    match client.create::<BaseProducer<DefaultProducerContext>>() {
        Ok(_) => Vec::new(),
        Err(e) => {
            let field = if config.other_properties.is_empty() { "" } else { "otherProperties" };
            vec![FieldError::new(field, describe(&e))]
        }
    }
}

/// An rdkafka configuration holding `props`.
pub fn client_config(props: &[Property]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for p in props {
        config.set(&p.key, &p.value);
    }
    config
}

/// librdkafka's own words for a configuration or creation error.
pub fn describe(error: &KafkaError) -> String {
    match error {
        KafkaError::ClientConfig(_, description, _, _) if description.starts_with("No such configuration property") => {
            format!("{description} (otherProperties take librdkafka property names; see the driver README)")
        }
        KafkaError::ClientConfig(_, description, _, _) => description.clone(),
        KafkaError::ClientCreation(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Sets `key`, replacing an earlier value of the same key or of one of its aliases.
fn set(props: &mut Vec<Property>, key: String, value: String, field: &str) {
    let group: &[&str] = ALIASES.iter().copied().find(|g| g.contains(&key.as_str())).unwrap_or(&[]);
    props.retain(|p| p.key != key && !group.contains(&p.key.as_str()));
    props.push(Property { key, value, field: field.to_string() });
}

/// One `otherProperties` entry as zero or more librdkafka properties.
fn translate(name: &str, value: &str, all: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let key = RENAMED.iter().find(|(java, _)| *java == name).map_or(name, |(_, native)| native);
    let value = if PEM_VALUES.contains(&key) { value.replace("\\n", "\n") } else { value.to_string() };
    match key {
        // librdkafka tells PEM from PKCS#12 by the property used, so the Java store types are
        // only checked, never passed on.
        "ssl.keystore.type" | "ssl.truststore.type" => match value.to_ascii_uppercase().as_str() {
            "PEM" | "PKCS12" => Ok(Vec::new()),
            _ => Err(format!(
                "store type '{value}' is not supported by librdkafka; use PEM (or PKCS12 for the keystore)"
            )),
        },
        // The Java client disables host name checks with an empty value.
        "ssl.endpoint.identification.algorithm" if value.is_empty() => Ok(vec![(key.into(), "none".into())]),
        "sasl.jaas.config" => jaas_credentials(&value, all),
        _ => Ok(vec![(key.to_string(), value)]),
    }
}

/// Username and password of a Java PLAIN or SCRAM JAAS line, as librdkafka's `sasl.username`
/// and `sasl.password` (explicit `sasl.username` / `sasl.password` entries win).
fn jaas_credentials(jaas: &str, all: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    if !(jaas.contains("PlainLoginModule") || jaas.contains("ScramLoginModule")) {
        return Err("only PlainLoginModule and ScramLoginModule JAAS lines are supported; \
                    set sasl.username and sasl.password instead"
            .to_string());
    }
    let explicit = |k: &str| all.iter().any(|(name, _)| name == k);
    let mut out = Vec::new();
    for option in ["username", "password"] {
        let native = format!("sasl.{option}");
        if explicit(&native) {
            continue;
        }
        match jaas_option(jaas, option) {
            Some(v) => out.push((native, v)),
            None => return Err(format!("the JAAS line has no {option}=\"...\" option")),
        }
    }
    Ok(out)
}

fn jaas_option(jaas: &str, option: &str) -> Option<String> {
    let pattern = format!("{option}=\"");
    let mut search = jaas;
    while let Some(at) = search.find(&pattern) {
        let before = search[..at].chars().next_back();
        let rest = &search[at + pattern.len()..];
        if before.is_none_or(|c| c.is_whitespace()) {
            return rest.find('"').map(|end| rest[..end].to_string());
        }
        search = rest;
    }
    None
}

/// Keeps records in order within a partition without clashing with `acks`: with internal
/// retries, idempotence when `acks` is all (librdkafka requires that), one request in flight
/// otherwise. Without retries order is kept anyway. Explicit user settings are left alone.
fn add_ordering(props: &mut Vec<Property>) {
    let get = |props: &[Property], keys: &[&str]| {
        props.iter().find(|p| keys.contains(&p.key.as_str())).map(|p| p.value.clone())
    };
    let user_set = get(props, &["enable.idempotence", "max.in.flight.requests.per.connection", "max.in.flight"]);
    let retries = get(props, ALIASES[1]).and_then(|r| r.parse::<i64>().ok()).unwrap_or(0);
    if user_set.is_some() || retries == 0 {
        return;
    }
    let acks_all = matches!(get(props, ALIASES[2]).as_deref(), Some("-1" | "all"));
    let (key, value) =
        if acks_all { ("enable.idempotence", "true") } else { ("max.in.flight.requests.per.connection", "1") };
    props.push(Property { key: key.into(), value: value.into(), field: "retries".into() });
}
