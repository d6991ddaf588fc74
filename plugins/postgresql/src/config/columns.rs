//! The `columns` field: which table column gets which part of a message.
//!
//! `columns` is an object from column name to a mapping object, in the order the columns are
//! written: `{"time": {"source": "ts"}, "temperature": {"source": "jsonPath", "path":
//! "$.temperature"}}`. A mapping has a `source` and, depending on it, a `path`, a `key` or a
//! `value`; any other field, or a parameter the source does not use, is an error, because a typo
//! there would silently write NULLs. How a source's value becomes a column value is
//! [`crate::request`]'s business.

use serde_json::{Map, Value};
use trib_plugin_api::support::fields::Fields;

use super::names;

/// One mapped column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMapping {
    /// The column's exact name (quoted in SQL, so case-sensitive).
    pub column: String,
    /// Where its value comes from.
    pub source: Source,
}

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The MQTT topic.
    Topic,
    /// The publisher's client id.
    ClientId,
    /// The broker timestamp (epoch milliseconds): a `timestamptz`/`timestamp`, or a `bigint`.
    Ts,
    /// The publisher's QoS.
    Qos,
    /// The retain flag.
    Retain,
    /// The payload, which must be JSON, stored as is (`jsonb`, `json` or `text`).
    PayloadJson,
    /// The payload as UTF-8 text (invalid bytes become U+FFFD).
    PayloadText,
    /// The payload bytes (`bytea`).
    PayloadBytes,
    /// A value inside the JSON payload.
    JsonPath(JsonPath),
    /// A key of the integration's metadata map (`integrationName` and the configured metadata).
    Metadata(String),
    /// An MQTT 5 user property (the last value of a repeated key).
    UserProperty(String),
    /// The same value in every row.
    Constant(Value),
    /// A deterministic key of the message: the first 16 bytes of SHA-256 over its client id,
    /// topic, broker timestamp and payload (see [`crate::request::key`]).
    MessageKey,
}

/// The names of the sources, as written in `source`.
pub const SOURCES: [&str; 13] = [
    "topic",
    "clientId",
    "ts",
    "qos",
    "retain",
    "payloadJson",
    "payloadText",
    "payloadBytes",
    "jsonPath",
    "metadata",
    "userProperty",
    "constant",
    "messageKey",
];

/// A parsed JSON path: `$` (or `payload`) followed by `.name`, `['name']` and `[index]` steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    /// The path as written.
    pub text: String,
    /// The steps from the payload's root.
    pub steps: Vec<Step>,
}

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Reads `columns` from `f`; errors are recorded under `columns` or `columns.<name>.<field>`.
pub fn read(f: &mut Fields<'_>) -> Vec<ColumnMapping> {
    let map = match f.raw("columns") {
        None => {
            f.error("columns", "At least one column mapping is required");
            return Vec::new();
        }
        Some(Value::Object(map)) if map.is_empty() => {
            f.error("columns", "At least one column mapping is required");
            return Vec::new();
        }
        Some(Value::Object(map)) => map,
        Some(_) => {
            f.error("columns", "must be an object of column names to mappings");
            return Vec::new();
        }
    };
    let mut mappings = Vec::with_capacity(map.len());
    for (column, mapping) in map {
        let at = format!("columns.{column}");
        if let Err(message) = names::check_identifier(column) {
            f.error(at.clone(), format!("Column name: {message}"));
        }
        match mapping {
            Value::Object(mapping) => match source(mapping, &at, f) {
                Some(source) => mappings.push(ColumnMapping { column: column.clone(), source }),
                None => continue,
            },
            _ => f.error(at, "must be an object with a source, e.g. {\"source\": \"topic\"}"),
        }
    }
    mappings
}

/// The source of one mapping object, or `None` after recording why not.
fn source(mapping: &Map<String, Value>, at: &str, f: &mut Fields<'_>) -> Option<Source> {
    let errors_before = f.error_count();
    for key in mapping.keys().filter(|k| !["source", "path", "key", "value"].contains(&k.as_str())) {
        f.error(format!("{at}.{key}"), "Unknown field; a column mapping has source, path, key and value");
    }
    let text = |name: &str, f: &mut Fields<'_>| -> Option<String> {
        match mapping.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                f.error(format!("{at}.{name}"), "must be a string");
                None
            }
        }
    };
    let name = text("source", f);
    let path = text("path", f);
    let key = text("key", f);
    let value = mapping.get("value").filter(|v| !v.is_null());
    let source = match name.as_deref() {
        None => {
            if !f.failed(&format!("{at}.source")) {
                f.error(format!("{at}.source"), format!("Source is required; one of {}", SOURCES.join(", ")));
            }
            return None;
        }
        Some("topic") => Source::Topic,
        Some("clientId") => Source::ClientId,
        Some("ts") => Source::Ts,
        Some("qos") => Source::Qos,
        Some("retain") => Source::Retain,
        Some("payloadJson") => Source::PayloadJson,
        Some("payloadText") => Source::PayloadText,
        Some("payloadBytes") => Source::PayloadBytes,
        Some("messageKey") => Source::MessageKey,
        Some("jsonPath") => match path.as_deref().map(JsonPath::parse) {
            None => {
                f.error(format!("{at}.path"), "JSON path is required for source jsonPath, e.g. $.temperature");
                return None;
            }
            Some(Err(message)) => {
                f.error(format!("{at}.path"), format!("Invalid JSON path: {message}"));
                return None;
            }
            Some(Ok(path)) => Source::JsonPath(path),
        },
        Some(which @ ("metadata" | "userProperty")) => match key.as_deref().filter(|k| !k.is_empty()) {
            None => {
                f.error(format!("{at}.key"), format!("Key is required for source {which}"));
                return None;
            }
            Some(k) if which == "metadata" => Source::Metadata(k.to_string()),
            Some(k) => Source::UserProperty(k.to_string()),
        },
        Some("constant") => match value {
            None => {
                f.error(
                    format!("{at}.value"),
                    "Value is required for source constant (leave a column unmapped for NULL)",
                );
                return None;
            }
            Some(v) => Source::Constant(v.clone()),
        },
        Some(other) => {
            f.error(format!("{at}.source"), format!("Unknown source {other}; one of {}", SOURCES.join(", ")));
            return None;
        }
    };
    let uses = |param: &str| match param {
        "path" => matches!(source, Source::JsonPath(_)),
        "key" => matches!(source, Source::Metadata(_) | Source::UserProperty(_)),
        _ => matches!(source, Source::Constant(_)),
    };
    for (param, given) in [("path", path.is_some()), ("key", key.is_some()), ("value", value.is_some())] {
        if given && !uses(param) {
            f.error(format!("{at}.{param}"), format!("Not used by source {}", name.as_deref().unwrap_or_default()));
        }
    }
    (f.error_count() == errors_before).then_some(source)
}

impl JsonPath {
    /// Parses `$.a.b[0]`, `$['a b']`, `payload.a` (the same as `$.a`) or `$` (the whole payload).
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let rest = if let Some(rest) = text.strip_prefix('$') {
            rest
        } else if let Some(rest) = text.strip_prefix("payload").filter(|r| r.is_empty() || r.starts_with(['.', '['])) {
            rest
        } else {
            return Err("must start with $ or payload, e.g. $.temperature".to_string());
        };
        let offset = text.len() - rest.len();
        let chars: Vec<(usize, char)> = rest.char_indices().map(|(i, c)| (i + offset, c)).collect();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let (at, c) = chars[i];
            match c {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && !matches!(chars[end].1, '.' | '[') {
                        end += 1;
                    }
                    let name: String = chars[start..end].iter().map(|(_, c)| c).collect();
                    if name.is_empty() {
                        return Err(format!("empty name after '.' at position {at}"));
                    }
                    if name == "*" {
                        return Err("wildcards are not supported".to_string());
                    }
                    steps.push(Step::Key(name));
                    i = end;
                }
                '[' => {
                    let (step, next) = bracket(&chars, i)?;
                    steps.push(step);
                    i = next;
                }
                other => return Err(format!("unexpected '{other}' at position {at}; expected . or [")),
            }
        }
        Ok(JsonPath { text: text.to_string(), steps })
    }
}

/// Parses the bracket step starting at `chars[open]` (`[3]`, `['a']` or `["a"]`); returns the
/// step and the index after its `]`.
fn bracket(chars: &[(usize, char)], open: usize) -> Result<(Step, usize), String> {
    let at = chars[open].0;
    let unclosed = || format!("unclosed [ at position {at}");
    let mut i = open + 1;
    let quote = match chars.get(i) {
        Some((_, q @ ('\'' | '"'))) => *q,
        Some(_) => {
            let start = i;
            while i < chars.len() && chars[i].1 != ']' {
                i += 1;
            }
            if i == chars.len() {
                return Err(unclosed());
            }
            let digits: String = chars[start..i].iter().map(|(_, c)| c).collect();
            return match digits.trim().parse::<usize>() {
                Ok(index) => Ok((Step::Index(index), i + 1)),
                Err(_) if digits.trim() == "*" => Err("wildcards are not supported".to_string()),
                Err(_) => Err(format!("[{digits}] at position {at} is neither an index nor a quoted name")),
            };
        }
        None => return Err(unclosed()),
    };
    i += 1;
    let mut name = String::new();
    loop {
        match chars.get(i).map(|(_, c)| *c) {
            None => return Err(unclosed()),
            Some('\\') => {
                match chars.get(i + 1) {
                    Some((_, c)) => name.push(*c),
                    None => return Err(unclosed()),
                }
                i += 2;
            }
            Some(c) if c == quote => break,
            Some(c) => {
                name.push(c);
                i += 1;
            }
        }
    }
    match chars.get(i + 1) {
        Some((_, ']')) => Ok((Step::Key(name), i + 2)),
        _ => Err(unclosed()),
    }
}
