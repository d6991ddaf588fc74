//! A subscriber that records every PUBLISH it receives on a filter, with QoS, retain flag and
//! MQTT 5 properties; it is also used to probe retained messages and to clear them.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    time::Duration,
};

use rumqttc::v5;

use super::support::{collect, unique, Target, Worker, PATIENCE};

/// How long one wait for an event may take. rumqttc's blocking client cancels its connection
/// attempt when this runs out, so it must be far above a connection's set-up time under load.
const POLL: Duration = Duration::from_secs(1);

/// One received PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub user: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub correlation: Option<Vec<u8>>,
    pub response_topic: Option<String>,
    pub expiry: Option<u32>,
    pub payload_format: Option<u8>,
}

enum Client {
    V4(rumqttc::Client),
    V5(v5::Client),
}

/// A running subscriber.
pub struct Recorder {
    client: Client,
    rx: mpsc::Receiver<Received>,
    _worker: Worker,
}

impl Recorder {
    /// Subscribes to `filter` at QoS 1 and returns once the broker acknowledged the subscription.
    /// The SUBSCRIBE goes out on every CONNACK rather than being queued up front: a SUBSCRIBE
    /// queued before the connection exists can be dropped when a slow first connection attempt
    /// is retried, which left this helper waiting for a SUBACK that never came.
    pub fn start(target: &Target, version: u8, filter: &str) -> Recorder {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let id = unique("trib-rec");
        let (client, handle) = if version == 5 {
            let mut o = v5::MqttOptions::new(id, target.host.clone(), target.port(5));
            o.set_max_packet_size(Some(4 << 20)).set_keep_alive(Duration::from_secs(30));
            let (client, mut conn) = v5::Client::new(o, 100);
            let (sub, filter) = (client.clone(), filter.to_string());
            let handle = std::thread::spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    match conn.recv_timeout(POLL) {
                        Ok(Ok(v5::Event::Incoming(v5::Incoming::ConnAck(_)))) => {
                            let _ = sub.try_subscribe(filter.as_str(), v5::mqttbytes::QoS::AtLeastOnce);
                        }
                        Ok(Ok(v5::Event::Incoming(v5::Incoming::SubAck(_)))) => {
                            let _ = ready_tx.send(());
                        }
                        Ok(Ok(v5::Event::Incoming(v5::Incoming::Publish(p)))) => {
                            let _ = tx.send(from_v5(p));
                        }
                        Ok(Ok(_)) | Err(v5::RecvTimeoutError::Timeout) => {}
                        Ok(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                        Err(v5::RecvTimeoutError::Disconnected) => break,
                    }
                }
            });
            (Client::V5(client), handle)
        } else {
            let mut o = rumqttc::MqttOptions::new(id, target.host.clone(), target.port(4));
            o.set_max_packet_size(4 << 20, 4 << 20).set_keep_alive(Duration::from_secs(30));
            let (client, mut conn) = rumqttc::Client::new(o, 100);
            let (sub, filter) = (client.clone(), filter.to_string());
            let handle = std::thread::spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    match conn.recv_timeout(POLL) {
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) => {
                            let _ = sub.try_subscribe(filter.as_str(), rumqttc::QoS::AtLeastOnce);
                        }
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => {
                            let _ = ready_tx.send(());
                        }
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                            let _ = tx.send(from_v4(p));
                        }
                        Ok(Ok(_)) | Err(rumqttc::RecvTimeoutError::Timeout) => {}
                        Ok(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                        Err(rumqttc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            });
            (Client::V4(client), handle)
        };
        let worker = Worker { stop, handle: Some(handle) };
        ready_rx.recv_timeout(PATIENCE).expect("the recorder's subscription was acknowledged");
        Recorder { client, rx, _worker: worker }
    }

    /// The next `n` messages; fails the test if they do not arrive.
    pub fn expect(&self, n: usize) -> Vec<Received> {
        collect(&self.rx, n)
    }

    /// Receives until a message on `topic` arrives; returns everything before it.
    pub fn until(&self, topic: &str) -> Vec<Received> {
        let mut out = Vec::new();
        loop {
            let next = collect(&self.rx, 1).remove(0);
            if next.topic == topic {
                return out;
            }
            out.push(next);
        }
    }

    /// Publishes at QoS 1 through the recorder's own connection.
    pub fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        let ok = match &self.client {
            Client::V4(c) => c.publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload.to_vec()).is_ok(),
            Client::V5(c) => c.publish(topic, v5::mqttbytes::QoS::AtLeastOnce, retain, payload.to_vec()).is_ok(),
        };
        assert!(ok, "publish through the recorder");
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = match &self.client {
            Client::V4(c) => c.try_disconnect().is_ok(),
            Client::V5(c) => c.try_disconnect().is_ok(),
        };
    }
}

/// The topics under `base` that hold a retained message, probed by a fresh subscriber: the
/// broker sends retained messages on subscription, before a marker published afterwards.
/// The retained messages found are cleared again.
pub fn retained(target: &Target, version: u8, base: &str) -> Vec<Received> {
    let probe = Recorder::start(target, version, &format!("{base}/#"));
    let marker = format!("{base}/marker");
    probe.publish(&marker, b"marker", false);
    let found: Vec<Received> = probe.until(&marker).into_iter().filter(|r| r.retain).collect();
    for r in &found {
        probe.publish(&r.topic, b"", true);
    }
    found
}

fn from_v4(p: rumqttc::Publish) -> Received {
    Received { topic: p.topic, payload: p.payload.to_vec(), qos: p.qos as u8, retain: p.retain, ..Default::default() }
}

fn from_v5(p: v5::mqttbytes::v5::Publish) -> Received {
    let props = p.properties.unwrap_or_default();
    Received {
        topic: String::from_utf8_lossy(&p.topic).into_owned(),
        payload: p.payload.to_vec(),
        qos: p.qos as u8,
        retain: p.retain,
        user: props.user_properties,
        content_type: props.content_type,
        correlation: props.correlation_data.map(|b| b.to_vec()),
        response_topic: props.response_topic,
        expiry: props.message_expiry_interval,
        payload_format: props.payload_format_indicator,
    }
}
