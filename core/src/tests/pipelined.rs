//! Pipelined packs (`TB_IE_MSG_PIPELINE_DEPTH`, the `PIPELINE` capability), through a running
//! executor and the scripted driver: the next pack reaches the driver while the previous one is
//! still pending; a retry keeps the commit order and loses nothing; a stop commits only what was
//! delivered; depth 1 is stop-and-wait.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::executor::{wait_lines, Harness};
use crate::{config::AckStrategy, executor::Executor, wire::ComponentLifecycleEvent as Lc};

const WAIT: Duration = Duration::from_secs(20);

fn start(h: &Harness, ack: AckStrategy, depth: usize) -> Executor {
    let mut config = h.config("ie-pipelined", ack);
    config.msg_pipeline_depth = depth;
    Executor::start(config, h.queue.clone(), &h.report).unwrap()
}

/// Waits until the journal has a line equal to `line`; returns the journal.
fn wait_journal(path: &Path, line: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines: Vec<String> =
            std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect();
        if lines.iter().any(|l| l == line) {
            return lines;
        }
        assert!(Instant::now() < deadline, "no journal line '{line}' in {lines:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running executor with one started scripted integration that journals its calls.
struct Setup {
    h: Harness,
    ex: Executor,
    id: Uuid,
    journal: PathBuf,
    out: PathBuf,
    release: PathBuf,
    /// A payload the driver holds until `release` exists.
    held: String,
}

fn setup(ack: AckStrategy, depth: usize) -> Setup {
    let mut h = Harness::new();
    let ex = start(&h, ack, depth);
    let (journal, out, release) = (h.file("journal"), h.file("out"), h.file("release"));
    let id = Uuid::new_v4();
    h.save(id, Lc::Created, true, serde_json::json!({"recordTo": out, "journalTo": journal}));
    h.wait_lifecycle(id, Lc::Started, true);
    let held = format!("hold:{}", release.display());
    Setup { h, ex, id, journal, out, release, held }
}

#[test]
fn the_next_pack_is_handed_over_while_the_previous_one_is_pending() {
    let Setup { h, ex, id, journal, out, release, held } = setup(AckStrategy::SkipAll, 2);
    h.publish(id, &[&held]);
    wait_journal(&journal, &format!("submit {held}"));
    // Stop-and-wait would not hand this one over before the held message is acknowledged.
    h.publish(id, &["second"]);
    let journal_lines = wait_journal(&journal, "submit second");
    assert!(!journal_lines.iter().any(|l| l.starts_with("collect")), "{journal_lines:?}");
    std::fs::write(&release, "go").unwrap();
    // Outcomes are settled oldest first.
    let journal_lines = wait_journal(&journal, "collect second");
    let collects: Vec<&String> = journal_lines.iter().filter(|l| l.starts_with("collect")).collect();
    assert_eq!(collects, [&format!("collect {held}"), &"collect second".to_string()]);
    let mut delivered = wait_lines(&out, 2);
    delivered.sort();
    assert_eq!(delivered, [held, "second".to_string()]);
    ex.shutdown();
}

#[test]
fn depth_one_is_stop_and_wait() {
    let Setup { h, ex, id, journal, out, held, .. } = setup(AckStrategy::SkipAll, 1);
    // Without pipelining the driver's `process` runs, which neither holds nor journals.
    h.publish(id, &[&held, "second"]);
    assert_eq!(wait_lines(&out, 2), [held, "second".to_string()]);
    assert!(!journal.exists(), "the driver was pipelined at depth 1");
    ex.shutdown();
}

#[test]
fn a_retried_pack_is_committed_before_the_packs_after_it_and_nothing_is_lost() {
    let ack =
        AckStrategy::RetryAll { retries: 3, pause: Duration::from_millis(10), max_pause: Duration::from_millis(10) };
    let Setup { h, ex, id, journal, out, release, held } = setup(ack, 2);
    let once = format!("retry-once:{}", h.file("retried").display());
    h.publish(id, &[&held]);
    wait_journal(&journal, &format!("submit {held}"));
    // The held pack's first attempt is pending while this one (which needs a retry) and the
    // next one are submitted.
    h.publish(id, &[&once]);
    wait_journal(&journal, &format!("submit {once}"));
    std::fs::write(&release, "go").unwrap();
    h.publish(id, &["third"]);
    let mut delivered = wait_lines(&out, 3);
    delivered.sort();
    let mut expected = vec![held, once.clone(), "third".to_string()];
    expected.sort();
    assert_eq!(delivered, expected);
    // The retry was a plain call after the packs in flight were collected.
    let lines = wait_journal(&journal, &format!("collect {once}"));
    assert!(lines.iter().filter(|l| **l == format!("submit {once}")).count() >= 2, "{lines:?}");
    // Everything is committed: a restart delivers nothing again.
    ex.shutdown();
    let ex = start(&h, ack, 2);
    h.publish(id, &["after-restart"]);
    let lines = wait_lines(&out, 4);
    assert_eq!(lines.last().map(String::as_str), Some("after-restart"), "{lines:?}");
    assert_eq!(lines.len(), 4, "redelivered after a restart: {lines:?}");
    ex.shutdown();
}

#[test]
fn a_stop_leaves_packs_not_delivered_uncommitted() {
    let Setup { mut h, ex, id, journal, out, release, held } = setup(AckStrategy::SkipAll, 2);
    h.publish(id, &[&held]);
    wait_journal(&journal, &format!("submit {held}"));
    h.save(id, Lc::Updated, false, serde_json::json!({"recordTo": out, "journalTo": journal}));
    h.wait_lifecycle(id, Lc::Stopped, true);
    assert!(!out.exists(), "delivered while held");
    // Released and re-enabled: the held message comes again, as it was never committed.
    std::fs::write(&release, "go").unwrap();
    h.save(id, Lc::Updated, true, serde_json::json!({"recordTo": out, "journalTo": journal}));
    assert_eq!(wait_lines(&out, 1), [held]);
    ex.shutdown();
}
