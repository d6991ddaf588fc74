//! TBMQ's `@NoXss` field check (`NoXssValidator`): a text, or a JSON value as compact JSON
//! text, is malformed when an HTML parser would find markup in it.
//!
//! TBMQ scans the value with OWASP AntiSamy and a policy that allows no tag at all, so any
//! element, processing instruction or CDATA section is an error; comments are dropped
//! without one, and a value over the policy's 100,000 characters cannot be scanned and is
//! refused. The HTML scanner (NekoHTML) opens an element at `<` followed by a name
//! character (a letter, a digit, `-`, `.`, `:` or `_`), so `1<2` is markup for TBMQ while
//! `a < b` and `x<=5` are text. We refuse the same, and also a stray end tag such as `</b>`
//! (NekoHTML ignores most of those; refusing them is stricter and cannot let markup through).

use serde_json::Value;

/// TBMQ's message for a malformed field (`@NoXss`).
pub const MALFORMED: &str = "field value is malformed";

/// AntiSamy's `maxInputSize` in TBMQ's policy.
pub const MAX_INPUT_CHARS: usize = 100_000;

/// Whether a text would fail TBMQ's XSS check.
pub fn is_malformed(text: &str) -> bool {
    if text.chars().count() > MAX_INPUT_CHARS {
        return true;
    }
    let mut rest = text;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            // A comment is removed without an error; markup after it still counts.
            match comment.find("-->") {
                Some(end) => rest = &comment[end + 3..],
                None => return false,
            }
            continue;
        }
        if rest.starts_with("![CDATA[") || rest.starts_with('?') {
            return true;
        }
        let name = rest.strip_prefix('/').unwrap_or(rest);
        if name.chars().next().is_some_and(is_name_char) {
            return true;
        }
    }
    false
}

/// A JSON value is checked as its compact JSON text (TBMQ checks `JsonNode.toString()`).
pub fn is_malformed_json(value: &Value) -> bool {
    is_malformed(&value.to_string())
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '.' | ':' | '_')
}
