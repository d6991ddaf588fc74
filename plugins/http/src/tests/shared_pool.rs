//! The request threads shared by all instances: idle instances own none, threads end when idle,
//! and each instance's `maxParallelRequestsCount` and deadline still hold on shared threads.

use std::{
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use trib_plugin_api::driver::Outcome;

use super::{config, GENEROUS};
use crate::{
    config::HttpConfig,
    pool::{Completion, Pool, Threads},
    request::{Body, CONTENT_TYPE_BINARY},
    service::Service,
    test_server::{Reply, TestServer},
};

/// Threads of this process whose name starts with `prefix` (from /proc/self/task/*/comm).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.starts_with(prefix)))
        .count()
}

/// An instance of `config` on `threads`.
fn instance(threads: &Arc<Threads>, config: &serde_json::Value) -> Pool {
    let parsed = HttpConfig::parse(&config.to_string()).expect("valid configuration");
    let limit = parsed.workers();
    Pool::on(Arc::clone(threads), Arc::new(Service::new(&parsed)), limit)
}

fn bodies(count: usize) -> Vec<Option<Body>> {
    (0..count).map(|i| Some(Body { bytes: format!("m{i}").into_bytes(), content_type: CONTENT_TYPE_BINARY })).collect()
}

/// A server that never answers, and a receiver told of each request it gets.
fn hung_target() -> (TestServer, mpsc::Receiver<()>) {
    let (arrived_tx, arrived) = mpsc::channel();
    let arrived_tx = Mutex::new(arrived_tx);
    let server = TestServer::start(move |_, _| {
        let _ = arrived_tx.lock().expect("lock").send(());
        Reply::Hang
    });
    (server, arrived)
}

fn delivered(completions: &[Completion]) -> usize {
    completions
        .iter()
        .filter(|c| matches!(c, Completion::Done { outcome, .. } if *outcome == Outcome::Delivered))
        .count()
}

#[test]
fn started_instances_own_no_thread_while_idle() {
    const PREFIX: &str = "trib-ht-idle-";
    let threads = Threads::new(PREFIX, 64, Duration::from_millis(200));
    let server = TestServer::status(200);
    // 50 instances with the default limit (16 parallel requests each): 800 threads before the
    // pool was shared.
    let instances: Vec<Pool> = (0..50).map(|_| instance(&threads, &config(&server.url("/x"), json!({})))).collect();
    assert_eq!(threads_named(PREFIX), 0);
    assert_eq!(threads.alive(), 0);
    // A batch starts threads on demand (so the count above is of real threads)...
    let completions = instances[0].run(bodies(4), Instant::now() + GENEROUS);
    assert_eq!(delivered(&completions), 4);
    assert!(threads_named(PREFIX) >= 1, "no pool thread after a batch");
    // ...which end once idle.
    let until = Instant::now() + GENEROUS;
    while threads.alive() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(threads.alive(), 0);
    drop(instances);
}

/// Waits (up to [`GENEROUS`]) until `done` holds; whether it did.
fn eventually(done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + GENEROUS;
    while !done() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn connections_a_burst_opened_are_closed_once_the_threads_idle_out() {
    let threads = Threads::new("trib-ht-sweep-", 64, Duration::from_millis(200));
    // Slow enough that the 8 requests overlap and need 8 connections.
    let server = TestServer::start(|_, _| Reply::Delayed(200, Duration::from_millis(100)));
    let quiet = TestServer::status(200);
    let burst = instance(&threads, &config(&server.url("/burst"), json!({"maxParallelRequestsCount": 8})));
    let other = instance(&threads, &config(&quiet.url("/other"), json!({})));
    assert_eq!(delivered(&burst.run(bodies(8), Instant::now() + GENEROUS)), 8);
    assert_eq!(delivered(&other.run(bodies(1), Instant::now() + GENEROUS)), 1);
    assert!(server.connections() > 1, "the burst used {} connections", server.connections());
    assert_eq!(quiet.connections(), 1);
    // ureq would keep them open until the instance sends again (the test server closes a silent
    // connection only after 20 s); the threads close them when they idle out.
    assert!(eventually(|| server.open_connections() == 0), "still open: {}", server.open_connections());
    assert!(eventually(|| quiet.open_connections() == 0), "still open: {}", quiet.open_connections());
    assert_eq!(threads.alive(), 0);
    // The instance sends again on new connections.
    let accepted = server.connections();
    assert_eq!(delivered(&burst.run(bodies(1), Instant::now() + GENEROUS)), 1);
    assert_eq!(server.connections(), accepted + 1);
}

#[test]
fn each_instance_keeps_its_limit_on_shared_threads() {
    let threads = Threads::new("trib-ht-limit-", 64, Duration::from_secs(1));
    let slow = TestServer::start(|_, _| Reply::Delayed(200, Duration::from_millis(50)));
    let busy = TestServer::start(|_, _| Reply::Delayed(200, Duration::from_millis(50)));
    let limited = instance(&threads, &config(&slow.url("/a"), json!({"maxParallelRequestsCount": 2})));
    let other = instance(&threads, &config(&busy.url("/b"), json!({"maxParallelRequestsCount": 8})));
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| limited.run(bodies(12), Instant::now() + GENEROUS));
        let b = s.spawn(|| other.run(bodies(24), Instant::now() + GENEROUS));
        (a.join().expect("instance a"), b.join().expect("instance b"))
    });
    assert_eq!((delivered(&a), delivered(&b)), (12, 24));
    assert!(slow.max_in_flight() <= 2, "max in flight {}", slow.max_in_flight());
    assert!(busy.max_in_flight() <= 8, "max in flight {}", busy.max_in_flight());
    assert!(slow.connections() <= 2, "connections {}", slow.connections());
}

#[test]
fn a_request_waiting_for_a_shared_thread_past_its_deadline_is_never_sent() {
    // One thread for everybody: instance A's hung request holds it, so B's request cannot start.
    let threads = Threads::new("trib-ht-full-", 1, Duration::from_secs(1));
    let (hung, arrived) = hung_target();
    let idle = TestServer::status(200);
    let mut a = instance(&threads, &config(&hung.url("/a"), json!({})));
    let mut b = instance(&threads, &config(&idle.url("/b"), json!({})));
    std::thread::scope(|s| {
        let first = s.spawn(|| a.run(bodies(1), Instant::now() + Duration::from_secs(2)));
        arrived.recv_timeout(GENEROUS).expect("A's request reached its target");
        let completions = b.run(bodies(1), Instant::now() + Duration::from_millis(100));
        assert!(matches!(completions[..], [Completion::NotSent]), "{completions:?}");
        assert!(matches!(first.join().expect("instance a")[..], [Completion::NoReply]));
    });
    // Once B is stopped none of its requests is queued or in flight any more: nothing was sent.
    b.shutdown();
    a.shutdown();
    assert!(idle.requests().is_empty(), "{:?}", idle.requests());
}

#[test]
fn stopping_an_instance_takes_back_its_queued_requests() {
    let threads = Threads::new("trib-ht-stop-", 1, Duration::from_secs(1));
    let (hung, arrived) = hung_target();
    let idle = TestServer::status(200);
    let a = instance(&threads, &config(&hung.url("/a"), json!({"readTimeoutMs": 1000})));
    let mut b = instance(&threads, &config(&idle.url("/b"), json!({})));
    std::thread::scope(|s| {
        s.spawn(|| a.run(bodies(1), Instant::now() + GENEROUS));
        arrived.recv_timeout(GENEROUS).expect("A's request reached its target");
        // B's request waits for the only thread; B's batch ends at its deadline, then B stops.
        let completions = b.run(bodies(1), Instant::now() + Duration::from_millis(50));
        assert!(matches!(completions[..], [Completion::NotSent]), "{completions:?}");
        b.shutdown();
    });
    drop(a);
    assert!(idle.requests().is_empty(), "{:?}", idle.requests());
}

/// A thread that finishes an instance's request sends that instance's next waiting one itself:
/// a busy instance keeps as many threads as its limit, not one more per hand-over (before, the
/// hand-over started a new thread whenever none was waiting at that instant: 40 threads for an
/// instance limited to 16 in `cargo bench -p trib-core --bench plugin_boundary`).
#[test]
fn a_busy_instance_runs_on_as_many_threads_as_its_limit() {
    const PREFIX: &str = "trib-ht-hand-";
    let threads = Threads::new(PREFIX, 64, GENEROUS);
    let target = TestServer::start(|_, _| Reply::Delayed(200, Duration::from_millis(2)));
    let pool = instance(&threads, &config(&target.url("/a"), json!({"maxParallelRequestsCount": 4})));
    let completions = pool.run(bodies(200), Instant::now() + GENEROUS);
    assert_eq!(delivered(&completions), 200);
    // Threads idle out only after GENEROUS: every thread the run started is still there.
    let started = threads_named(PREFIX);
    assert!((1..=4).contains(&started), "{started} threads for an instance limited to 4");
}
