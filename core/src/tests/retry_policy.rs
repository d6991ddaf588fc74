//! An integration's `retryPolicy` through a running executor with the scripted driver: it
//! overrides the executor-wide ack strategy for that integration only, sends messages past their
//! maximum age to the dead letters instead of retrying them, and an invalid one is refused with
//! field errors on validation and fails the start.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use super::executor::{dead_letters, retry_all, validation_request_for, wait_counters, wait_lines, Harness};
use crate::{config::AckStrategy, executor::Executor, wire::ComponentLifecycleEvent as Lc};

/// The executor-wide strategy of these tests: retry forever, an hour apart. A test that gets
/// anywhere past a first retry did so through its integration's own policy.
fn retry_forever_hourly() -> AckStrategy {
    let hour = Duration::from_secs(3600);
    AckStrategy::RetryAll { retries: 0, pause: hour, max_pause: hour }
}

/// Starts an executor with `ack` and an integration recording to a file, with `policy` as its
/// `retryPolicy`; returns the executor, the integration's id and the file.
fn start_with_policy(h: &mut Harness, ack: AckStrategy, policy: Value) -> (Executor, Uuid, std::path::PathBuf) {
    let ex = Executor::start(h.config("ie1", ack), h.queue.clone(), &h.report).unwrap();
    let (id, out) = (Uuid::new_v4(), h.file(&format!("out-{}", Uuid::new_v4().simple())));
    let configuration = json!({"clientConfiguration": {"recordTo": out}, "topicFilters": ["#"], "retryPolicy": policy});
    h.save_configuration(id, Lc::Created, true, &configuration);
    h.wait_lifecycle(id, Lc::Started, true);
    (ex, id, out)
}

#[test]
fn a_retry_policy_overrides_the_executor_wide_retries_and_backoff() {
    let mut h = Harness::new();
    let policy = json!({"retries": 2, "initialBackoffMs": 10, "maxBackoffMs": 40, "jitter": false});
    let (ex, id, out) = start_with_policy(&mut h, retry_forever_hourly(), policy);
    // Beside it, an integration without a policy: the executor-wide strategy, a retry an hour away.
    let (plain, _) = h.recording_integration();
    h.publish(plain, &["retry"]);
    h.publish(id, &["retry"]);
    // Three attempts (1 + 2 retries) 10 and 20 ms apart, then given up on.
    wait_counters(&ex, id, &[("totalMsgs", 1), ("tmpFailed", 2), ("failedMsgs", 1), ("failedIterations", 3)]);
    let letters = dead_letters(&h, id, 1);
    assert_eq!((letters[0].1.reason.as_str(), letters[0].1.attempts), ("retry: scripted retry", 3));
    h.publish(id, &["after"]);
    assert_eq!(wait_lines(&out, 1), ["after"]);
    wait_counters(&ex, plain, &[("totalMsgs", 1), ("tmpFailed", 1), ("failedIterations", 1)]);
    ex.shutdown();
}

#[test]
fn a_retry_policy_turns_retries_on_under_skip_all() {
    let mut h = Harness::new();
    let policy = json!({"ackStrategy": "RETRY_ALL", "retries": 1, "initialBackoffMs": 10});
    let (ex, id, _) = start_with_policy(&mut h, AckStrategy::SkipAll, policy);
    h.publish(id, &["retry"]);
    wait_counters(&ex, id, &[("totalMsgs", 1), ("tmpFailed", 1), ("failedMsgs", 1), ("failedIterations", 2)]);
    assert_eq!(dead_letters(&h, id, 1)[0].1.attempts, 2);
    ex.shutdown();
}

#[test]
fn a_message_past_the_maximum_age_goes_to_the_dead_letters_instead_of_being_retried() {
    let mut h = Harness::new();
    // Retries forever, 10 ms apart, for messages queued less than a minute ago.
    let (ex, id, out) = start_with_policy(&mut h, retry_all(0), json!({"maxMessageAgeMs": 60_000}));
    let young = format!("retry-once:{}", h.file("retried").display());
    h.publish_at(id, &["retry"], crate::now_ms() - 120_000);
    h.publish(id, &[&young, "fine"]);
    let mut delivered = wait_lines(&out, 2);
    delivered.sort();
    assert_eq!(delivered, ["fine".to_string(), young], "the young message was retried and delivered");
    let letters = dead_letters(&h, id, 1);
    let (letter, reason) = (&letters[0].1, letters[0].1.reason.as_str());
    assert_eq!((letter.offset, letter.attempts), (0, 1), "given up on after its first attempt: {reason}");
    assert!(reason.starts_with("expired: message age "), "{reason}");
    assert!(
        reason.ends_with(" ms exceeded maxMessageAgeMs (60000 ms); last attempt: retry: scripted retry"),
        "{reason}"
    );
    // Nothing is stuck behind it.
    h.publish(id, &["after"]);
    assert_eq!(wait_lines(&out, 3)[2], "after");
    ex.shutdown();
}

#[test]
fn an_invalid_retry_policy_is_refused_with_field_errors() {
    let h = Harness::new();
    let ex = h.start("ie1", AckStrategy::SkipAll);
    let configuration = json!({
        "clientConfiguration": {"invalid": true},
        "retryPolicy": {"retries": -1, "initialBackoffMs": 5000, "maxBackoffMs": 1000, "maxAge": 1}
    });
    let answer = validation_request_for(&h, "VALIDATE", &configuration).integration_validation_response_msg.unwrap();
    let fields: Vec<(&str, &str)> =
        answer.field_errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
    assert_eq!(
        fields,
        [
            ("invalid", "is set"),
            (
                "retryPolicy.maxAge",
                "unknown field; the fields are ackStrategy, retries, initialBackoffMs, maxBackoffMs, jitter, \
                 maxMessageAgeMs"
            ),
            ("retryPolicy.retries", "must not be less than 0"),
            ("retryPolicy.maxBackoffMs", "must not be below initialBackoffMs (5000 ms)"),
        ]
    );
    assert!(answer.error.as_deref().is_some_and(|e| e.contains("retryPolicy.retries: must not be less than 0")));
    let valid = json!({"clientConfiguration": {}, "retryPolicy": {"retries": 3, "maxMessageAgeMs": 600_000}});
    let answer = validation_request_for(&h, "VALIDATE", &valid).integration_validation_response_msg.unwrap();
    assert_eq!((answer.error, answer.field_errors.len()), (None, 0));
    ex.shutdown();
}

#[test]
fn an_integration_with_an_invalid_retry_policy_fails_to_start_with_the_reason() {
    let mut h = Harness::new();
    let ex = h.start("ie1", AckStrategy::SkipAll);
    let id = Uuid::new_v4();
    let configuration = json!({"clientConfiguration": {}, "topicFilters": ["#"], "retryPolicy": {"jitter": "yes"}});
    h.save_configuration(id, Lc::Created, true, &configuration);
    h.wait_lifecycle(id, Lc::Failed, false);
    let (msb, lsb) = crate::wire::uuid_to_bits(id);
    let error = h
        .events
        .iter()
        .filter_map(|m| m.event_proto.as_ref())
        .filter(|e| e.event_source_id_msb == msb && e.event_source_id_lsb == lsb)
        .find_map(|e| e.lifecycle.as_ref().and_then(|l| l.error.clone()));
    assert_eq!(error.as_deref(), Some("invalid configuration: retryPolicy.jitter: must be true or false"));
    ex.shutdown();
}
