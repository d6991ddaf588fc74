//! The ack strategies: what happens to a pack after an attempt (TBMQ's
//! `IntegrationAckStrategyFactory`), as a pure function the processor calls. An integration's
//! own values for them (its `retryPolicy`) are read in [`policy`].

pub mod policy;

use std::time::Duration;

use trib_plugin_api::driver::Outcome;

use crate::config::AckStrategy;

pub use policy::RetryPolicy;

/// What the outcomes of one attempt add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptResult {
    /// Indexes (into the attempt's batch) of delivered messages.
    pub delivered: Vec<usize>,
    /// Indexes of messages that timed out ([`Outcome::Timeout`]); retried like `failed`.
    pub timed_out: Vec<usize>,
    /// Indexes of messages that may succeed later ([`Outcome::Retry`]).
    pub failed: Vec<usize>,
    /// Indexes of messages the target refused for good.
    pub rejected: Vec<usize>,
}

impl AttemptResult {
    /// Sorts outcomes by their kind alone. [`Outcome::Timeout`] counts as a timeout (TBMQ's
    /// `timeoutMsgs`, its "pending when the pack timed out"); the reason text is never read, so
    /// a [`Outcome::Retry`] whose text mentions a timeout (from a driver built before the typed
    /// outcome existed) is a failure.
    pub fn classify(outcomes: &[Outcome]) -> Self {
        let mut r = AttemptResult::default();
        for (i, o) in outcomes.iter().enumerate() {
            match o {
                Outcome::Delivered => r.delivered.push(i),
                Outcome::Timeout(_) => r.timed_out.push(i),
                Outcome::Retry(_) => r.failed.push(i),
                Outcome::Rejected(_) => r.rejected.push(i),
            }
        }
        r
    }

    /// Whether anything is worth another attempt.
    pub fn has_retryable(&self) -> bool {
        !self.timed_out.is_empty() || !self.failed.is_empty()
    }
}

/// Decision after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Commit the pack; what failed is given up on.
    Commit,
    /// Pause, then retry the retryable messages.
    Retry,
}

/// Decides after attempt number `attempt` (1 = the first).
///
/// Rejected messages are never retried: they failed for good (TBMQ has no such class and retries
/// them too under RETRY_ALL).
pub fn decide(strategy: AckStrategy, attempt: u32, result: &AttemptResult) -> Decision {
    match strategy {
        AckStrategy::SkipAll => Decision::Commit,
        AckStrategy::RetryAll { .. } if !result.has_retryable() => Decision::Commit,
        AckStrategy::RetryAll { retries: 0, .. } => Decision::Retry,
        AckStrategy::RetryAll { retries, .. } if attempt > retries => Decision::Commit,
        AckStrategy::RetryAll { .. } => Decision::Retry,
    }
}

/// The pause before retry number `retry` (1 = the first retry): `pause`, doubled for each retry
/// after the first, capped at `max_pause`; with backoff (`max_pause > pause`) scaled by `jitter`
/// (a factor in 0.8..1.2, so that integrations failing together do not retry in step) and capped
/// again. Without backoff every pause is exactly `pause`, as in TBMQ.
pub fn pause_before(retry: u32, pause: Duration, max_pause: Duration, jitter: f64) -> Duration {
    if max_pause <= pause {
        return pause;
    }
    let doubled = pause.saturating_mul(1u32 << retry.saturating_sub(1).min(20));
    doubled.min(max_pause).mul_f64(jitter.clamp(0.8, 1.2)).min(max_pause)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use trib_plugin_api::{abi, driver::Outcome};

    use super::{decide, pause_before, AttemptResult, Decision};
    use crate::config::AckStrategy;

    const S: Duration = Duration::from_secs(1);

    /// `[delivered, timed_out, failed, rejected]` indexes of `outcomes`.
    fn check_classes(outcomes: &[Outcome], expected: [&[usize]; 4]) {
        let r = AttemptResult::classify(outcomes);
        let got = [&r.delivered[..], &r.timed_out[..], &r.failed[..], &r.rejected[..]];
        assert_eq!(got, expected, "{outcomes:?}");
    }

    fn retry_all() -> AckStrategy {
        AckStrategy::RetryAll { retries: 3, pause: S, max_pause: S }
    }

    #[test]
    fn each_kind_has_its_class() {
        let outcomes = [
            Outcome::Rejected("404".into()),
            Outcome::Timeout("no answer".into()),
            Outcome::Delivered,
            Outcome::Retry("503".into()),
        ];
        check_classes(&outcomes, [&[2], &[1], &[3], &[0]]);
    }

    #[test]
    fn timeout_text_in_a_retry_is_a_failure_not_a_timeout() {
        let outcomes = [
            Outcome::Retry("timeout waiting for 127.0.0.1:1883 to acknowledge the message".into()),
            Outcome::Retry("request timed out".into()),
            Outcome::Retry("Timeout".into()),
        ];
        check_classes(&outcomes, [&[], &[], &[0, 1, 2], &[]]);
    }

    #[test]
    fn the_class_ignores_the_reason_text() {
        check_classes(
            &[Outcome::Timeout(String::new()), Outcome::Timeout("connection lost".into())],
            [&[], &[0, 1], &[], &[]],
        );
    }

    #[test]
    fn statuses_from_the_boundary_are_classified_by_value() {
        let from = |status: u8| Outcome::from_abi(&abi::Outcome { status, reason: "timeout".into() });
        let outcomes = [abi::outcome_status::TIMEOUT, abi::outcome_status::RETRY, 200].map(from);
        check_classes(&outcomes, [&[], &[0], &[1, 2], &[]]);
    }

    #[test]
    fn timeouts_are_retried_like_retries() {
        let timed_out = AttemptResult::classify(&[Outcome::Timeout("late".into())]);
        let failed = AttemptResult::classify(&[Outcome::Retry("down".into())]);
        assert!(timed_out.has_retryable());
        for attempt in 1..=4 {
            assert_eq!(decide(retry_all(), attempt, &timed_out), decide(retry_all(), attempt, &failed), "{attempt}");
        }
        assert_eq!(decide(retry_all(), 1, &timed_out), Decision::Retry);
        assert_eq!(decide(retry_all(), 4, &timed_out), Decision::Commit, "retries exhausted");
        assert_eq!(decide(AckStrategy::SkipAll, 1, &timed_out), Decision::Commit);
    }

    #[test]
    fn without_backoff_every_pause_is_the_configured_one() {
        for retry in [1, 2, 10, 1000] {
            assert_eq!(pause_before(retry, S, S, 1.2), S);
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let max = Duration::from_secs(30);
        let pauses: Vec<u64> = (1..=7).map(|r| pause_before(r, S, max, 1.0).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(pause_before(u32::MAX, S, max, 1.0), max, "no overflow on long retry runs");
    }

    #[test]
    fn jitter_stays_within_a_fifth_and_under_the_cap() {
        let max = Duration::from_secs(30);
        assert_eq!(pause_before(3, S, max, 0.8), Duration::from_millis(3200));
        assert_eq!(pause_before(3, S, max, 1.2), Duration::from_millis(4800));
        assert_eq!(pause_before(3, S, max, 5.0), Duration::from_millis(4800), "the factor is clamped");
        assert_eq!(pause_before(9, S, max, 1.2), max, "jitter never exceeds the cap");
    }
}
