//! Configuration schemas (the conventions are in the "Configuration schema" section of
//! [`crate::driver`]): reading one, checking it, and what a host or a test takes out of one,
//! namely the example configuration its defaults and examples make and where its secrets are.
//!
//! Not here: validating a configuration against a schema. The driver's own `validate` judges a
//! configuration; [`check`] makes sure the schema tells the same story.
//!
//! ```
//! use serde_json::{json, Value};
//! use trib_plugin_api::{driver::FieldError, support::schema};
//!
//! let text = r#"{"type": "object", "required": ["host"], "properties": {
//!     "host": {"type": "string", "title": "Host", "description": "Target host.", "examples": ["localhost"]},
//!     "password": {"type": "string", "title": "Password", "description": "Login password.",
//!                  "default": "", "writeOnly": true, "x-secret": true}}}"#;
//! let schema = schema::parse(text).unwrap();
//! assert_eq!(schema::secret_paths(&schema), vec![vec!["password".to_string()]]);
//! assert_eq!(Value::Object(schema::example(&schema)), json!({"host": "localhost", "password": ""}));
//!
//! // A driver's validate that agrees with the schema: host is needed, both fields are strings.
//! let validate = |config: &str| {
//!     let config: Value = serde_json::from_str(config).unwrap();
//!     let mut errors = Vec::new();
//!     if !config["host"].is_string() {
//!         errors.push(FieldError::new("host", "must be a string"));
//!     }
//!     if !(config["password"].is_null() || config["password"].is_string()) {
//!         errors.push(FieldError::new("password", "must be a string"));
//!     }
//!     errors
//! };
//! assert_eq!(schema::check(&schema, validate), Vec::<String>::new());
//! ```

use serde_json::{Map, Value};

use crate::driver::FieldError;

/// The `$schema` URI of JSON Schema draft 2020-12, the dialect schemas are written in.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The keywords of the subset. The keys inside `properties` are field names, not keywords.
pub const KEYWORDS: [&str; 16] = [
    "$schema",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "default",
    "examples",
    "enum",
    "const",
    "minimum",
    "maximum",
    "oneOf",
    "writeOnly",
    "x-secret",
];

/// Also in the subset: `patternProperties` on a map (an object with `additionalProperties`),
/// whose values are the schemas of the keys matching each pattern (a regular expression in the
/// common subset of ECMA-262 and Rust's `regex`, matched case-sensitively). It is how a map with
/// free keys marks some keys secret (the HTTP driver's `Authorization` header, in any case).
pub const PATTERN_PROPERTIES: &str = "patternProperties";

/// The values of `type`.
const TYPES: [&str; 6] = ["string", "integer", "number", "boolean", "object", "array"];

/// Parses a configuration schema: JSON text whose root is an object schema (`"type": "object"`
/// with a `properties` object). The error is one line.
pub fn parse(text: &str) -> Result<Value, String> {
    let schema: Value =
        serde_json::from_str(text).map_err(|e| format!("configuration schema is not valid JSON: {e}"))?;
    match root_problem(&schema) {
        Some(problem) => Err(problem.to_string()),
        None => Ok(schema),
    }
}

/// The configuration the schema calls typical: every top-level property's `default`, or else its
/// first `examples` entry. Properties with neither are left out.
pub fn example(schema: &Value) -> Map<String, Value> {
    properties(schema)
        .filter_map(|(name, property)| {
            let value = property.get("default").or_else(|| property.get("examples").and_then(|e| e.get(0)))?;
            Some((name.clone(), value.clone()))
        })
        .collect()
}

/// Where the secrets are: the path (field names from the root, e.g. `["credentials",
/// "password"]`) of every property marked `"x-secret": true`, in schema order, each once. Looks
/// through `properties` at every depth and through the branches of `oneOf`.
pub fn secret_paths(schema: &Value) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    collect_secrets(schema, &mut Vec::new(), &mut paths);
    paths
}

/// Checks `schema` against the conventions and against the driver's `validate`; returns one line
/// per problem, so that a test can assert an empty list and show every problem at once.
///
/// The conventions: only the keywords of [`KEYWORDS`]; a `title`, `description` and `type` on
/// every property; `writeOnly` and `x-secret` together; `default`, `examples`, `enum` and
/// `const` values of the declared type, inside `enum` and the bounds; `required` names that
/// exist; `oneOf` branches with a titled `type` discriminator; `examples` on every top-level
/// property without a default.
///
/// Then `validate`, with the [`example`] configuration as the base, must:
/// * accept the example configuration itself, and refuse it without a `required` field, with an
///   error on that field,
/// * accept every `enum` value of a top-level property, and its `minimum` and `maximum`,
/// * refuse one below an integer's `minimum`, one above its `maximum`, and a value of the wrong
///   JSON type (which shows that the driver reads the field at all), each with an error on that
///   field or a path under it.
pub fn check(schema: &Value, validate: impl Fn(&str) -> Vec<FieldError>) -> Vec<String> {
    let mut problems = Vec::new();
    match root_problem(schema) {
        None => lint(schema, "", Node::Root, &mut problems),
        Some(problem) => problems.push(problem.to_string()),
    }
    if !problems.is_empty() {
        return problems;
    }
    let base = example(schema);
    let errors = validate(&Value::Object(base.clone()).to_string());
    if !errors.is_empty() {
        problems.push(format!("the example configuration is refused: {}", describe(&errors)));
    }
    let errors_at = |config: Map<String, Value>, name: &str| -> Vec<FieldError> {
        validate(&Value::Object(config).to_string())
            .into_iter()
            .filter(|e| e.field.as_str() == name || e.field.as_str().starts_with(&format!("{name}.")))
            .collect()
    };
    let required = schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
    for name in required {
        let mut config = base.clone();
        config.remove(name);
        if errors_at(config, name).is_empty() {
            problems.push(format!("{name}: required, yet a configuration without it is accepted"));
        }
    }
    let mut probe = |name: &str, value: Value, accept: bool, what: &str| {
        let mut config = base.clone();
        config.insert(name.to_string(), value.clone());
        let errors = errors_at(config, name);
        match (accept, errors.is_empty()) {
            (true, false) => problems.push(format!("{name}: {what} {value} is refused: {}", describe(&errors))),
            (false, true) => problems.push(format!("{name}: {what} {value} is accepted")),
            _ => {}
        }
    };
    for (name, property) in properties(schema) {
        for value in property.get("enum").and_then(Value::as_array).into_iter().flatten() {
            probe(name, value.clone(), true, "enum value");
        }
        let integer = property.get("type").and_then(Value::as_str) == Some("integer");
        if let Some(min) = property.get("minimum").and_then(Value::as_i64).filter(|_| integer) {
            probe(name, min.into(), true, "minimum");
            probe(name, (min - 1).into(), false, "below minimum,");
        }
        if let Some(max) = property.get("maximum").and_then(Value::as_i64).filter(|_| integer) {
            probe(name, max.into(), true, "maximum");
            probe(name, (max + 1).into(), false, "above maximum,");
        }
        let wrong = if property.get("type").and_then(Value::as_str) == Some("array") {
            Value::Object(Map::new())
        } else {
            Value::Array(Vec::new())
        };
        probe(name, wrong, false, "the wrong-typed value");
    }
    problems
}

/// Why `schema` is not an object schema, if it is not.
fn root_problem(schema: &Value) -> Option<&'static str> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Some(r#"configuration schema is not an object schema (no "type": "object" at its root)"#);
    }
    if !schema.get("properties").is_some_and(Value::is_object) {
        return Some(r#"configuration schema has no "properties" object at its root"#);
    }
    None
}

/// The top-level properties of a schema, in order.
fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    schema.get("properties").and_then(Value::as_object).into_iter().flatten()
}

fn collect_secrets(node: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if node.get("x-secret") == Some(&Value::Bool(true)) && !out.contains(path) {
        out.push(path.clone());
    }
    for (name, property) in node.get("properties").and_then(Value::as_object).into_iter().flatten() {
        path.push(name.clone());
        collect_secrets(property, path, out);
        path.pop();
    }
    for branch in node.get("oneOf").and_then(Value::as_array).into_iter().flatten() {
        collect_secrets(branch, path, out);
    }
}

/// Where a schema node sits, which decides what it must carry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    /// The root schema.
    Root,
    /// A property at the root: a field of the configuration.
    TopField,
    /// A property of a nested object or of a `oneOf` branch.
    Field,
    /// A `oneOf` branch.
    Branch,
    /// The value schema of a map (`additionalProperties`).
    Values,
}

/// Checks one schema node and everything below it against the conventions.
fn lint(node: &Value, path: &str, kind: Node, problems: &mut Vec<String>) {
    let at = if path.is_empty() { "the root".to_string() } else { path.to_string() };
    let Some(map) = node.as_object() else {
        problems.push(format!("{at}: is not a schema object"));
        return;
    };
    for key in map.keys().filter(|k| !KEYWORDS.contains(&k.as_str()) && k.as_str() != PATTERN_PROPERTIES) {
        problems.push(format!("{at}: keyword {key} is outside the subset"));
    }
    let text = |key: &str| map.get(key).and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty());
    if matches!(kind, Node::TopField | Node::Field) && !(text("title") && text("description")) {
        problems.push(format!("{at}: needs a title and a description"));
    }
    if kind == Node::Branch && !text("title") {
        problems.push(format!("{at}: a oneOf branch needs a title"));
    }
    match map.get("type").and_then(Value::as_str) {
        Some(t) if TYPES.contains(&t) => {}
        Some(t) => problems.push(format!("{at}: unknown type {t}")),
        None if kind != Node::Root => problems.push(format!("{at}: needs a type")),
        None => {}
    }
    let secret = |key: &str| map.get(key) == Some(&Value::Bool(true));
    if secret("writeOnly") != secret("x-secret") {
        problems.push(format!("{at}: a secret carries both \"writeOnly\": true and \"x-secret\": true"));
    }
    lint_values(map, &at, problems);
    if kind == Node::TopField && !map.contains_key("default") && !map.contains_key("examples") {
        problems.push(format!("{at}: a field without a default needs examples"));
    }
    let fields = map.get("properties").and_then(Value::as_object);
    if let Some(required) = map.get("required") {
        let names = required.as_array().map(|r| r.iter().map(Value::as_str).collect::<Option<Vec<_>>>());
        match names.flatten() {
            Some(names) => {
                for name in names.into_iter().filter(|n| !fields.is_some_and(|f| f.contains_key(*n))) {
                    problems.push(format!("{at}: required field {name} is not among its properties"));
                }
            }
            None => problems.push(format!("{at}: required is not an array of names")),
        }
    }
    if map.contains_key("properties") && fields.is_none() {
        problems.push(format!("{at}: properties is not an object"));
    }
    for (name, property) in fields.into_iter().flatten() {
        let child = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        lint(property, &child, if kind == Node::Root { Node::TopField } else { Node::Field }, problems);
    }
    match map.get("additionalProperties") {
        None | Some(Value::Bool(_)) => {}
        Some(values) => lint(values, &format!("{at} (values)"), Node::Values, problems),
    }
    match map.get(PATTERN_PROPERTIES).map(Value::as_object) {
        None => {}
        Some(None) => problems.push(format!("{at}: patternProperties is not an object")),
        Some(Some(_)) if !map.get("additionalProperties").is_some_and(Value::is_object) => {
            problems.push(format!("{at}: patternProperties belongs on a map (with additionalProperties)"))
        }
        Some(Some(patterns)) => {
            for (pattern, values) in patterns {
                lint(values, &format!("{at} (keys {pattern})"), Node::Values, problems);
            }
        }
    }
    match map.get("oneOf").map(Value::as_array) {
        None => {}
        Some(None) => problems.push(format!("{at}: oneOf is not an array")),
        Some(Some(branches)) => {
            for (i, branch) in branches.iter().enumerate() {
                let branch_at = format!("{at} (oneOf {i})");
                lint(branch, &branch_at, Node::Branch, problems);
                if branch.pointer("/properties/type/const").is_none() {
                    problems.push(format!("{branch_at}: needs a type property with a const"));
                }
            }
        }
    }
}

/// Checks `default`, `examples`, `enum` and `const` against the node's type, enum and bounds.
fn lint_values(map: &Map<String, Value>, at: &str, problems: &mut Vec<String>) {
    let mut values: Vec<(&str, &Value)> = Vec::new();
    values.extend(map.get("default").map(|v| ("default", v)));
    values.extend(map.get("const").map(|v| ("const", v)));
    for (key, list) in [("examples", map.get("examples")), ("enum", map.get("enum"))] {
        match list.map(Value::as_array) {
            None => {}
            Some(Some(items)) if !items.is_empty() => values.extend(items.iter().map(|v| (key, v))),
            Some(_) => problems.push(format!("{at}: {key} is not a non-empty array")),
        }
    }
    for (key, value) in values {
        if let Some(why) = misfit(map, value, key != "enum") {
            problems.push(format!("{at}: {key} value {value} {why}"));
        }
    }
}

/// Why `value` does not fit the node's `type` (and, when `in_enum`, its `enum`) and bounds.
fn misfit(map: &Map<String, Value>, value: &Value, in_enum: bool) -> Option<String> {
    let fits = match map.get("type").and_then(Value::as_str) {
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        _ => true,
    };
    if !fits {
        return Some("is not of the declared type".to_string());
    }
    if in_enum && map.get("enum").and_then(Value::as_array).is_some_and(|e| !e.contains(value)) {
        return Some("is not in enum".to_string());
    }
    let number = value.as_f64()?;
    if map.get("minimum").and_then(Value::as_f64).is_some_and(|min| number < min) {
        return Some("is below minimum".to_string());
    }
    if map.get("maximum").and_then(Value::as_f64).is_some_and(|max| number > max) {
        return Some("is above maximum".to_string());
    }
    None
}

/// `field: message; field: message`.
fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests;
