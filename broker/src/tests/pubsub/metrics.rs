//! The broker's Prometheus series, as `/metrics` serves them (`trib_ops::prometheus().render()`),
//! after some traffic.

use rumqttc::QoS as Q4;

use super::super::support::{start, C4};
use crate::auth::hash_password;
use crate::Credential;

/// The value of the first sample of `series` (name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_show_connections_traffic_queues_subscriptions_retained_and_auth_failures() {
    let hash = hash_password("s3cret").expect("hash");
    let broker = start(|c| {
        c.security.credentials = vec![Credential { username: "alice".to_owned(), password_hash: hash }];
    })
    .await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C4::connect(addr, "metrics-sub", |_| {}).await;
    let (mut publisher, _) = C4::connect(addr, "metrics-pub", |_| {}).await;
    sub.subscribe("metrics/t", Q4::AtLeastOnce).await;
    publisher.publish("metrics/t", Q4::AtLeastOnce, true, b"one").await;
    publisher.publish("metrics/t", Q4::AtMostOnce, false, b"two").await;
    sub.message().await;
    sub.message().await;
    let mut bad = C4::spawn(addr, "metrics-bad", |o| {
        o.set_credentials("alice", "wrong");
    });
    bad.closed().await;
    broker.sample_metrics();

    let text = trib_ops::prometheus().render();
    for series in [
        r#"broker_connections{listener="tcp",protocol="3.1.1"}"#,
        r#"broker_msgs_in_total{qos="0"}"#,
        r#"broker_msgs_in_total{qos="1"}"#,
        r#"broker_bytes_in_total{qos="1"}"#,
        r#"broker_msgs_out_total{qos="0"}"#,
        r#"broker_msgs_out_total{qos="1"}"#,
        r#"broker_bytes_out_total{qos="1"}"#,
        r#"broker_auth_failures_total{reason="bad_credentials"}"#,
        "broker_subscriptions",
        "broker_retained_msgs",
        "broker_sessions",
    ] {
        let value = sample(&text, series).unwrap_or_else(|| panic!("no series {series} in:\n{text}"));
        assert!(value >= 1.0, "{series} is {value}");
    }
    for series in [
        r#"broker_dropped_msgs_total{reason="session_bytes"}"#,
        r#"broker_dropped_msgs_total{reason="memory_budget"}"#,
        "broker_queued_msgs",
        "broker_queued_bytes",
    ] {
        assert!(sample(&text, series).is_some(), "no series {series} in:\n{text}");
    }
}
