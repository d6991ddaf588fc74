//! The `retryPolicy` object as data: one `check(executor strategy, policy, expected)` helper
//! and many small cases, then the pause and age rules.

use std::time::Duration;

use serde_json::{json, Value};

use super::{PolicyError, RetryPolicy};
use crate::config::{AckStrategy, ExecutorConfig, RetryAllDefaults};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// An executor with `strategy`; under SKIP_ALL its RETRY_ALL values are 7 retries, 2 s to 2 s.
fn executor(strategy: AckStrategy) -> ExecutorConfig {
    let retry_all_defaults = RetryAllDefaults { retries: 7, pause: MS(2000), max_pause: MS(2000) };
    ExecutorConfig { ack_strategy: strategy, retry_all_defaults, ..ExecutorConfig::default() }
}

/// The executor-wide RETRY_ALL of these checks: 5 retries, 1 s doubling up to 30 s.
fn retry_all() -> AckStrategy {
    AckStrategy::RetryAll { retries: 5, pause: MS(1000), max_pause: MS(30_000) }
}

/// Reads `{"retryPolicy": policy}` on an executor with `strategy`.
fn read(strategy: AckStrategy, policy: Value) -> Result<RetryPolicy, Vec<(String, String)>> {
    let configuration = json!({"clientConfiguration": {}, "topicFilters": ["#"], "retryPolicy": policy});
    RetryPolicy::of(&configuration, &executor(strategy))
        .map_err(|errors| errors.into_iter().map(|PolicyError { field, message }| (field, message)).collect())
}

fn check(strategy: AckStrategy, policy: Value, expected: RetryPolicy) {
    assert_eq!(read(strategy, policy.clone()), Ok(expected), "policy {policy}");
}

fn check_errors(strategy: AckStrategy, policy: Value, expected: &[(&str, &str)]) {
    let expected: Vec<(String, String)> = expected.iter().map(|(f, m)| (f.to_string(), m.to_string())).collect();
    assert_eq!(read(strategy, policy.clone()), Err(expected), "policy {policy}");
}

fn policy(strategy: AckStrategy, jitter: bool, max_age_ms: Option<u64>) -> RetryPolicy {
    RetryPolicy { strategy, jitter, max_message_age: max_age_ms.map(MS) }
}

fn retrying(retries: u32, pause_ms: u64, max_pause_ms: u64) -> AckStrategy {
    AckStrategy::RetryAll { retries, pause: MS(pause_ms), max_pause: MS(max_pause_ms) }
}

#[test]
fn without_a_policy_the_executor_wide_strategy_applies() {
    let config = executor(retry_all());
    for configuration in [json!({"clientConfiguration": {}}), json!({"retryPolicy": null})] {
        assert_eq!(RetryPolicy::of(&configuration, &config), Ok(policy(retry_all(), true, None)));
    }
}

#[test]
fn an_empty_policy_is_the_executor_wide_one() {
    check(retry_all(), json!({}), policy(retry_all(), true, None));
    check(AckStrategy::SkipAll, json!({}), policy(AckStrategy::SkipAll, true, None));
}

#[test]
fn each_field_overrides_its_executor_wide_value() {
    check(retry_all(), json!({"retries": 2}), policy(retrying(2, 1000, 30_000), true, None));
    check(retry_all(), json!({"initialBackoffMs": 10}), policy(retrying(5, 10, 30_000), true, None));
    check(retry_all(), json!({"maxBackoffMs": 4000}), policy(retrying(5, 1000, 4000), true, None));
    check(retry_all(), json!({"jitter": false}), policy(retry_all(), false, None));
    check(retry_all(), json!({"maxMessageAgeMs": 600_000}), policy(retry_all(), true, Some(600_000)));
    check(retry_all(), json!({"ackStrategy": "SKIP_ALL"}), policy(AckStrategy::SkipAll, true, None));
}

#[test]
fn the_brief_example_reads_as_written() {
    let example = json!({"ackStrategy": "RETRY_ALL", "retries": 3, "initialBackoffMs": 1000, "maxBackoffMs": 30000,
                         "jitter": true, "maxMessageAgeMs": 600000});
    check(AckStrategy::SkipAll, example, policy(retrying(3, 1000, 30_000), true, Some(600_000)));
}

#[test]
fn a_first_pause_above_the_executors_maximum_is_a_fixed_pause() {
    check(retry_all(), json!({"initialBackoffMs": 60_000}), policy(retrying(5, 60_000, 60_000), true, None));
}

#[test]
fn zero_retries_mean_forever_and_a_zero_age_no_limit() {
    check(retry_all(), json!({"retries": 0, "maxMessageAgeMs": 0}), policy(retrying(0, 1000, 30_000), true, None));
}

#[test]
fn retry_all_under_skip_all_takes_the_executors_retry_all_values() {
    check(AckStrategy::SkipAll, json!({"ackStrategy": "RETRY_ALL"}), policy(retrying(7, 2000, 2000), true, None));
}

#[test]
fn setting_how_to_retry_turns_retries_on_under_skip_all() {
    check(AckStrategy::SkipAll, json!({"retries": 3}), policy(retrying(3, 2000, 2000), true, None));
    check(AckStrategy::SkipAll, json!({"initialBackoffMs": 10}), policy(retrying(7, 10, 2000), true, None));
    // Neither the jitter nor the age limit is a reason to retry.
    check(AckStrategy::SkipAll, json!({"jitter": false}), policy(AckStrategy::SkipAll, false, None));
    check(AckStrategy::SkipAll, json!({"maxMessageAgeMs": 5}), policy(AckStrategy::SkipAll, true, Some(5)));
}

#[test]
fn the_policy_must_be_an_object() {
    check_errors(retry_all(), json!([1]), &[("retryPolicy", "must be an object")]);
    check_errors(retry_all(), json!("RETRY_ALL"), &[("retryPolicy", "must be an object")]);
}

#[test]
fn negative_values_are_refused() {
    check_errors(
        retry_all(),
        json!({"retries": -1, "initialBackoffMs": -10, "maxBackoffMs": -1, "maxMessageAgeMs": -5}),
        &[
            ("retryPolicy.retries", "must not be less than 0"),
            ("retryPolicy.initialBackoffMs", "must not be less than 0"),
            ("retryPolicy.maxBackoffMs", "must not be less than 0"),
            ("retryPolicy.maxMessageAgeMs", "must not be less than 0"),
        ],
    );
}

#[test]
fn wrong_types_are_named() {
    check_errors(
        retry_all(),
        json!({"ackStrategy": 1, "retries": "3", "initialBackoffMs": 1.5, "jitter": "yes", "maxMessageAgeMs": {}}),
        &[
            ("retryPolicy.ackStrategy", "must be RETRY_ALL or SKIP_ALL"),
            ("retryPolicy.retries", "must be an integer"),
            ("retryPolicy.initialBackoffMs", "must be an integer"),
            ("retryPolicy.jitter", "must be true or false"),
            ("retryPolicy.maxMessageAgeMs", "must be an integer"),
        ],
    );
}

#[test]
fn an_unknown_strategy_is_refused() {
    check_errors(
        retry_all(),
        json!({"ackStrategy": "retry_all"}),
        &[("retryPolicy.ackStrategy", "must be RETRY_ALL or SKIP_ALL")],
    );
}

#[test]
fn too_many_retries_are_refused() {
    check_errors(
        retry_all(),
        json!({"retries": 4_294_967_296u64}),
        &[("retryPolicy.retries", "must be at most 4294967295")],
    );
}

#[test]
fn a_maximum_below_the_first_pause_is_refused() {
    check_errors(
        retry_all(),
        json!({"initialBackoffMs": 5000, "maxBackoffMs": 1000}),
        &[("retryPolicy.maxBackoffMs", "must not be below initialBackoffMs (5000 ms)")],
    );
    // Against the executor's first pause when the policy sets none.
    check_errors(
        retry_all(),
        json!({"maxBackoffMs": 500}),
        &[("retryPolicy.maxBackoffMs", "must not be below initialBackoffMs (1000 ms)")],
    );
}

#[test]
fn unknown_fields_are_refused() {
    check_errors(
        retry_all(),
        json!({"maxMessageAge": 600_000}),
        &[(
            "retryPolicy.maxMessageAge",
            "unknown field; the fields are ackStrategy, retries, initialBackoffMs, maxBackoffMs, jitter, maxMessageAgeMs",
        )],
    );
}

#[test]
fn retry_settings_under_an_explicit_skip_all_are_refused() {
    check_errors(
        retry_all(),
        json!({"ackStrategy": "SKIP_ALL", "retries": 3, "maxBackoffMs": 9000}),
        &[
            ("retryPolicy.retries", "has no effect with ackStrategy SKIP_ALL"),
            ("retryPolicy.maxBackoffMs", "has no effect with ackStrategy SKIP_ALL"),
        ],
    );
}

#[test]
fn pauses_back_off_with_or_without_jitter() {
    let with = policy(retrying(0, 1000, 30_000), true, None);
    let without = RetryPolicy { jitter: false, ..with };
    assert_eq!(without.pause_before(3, 0.0), MS(4000));
    assert_eq!(without.pause_before(3, 1.0), MS(4000), "no jitter: the random number is not used");
    assert_eq!(with.pause_before(3, 0.0), MS(3200));
    assert_eq!(with.pause_before(3, 1.0), MS(4800));
    assert_eq!(with.pause_before(10, 1.0), MS(30_000), "capped");
    let fixed = policy(retrying(0, 1000, 1000), true, None);
    assert_eq!(fixed.pause_before(3, 1.0), MS(1000), "a fixed pause has no jitter, as in TBMQ");
    assert_eq!(policy(AckStrategy::SkipAll, true, None).pause_before(1, 0.5), Duration::ZERO);
}

#[test]
fn a_message_expires_only_past_the_maximum_age() {
    let limited = policy(retry_all(), true, Some(60_000));
    let now = 1_000_000_000;
    assert_eq!(limited.expired_age(now - 60_000, now), None, "exactly the maximum is not past it");
    assert_eq!(limited.expired_age(now - 60_001, now), Some(MS(60_001)));
    assert_eq!(limited.expired_age(now + 5_000, now), None, "a clock ahead of ours is age 0");
    assert_eq!(limited.expired_age(0, now), None, "no timestamp, no known age");
    assert_eq!(policy(retry_all(), true, None).expired_age(1, now), None, "no limit");
}
