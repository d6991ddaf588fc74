//! The plugin-boundary contract, checked through the ABI by `trib-plugin-testkit`: the
//! connection check against a closed port, delivery against a listener that accepts and never
//! answers (librdkafka connects but never gets its API versions back), pipelining against
//! rdkafka's mock cluster.

use trib_plugin_testkit::conformance::{check_driver, Check, Scenario, Verdict};

use crate::driver::KafkaDriver;

#[test]
fn kafka_driver_conforms() {
    let mock = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    mock.create_topic("conformance", 1, 1).expect("topic");
    let delivering = format!(r#"{{"bootstrapServers": "{}", "topic": "conformance"}}"#, mock.bootstrap_servers());
    let report = check_driver::<KafkaDriver>(
        &Scenario::new(r#"{"bootstrapServers": "127.0.0.1:{{blackhole_port}}", "topic": "conformance"}"#)
            .unreachable(r#"{"bootstrapServers": "127.0.0.1:{{closed_port}}", "topic": "conformance"}"#)
            .black_hole(r#"{"bootstrapServers": "127.0.0.1:{{blackhole_port}}", "topic": "conformance"}"#)
            .delivering(delivering)
            .invalid(r#"{"bootstrapServers": "", "topic": "conformance"}"#)
            .invalid(r#"{"bootstrapServers": "127.0.0.1:9092", "topic": ""}"#),
    );
    assert!(report.passed(), "the driver does not conform:\n{report}");
    assert_eq!(report.verdict(Check::PipelinedBatchesInOrder), Verdict::Pass, "{report}");
}
