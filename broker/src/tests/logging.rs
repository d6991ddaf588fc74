//! Text logs stay one line per event: client ids and topic names from the network are written
//! escaped, so a newline or a terminal escape in them cannot forge or hide log lines.

use rumqttc::v5::mqttbytes::QoS as Q5;

use super::support::{start, C5};

// The runtime has one thread, so the connection tasks log on the capturing thread.
#[tokio::test(flavor = "current_thread")]
async fn client_ids_and_topics_with_control_characters_stay_on_one_escaped_line() {
    let capture = trib_test_support::logs::capture("trib_broker=debug");
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let evil = "evil\nFORGED client line \x1b[2K";
    let (mut c, _) = C5::connect(addr, evil, |_| {}).await;
    // Refused for an anonymous client, which logs the topic.
    c.publish("$SYS/x\nFORGED topic line \x1b[2K", Q5::AtLeastOnce, false, b"x").await;
    drop(c);
    broker.shutdown().await;

    let text = capture.text();
    assert!(!text.contains('\x1b'), "a raw escape character was logged:\n{text}");
    assert!(text.lines().all(|l| !l.starts_with("FORGED")), "a forged line:\n{text}");
    let connected = text.lines().find(|l| l.contains("Client connected.")).expect("connected line");
    assert!(connected.contains(r#"client_id="evil\nFORGED client line \u{1b}[2K""#), "{connected}");
    let refused = text.lines().find(|l| l.contains("PUBLISH refused")).expect("refused line");
    assert!(refused.contains(r#"topic="$SYS/x\nFORGED topic line \u{1b}[2K""#), "{refused}");
}
