//! Test support: starting a broker and driving rumqttc clients (v4 and v5) step by step.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{Broker, BrokerConfig, BrokerHandle, BrokerHooks};

/// The longest any single step may take before the test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(10);

/// Starts a broker on 127.0.0.1 with a free port, after `f` adjusts the config.
pub async fn start(f: impl FnOnce(&mut BrokerConfig)) -> BrokerHandle {
    start_with(f, BrokerHooks::default()).await
}

/// Like `start`, with hooks.
pub async fn start_with(f: impl FnOnce(&mut BrokerConfig), hooks: BrokerHooks) -> BrokerHandle {
    trib_test_support::logs::init();
    let mut config = BrokerConfig::default();
    config.listener.tcp.bind_address = "127.0.0.1".to_owned();
    config.listener.tcp.bind_port = 0;
    f(&mut config);
    Broker::start_with(config, hooks).await.expect("broker starts")
}

/// Fails the test if `fut` takes longer than `WAIT`.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Polls `cond` until it holds (or fails after `WAIT`).
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

macro_rules! client_type {
    ($name:ident, $client:ty, $opts:ty, $event:ty, $err:ty) => {
        /// A rumqttc client whose event loop runs in a task and reports into a channel.
        pub struct $name {
            pub client: $client,
            events: mpsc::UnboundedReceiver<Result<$event, $err>>,
            _task: AbortOnDrop,
        }

        impl $name {
            /// Starts the client; the first event is the CONNACK or an error.
            pub fn spawn(addr: SocketAddr, id: &str, f: impl FnOnce(&mut $opts)) -> $name {
                let mut opts = <$opts>::new(id, addr.ip().to_string(), addr.port());
                opts.set_keep_alive(Duration::from_secs(30));
                f(&mut opts);
                $name::from_options(opts)
            }

            /// Starts a client with options made by the caller (e.g. a `ws://` broker address).
            pub fn from_options(opts: $opts) -> $name {
                let (client, mut eventloop) = <$client>::new(opts, 100);
                let (tx, events) = mpsc::unbounded_channel();
                let task = tokio::spawn(async move {
                    loop {
                        let ev = eventloop.poll().await;
                        let stop = ev.is_err();
                        if tx.send(ev).is_err() || stop {
                            break;
                        }
                    }
                });
                $name { client, events, _task: AbortOnDrop(task) }
            }

            /// The next event from the event loop.
            pub async fn next(&mut self) -> Result<$event, $err> {
                within("a client event", self.events.recv()).await.expect("event loop task ended")
            }

            /// The next event that `pick` selects; other events are skipped, errors panic.
            pub async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&$event) -> Option<T>) -> T {
                loop {
                    match self.next().await {
                        Ok(ev) => {
                            if let Some(v) = pick(&ev) {
                                return v;
                            }
                        }
                        Err(e) => panic!("connection error while waiting for {what}: {e:?}"),
                    }
                }
            }

            /// The error that ends the connection, skipping other events.
            pub async fn closed(&mut self) -> $err {
                loop {
                    if let Err(e) = self.next().await {
                        return e;
                    }
                }
            }
        }
    };
}

client_type!(C4, rumqttc::AsyncClient, rumqttc::MqttOptions, rumqttc::Event, rumqttc::ConnectionError);
client_type!(C5, rumqttc::v5::AsyncClient, rumqttc::v5::MqttOptions, rumqttc::v5::Event, rumqttc::v5::ConnectionError);

impl C4 {
    /// Connects and waits for a successful CONNACK.
    pub async fn connect(
        addr: SocketAddr,
        id: &str,
        f: impl FnOnce(&mut rumqttc::MqttOptions),
    ) -> (C4, rumqttc::ConnAck) {
        let mut c = C4::spawn(addr, id, f);
        let ack = c.connack().await;
        (c, ack)
    }

    /// Waits for the CONNACK.
    pub async fn connack(&mut self) -> rumqttc::ConnAck {
        self.wait_for("connack", |ev| match ev {
            rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a)) => Some(a.clone()),
            _ => None,
        })
        .await
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) -> rumqttc::SubAck {
        self.client.subscribe(filter, qos).await.expect("subscribe queued");
        self.wait_for("suback", |ev| match ev {
            rumqttc::Event::Incoming(rumqttc::Packet::SubAck(a)) => Some(a.clone()),
            _ => None,
        })
        .await
    }

    /// Publishes and waits until the broker acknowledged it (QoS 1/2) or it was sent (QoS 0).
    pub async fn publish(&mut self, topic: &str, qos: rumqttc::QoS, retain: bool, payload: &[u8]) {
        self.client.publish(topic, qos, retain, payload.to_vec()).await.expect("publish queued");
        self.wait_for("publish acknowledgement", |ev| match (qos, ev) {
            (rumqttc::QoS::AtMostOnce, rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(_))) => Some(()),
            (rumqttc::QoS::AtLeastOnce, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => Some(()),
            (rumqttc::QoS::ExactlyOnce, rumqttc::Event::Incoming(rumqttc::Packet::PubComp(_))) => Some(()),
            _ => None,
        })
        .await
    }

    /// The next incoming PUBLISH.
    pub async fn message(&mut self) -> rumqttc::Publish {
        self.wait_for("publish", |ev| match ev {
            rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => Some(p.clone()),
            _ => None,
        })
        .await
    }
}

impl C5 {
    /// Connects and waits for a successful CONNACK.
    pub async fn connect(
        addr: SocketAddr,
        id: &str,
        f: impl FnOnce(&mut rumqttc::v5::MqttOptions),
    ) -> (C5, rumqttc::v5::mqttbytes::v5::ConnAck) {
        let mut c = C5::spawn(addr, id, f);
        let ack = c.connack().await;
        (c, ack)
    }

    /// Waits for the CONNACK of a client started with `spawn` or `from_options`.
    pub async fn connack(&mut self) -> rumqttc::v5::mqttbytes::v5::ConnAck {
        self.wait_for("connack", |ev| match ev {
            rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::ConnAck(a)) => Some(a.clone()),
            _ => None,
        })
        .await
    }

    /// Subscribes with options and waits for the SUBACK.
    pub async fn subscribe_filter(
        &mut self,
        filter: rumqttc::v5::mqttbytes::v5::Filter,
        props: Option<rumqttc::v5::mqttbytes::v5::SubscribeProperties>,
    ) -> rumqttc::v5::mqttbytes::v5::SubAck {
        match props {
            Some(p) => self.client.subscribe_many_with_properties([filter], p).await,
            None => self.client.subscribe_many([filter]).await,
        }
        .expect("subscribe queued");
        self.wait_for("suback", |ev| match ev {
            rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::SubAck(a)) => Some(a.clone()),
            _ => None,
        })
        .await
    }

    /// Subscribes with default options and waits for the SUBACK.
    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: rumqttc::v5::mqttbytes::QoS,
    ) -> rumqttc::v5::mqttbytes::v5::SubAck {
        self.subscribe_filter(rumqttc::v5::mqttbytes::v5::Filter::new(filter, qos), None).await
    }

    /// Publishes (with properties) and waits for the acknowledgement, as `C4::publish`.
    pub async fn publish_props(
        &mut self,
        topic: &str,
        qos: rumqttc::v5::mqttbytes::QoS,
        retain: bool,
        payload: &[u8],
        props: rumqttc::v5::mqttbytes::v5::PublishProperties,
    ) {
        use rumqttc::v5::mqttbytes::QoS as Q;
        use rumqttc::v5::{Event, Incoming};
        self.client.publish_with_properties(topic, qos, retain, payload.to_vec(), props).await.expect("publish queued");
        self.wait_for("publish acknowledgement", |ev| match (qos, ev) {
            (Q::AtMostOnce, Event::Outgoing(rumqttc::Outgoing::Publish(_))) => Some(()),
            (Q::AtLeastOnce, Event::Incoming(Incoming::PubAck(_))) => Some(()),
            (Q::ExactlyOnce, Event::Incoming(Incoming::PubComp(_))) => Some(()),
            _ => None,
        })
        .await
    }

    /// Publishes without properties, as `C4::publish`.
    pub async fn publish(&mut self, topic: &str, qos: rumqttc::v5::mqttbytes::QoS, retain: bool, payload: &[u8]) {
        self.publish_props(topic, qos, retain, payload, Default::default()).await
    }

    /// The next incoming PUBLISH.
    pub async fn message(&mut self) -> rumqttc::v5::mqttbytes::v5::Publish {
        self.wait_for("publish", |ev| match ev {
            rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::Publish(p)) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// The reason code of the DISCONNECT the broker sends, skipping other events.
    pub async fn disconnect_reason(&mut self) -> rumqttc::v5::mqttbytes::v5::DisconnectReasonCode {
        match self.closed().await {
            rumqttc::v5::ConnectionError::MqttState(rumqttc::v5::StateError::ServerDisconnect {
                reason_code, ..
            }) => reason_code,
            other => panic!("expected a DISCONNECT from the broker, got {other:?}"),
        }
    }
}

/// A client of a broker service's REST API, logged in as an administrator.
#[cfg(feature = "service")]
/// The administrator of the in-process broker services the tests start.
pub const ADMIN: &str = "admin@test.local";
/// Their password.
pub const PASSWORD: &str = "admin-password";

/// The settings of an in-process broker service (all-in-one wiring, loopback ports chosen by
/// the system, the test administrator, a fixed JWT key) on the database `db`, with `extra`
/// added or overriding.
pub fn service_env(db: &str, extra: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let base = [
        ("HTTP_BIND_ADDRESS", "127.0.0.1"),
        ("HTTP_BIND_PORT", "0"),
        ("LISTENER_TCP_BIND_ADDRESS", "127.0.0.1"),
        ("LISTENER_TCP_BIND_PORT", "0"),
        ("TB_ADMIN_USERNAME", ADMIN),
        ("TB_ADMIN_PASSWORD", PASSWORD),
        ("JWT_TOKEN_SIGNING_KEY", "test-signing-key-test-signing-key"),
        ("SPRING_DATASOURCE_URL", db),
    ];
    base.iter().chain(extra).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

pub struct Rest {
    base: String,
    http: reqwest::Client,
    token: String,
}

#[cfg(feature = "service")]
impl Rest {
    /// Logs in on the REST API at `addr`.
    pub async fn login(addr: SocketAddr, username: &str, password: &str) -> Rest {
        let (base, http) = (format!("http://{addr}"), reqwest::Client::new());
        let login = http
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login");
        let body: serde_json::Value = login.json().await.expect("login body");
        let token = body["token"].as_str().expect("token").to_owned();
        Rest { base, http, token }
    }

    /// One request with the token: the status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Authorization", format!("Bearer {}", self.token));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }
}

/// Opens an embedded queue directory for a broker "process" of a restart test, waiting (up to
/// 20 s) until the previous process's handles on it are gone.
pub fn open_queue(dir: &std::path::Path) -> std::sync::Arc<dyn trib_queue::queue::Queue> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match trib_queue::queue::embedded::EmbeddedQueue::open(dir, 64 << 20) {
            Ok(q) => return std::sync::Arc::new(q),
            Err(e) => assert!(std::time::Instant::now() < deadline, "queue directory still held: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
