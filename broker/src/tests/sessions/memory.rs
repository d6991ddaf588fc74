//! Memory bounds against clients that never read: the process's resident memory stays under a
//! ceiling derived from the configured budget, and the queues' bytes come back when they leave.
//!
//! RSS is a property of the whole process, and the test harness runs tests side by side in one
//! process, so the measuring test runs in a child process of its own (the same test binary, this
//! test only) and the parent checks that the child passed.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::super::raw::{connected_v4, Raw};
use super::super::support::{eventually, start, within};
use crate::protocol::peek_frame;

const CHILD_ENV: &str = "TRIB_BROKER_MEMORY_TEST_CHILD";
const SUBSCRIBERS: usize = 50;
const PAYLOAD: usize = 10 * 1024;
/// 100 MB in total.
const MESSAGES: usize = 10_000;
/// PUBLISH packets the publisher sends before it waits for their PUBACKs.
const PUBLISH_WINDOW: usize = 64;
const BUDGET: usize = 32 << 20;
const SESSION_BYTES: usize = 4 << 20;
/// What the budget does not count: each connection's output buffer (stops filling at 256 KiB,
/// plus one packet of up to 64 KiB), and 16 MiB for the allocator's and runtime's own growth.
const SLACK: usize = SUBSCRIBERS * (256 + 64) * 1024 + (16 << 20);

#[test]
fn fifty_clients_that_never_read_hold_memory_under_the_budget() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
        runtime.expect("tokio runtime").block_on(measure());
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let name = "tests::sessions::memory::fifty_clients_that_never_read_hold_memory_under_the_budget";
    let out = std::process::Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("the test binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the measuring child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child did not run the test:\n{text}");
}

/// The resident set size of this process, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    let kb: usize = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value");
    kb * 1024
}

async fn measure() {
    let broker = start(|c| {
        c.mqtt.max_queued_bytes = SESSION_BYTES;
        c.mqtt.sessions_memory_budget_bytes = BUDGET;
    })
    .await;
    let addr = broker.tcp_addr().expect("tcp listener");
    // Subscribers that read their SUBACK, then never read again.
    let mut idle: Vec<Raw> = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut raw = connected_v4(addr, &format!("idle-{i}")).await;
        raw.send(&subscribe_v4(1, "load/t")).await;
        let suback = raw.read().await.expect("suback");
        assert_eq!(suback.kind(), 9, "expected SUBACK, got {suback:?}");
        idle.push(raw);
    }
    let before = rss();

    let mut publisher = TcpStream::connect(addr).await.expect("publisher connects");
    publisher.write_all(&super::super::raw::connect_v4("publisher", 60)).await.expect("connect sent");
    let mut inbuf = BytesMut::new();
    read_packet(&mut publisher, &mut inbuf).await;
    let payload = vec![0x5a; PAYLOAD];
    let mut sent = 0;
    while sent < MESSAGES {
        let batch = PUBLISH_WINDOW.min(MESSAGES - sent);
        let mut out = BytesMut::new();
        for k in 0..batch {
            let pkid = u16::try_from(k + 1).expect("window below 65535");
            let mut p = rumqttc::mqttbytes::v4::Publish::new("load/t", rumqttc::QoS::AtLeastOnce, payload.clone());
            p.pkid = pkid;
            p.write(&mut out).expect("publish encodes");
        }
        publisher.write_all(&out).await.expect("publish sent");
        for _ in 0..batch {
            let ack = read_packet(&mut publisher, &mut inbuf).await;
            assert_eq!(ack >> 4, 4, "expected PUBACK");
        }
        sent += batch;
    }
    // Every PUBACK follows the routing of its message: all deliveries are queued or dropped now.
    let after = rss();
    let growth = after.saturating_sub(before);
    let ceiling = BUDGET + SLACK;
    let summary = format!(
        "RSS before {} MiB, after {} MiB, growth {} MiB, ceiling {} MiB; held {} MiB; dropped for the budget {}, \
         for the session bound {}",
        before >> 20,
        after >> 20,
        growth >> 20,
        ceiling >> 20,
        broker.queued_bytes() >> 20,
        broker.dropped_messages("memory_budget"),
        broker.dropped_messages("session_bytes"),
    );
    assert!(broker.queued_bytes() <= BUDGET, "held over the budget: {summary}");
    assert!(broker.dropped_messages("memory_budget") > 0, "the budget was never hit (too little sent): {summary}");
    assert!(growth < ceiling, "RSS grew over the ceiling: {summary}");

    // The clients leave: their sessions end and every queued byte is given back.
    drop(idle);
    drop(publisher);
    eventually("sessions to end", || broker.session_count() == 0).await;
    assert_eq!(broker.queued_bytes(), 0);
    within("shutdown", broker.shutdown()).await;
}

/// Reads one whole packet and returns its first byte.
async fn read_packet(stream: &mut TcpStream, buf: &mut BytesMut) -> u8 {
    within("a packet for the publisher", async {
        loop {
            if let Ok(Some(frame)) = peek_frame(buf, usize::MAX) {
                let packet = buf.split_to(frame.len());
                return packet[0];
            }
            let n = stream.read_buf(buf).await.expect("publisher reads");
            assert!(n > 0, "the broker closed the publisher");
        }
    })
    .await
}

/// A MQTT 3.1.1 SUBSCRIBE at QoS 1.
fn subscribe_v4(pkid: u16, filter: &str) -> Vec<u8> {
    let mut s = rumqttc::mqttbytes::v4::Subscribe::new(filter, rumqttc::QoS::AtLeastOnce);
    s.pkid = pkid;
    let mut buf = BytesMut::new();
    s.write(&mut buf).expect("subscribe encodes");
    buf.to_vec()
}
