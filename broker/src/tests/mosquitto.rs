//! Interoperability with Mosquitto's command-line clients (`mosquitto_pub`, `mosquitto_sub`) for
//! MQTT 3.1.1 and 5.0. The clients are run from PATH; the broker listens on a free port. On a
//! machine without them (only the Rust toolchain) the tests say so and pass; CI has them.

use std::process::Stdio;

use rumqttc::QoS as Q4;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::support::{start, within, C4};

/// Starts `mosquitto_sub -d` and waits until its SUBACK is logged; returns the child and its lines.
async fn subscribe(
    port: u16,
    version: &str,
    topic: &str,
    count: u32,
) -> (tokio::process::Child, tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) {
    // stdbuf: mosquitto_sub's debug lines are block-buffered on a pipe.
    let mut child = Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub"])
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version, "-q", "1", "-d"])
        .args(["-t", topic, "-C", &count.to_string(), "-i", &format!("msub-{version}")])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto_sub runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    within("mosquitto_sub SUBACK", async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.contains("SUBACK") {
                return;
            }
        }
        panic!("mosquitto_sub exited before SUBACK");
    })
    .await;
    (child, lines)
}

/// The next line that is not mosquitto's debug output.
async fn next_message(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    within("a message from mosquitto_sub", async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if !line.starts_with("Client ") && !line.starts_with("Subscribed ") {
                return line;
            }
        }
        panic!("mosquitto_sub exited without a message");
    })
    .await
}

async fn mosquitto_pub(port: u16, version: &str, topic: &str, message: &str, extra: &[&str]) {
    let status = within(
        "mosquitto_pub",
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version, "-q", "1"])
            .args(["-t", topic, "-m", message])
            .args(extra)
            .status(),
    )
    .await
    .expect("mosquitto_pub runs");
    assert!(status.success(), "mosquitto_pub {version} failed: {status}");
}

/// Whether Mosquitto's clients are installed; prints why the test does nothing when not.
#[allow(clippy::print_stderr)] // the test's own output: why it checked nothing
fn clients_installed() -> bool {
    let found = ["mosquitto_pub", "mosquitto_sub", "stdbuf"].iter().all(|tool| {
        std::process::Command::new(tool).arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    });
    if !found {
        eprintln!("mosquitto_pub/mosquitto_sub not installed: Mosquitto interoperability not tested here");
    }
    found
}

#[tokio::test]
async fn mosquitto_clients_publish_and_subscribe_at_both_levels() {
    if !clients_installed() {
        return;
    }
    let broker = start(|_| {}).await;
    let port = broker.tcp_addr().expect("tcp").port();
    for version in ["mqttv311", "mqttv5"] {
        let (mut child, mut lines) = subscribe(port, version, "mosq/+", 2).await;
        mosquitto_pub(port, version, "mosq/a", &format!("hello {version}"), &[]).await;
        assert_eq!(next_message(&mut lines).await, format!("hello {version}"));
        let (mut c, _) = C4::connect(broker.tcp_addr().expect("tcp"), "rumqttc", |_| {}).await;
        c.publish("mosq/b", Q4::AtLeastOnce, false, b"from rumqttc").await;
        assert_eq!(next_message(&mut lines).await, "from rumqttc");
        let status = within("mosquitto_sub exit", child.wait()).await.expect("wait");
        assert!(status.success());
    }
}

#[tokio::test]
async fn mosquitto_retained_message_and_v5_user_property() {
    if !clients_installed() {
        return;
    }
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let port = addr.port();
    mosquitto_pub(port, "mqttv5", "mosq/r", "kept", &["-r", "-D", "publish", "user-property", "k", "v"]).await;
    let (mut c, _) = super::support::C5::connect(addr, "reader", |_| {}).await;
    c.subscribe("mosq/r", rumqttc::v5::mqttbytes::QoS::AtLeastOnce).await;
    let m = c.message().await;
    assert_eq!((&m.payload[..], m.retain), (&b"kept"[..], true));
    let props = m.properties.expect("properties");
    assert_eq!(props.user_properties, [("k".to_owned(), "v".to_owned())]);
    let (mut child, mut lines) = subscribe(port, "mqttv311", "mosq/r", 1).await;
    assert_eq!(next_message(&mut lines).await, "kept");
    within("mosquitto_sub exit", child.wait()).await.expect("wait");
}
