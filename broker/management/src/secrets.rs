//! Secrets in integration configurations are write-only: what the REST API returns has every
//! secret value replaced by [`MASK`], and a save that sends [`MASK`] back keeps the stored value.
//!
//! The plane does not interpret configurations; which values are secret comes from the JSON
//! Schema the type's driver declares (announced by executors): a property whose schema has
//! `"x-secret": true` or `"writeOnly": true`, found through `properties`, `patternProperties`,
//! `additionalProperties`, `items` and the alternatives of `oneOf`/`anyOf`/`allOf` (a value is
//! secret when any alternative says so). Without a schema for the type, nothing is masked.

use regex::Regex;
use serde_json::Value;

/// What a secret value reads as.
pub const MASK: &str = "******";

/// Whether `schema` marks its value secret.
fn is_secret(schema: &Value) -> bool {
    let flag = |name: &str| schema.get(name).and_then(Value::as_bool) == Some(true);
    flag("x-secret") || flag("writeOnly")
}

/// The schemas that apply to `schema`'s property `key`: from `properties`, matching
/// `patternProperties`, else `additionalProperties`, in `schema` and its alternatives.
fn property_schemas<'s>(schema: &'s Value, key: &str, out: &mut Vec<&'s Value>) {
    let before = out.len();
    if let Some(p) = schema.get("properties").and_then(|p| p.get(key)) {
        out.push(p);
    }
    if let Some(patterns) = schema.get("patternProperties").and_then(Value::as_object) {
        for (pattern, p) in patterns {
            if Regex::new(pattern).is_ok_and(|r| r.is_match(key)) {
                out.push(p);
            }
        }
    }
    if out.len() == before {
        if let Some(p) = schema.get("additionalProperties").filter(|p| p.is_object()) {
            out.push(p);
        }
    }
    for alternatives in ["oneOf", "anyOf", "allOf"] {
        for alt in schema.get(alternatives).and_then(Value::as_array).into_iter().flatten() {
            property_schemas(alt, key, out);
        }
    }
}

/// The schemas of `schema`'s array items, in `schema` and its alternatives.
fn item_schemas<'s>(schema: &'s Value, out: &mut Vec<&'s Value>) {
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        out.push(items);
    }
    for alternatives in ["oneOf", "anyOf", "allOf"] {
        for alt in schema.get(alternatives).and_then(Value::as_array).into_iter().flatten() {
            item_schemas(alt, out);
        }
    }
}

/// Replaces every secret value of `value` (described by `schemas`) with [`MASK`]; empty strings
/// and nulls stay as they are, so "not set" still reads as not set.
pub fn mask(value: &mut Value, schema: &Value) {
    mask_with(value, &[schema]);
}

fn mask_with(value: &mut Value, schemas: &[&Value]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let mut subs = Vec::new();
                for s in schemas {
                    property_schemas(s, key, &mut subs);
                }
                if subs.iter().any(|s| is_secret(s)) {
                    if !(v.is_null() || v.as_str() == Some("")) {
                        *v = Value::String(MASK.into());
                    }
                } else if !subs.is_empty() {
                    mask_with(v, &subs);
                }
            }
        }
        Value::Array(items) => {
            let mut subs = Vec::new();
            for s in schemas {
                item_schemas(s, &mut subs);
            }
            if !subs.is_empty() {
                for item in items {
                    mask_with(item, &subs);
                }
            }
        }
        _ => {}
    }
}

/// Puts back the stored value wherever `incoming` holds [`MASK`] at a secret place (by
/// `schema`) where `stored` has a value: a client that read a masked configuration and sends it
/// back keeps the secrets. A mask with nothing stored at its place stays as it is.
pub fn unmask(incoming: &mut Value, stored: &Value, schema: &Value) {
    unmask_with(incoming, stored, &[schema]);
}

fn unmask_with(incoming: &mut Value, stored: &Value, schemas: &[&Value]) {
    match (incoming, stored) {
        (Value::Object(map), Value::Object(old)) => {
            for (key, v) in map.iter_mut() {
                let Some(o) = old.get(key) else { continue };
                let mut subs = Vec::new();
                for s in schemas {
                    property_schemas(s, key, &mut subs);
                }
                if subs.iter().any(|s| is_secret(s)) {
                    if v.as_str() == Some(MASK) {
                        *v = o.clone();
                    }
                } else if !subs.is_empty() {
                    unmask_with(v, o, &subs);
                }
            }
        }
        (Value::Array(items), Value::Array(old)) => {
            let mut subs = Vec::new();
            for s in schemas {
                item_schemas(s, &mut subs);
            }
            if !subs.is_empty() {
                for (v, o) in items.iter_mut().zip(old) {
                    unmask_with(v, o, &subs);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
