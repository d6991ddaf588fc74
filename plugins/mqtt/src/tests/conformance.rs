//! The plugin-boundary contract, checked through the ABI by `trib-plugin-testkit`. The driver
//! connects in `start`, so against the black hole (accepts, never sends CONNACK) the suite expects
//! `start` to give up with a CONNECTION error after `connectTimeoutSec`. Pipelining is checked
//! against the embedded broker.

use trib_plugin_testkit::conformance::{check_driver, Check, Scenario, Verdict};

use super::support::{config_for, embedded};
use crate::driver::MqttDriver;

#[test]
fn mqtt_driver_conforms() {
    let target = |port: &str| {
        format!(
            r#"{{"host": "127.0.0.1", "port": {port}, "topicName": "conformance/out", "clientId": "trib-conformance", "connectTimeoutSec": 1}}"#
        )
    };
    let report = check_driver::<MqttDriver>(
        &Scenario::new(target("{{blackhole_port}}"))
            .unreachable(target("{{closed_port}}"))
            .black_hole(target("{{blackhole_port}}"))
            .delivering(config_for(embedded(), 4, serde_json::json!({"topicName": "conformance/out", "qos": 1})))
            .invalid(r#"{"host": "", "port": 1883, "topicName": "t", "clientId": "c"}"#)
            .invalid(r#"{"host": "127.0.0.1", "port": 70000, "topicName": "t", "clientId": "c"}"#),
    );
    assert!(report.passed(), "the driver does not conform:\n{report}");
    assert_eq!(report.verdict(Check::PipelinedBatchesInOrder), Verdict::Pass, "{report}");
}
