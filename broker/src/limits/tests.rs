//! Token bucket and connection counter tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

#[test]
fn token_buckets_all_must_have_room_and_refill() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(&[(2, Duration::from_secs(1)), (3, Duration::from_secs(60))], t0);
    let steps = [(0, true), (0, true), (0, false), (1000, true), (2000, false), (22_000, true)];
    for (ms, expected) in steps {
        assert_eq!(limiter.try_take(t0 + Duration::from_millis(ms)), expected, "at {ms} ms");
    }
}

#[test]
fn connection_counter_caps_and_releases() {
    let counter = Arc::new(ConnectionCounter::default());
    let a = counter.acquire(2).expect("first");
    let _b = counter.acquire(2).expect("second");
    assert!(counter.acquire(2).is_none());
    drop(a);
    assert!(counter.acquire(2).is_some());
    assert!(counter.acquire(0).is_some(), "0 means unlimited");
}
