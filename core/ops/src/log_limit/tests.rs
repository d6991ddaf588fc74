//! The decisions of [`LogLimit`] over a given clock: which occurrences are written and the
//! counts they carry.

use std::time::{Duration, Instant};

use super::*;

const SECOND: Duration = Duration::from_secs(1);

/// Feeds occurrences of `key` at the given seconds; returns what each one was told.
fn check(limit: &LogLimit, start: Instant, key: &str, seconds: &[u64], expected: &[Option<u64>]) {
    let got: Vec<Option<u64>> = seconds.iter().map(|s| limit.admit_at(key, start + SECOND * (*s as u32))).collect();
    assert_eq!(got, expected, "occurrences at {seconds:?} s");
}

#[test]
fn first_occurrence_is_written_then_one_per_interval_with_the_count() {
    let limit = LogLimit::new(SECOND * 10);
    let start = Instant::now();
    check(
        &limit,
        start,
        "a",
        &[0, 1, 2, 9, 10, 11, 25, 26],
        &[Some(0), None, None, None, Some(3), None, Some(1), None],
    );
}

#[test]
fn keys_are_limited_apart() {
    let limit = LogLimit::new(SECOND * 10);
    let start = Instant::now();
    check(&limit, start, "a", &[0, 1], &[Some(0), None]);
    check(&limit, start, "b", &[1, 2], &[Some(0), None]);
    check(&limit, start, "a", &[10], &[Some(1)]);
}

#[test]
fn ten_thousand_occurrences_in_a_minute_write_six_lines_and_lose_no_count() {
    let limit = LogLimit::default();
    let start = Instant::now();
    let mut written = Vec::new();
    for i in 0..10_000u64 {
        // One every 6 ms: a minute in all.
        if let Some(n) = limit.admit_at("k", start + Duration::from_millis(i * 6)) {
            written.push(n);
        }
    }
    assert_eq!(written.len(), 6, "{written:?}");
    // What was suppressed after the last written line comes with the next one.
    let tail = limit.admit_at("k", start + SECOND * 3600).expect("written after the interval");
    assert_eq!(written.len() as u64 + written.iter().sum::<u64>() + tail, 10_000);
}

#[test]
fn idle_keys_are_forgotten_but_not_their_counts() {
    let limit = LogLimit::new(SECOND);
    let start = Instant::now();
    check(&limit, start, "busy", &[0, 0], &[Some(0), None]);
    for i in 0..MAX_IDLE_KEYS {
        limit.admit_at(&format!("idle-{i}"), start + SECOND * 2);
    }
    limit.admit_at("late", start + SECOND * 5);
    let mut kept: Vec<String> = limit.keys.lock().unwrap().keys().cloned().collect();
    kept.sort();
    assert_eq!(kept, ["busy", "late"]);
    check(&limit, start, "busy", &[6], &[Some(1)]);
}
