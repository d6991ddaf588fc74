//! Limits that protect the broker from one client: per-client token buckets and the connection cap.
//!
//! A client over a limit is disconnected by its own task; nothing here touches other clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// A set of token buckets that must all have a token for an event to pass.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    buckets: Vec<Bucket>,
    last: Instant,
}

#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    per_sec: f64,
}

impl RateLimiter {
    /// Buckets of `(messages, per period)`, each starting full.
    pub fn new(limits: &[(u32, Duration)], now: Instant) -> RateLimiter {
        RateLimiter {
            buckets: limits
                .iter()
                .map(|(n, period)| Bucket {
                    capacity: f64::from(*n),
                    tokens: f64::from(*n),
                    per_sec: f64::from(*n) / period.as_secs_f64(),
                })
                .collect(),
            last: now,
        }
    }

    /// Takes one token from every bucket; false (and nothing taken) if any bucket is empty.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        for b in &mut self.buckets {
            b.tokens = (b.tokens + elapsed * b.per_sec).min(b.capacity);
        }
        if self.buckets.iter().any(|b| b.tokens < 1.0) {
            return false;
        }
        for b in &mut self.buckets {
            b.tokens -= 1.0;
        }
        true
    }
}

/// Counts open connections against an optional maximum.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounter {
    open: AtomicUsize,
}

/// One counted connection; dropping it releases the slot.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    counter: Arc<ConnectionCounter>,
}

impl ConnectionCounter {
    /// Takes a slot, or returns `None` if `max` (non-zero) connections are open.
    pub fn acquire(self: &Arc<Self>, max: usize) -> Option<ConnectionSlot> {
        let mut current = self.open.load(Ordering::Relaxed);
        loop {
            if max != 0 && current >= max {
                return None;
            }
            match self.open.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(ConnectionSlot { counter: Arc::clone(self) }),
                Err(actual) => current = actual,
            }
        }
    }

    /// The number of open connections.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.counter.open.fetch_sub(1, Ordering::AcqRel);
    }
}
