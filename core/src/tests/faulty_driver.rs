//! A driver that misbehaves cannot hurt anything else: a driver call that never returns does not
//! block disabling, deleting or shutting down (the worker is abandoned after the forced-shutdown
//! timeout and the integration reported FAILED), a driver that panics on every pack is
//! re-created with growing pauses, not in a tight loop, and a message that makes the driver panic
//! is isolated: only it is dead-lettered, the rest of its pack is delivered.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::executor::{dead_letters, wait_lines, Harness};
use crate::{config::AckStrategy, executor::Executor, wire::ComponentLifecycleEvent as Lc};

fn wait_file(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines of a record file once one of them is `line`.
fn wait_for_line(path: &std::path::Path, line: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = wait_lines(path, 1);
        if lines.iter().any(|l| l == line) {
            return lines;
        }
        assert!(Instant::now() < deadline, "no '{line}' in {lines:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(h: &Harness, ack: AckStrategy) -> Executor {
    let mut config = h.config("ie-faulty", ack);
    config.forced_shutdown_timeout = Duration::from_millis(1_000);
    config.pack_processing_timeout = Duration::from_millis(300);
    Executor::start(config, h.queue.clone(), &h.report).unwrap()
}

#[test]
fn a_stuck_driver_does_not_block_disabling_other_saves_or_shutdown() {
    let mut h = Harness::new();
    let executor = start(&h, AckStrategy::SkipAll);
    let id = Uuid::new_v4();
    h.save(id, Lc::Created, true, serde_json::json!({}));
    h.wait_lifecycle(id, Lc::Started, true);
    let marker = h.file("hanging");
    h.publish(id, &[&format!("hang:60000:{}", marker.display())]);
    wait_file(&marker);

    // Disabling goes through the type's downlink consumer, which must not wait for the driver.
    h.save(id, Lc::Updated, false, serde_json::json!({}));
    h.wait_event("the stuck integration reported FAILED", |m| {
        m.event_proto.as_ref().and_then(|e| e.lifecycle.as_ref()).is_some_and(|l| {
            l.lc_event_type == "FAILED" && l.error.as_deref().is_some_and(|e| e.contains("did not stop within 1000 ms"))
        })
    });
    // The same downlink consumer still serves other integrations.
    let other = Uuid::new_v4();
    h.save(other, Lc::Created, true, serde_json::json!({}));
    h.wait_lifecycle(other, Lc::Started, true);

    // Shutdown is bounded too (the forced-shutdown timeout per stuck worker, at most).
    let started = Instant::now();
    executor.shutdown();
    assert!(started.elapsed() < Duration::from_secs(15), "shutdown took {:?}", started.elapsed());
}

#[test]
fn a_driver_that_panics_on_every_pack_is_recreated_with_growing_pauses() {
    let mut h = Harness::new();
    let executor = start(
        &h,
        AckStrategy::RetryAll { retries: 0, pause: Duration::from_millis(10), max_pause: Duration::from_millis(10) },
    );
    let id = Uuid::new_v4();
    h.save(id, Lc::Created, true, serde_json::json!({}));
    h.wait_lifecycle(id, Lc::Started, true);
    // Every message panics the driver: after two poison messages in a row it counts as broken.
    h.publish(id, &["panic"; 10]);
    h.wait_event("FAILED with the panic text", |m| {
        m.event_proto.as_ref().and_then(|e| e.lifecycle.as_ref()).is_some_and(|l| {
            l.lc_event_type == "FAILED" && l.error.as_deref().is_some_and(|e| e.contains("scripted panic"))
        })
    });
    // Pauses of 100, 200, 400, 800 and 1600 ms: at most six starts in the next three seconds,
    // where re-creating at once ran thousands.
    h.collect_events(Duration::from_secs(3));
    let starts = h.lifecycle_count(id, Lc::Started);
    assert!((2..=7).contains(&starts), "{starts} starts in about 3 s");
    executor.shutdown();
}

#[test]
fn only_the_poison_message_of_a_pack_is_dead_lettered() {
    let retry_forever =
        AckStrategy::RetryAll { retries: 0, pause: Duration::from_millis(10), max_pause: Duration::from_millis(10) };
    for ack in [AckStrategy::SkipAll, retry_forever] {
        let mut h = Harness::new();
        let executor = start(&h, ack);
        let (id, out) = (Uuid::new_v4(), h.file("out"));
        let config = serde_json::json!({"recordTo": out});
        h.save(id, Lc::Created, true, config.clone());
        h.wait_lifecycle(id, Lc::Started, true);
        // A backlog gathered while disabled arrives as one pack.
        h.save(id, Lc::Updated, false, config.clone());
        h.wait_lifecycle(id, Lc::Stopped, true);
        h.publish(id, &["a", "panic", "b"]);
        h.save(id, Lc::Updated, true, config);
        // On the embedded queue the three come as one pack, and "a" goes out before the panic
        // and again when isolated (at least once, as promised); a queue that splits the pack
        // sends it once.
        let lines = wait_for_line(&out, "b");
        assert!(lines == ["a", "a", "b"] || lines == ["a", "b"], "{ack:?}: {lines:?}");
        let letters = dead_letters(&h, id, 1);
        assert_eq!(letters.len(), 1, "{ack:?}: only the culprit");
        let letter = &letters[0].1;
        assert_eq!(letter.offset, 1, "{ack:?}");
        assert!(
            letter.reason.contains("poison message") && letter.reason.contains("scripted panic"),
            "{ack:?}: {}",
            letter.reason
        );
        // The integration goes on.
        h.publish(id, &["c"]);
        let after = wait_for_line(&out, "c");
        assert_eq!(after[lines.len()..], ["c"], "{ack:?}: {after:?}");
        executor.shutdown();
    }
}

#[test]
fn the_watchdog_restarts_an_integration_stuck_in_a_driver_call() {
    let mut h = Harness::new();
    let mut config = h.config("ie-watchdog", AckStrategy::SkipAll);
    config.pack_processing_timeout = Duration::from_millis(300);
    config.watchdog_grace = Duration::from_millis(500);
    let executor = Executor::start(config, h.queue.clone(), &h.report).unwrap();
    let (id, out) = (Uuid::new_v4(), h.file("out"));
    h.save(id, Lc::Created, true, serde_json::json!({"recordTo": out}));
    h.wait_lifecycle(id, Lc::Started, true);
    let stuck = format!("hang-once:60000:{}", h.file("hanging").display());
    h.publish(id, &[&stuck, "after"]);
    h.wait_event("FAILED by the watchdog", |m| {
        m.event_proto.as_ref().and_then(|e| e.lifecycle.as_ref()).is_some_and(|l| {
            l.lc_event_type == "FAILED" && l.error.as_deref().is_some_and(|e| e.contains("past its deadline"))
        })
    });
    // A fresh instance delivers the pack the stuck one never finished, and what follows.
    let lines = wait_for_line(&out, "after");
    assert_eq!(lines, [stuck.as_str(), "after"]);
    assert_eq!(executor.status().integrations, 1);
    executor.shutdown();
}

#[test]
fn a_lost_target_connection_is_reported_once_per_loss() {
    let mut h = Harness::new();
    let executor = h.start("ie-connectivity", AckStrategy::SkipAll);
    let (id, up) = (Uuid::new_v4(), h.file("up"));
    h.save(id, Lc::Created, true, serde_json::json!({"connectedWhile": up}));
    h.wait_lifecycle(id, Lc::Started, true);
    let losses = |h: &Harness| {
        h.events
            .iter()
            .filter_map(|m| m.event_proto.as_ref().and_then(|e| e.error.as_ref()))
            .filter_map(|e| e.error.as_deref())
            .filter(|e| e.contains("target disconnected") && e.contains("is missing"))
            .count()
    };
    h.wait_event("the first loss", |m| {
        let error = m.event_proto.as_ref().and_then(|e| e.error.as_ref()).and_then(|e| e.error.as_deref());
        error.is_some_and(|e| e.contains("target disconnected"))
    });
    // Still down: not reported again.
    h.collect_events(Duration::from_millis(2500));
    assert_eq!(losses(&h), 1);
    // Back, then lost again: one more.
    std::fs::write(&up, "up").unwrap();
    h.collect_events(Duration::from_millis(2500));
    std::fs::remove_file(&up).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while losses(&h) < 2 {
        assert!(Instant::now() < deadline, "the second loss was not reported");
        h.collect_events(Duration::from_millis(200));
    }
    executor.shutdown();
}
