//! All connections of the driver library share one runtime: many connected instances use a
//! bounded number of threads, and each still delivers.

use serde_json::json;
use trib_plugin_api::driver::{Driver, Outcome};

use super::support::{config_for, deadline, embedded, message, started, Extras};
use crate::service::{runtime_threads, MAX_BLOCKING_THREADS, THREAD_NAME};

/// Threads of this process whose name starts with one of `prefixes` (/proc/self/task/*/comm).
fn threads_named(prefixes: &[&str]) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| prefixes.iter().any(|p| name.starts_with(p)))
        .count()
}

#[test]
fn fifty_connected_instances_use_a_bounded_number_of_threads() {
    let target = embedded();
    let mut drivers: Vec<_> =
        (0..50).map(|_| started(&config_for(target, 4, json!({"topicName": "trib/shared"})))).collect();
    // Before the runtime was shared each instance ran its own thread, named `mqtt-<client id>`.
    let bound = runtime_threads() + MAX_BLOCKING_THREADS;
    let named = threads_named(&["mqtt-", THREAD_NAME]);
    assert!(named <= bound, "{named} driver threads for 50 instances (bound {bound})");
    for driver in &mut drivers {
        let msg = message("trib/shared/in", b"x", 1, false, Extras::default());
        assert_eq!(driver.process(&[msg], deadline()), vec![Outcome::Delivered]);
    }
    for driver in &mut drivers {
        driver.stop();
    }
}
