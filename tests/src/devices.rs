//! MQTT clients of the tests (rumqttc, MQTT 3.1.1): a device that publishes a list of messages
//! and returns once the broker acknowledged every QoS 1 message, and a subscriber that collects
//! what a broker forwards. Each client's event loop runs on its own thread.

use std::{
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    time::{Duration, Instant},
};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

use crate::node::PATIENCE;

/// A message as a subscriber received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    /// The retain flag as delivered (set on a retained message sent to a new subscriber).
    pub retain: bool,
}

enum Note {
    Connected,
    Acked,
    /// PUBCOMP: a QoS 2 publish completed.
    Completed,
    Subscribed,
    Message(Received),
    Failed(String),
}

/// Publishes `messages` (topic, payload) in order as `client_id` on `host:port` with QoS 1 and
/// returns once the broker acknowledged every one of them.
pub fn publish_all(port: u16, client_id: &str, messages: &[(String, Vec<u8>)]) {
    publish_acked(port, client_id, messages, false);
}

/// Publishes one retained message (an empty payload clears the topic's one) with QoS 1 and
/// returns once the broker acknowledged it.
pub fn publish_retained(port: u16, client_id: &str, topic: &str, payload: &[u8]) {
    publish_acked(port, client_id, &[(topic.to_string(), payload.to_vec())], true);
}

/// [`publish_all`], with the retain flag `retain` on every message.
fn publish_acked(port: u16, client_id: &str, messages: &[(String, Vec<u8>)], retain: bool) {
    let (client, notes) = connect("127.0.0.1", port, client_id);
    for (topic, payload) in messages {
        client.publish(topic.as_str(), QoS::AtLeastOnce, retain, payload.clone()).expect("queue a publish");
    }
    let deadline = Instant::now() + PATIENCE;
    let mut acked = 0;
    while acked < messages.len() {
        match next(&notes, deadline) {
            Note::Acked => acked += 1,
            Note::Failed(e) => panic!("publisher {client_id} lost its connection after {acked} acks: {e}"),
            _ => {}
        }
    }
    let _ = client.disconnect();
}

/// Publishes `messages` (topic, payload, QoS 0, 1 or 2) in order and returns once the broker
/// acknowledged every QoS 1 one (PUBACK) and completed every QoS 2 one (PUBCOMP).
pub fn publish_qos(port: u16, client_id: &str, messages: &[(String, Vec<u8>, u8)]) {
    let (client, notes) = connect("127.0.0.1", port, client_id);
    let qos = |q: u8| match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    for (topic, payload, q) in messages {
        client.publish(topic.as_str(), qos(*q), false, payload.clone()).expect("queue a publish");
    }
    let deadline = Instant::now() + PATIENCE;
    let (mut acks, mut completions) = (0, 0);
    let want = |q: u8| messages.iter().filter(|m| m.2 == q).count();
    while acks < want(1) || completions < want(2) {
        match next(&notes, deadline) {
            Note::Acked => acks += 1,
            Note::Completed => completions += 1,
            Note::Failed(e) => panic!("publisher {client_id} lost its connection: {e}"),
            _ => {}
        }
    }
    let _ = client.disconnect();
}

/// Publishes `messages` in order with QoS 1 like [`publish_all`], but rides out a broker that
/// goes away: when the connection drops, it reconnects (for up to [`PATIENCE`]) and sends again
/// every message not acknowledged yet (those may arrive twice; an acknowledged one is never sent
/// again). Returns how many connections it took. When a connection fails or cannot be made, the
/// next one goes to the next of `ports` (a broker node that went away: its clients fail over to
/// another node).
pub fn publish_through_restarts(ports: &[u16], client_id: &str, messages: &[(String, Vec<u8>)]) -> usize {
    const WINDOW: usize = 100;
    let deadline = Instant::now() + PATIENCE;
    let (mut acked, mut connections, mut at) = (0, 0, 0);
    while acked < messages.len() {
        assert!(Instant::now() < deadline, "publisher {client_id}: only {acked} acknowledged");
        let Some((client, notes)) = try_connect("127.0.0.1", ports[at % ports.len()], client_id) else {
            at += 1;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        connections += 1;
        let mut sent = acked;
        let failed = loop {
            while sent < messages.len() && sent < acked + WINDOW {
                let (topic, payload) = &messages[sent];
                client.publish(topic.as_str(), QoS::AtLeastOnce, false, payload.clone()).expect("queue a publish");
                sent += 1;
            }
            if acked == messages.len() {
                break false;
            }
            match next(&notes, deadline) {
                // PUBACKs come in PUBLISH order (MQTT 4.6), so counting them is enough.
                Note::Acked => acked += 1,
                Note::Failed(_) => break true,
                _ => {}
            }
        };
        if failed {
            at += 1;
        } else {
            let _ = client.disconnect();
        }
    }
    connections
}

/// A subscriber on another broker (or the same one).
pub struct Subscriber {
    client: Client,
    notes: Receiver<Note>,
}

impl Subscriber {
    /// Connects to `host:port` and subscribes to `filter` with QoS 1.
    pub fn start(host: &str, port: u16, client_id: &str, filter: &str) -> Subscriber {
        Subscriber::start_qos(host, port, client_id, filter, QoS::AtLeastOnce)
    }

    /// Connects to `host:port` with a persistent session (clean session off) and subscribes to
    /// `filter` with QoS 1; dropping it leaves the session on the broker.
    pub fn start_persistent(host: &str, port: u16, client_id: &str, filter: &str) -> Subscriber {
        let (client, notes) = connect_with(host, port, client_id, false);
        Subscriber::subscribed(client, notes, client_id, filter, QoS::AtLeastOnce)
    }

    /// Disconnects and waits until the connection is gone. A message the broker routes to the
    /// session after this is kept for it: with a plain drop, one routed while the DISCONNECT was
    /// still queued in the client reached it and was acknowledged (delivered, so not kept).
    pub fn leave(self) {
        self.client.disconnect().expect("queue a disconnect");
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.notes.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                // The broker closed the connection (or the event loop ended): the client is gone.
                Ok(Note::Failed(_)) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("the connection did not close after DISCONNECT"),
            }
        }
    }

    /// Connects to `host:port` again with the persistent session of `client_id`, subscribing to
    /// nothing: what it gets comes from the session.
    pub fn resume(host: &str, port: u16, client_id: &str) -> Subscriber {
        let (client, notes) = connect_with(host, port, client_id, false);
        Subscriber { client, notes }
    }

    /// Connects to `host:port` and subscribes to `filter` with `qos`.
    pub fn start_qos(host: &str, port: u16, client_id: &str, filter: &str, qos: QoS) -> Subscriber {
        let (client, notes) = connect(host, port, client_id);
        Subscriber::subscribed(client, notes, client_id, filter, qos)
    }

    fn subscribed(client: Client, notes: Receiver<Note>, client_id: &str, filter: &str, qos: QoS) -> Subscriber {
        client.subscribe(filter, qos).expect("queue a subscribe");
        let deadline = Instant::now() + PATIENCE;
        loop {
            match next(&notes, deadline) {
                Note::Subscribed => break,
                Note::Failed(e) => panic!("subscriber {client_id} failed: {e}"),
                _ => {}
            }
        }
        Subscriber { client, notes }
    }

    /// Waits for `count` messages.
    pub fn take(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        let mut got = Vec::new();
        while got.len() < count {
            match self.notes.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Note::Message(m)) => got.push(m),
                Ok(Note::Failed(e)) => panic!("subscriber failed after {} messages: {e}; got {got:?}", got.len()),
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {count} messages; got {got:?}"),
            }
        }
        got
    }

    /// Whatever arrives within `window` (to check that nothing more comes).
    pub fn drain(&self, window: Duration) -> Vec<Received> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        while let Ok(note) = self.notes.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Note::Message(m) = note {
                got.push(m);
            }
        }
        got
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}

fn connect(host: &str, port: u16, client_id: &str) -> (Client, Receiver<Note>) {
    connect_with(host, port, client_id, true)
}

/// [`connect`] with the clean session flag `clean`.
fn connect_with(host: &str, port: u16, client_id: &str, clean: bool) -> (Client, Receiver<Note>) {
    let (client, notes) = start_with(host, port, client_id, clean);
    let deadline = Instant::now() + PATIENCE;
    match next(&notes, deadline) {
        Note::Connected => {}
        Note::Failed(e) => panic!("{client_id} cannot connect to {host}:{port}: {e}"),
        _ => panic!("{client_id}: unexpected first event"),
    }
    (client, notes)
}

/// Like [`connect`], but `None` when the broker does not accept the connection.
fn try_connect(host: &str, port: u16, client_id: &str) -> Option<(Client, Receiver<Note>)> {
    let (client, notes) = start(host, port, client_id);
    match next(&notes, Instant::now() + PATIENCE) {
        Note::Connected => Some((client, notes)),
        _ => None,
    }
}

/// A client whose event loop runs on its own thread and stops at the first error.
fn start(host: &str, port: u16, client_id: &str) -> (Client, Receiver<Note>) {
    start_with(host, port, client_id, true)
}

/// [`start`] with the clean session flag `clean`.
fn start_with(host: &str, port: u16, client_id: &str, clean: bool) -> (Client, Receiver<Note>) {
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30)).set_clean_session(clean);
    let (client, mut connection) = Client::new(options, 1000);
    let (tx, notes) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            let note = match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => Note::Connected,
                Ok(Event::Incoming(Packet::PubAck(_))) => Note::Acked,
                Ok(Event::Incoming(Packet::PubComp(_))) => Note::Completed,
                Ok(Event::Incoming(Packet::SubAck(_))) => Note::Subscribed,
                Ok(Event::Incoming(Packet::Publish(p))) => Note::Message(Received {
                    topic: p.topic.clone(),
                    payload: p.payload.to_vec(),
                    qos: p.qos as u8,
                    retain: p.retain,
                }),
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Note::Failed(e.to_string()));
                    break;
                }
            };
            if tx.send(note).is_err() {
                break;
            }
        }
    });
    (client, notes)
}

fn next(notes: &Receiver<Note>, deadline: Instant) -> Note {
    match notes.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(note) => note,
        Err(RecvTimeoutError::Timeout) => panic!("timed out waiting for the MQTT client"),
        Err(RecvTimeoutError::Disconnected) => Note::Failed("event loop ended".into()),
    }
}
