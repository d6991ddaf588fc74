//! Faults on the all-in-one process under `RETRY_ALL` (retries 0 = forever, 1 s pause): the target
//! refusing for a while, the integration disabled and enabled again, and the process restarted
//! on the same data directory (SIGKILL, then SIGTERM). Each test counts the duplicates the target saw and reports them.
//!
//! The in-process queue is stored in the data directory: a process killed with SIGKILL comes
//! back with its integrations and delivers what was queued and not yet delivered.

use serde_json::Value;

use crate::{
    devices::{publish_all, publish_retained, Subscriber},
    http_target::{bodies, numbers, HttpTarget},
    node::{unique, wait_for, Mode, Node},
    report,
    rest::{http_integration, Rest},
};

const COUNT: usize = 20;

/// One node with one JSON HTTP integration of `<root>/#` to a fresh target, warmed up: a first
/// message (`n` = -1) was delivered, so the integration is known to run before a fault starts.
struct Setup {
    node: Node,
    rest: Rest,
    target: HttpTarget,
    id: String,
    root: String,
    device: String,
    /// Last, so that the node's log outlives the node.
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = Node::start(Mode::AllInOne, dir.path(), &[]);
        let rest = Rest::login(&node.api());
        rest.wait_executors(&["HTTP"], 1);
        let target = HttpTarget::start();
        let root = unique("line");
        let id =
            rest.create_integration(&http_integration(&unique("faults"), &target.url("/in"), &format!("{root}/#")));
        rest.wait_state(&id, "Active");
        let setup = Setup { _dir: dir, node, rest, target, id, root, device: unique("dev") };
        setup.publish(-1..0);
        setup.target.wait_delivered("the first message", |d| !d.is_empty());
        setup
    }

    fn publish(&self, range: std::ops::Range<i64>) {
        let messages: Vec<(String, Vec<u8>)> = range
            .map(|n| (format!("{}/{}", self.root, n.rem_euclid(3)), format!("{{\"n\":{n}}}").into_bytes()))
            .collect();
        publish_all(self.node.mqtt_port, &self.device, &messages);
    }

    /// Waits until every `n` of `expected` was delivered; checks that the first deliveries come
    /// in `expected` order and returns the number of duplicates.
    fn check_delivered(&self, label: &str, expected: &[i64]) -> usize {
        let got = self.target.wait_delivered(label, |d| {
            let seen = numbers(&d[1..]);
            expected.iter().all(|n| seen.contains(n))
        });
        let seen = numbers(&got[1..]);
        let mut first: Vec<i64> = Vec::new();
        for n in &seen {
            if !first.contains(n) {
                first.push(*n);
            }
        }
        assert_eq!(first, expected, "{label}: every message, first deliveries in order:\n{}", bodies(&got));
        let duplicates = seen.len() - expected.len();
        report(&format!(
            "{label}: {} delivered, {duplicates} duplicate(s), {} refused",
            seen.len(),
            self.target.refused()
        ));
        duplicates
    }
}

#[test]
fn target_down_then_back_delivers_every_message_in_order() {
    let s = Setup::new();
    // Refuse at least one whole attempt, recover at the start of a later one.
    s.target.fail_then_recover(COUNT / 2);
    s.publish(0..COUNT as i64);
    let expected: Vec<i64> = (0..COUNT as i64).collect();
    s.check_delivered("503 then 200", &expected);
    assert!(s.target.refused() >= COUNT / 2, "the target refused messages first");
}

#[test]
fn messages_published_while_disabled_are_delivered_after_enable() {
    let s = Setup::new();
    let (code, answer) = s.rest.post(&format!("/api/integration/{}/disable", s.id), &Value::Null);
    assert_eq!(code, 200, "disable: {answer}");
    s.rest.wait_state(&s.id, "Disabled");
    wait_for("the integration to stop", || {
        let (_, status) = s.rest.get(&format!("/api/integration/{}/status", s.id));
        (status["lastLifecycleEvent"]["body"]["event"] == "STOPPED").then_some(())
    });
    s.publish(0..COUNT as i64);
    // Nothing may arrive while it is disabled; a later message proves the window was long
    // enough for the process to have handled the burst (it is on another integration).
    let probe = HttpTarget::start();
    let probe_id =
        s.rest.create_integration(&http_integration(&unique("probe"), &probe.url("/p"), &format!("{}/0", s.root)));
    s.rest.wait_state(&probe_id, "Active");
    s.publish(100..103);
    probe.wait_delivered("the probe integration's message", |d| numbers(d).contains(&102));
    assert_eq!(s.target.delivered().len(), 1, "nothing delivered while disabled: {}", bodies(&s.target.delivered()));

    let (code, answer) = s.rest.post(&format!("/api/integration/{}/enable", s.id), &Value::Null);
    assert_eq!(code, 200, "enable: {answer}");
    let mut expected: Vec<i64> = (0..COUNT as i64).collect();
    expected.extend(100..103);
    s.check_delivered("published while disabled", &expected);
}

#[test]
fn killed_process_restarts_with_its_integrations_and_delivers_the_backlog() {
    let mut s = Setup::new();
    // Five messages the target refuses: queued, retried, never delivered before the crash.
    s.target.set_status(503);
    s.publish(0..5);
    wait_for("the refused messages to be retried", || (s.target.refused() >= 10).then_some(()));
    s.node.kill();
    s.target.set_status(200);
    s.node.restart();
    let rest = Rest::login(&s.node.api());
    rest.wait_executors(&["HTTP"], 1);
    let (code, integration) = rest.get(&format!("/api/integration/{}", s.id));
    assert_eq!(code, 200, "the integration is still in the database: {integration}");
    assert_eq!(integration["enabled"], true);

    // The integration starts again from the stored downlink topic and resumes its message topic
    // at the committed offset: the five refused messages arrive, then the new ones.
    s.publish(20..20 + COUNT as i64);
    let expected: Vec<i64> = (0..5).chain(20..20 + COUNT as i64).collect();
    let duplicates = s.check_delivered("the backlog queued before SIGKILL, then the new messages", &expected);
    report(&format!(
        "restart after SIGKILL: the 5 queued messages and {COUNT} new ones delivered ({duplicates} duplicate(s))"
    ));

    // A clean stop (SIGTERM) and start: delivery goes on.
    let status = s.node.terminate();
    assert!(status.success(), "SIGTERM is a clean stop ({status})\n{}", s.node.log_tail());
    s.node.restart();
    Rest::login(&s.node.api()).wait_executors(&["HTTP"], 1);
    s.publish(50..53);
    let mut expected = expected;
    expected.extend(50..53);
    s.check_delivered("messages after a clean restart", &expected);
}

#[test]
fn rejected_messages_are_kept_as_dead_letters_and_replayed() {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let s = Setup::new();
    // 404: the target refuses for good, so nothing is retried; the executor keeps them.
    s.target.set_status(404);
    s.publish(0..5);
    let path = format!("/api/integration/{}/deadLetters", s.id);
    let letters = wait_for("five dead letters", || {
        let (code, body) = s.rest.get(&path);
        (code == 200 && body["data"].as_array().is_some_and(|d| d.len() == 5)).then_some(body)
    });
    assert_eq!(letters["total"], 5, "{letters}");
    for (n, letter) in letters["data"].as_array().expect("data").iter().enumerate() {
        assert!(letter["reason"].as_str().is_some_and(|r| r.starts_with("rejected: ")), "{letter}");
        assert_eq!(letter["attempts"], 1, "{letter}");
        let payload = STANDARD.decode(letter["payload"].as_str().expect("payload")).expect("base64");
        assert_eq!(payload, format!("{{\"n\":{n}}}").into_bytes(), "in order: {letter}");
    }

    // The target is fixed: a replay sends them through the integration again, once.
    s.target.set_status(200);
    let (code, body) = s.rest.post(&format!("{path}/replay"), &Value::Null);
    assert_eq!((code, body["replayed"].as_i64()), (200, Some(5)), "{body}");
    let duplicates = s.check_delivered("the replayed dead letters", &(0..5).collect::<Vec<_>>());
    let (code, body) = s.rest.post(&format!("{path}/replay"), &Value::Null);
    assert_eq!((code, body["replayed"].as_i64()), (200, Some(0)), "a second replay sends nothing: {body}");
    report(&format!("dead letters: 5 rejected, kept with their reason, replayed once ({duplicates} duplicate(s))"));
}

#[test]
fn a_persistent_session_and_retained_messages_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = Node::start(Mode::AllInOne, dir.path(), &[]);
    let (root, keeper) = (unique("kept"), unique("keeper"));
    // The keeper subscribes with a persistent session and goes away; three QoS 1 messages wait
    // for it, and a retained message is set.
    Subscriber::start_persistent("127.0.0.1", node.mqtt_port, &keeper, &format!("{root}/#")).leave();
    let messages: Vec<(String, Vec<u8>)> =
        (1..=3).map(|n| (format!("{root}/m"), format!("{{\"n\":{n}}}").into_bytes())).collect();
    publish_all(node.mqtt_port, &unique("dev"), &messages);
    publish_retained(node.mqtt_port, &unique("dev"), &format!("{root}/state"), b"on");
    node.kill();
    node.restart();

    let back = Subscriber::resume("127.0.0.1", node.mqtt_port, &keeper);
    let got: Vec<Vec<u8>> = back.take(3).into_iter().map(|m| m.payload).collect();
    let sent: Vec<Vec<u8>> = messages.into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, sent, "the session's queued messages, in order, after SIGKILL and restart");
    let reader = Subscriber::start("127.0.0.1", node.mqtt_port, &unique("reader"), &format!("{root}/state"));
    let retained = wait_for("the retained message after the restart", || {
        reader.drain(std::time::Duration::from_millis(200)).into_iter().find(|m| m.retain)
    });
    assert_eq!(retained.payload, b"on");
    report("restart after SIGKILL: a persistent session's 3 queued messages and a retained message are there");
}
