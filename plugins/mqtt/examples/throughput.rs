//! Measures the driver's throughput against a running broker, outside the test suite:
//! `cargo run --release -p trib-driver-mqtt --example throughput -- [count] [batch] [qos] [mqttVersion]`
//! (defaults 200000, 1000, 1, 4). The broker is `TRIB_TEST_MQTT_BROKER` (default 127.0.0.1:1883).
//! The time runs from the first `process` call to the last outcome; every outcome must be
//! `Delivered`, so the figure counts acknowledged messages only.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use trib_driver_mqtt::driver::MqttDriver;
use trib_plugin_api::{
    abi::{Message, StartConfig},
    abi_stable::std_types::RStr,
    driver::{Driver, Host, Outcome},
};

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let arg = |i: usize, default: u64| args.get(i).copied().unwrap_or(default);
    let (count, batch, qos, version) = (arg(0, 200_000) as usize, arg(1, 1000) as usize, arg(2, 1), arg(3, 4));
    let broker = std::env::var("TRIB_TEST_MQTT_BROKER").unwrap_or_else(|_| "127.0.0.1:1883".to_string());
    let (host, port) = broker.rsplit_once(':').expect("broker is host:port");
    let config = serde_json::json!({
        "host": host, "port": port.parse::<u16>().expect("port"), "clientId": format!("trib-bench-{}", std::process::id()),
        "topicName": "trib/bench/${topic}", "qos": qos, "mqttVersion": version, "sendOnlyMsgPayload": true,
    })
    .to_string();
    let start_config = StartConfig {
        integration_id: RStr::from_str("bench"),
        integration_name: RStr::from_str("bench"),
        service_id: RStr::from_str("bench"),
        client_configuration: RStr::from_str(&config),
        metadata: RStr::from_str("{}"),
    };
    let mut driver = MqttDriver::create(Host::detached()).expect("create");
    driver.start(&start_config).expect("start");
    let payload = [b'x'; 64];
    let msg = Message {
        qos: 1,
        client_id: RStr::from_str("bench"),
        broker_node: RStr::from_str("bench"),
        ..Message::new("sensors/1", &payload)
    };
    let messages = vec![msg; batch];
    let started = Instant::now();
    let mut sent = 0;
    while sent < count {
        let n = batch.min(count - sent);
        let outcomes = driver.process(&messages[..n], Instant::now() + Duration::from_secs(30));
        assert!(
            outcomes.iter().all(|o| *o == Outcome::Delivered),
            "not delivered: {:?}",
            outcomes.iter().find(|o| **o != Outcome::Delivered)
        );
        sent += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{count} messages, batch {batch}, QoS {qos}, MQTT v{version}: {secs:.2} s, {:.0} msg/s",
        count as f64 / secs
    );
    driver.stop();
}
