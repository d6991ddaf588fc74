//! Test peers: the embedded broker (ours, started once per test binary), the optional real
//! broker named by `TRIB_TEST_MQTT_BROKER`, a recording subscriber, a retained-message probe,
//! and helpers to build messages and start the driver.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, OnceLock,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use trib_broker::{auth::hash_password, Broker, BrokerConfig, BrokerHandle, Credential};
use trib_plugin_api::abi_stable::std_types::{RSlice, RStr};
use trib_plugin_api::{
    abi::{Message, StartConfig, UserProperty},
    driver::{Driver, Host},
};

use crate::driver::MqttDriver;

/// The env var naming a real broker (`host:port`) that every delivery test also runs against.
pub const BROKER_ENV: &str = "TRIB_TEST_MQTT_BROKER";
/// How long a test waits for something that should happen at once; reaching it fails the test.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Username and password accepted by the embedded broker's authenticating listeners.
pub const USER: &str = "trib-user";
pub const PASSWORD: &str = "trib-secret";

/// A broker the tests publish to.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    pub host: String,
    /// Port speaking MQTT 3.1.1 (and, for a real broker, 5 as well).
    pub port_v4: u16,
    /// Port speaking MQTT 5.
    pub port_v5: u16,
    /// Ports (v4, v5) where [`USER`] / [`PASSWORD`] log in and a wrong login is refused, when the
    /// broker has them.
    pub auth_ports: Option<(u16, u16)>,
}

impl Target {
    pub fn port(&self, version: u8) -> u16 {
        if version == 5 {
            self.port_v5
        } else {
            self.port_v4
        }
    }
}

/// The embedded broker, plus the real one when [`BROKER_ENV`] is set.
pub fn targets() -> Vec<Target> {
    let mut all = vec![embedded().clone()];
    if let Ok(addr) = std::env::var(BROKER_ENV) {
        let (host, port) = addr.rsplit_once(':').expect("TRIB_TEST_MQTT_BROKER is host:port");
        let port: u16 = port.parse().expect("TRIB_TEST_MQTT_BROKER port is a number");
        all.push(Target { name: "env", host: host.to_string(), port_v4: port, port_v5: port, auth_ports: None });
    }
    all
}

/// The embedded broker: our own `trib-broker`, in this process, started once per test binary on
/// a runtime of its own; it lives as long as the binary. One port speaks MQTT 3.1.1 and 5, lets
/// anonymous clients in and checks a login against [`USER`] / [`PASSWORD`] (a wrong one is refused
/// with BadUserNamePassword), so a recorder sees what a logged-in driver publishes.
///
/// This was rumqttd 0.20 until a CI run lost 16 tests to it: a client that closes its socket
/// before rumqttd writes the CONNACK leaves a stale will sender behind, and the next connection
/// with that client id panics while holding the listener's `will_handlers` lock, poisoning it for
/// every later connection (bytebeamio/rumqtt#1062, fix in #1066, unreleased). The driver's
/// reconnects with its configured client id after a cut connection are exactly that.
pub fn embedded() -> &'static Target {
    static EMBEDDED: OnceLock<Target> = OnceLock::new();
    EMBEDDED.get_or_init(|| {
        let port = trib_test_support::serve_forever("test-broker", || async {
            let password_hash = hash_password(PASSWORD).expect("hash the test password");
            let broker = start_broker(|c| {
                c.security.credentials = vec![Credential { username: USER.to_string(), password_hash }];
            })
            .await;
            (broker.tcp_addr().expect("the test broker listens on TCP").port(), broker)
        });
        Target {
            name: "trib-broker",
            host: "127.0.0.1".to_string(),
            port_v4: port,
            port_v5: port,
            auth_ports: Some((port, port)),
        }
    })
}

async fn start_broker(f: impl FnOnce(&mut BrokerConfig)) -> BrokerHandle {
    let mut config = BrokerConfig::default();
    config.listener.tcp.bind_address = "127.0.0.1".to_string();
    config.listener.tcp.bind_port = 0;
    // The tests send payloads of up to 4 MiB.
    config.listener.tcp.max_payload_size = 4 << 20;
    f(&mut config);
    Broker::start(config).await.expect("the test broker starts")
}

pub use trib_test_support::{free_port, unique};

/// MQTT 5 extras of a test message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    pub props: &'a [UserProperty<'a>],
    pub content_type: Option<&'a str>,
    pub correlation: Option<&'a [u8]>,
    pub response_topic: Option<&'a str>,
    pub expiry: Option<u32>,
    pub utf8: Option<bool>,
}

/// A host message on `topic` from client `device-1`.
pub fn message<'a>(topic: &'a str, payload: &'a [u8], qos: u8, retain: bool, extras: Extras<'a>) -> Message<'a> {
    Message {
        qos,
        retain,
        client_id: RStr::from_str("device-1"),
        broker_node: RStr::from_str("tbmq1"),
        timestamp_ms: 1717000000000,
        user_properties: RSlice::from_slice(extras.props),
        content_type: extras.content_type.map(RStr::from_str).into(),
        correlation_data: extras.correlation.map(RSlice::from_slice).into(),
        response_topic: extras.response_topic.map(RStr::from_str).into(),
        message_expiry_secs: extras.expiry.into(),
        payload_is_utf8: extras.utf8.into(),
        ..Message::new(topic, payload)
    }
}

/// The service id and metadata every test starts with.
pub const SERVICE_ID: &str = "tbmq-ie-test";
pub const METADATA: &str = r#"{"integrationName":"MQTT test","site":"A"}"#;

/// A start configuration around `client_configuration`.
pub fn start_config(client_configuration: &str) -> StartConfig<'_> {
    StartConfig {
        integration_id: RStr::from_str("6f1c5c5e-0000-4000-8000-000000000001"),
        integration_name: RStr::from_str("MQTT test"),
        service_id: RStr::from_str(SERVICE_ID),
        client_configuration: RStr::from_str(client_configuration),
        metadata: RStr::from_str(METADATA),
    }
}

/// A configuration for `target` speaking `version`; `extra` overrides or adds fields.
pub fn config_for(target: &Target, version: u8, extra: serde_json::Value) -> String {
    let mut base = serde_json::json!({
        "host": target.host, "port": target.port(version), "clientId": unique("trib-drv"),
        "mqttVersion": version, "connectTimeoutSec": 5, "reconnectPeriodSec": 1, "keepAliveSec": 30,
        "credentials": {"type": "anonymous"}, "ssl": false,
    });
    merge(&mut base, extra);
    base.to_string()
}

/// Shallow merge of two JSON objects; `null` in `extra` removes the field.
pub fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(b), serde_json::Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(&k);
            } else {
                b.insert(k, v);
            }
        }
    }
}

/// A started driver.
pub fn started(client_configuration: &str) -> MqttDriver {
    let mut driver = MqttDriver::create(Host::detached()).expect("create");
    driver.start(&start_config(client_configuration)).expect("start");
    driver
}

/// A deadline that no healthy test reaches.
pub fn deadline() -> Instant {
    Instant::now() + PATIENCE
}

/// A thread that runs until told to stop, then is joined.
pub struct Worker {
    pub stop: Arc<AtomicBool>,
    pub handle: Option<JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Receives from `rx` until `n` items arrived; fails the test after [`PATIENCE`].
pub fn collect<T>(rx: &mpsc::Receiver<T>, n: usize) -> Vec<T> {
    let start = Instant::now();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = PATIENCE.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(item) => out.push(item),
            Err(_) => panic!("received {} of {n} expected messages", out.len()),
        }
    }
    out
}
