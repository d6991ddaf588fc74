//! An integration's retry policy (ours): the optional `retryPolicy` object of its
//! `configuration`, beside `clientConfiguration`, `topicFilters` and `metadata`, applied over the
//! executor-wide ack strategy (`TB_IE_MSG_ACK_STRATEGY_*`), whose values are the defaults:
//!
//! ```json
//! "retryPolicy": {"ackStrategy": "RETRY_ALL", "retries": 3, "initialBackoffMs": 1000,
//!                 "maxBackoffMs": 30000, "jitter": true, "maxMessageAgeMs": 600000}
//! ```
//!
//! Every field is optional. The object is read field by field so that every problem is reported
//! at once, each named by its path from `configuration` (`retryPolicy.maxBackoffMs`), the way
//! the management plane names `topicFilters`. Unknown fields are refused (a misspelt limit would
//! otherwise be silently ignored).
//!
//! Not here: which outcomes are retryable (a driver's own classification, e.g. the HTTP driver's
//! `statusCodes`), and the decision after an attempt ([`super::decide`]), which this policy only
//! parameterises.

use std::time::Duration;

use serde_json::{Map, Value};

use super::pause_before;
use crate::config::{AckStrategy, ExecutorConfig};

/// The key of the policy in an integration's `configuration`.
pub const FIELD: &str = "retryPolicy";

/// The fields of the policy, in the order they are documented.
pub const FIELDS: [&str; 6] =
    ["ackStrategy", "retries", "initialBackoffMs", "maxBackoffMs", "jitter", "maxMessageAgeMs"];

/// How one integration's failed messages are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// What happens after an attempt: the executor's strategy with the policy's values.
    pub strategy: AckStrategy,
    /// Whether backed-off pauses are scaled by a random factor in 0.8..1.2 (a fixed pause,
    /// TBMQ's, never is).
    pub jitter: bool,
    /// Messages published longer ago than this are dead-lettered instead of retried; `None`
    /// means no limit.
    pub max_message_age: Option<Duration>,
}

/// A problem with one field of the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    /// The field's path from `configuration`, e.g. `retryPolicy.retries`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl RetryPolicy {
    /// The policy of an integration without `retryPolicy`: the executor-wide strategy, jitter
    /// on backed-off pauses, no age limit.
    pub fn executor_wide(config: &ExecutorConfig) -> Self {
        RetryPolicy { strategy: config.ack_strategy, jitter: true, max_message_age: None }
    }

    /// The policy of an integration's `configuration` (the whole object), over the executor's
    /// `config`; every problem of its `retryPolicy` when it has any.
    pub fn of(configuration: &Value, config: &ExecutorConfig) -> Result<Self, Vec<PolicyError>> {
        match configuration.get(FIELD) {
            None | Some(Value::Null) => Ok(Self::executor_wide(config)),
            Some(Value::Object(policy)) => Reader { policy, errors: Vec::new() }.read(config),
            Some(_) => Err(vec![PolicyError { field: FIELD.into(), message: "must be an object".into() }]),
        }
    }

    /// The pause before retry number `retry` (1 = the first); `random` is a number in 0..1
    /// that makes the jitter. Zero under `SKIP_ALL`, which never retries.
    pub fn pause_before(&self, retry: u32, random: f64) -> Duration {
        let AckStrategy::RetryAll { pause, max_pause, .. } = self.strategy else {
            return Duration::ZERO;
        };
        let factor = if self.jitter { 0.8 + 0.4 * random.clamp(0.0, 1.0) } else { 1.0 };
        pause_before(retry, pause, max_pause, factor)
    }

    /// The age of a message published at `timestamp_ms`, at `now_ms`, when it is above the
    /// maximum. A message without a timestamp (0) has no known age and never expires.
    pub fn expired_age(&self, timestamp_ms: i64, now_ms: i64) -> Option<Duration> {
        let max = self.max_message_age?;
        if timestamp_ms <= 0 {
            return None;
        }
        let age = Duration::from_millis(u64::try_from(now_ms.saturating_sub(timestamp_ms)).unwrap_or(0));
        (age > max).then_some(age)
    }
}

/// The policy object being read and the problems found so far.
struct Reader<'a> {
    policy: &'a Map<String, Value>,
    errors: Vec<PolicyError>,
}

impl Reader<'_> {
    fn read(mut self, config: &ExecutorConfig) -> Result<RetryPolicy, Vec<PolicyError>> {
        for key in self.policy.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            let message = format!("unknown field; the fields are {}", FIELDS.join(", "));
            self.errors.push(PolicyError { field: format!("{FIELD}.{key}"), message });
        }
        let (retries_default, pause_default, max_pause_default) = match config.ack_strategy {
            AckStrategy::RetryAll { retries, pause, max_pause } => (retries, pause, max_pause),
            AckStrategy::SkipAll => {
                let d = config.retry_all_defaults;
                (d.retries, d.pause, d.max_pause)
            }
        };
        let kind = self.ack_strategy();
        let retries = self.non_negative("retries").and_then(|n| match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error("retries", format!("must be at most {}", u32::MAX));
                None
            }
        });
        let initial = self.non_negative("initialBackoffMs").map(Duration::from_millis);
        let max = self.non_negative("maxBackoffMs").map(Duration::from_millis);
        let jitter = self.boolean("jitter");
        let max_age = self.non_negative("maxMessageAgeMs");
        let retry_fields: Vec<&str> = ["retries", "initialBackoffMs", "maxBackoffMs"]
            .into_iter()
            .filter(|f| self.policy.get(*f).is_some_and(|v| !v.is_null()))
            .collect();
        // A policy that sets how to retry means to retry, even on an executor that does not.
        let retry_all = match kind {
            Some(kind) => kind,
            None => !retry_fields.is_empty() || matches!(config.ack_strategy, AckStrategy::RetryAll { .. }),
        };
        if kind == Some(false) {
            for field in retry_fields {
                self.error(field, "has no effect with ackStrategy SKIP_ALL");
            }
        }
        let pause = initial.unwrap_or(pause_default);
        let max_pause = match max {
            Some(max) if max < pause => {
                let message = format!("must not be below initialBackoffMs ({} ms)", pause.as_millis());
                self.error("maxBackoffMs", message);
                pause
            }
            Some(max) => max,
            // The executor's maximum, or a fixed pause when the policy's first pause is longer.
            None => max_pause_default.max(pause),
        };
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let strategy = if retry_all {
            AckStrategy::RetryAll { retries: retries.unwrap_or(retries_default), pause, max_pause }
        } else {
            AckStrategy::SkipAll
        };
        Ok(RetryPolicy {
            strategy,
            jitter: jitter.unwrap_or(true),
            max_message_age: max_age.filter(|ms| *ms > 0).map(Duration::from_millis),
        })
    }

    fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(PolicyError { field: format!("{FIELD}.{name}"), message: message.into() });
    }

    /// `ackStrategy`: `Some(true)` for `RETRY_ALL`, `Some(false)` for `SKIP_ALL`, `None` when
    /// absent or invalid (then an error).
    fn ack_strategy(&mut self) -> Option<bool> {
        match self.policy.get("ackStrategy") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "RETRY_ALL" => Some(true),
            Some(Value::String(s)) if s == "SKIP_ALL" => Some(false),
            Some(_) => {
                self.error("ackStrategy", "must be RETRY_ALL or SKIP_ALL");
                None
            }
        }
    }

    /// A whole number of milliseconds (or a count) that must be >= 0; `None` when absent or
    /// invalid (then an error).
    fn non_negative(&mut self, name: &str) -> Option<u64> {
        match self.policy.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.is_u64() => n.as_u64(),
            Some(Value::Number(n)) if n.is_i64() => {
                self.error(name, "must not be less than 0");
                None
            }
            Some(_) => {
                self.error(name, "must be an integer");
                None
            }
        }
    }

    fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.policy.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.error(name, "must be true or false");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
