//! `statusCodes` (our addition): which response statuses retry, reject or count as delivered,
//! over the driver's default classification (in [`crate::retry`]):
//!
//! ```json
//! "statusCodes": {"retry": ["5xx", "429", "408"], "reject": ["4xx"], "delivered": ["2xx", "404"]}
//! ```
//!
//! Each list holds exact codes (`"404"`, or the number `404`) and classes (`"4xx"`). An exact
//! code wins over a class; a code or a class may appear in one list only; statuses not listed
//! keep the default. Only the reading and the lookup live here; turning a status into an
//! outcome is [`crate::retry`]'s.

use serde_json::Value;
use trib_plugin_api::driver::FieldError;

/// The field's name in `clientConfiguration`.
pub const FIELD: &str = "statusCodes";

/// What a listed status means, named after its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// `retry`: the message is retried (under `RETRY_ALL`).
    Retry,
    /// `reject`: the message failed for good and is dead-lettered.
    Reject,
    /// `delivered`: the message counts as delivered.
    Delivered,
}

impl Treatment {
    /// The lists, in the order they are read and documented.
    const LISTS: [(&'static str, Treatment); 3] =
        [("retry", Treatment::Retry), ("reject", Treatment::Reject), ("delivered", Treatment::Delivered)];
}

/// A checked `statusCodes`: empty (the default) keeps the default classification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCodes {
    /// Exact codes and what they mean; they win over `classes`.
    exact: Vec<(u16, Treatment)>,
    /// By the first digit (1 to 5), what the class means.
    classes: [Option<Treatment>; 6],
}

impl StatusCodes {
    /// What `status` means by the configuration; `None` when it is not listed (then the default
    /// classification applies).
    pub fn treatment(&self, status: u16) -> Option<Treatment> {
        let exact = self.exact.iter().find(|(code, _)| *code == status).map(|(_, t)| *t);
        exact.or_else(|| self.classes.get(usize::from(status / 100)).copied().flatten())
    }

    /// Reads the field's value (an object; absent and `null` are handled by the caller), pushing
    /// one error per problem, each named by its path (`statusCodes.retry[1]`).
    pub(super) fn parse(value: &serde_json::Map<String, Value>, errors: &mut Vec<FieldError>) -> StatusCodes {
        let mut codes = StatusCodes::default();
        // Where each code or class was first listed, to name it when it comes again.
        let mut seen: Vec<(Entry, String)> = Vec::new();
        for key in value.keys().filter(|k| !Treatment::LISTS.iter().any(|(name, _)| name == k)) {
            errors.push(FieldError::new(format!("{FIELD}.{key}"), "unknown list; use retry, reject or delivered"));
        }
        for (name, treatment) in Treatment::LISTS {
            let path = format!("{FIELD}.{name}");
            let items = match value.get(name) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items,
                Some(_) => {
                    errors
                        .push(FieldError::new(path, "must be an array of status codes (\"404\") or classes (\"4xx\")"));
                    continue;
                }
            };
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let Some(entry) = Entry::parse(item) else {
                    errors.push(FieldError::new(
                        item_path,
                        format!("{item} is not a status code from 100 to 599 or a class from 1xx to 5xx"),
                    ));
                    continue;
                };
                match seen.iter().find(|(e, _)| *e == entry) {
                    Some((_, first)) if *first == path => {}
                    Some((_, first)) => {
                        errors.push(FieldError::new(item_path, format!("{} is also listed in {first}", entry.text())));
                    }
                    None => {
                        seen.push((entry, path.clone()));
                        match entry {
                            Entry::Code(code) => codes.exact.push((code, treatment)),
                            Entry::Class(digit) => codes.classes[usize::from(digit)] = Some(treatment),
                        }
                    }
                }
            }
        }
        codes
    }
}

/// One item of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// An exact code, 100 to 599.
    Code(u16),
    /// A class by its first digit, 1 to 5.
    Class(u8),
}

impl Entry {
    /// `"404"`, `404` or `"4xx"` (any case); `None` for anything else.
    fn parse(item: &Value) -> Option<Entry> {
        let code = |n: u64| u16::try_from(n).ok().filter(|c| (100..=599).contains(c)).map(Entry::Code);
        match item {
            Value::Number(n) => n.as_u64().and_then(code),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_bytes() {
                [digit @ b'1'..=b'5', b'x', b'x'] => Some(Entry::Class(digit - b'0')),
                text if text.len() == 3 && text.iter().all(u8::is_ascii_digit) => {
                    std::str::from_utf8(text).ok()?.parse().ok().and_then(code)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// As the error messages show it.
    fn text(self) -> String {
        match self {
            Entry::Code(code) => format!("\"{code}\""),
            Entry::Class(digit) => format!("\"{digit}xx\""),
        }
    }
}
