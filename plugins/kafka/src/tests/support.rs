//! Test support: messages, start configurations, the Kafka peers (mock cluster and the optional
//! real broker), topic creation and a consumer that reads back what arrived.

use std::time::{Duration, Instant};

use abi_stable::std_types::{RSlice, RStr};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    mocking::MockCluster,
    producer::DefaultProducerContext,
    ClientConfig,
};
use trib_plugin_api::{
    abi::{Message, StartConfig, UserProperty},
    driver::{Driver, Host, Outcome},
};

use crate::driver::KafkaDriver;

/// The env var naming a real broker for the second test tier.
pub const REAL_BOOTSTRAP_ENV: &str = "TRIB_TEST_KAFKA_BOOTSTRAP";

/// A Kafka cluster a test talks to.
pub enum Peer {
    /// rdkafka's in-process mock cluster (always).
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// A real broker from [`REAL_BOOTSTRAP_ENV`].
    Real(String),
}

impl Peer {
    pub fn bootstrap(&self) -> String {
        match self {
            Peer::Mock(mock) => mock.bootstrap_servers(),
            Peer::Real(servers) => servers.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Peer::Mock(_) => "mock",
            Peer::Real(_) => "real",
        }
    }

    /// Creates a fresh single-partition topic with a unique name and returns the name.
    pub fn topic(&self, label: &str) -> String {
        let name = unique_name(label);
        match self {
            Peer::Mock(mock) => mock.create_topic(&name, 1, 1).expect("mock create_topic"),
            Peer::Real(servers) => {
                let admin: AdminClient<DefaultClientContext> =
                    ClientConfig::new().set("bootstrap.servers", servers).create().expect("admin client");
                let topic = NewTopic::new(&name, 1, TopicReplication::Fixed(1));
                let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
                let results = block_on(admin.create_topics([&topic], &options)).expect("create_topics");
                for result in results {
                    result.expect("topic created");
                }
            }
        }
        name
    }
}

/// The mock cluster, plus the real broker when the env var names one.
pub fn peers() -> Vec<Peer> {
    let mut peers = vec![Peer::Mock(MockCluster::new(1).expect("mock cluster"))];
    if let Ok(servers) = std::env::var(REAL_BOOTSTRAP_ENV) {
        if !servers.trim().is_empty() {
            peers.push(Peer::Real(servers.trim().to_string()));
        }
    }
    peers
}

/// A topic or group name unique to this run.
pub fn unique_name(label: &str) -> String {
    trib_test_support::unique(&format!("trib-{label}"))
}

pub use trib_test_support::block_on;

pub use trib_test_support::kafka::Received;

/// Reads exactly `count` records from partition 0 of `topic`, from the beginning (waiting up to
/// 20 s for them).
pub fn consume(bootstrap: &str, topic: &str, count: usize) -> Vec<Received> {
    trib_test_support::kafka::consume(bootstrap, topic, count, Duration::from_secs(20))
}

pub const PROPS: [UserProperty<'static>; 1] = [UserProperty { key: RStr::from_str("k1"), value: RStr::from_str("v1") }];

/// A message like the plugin-api tests use: topic `sensors/1/temp`, client `device-1`.
pub fn message(payload: &'static [u8]) -> Message<'static> {
    message_from("sensors/1/temp", "device-1", payload)
}

pub fn message_from(topic: &'static str, client_id: &'static str, payload: &'static [u8]) -> Message<'static> {
    Message {
        qos: 1,
        client_id: RStr::from_str(client_id),
        broker_node: RStr::from_str("tbmq1"),
        timestamp_ms: 1717000000000,
        user_properties: RSlice::from_slice(&PROPS),
        ..Message::new(topic, payload)
    }
}

pub fn start_config(client_configuration: &str) -> StartConfig<'_> {
    StartConfig {
        integration_id: RStr::from_str("6f2c3e1a-0000-4000-8000-000000000001"),
        integration_name: RStr::from_str("Kafka int"),
        service_id: RStr::from_str("tbmq-ie1"),
        client_configuration: RStr::from_str(client_configuration),
        metadata: RStr::from_str(r#"{"integrationName":"Kafka int"}"#),
    }
}

/// A started driver for `config` (a JSON object text).
pub fn started(config: &str) -> KafkaDriver {
    let mut driver = KafkaDriver::create(Host::detached()).expect("create");
    driver.start(&start_config(config)).expect("start");
    driver
}

/// Starts a driver, delivers `batch` within 20 s, stops it, and returns the outcomes.
pub fn deliver(config: &str, batch: &[Message<'_>]) -> Vec<Outcome> {
    let mut driver = started(config);
    let outcomes = driver.process(batch, Instant::now() + Duration::from_secs(20));
    driver.stop();
    outcomes
}

/// A minimal valid configuration for `bootstrap` and `topic` plus `extra` fields (`"k":v,...`).
pub fn config(bootstrap: &str, topic: &str, extra: &str) -> String {
    let extra = if extra.is_empty() { String::new() } else { format!(",{extra}") };
    format!(r#"{{"bootstrapServers":"{bootstrap}","topic":"{topic}"{extra}}}"#)
}
