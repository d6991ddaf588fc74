//! Password pool and lockout tests.

use super::*;

fn check_lockout(max: u32, steps: &[(&str, u64, bool)]) {
    let lockout = Lockout::new(max, Duration::from_secs(60));
    let start = Instant::now();
    for (i, &(step, at_secs, expected_locked)) in steps.iter().enumerate() {
        let now = start + Duration::from_secs(at_secs);
        match step {
            "fail" => {
                lockout.failed_at("u", now);
            }
            "ok" => lockout.succeeded("u"),
            _ => unreachable!("unknown step {step}"),
        }
        assert_eq!(lockout.is_locked_at("u", now), expected_locked, "step {i}: {step} at {at_secs}s");
    }
}

#[test]
fn locks_after_the_configured_failures() {
    check_lockout(3, &[("fail", 0, false), ("fail", 1, false), ("fail", 2, true), ("fail", 3, true)]);
}

#[test]
fn a_success_resets_the_count() {
    check_lockout(3, &[("fail", 0, false), ("fail", 1, false), ("ok", 2, false), ("fail", 3, false)]);
}

#[test]
fn the_lock_runs_out() {
    check_lockout(2, &[("fail", 0, false), ("fail", 1, true), ("fail", 61, false), ("fail", 62, true)]);
}

#[test]
fn zero_attempts_turns_it_off() {
    check_lockout(0, &[("fail", 0, false), ("fail", 1, false), ("fail", 2, false)]);
}

#[test]
fn names_are_independent() {
    let lockout = Lockout::new(1, Duration::from_secs(60));
    assert!(lockout.failed("a"));
    assert!(lockout.is_locked("a"));
    assert!(!lockout.is_locked("b"));
}

#[test]
fn the_table_stays_bounded() {
    let lockout = Lockout::new(5, Duration::from_secs(60));
    for i in 0..MAX_TRACKED_NAMES + 10 {
        lockout.failed(&format!("name-{i}"));
    }
    assert!(lockout.names.lock().len() <= MAX_TRACKED_NAMES);
}

#[tokio::test]
async fn verifies_on_a_blocking_thread_not_the_caller() {
    let pool = PasswordPool::new(2);
    let hash = pool.hash("pw".to_owned()).await.expect("hash");
    assert_eq!(pool.verify_any(vec![hash.clone()], b"pw".to_vec()).await, Some(0));
    assert_eq!(pool.verify_any(vec!["junk".to_owned(), hash], b"pw".to_vec()).await, Some(1));
    assert_eq!(pool.verify_any(Vec::new(), b"pw".to_vec()).await, None);
    let stats = pool.stats();
    assert_eq!(stats.completed, 4);
    // A current-thread runtime: the only async worker is this test's thread.
    assert_ne!(stats.last_thread, Some(std::thread::current().id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_runs_more_than_its_permits() {
    let pool = PasswordPool::new(2);
    let hash = hash_password("right").expect("hash");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (pool, hash) = (pool.clone(), hash.clone());
            tokio::spawn(async move { pool.verify_any(vec![hash], b"wrong".to_vec()).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), None);
    }
    let stats = pool.stats();
    assert_eq!(stats.completed, 16);
    assert!(stats.max_concurrent <= 2, "{stats:?}");
}
