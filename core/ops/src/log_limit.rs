//! Rate limits for log lines that repeat: a failing target under `SKIP_ALL` or a full queue
//! would otherwise write one line per batch or per message (thousands a second).
//!
//! A [`LogLimit`] is kept beside the line it limits (one per call site), keyed by what the line
//! is about (an integration id, a reason). The first occurrence of a key is written at once;
//! after it, at most one occurrence per interval (10 s by default) is written, carrying the
//! number of occurrences suppressed since the previous written one, so that no count is lost:
//!
//! ```
//! # use trib_ops::log_limit::LogLimit;
//! static REFUSED: std::sync::LazyLock<LogLimit> = std::sync::LazyLock::new(LogLimit::default);
//! # let integration_id = "5f0e";
//! if let Some(suppressed) = REFUSED.admit(integration_id) {
//!     // tracing::error!(integration_id, suppressed, "Integration message refused by the queue.");
//! #   let _ = suppressed;
//! }
//! ```
//!
//! Occurrences suppressed after the last written line are reported with the next one (there is
//! no timer): a problem that stops leaves its last count unreported, which is the price of
//! writing nothing when nothing happens.
//! Deliberately not here: the log lines themselves (each call site keeps its fields and text).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How often a repeated line is written by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Keys kept before the ones with nothing to report are forgotten.
const MAX_IDLE_KEYS: usize = 1024;

/// Decides which occurrences of a repeated log line are written (see the module documentation).
#[derive(Debug)]
pub struct LogLimit {
    interval: Duration,
    keys: Mutex<HashMap<String, Slot>>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When an occurrence was last written.
    written_at: Instant,
    /// Occurrences suppressed since then.
    suppressed: u64,
}

impl Default for LogLimit {
    fn default() -> Self {
        LogLimit::new(DEFAULT_INTERVAL)
    }
}

impl LogLimit {
    /// A limit writing at most one line per `interval` and key.
    pub fn new(interval: Duration) -> Self {
        LogLimit { interval, keys: Mutex::new(HashMap::new()) }
    }

    /// Whether this occurrence of the line about `key` is written now: `Some(n)`, with `n` the
    /// occurrences suppressed since the previous written one (0 the first time), or `None` when
    /// it is suppressed (and counted).
    pub fn admit(&self, key: &str) -> Option<u64> {
        self.admit_at(key, Instant::now())
    }

    /// [`LogLimit::admit`] at the time `now` (tests give the time instead of waiting for it).
    pub fn admit_at(&self, key: &str, now: Instant) -> Option<u64> {
        // A panic while holding the lock leaves counts that are still counts.
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = keys.get_mut(key) {
            if now.saturating_duration_since(slot.written_at) < self.interval {
                slot.suppressed += 1;
                return None;
            }
            let suppressed = std::mem::take(&mut slot.suppressed);
            slot.written_at = now;
            return Some(suppressed);
        }
        if keys.len() >= MAX_IDLE_KEYS {
            // Keys whose interval passed with nothing suppressed would be written at once
            // anyway: forgetting them changes nothing but the memory they take.
            let interval = self.interval;
            keys.retain(|_, s| s.suppressed > 0 || now.saturating_duration_since(s.written_at) < interval);
        }
        keys.insert(key.to_string(), Slot { written_at: now, suppressed: 0 });
        Some(0)
    }
}

#[cfg(test)]
mod tests;
