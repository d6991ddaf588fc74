//! The ack strategies: what happens to a pack after an attempt (TBMQ's
//! `IntegrationAckStrategyFactory`), as a pure function the processor calls.

use trib_plugin_api::driver::Outcome;

use crate::config::AckStrategy;

/// What the outcomes of one attempt add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptResult {
    /// Indexes (into the attempt's batch) of delivered messages.
    pub delivered: Vec<usize>,
    /// Indexes of messages that may succeed later and timed out.
    pub timed_out: Vec<usize>,
    /// Indexes of messages that may succeed later (not timeouts).
    pub failed: Vec<usize>,
    /// Indexes of messages the target refused for good.
    pub rejected: Vec<usize>,
}

impl AttemptResult {
    /// Sorts outcomes. A retry reason that mentions a timeout counts as a timeout, like TBMQ's
    /// "pending when the pack timed out".
    pub fn classify(outcomes: &[Outcome]) -> Self {
        let mut r = AttemptResult::default();
        for (i, o) in outcomes.iter().enumerate() {
            match o {
                Outcome::Delivered => r.delivered.push(i),
                Outcome::Retry(reason)
                    if reason.to_ascii_lowercase().contains("timeout") || reason.contains("timed out") =>
                {
                    r.timed_out.push(i)
                }
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
