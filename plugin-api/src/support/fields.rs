//! Reading a `clientConfiguration` JSON object field by field, collecting every problem as a
//! [`FieldError`] named by its field instead of stopping at the first one.
//!
//! TBMQ binds configurations with Jackson, which is lenient about scalars: a number or boolean
//! is taken as its text for a `String`, a numeric string is taken for an `int`, `"true"` and
//! `"false"` for a `boolean`. [`Fields::string`], [`Fields::integer`] and [`Fields::boolean`]
//! accept the same, so a configuration TBMQ accepts is accepted here; [`Fields::strict_string`]
//! is there for fields that must really be strings. Absent and `null` fields are the same thing.
//!
//! ```
//! use trib_plugin_api::support::fields::{object, Fields};
//!
//! let obj = object(r#"{"host": "example.com", "port": "8883", "ssl": 1}"#).unwrap();
//! let mut f = Fields::new(&obj);
//! assert_eq!(f.string("host").as_deref(), Some("example.com"));
//! assert_eq!(f.integer("port", 1883), 8883);
//! assert!(!f.boolean("ssl"));
//! let errors = f.finish(()).unwrap_err();
//! assert_eq!(errors[0].field.as_str(), "ssl");
//! ```
//!
//! [`record_reads`] tells which fields a reader read, so that a test can compare them with the
//! driver's configuration schema ([`crate::support::schema`]).

use std::cell::RefCell;

use serde_json::{Map, Value};

use crate::driver::FieldError;

thread_local! {
    /// The names read on this thread while [`record_reads`] runs; `None` otherwise.
    static READS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Runs `read` and returns its result with the names of the fields read on this thread in the
/// meantime, each once, in the order first read: every name passed to a [`Fields`] accessor,
/// and every name given to [`note_read`].
///
/// Meant for tests: the names a driver's `validate` reads from a full configuration are the
/// fields it knows, which its schema must list exactly.
///
/// ```
/// use trib_plugin_api::support::fields::{object, record_reads, Fields};
///
/// let obj = object(r#"{"host": "h"}"#).unwrap();
/// let (_, names) = record_reads(|| {
///     let mut f = Fields::new(&obj);
///     (f.string("host"), f.integer("port", 1883))
/// });
/// assert_eq!(names, ["host", "port"]);
/// ```
pub fn record_reads<R>(read: impl FnOnce() -> R) -> (R, Vec<String>) {
    /// Puts the previous recording back when `read` panics (`Some` until restored normally).
    struct Restore(Option<Option<Vec<String>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                let _ = READS.try_with(|r| r.replace(previous));
            }
        }
    }
    let mut restore = Restore(Some(READS.with(|r| r.replace(Some(Vec::new())))));
    let result = read();
    let names = READS.with(|r| r.replace(restore.0.take().flatten())).unwrap_or_default();
    (result, names)
}

/// Records that the field `name` was read, for [`record_reads`]. [`Fields`] calls it for every
/// field it reads; a reader that does not use [`Fields`] calls it itself. Costs a thread-local
/// lookup when nothing is recording.
pub fn note_read(name: &str) {
    let _ = READS.try_with(|r| {
        if let Some(names) = r.borrow_mut().as_mut() {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    });
}

/// Parses `json` as a JSON object, or returns the one error that says why it is not one.
pub fn object(json: &str) -> Result<Map<String, Value>, Vec<FieldError>> {
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(vec![FieldError::new("", "clientConfiguration must be a JSON object")]),
        Err(e) => Err(vec![FieldError::new("", format!("invalid JSON: {e}"))]),
    }
}

/// A configuration object being read, with the errors found so far.
#[derive(Debug)]
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Starts reading `obj` with no errors.
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Fields { obj, errors: Vec::new() }
    }

    /// The raw value of `field`; `None` when absent or `null`.
    pub fn raw(&self, field: &str) -> Option<&'a Value> {
        note_read(field);
        self.obj.get(field).filter(|v| !v.is_null())
    }

    /// Records an error against `field`.
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Records errors found elsewhere (for example by a nested object's own checks).
    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.errors.extend(errors);
    }

    /// Whether `field` already has an error, so that follow-up checks can be skipped.
    pub fn failed(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field.as_str() == field)
    }

    /// How many errors were recorded so far.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// `Ok(value)` when no error was recorded, else every error in the order found.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }

    /// A string field, with numbers and booleans taken as their text (as Jackson does).
    pub fn string(&mut self, field: &str) -> Option<String> {
        let value = self.raw(field)?;
        let text = scalar_text(value);
        if text.is_none() {
            self.error(field, "must be a string");
        }
        text
    }

    /// A string field that must be a JSON string.
    pub fn strict_string(&mut self, field: &str) -> Option<String> {
        match self.raw(field)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    /// An integer field: a number with an integral value or a numeric string (as Jackson does);
    /// `None` when absent, or when of the wrong type (then an error is recorded).
    pub fn integer_opt(&mut self, field: &str) -> Option<i64> {
        let value = self.raw(field)?;
        let parsed = match value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(field, "must be an integer");
        }
        parsed
    }

    /// [`Fields::integer_opt`] with `default` for an absent or invalid field.
    pub fn integer(&mut self, field: &str, default: i64) -> i64 {
        self.integer_opt(field).unwrap_or(default)
    }

    /// A boolean field, also given as `"true"` / `"false"`; absent is `false`.
    pub fn boolean(&mut self, field: &str) -> bool {
        match self.raw(field) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(_) => {
                self.error(field, "must be a boolean");
                false
            }
        }
    }

    /// A JSON object of scalar values (a Java `Map<String, String>`), in document order; absent
    /// is empty. A non-scalar entry is an error named `field.key`.
    pub fn string_map(&mut self, field: &str) -> Vec<(String, String)> {
        let map = match self.raw(field) {
            None => return Vec::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                self.error(field, "must be an object of strings");
                return Vec::new();
            }
        };
        let mut pairs = Vec::with_capacity(map.len());
        for (key, value) in map {
            match scalar_text(value) {
                Some(text) => pairs.push((key.clone(), text)),
                None => self.error(format!("{field}.{key}"), "must be a string"),
            }
        }
        pairs
    }
}

/// The text of a string, number or boolean.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Map<String, Value> {
        object(json).unwrap()
    }

    #[test]
    fn not_an_object_is_one_error() {
        assert_eq!(object("[1]").unwrap_err()[0].message.as_str(), "clientConfiguration must be a JSON object");
        assert!(object("{").unwrap_err()[0].message.as_str().starts_with("invalid JSON"));
    }

    #[test]
    fn scalars_are_read_like_jackson() {
        let obj = read(r#"{"s": 5, "b": true, "i": "42", "f": 3.0, "t": "true", "n": null}"#);
        let mut f = Fields::new(&obj);
        assert_eq!(f.string("s").as_deref(), Some("5"));
        assert_eq!(f.string("b").as_deref(), Some("true"));
        assert_eq!(f.integer("i", 0), 42);
        assert_eq!(f.integer("f", 0), 3);
        assert!(f.boolean("t"));
        assert_eq!(f.string("n"), None);
        assert_eq!(f.integer("n", 7), 7);
        assert!(f.finish(()).is_ok());
    }

    #[test]
    fn wrong_types_are_named_and_reading_goes_on() {
        let obj = read(r#"{"s": [], "strict": 1, "i": 1.5, "b": "yes", "m": {"k": {}}, "m2": 3}"#);
        let mut f = Fields::new(&obj);
        assert_eq!(f.string("s"), None);
        assert_eq!(f.strict_string("strict"), None);
        assert_eq!(f.integer("i", 9), 9);
        assert!(!f.boolean("b"));
        assert!(f.string_map("m").is_empty());
        assert!(f.string_map("m2").is_empty());
        assert!(f.failed("s") && !f.failed("absent"));
        let fields: Vec<String> = f.finish(()).unwrap_err().iter().map(|e| e.field.to_string()).collect();
        assert_eq!(fields, ["s", "strict", "i", "b", "m.k", "m2"]);
    }

    #[test]
    fn reads_are_recorded_once_in_order_and_only_while_recording() {
        let obj = read(r#"{"a": 1, "b": "x"}"#);
        let mut f = Fields::new(&obj);
        f.string("outside");
        let ((), names) = record_reads(|| {
            let mut f = Fields::new(&obj);
            f.string("b");
            f.integer("a", 0);
            f.boolean("absent");
            f.string("b");
            note_read("by-hand");
        });
        assert_eq!(names, ["b", "a", "absent", "by-hand"]);
        note_read("after");
        assert_eq!(record_reads(|| ()).1, Vec::<String>::new(), "nothing leaks into the next recording");
    }

    #[test]
    fn nested_recordings_keep_their_own_names() {
        let ((), outer) = record_reads(|| {
            note_read("outer");
            let ((), inner) = record_reads(|| note_read("inner"));
            assert_eq!(inner, ["inner"]);
            note_read("outer-again");
        });
        assert_eq!(outer, ["outer", "outer-again"]);
    }
}
