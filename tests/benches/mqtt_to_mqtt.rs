//! End-to-end benchmark: MQTT publishers -> all-in-one `tributary` -> MQTT driver -> a target
//! Mosquitto, QoS 1 all the way, RETRY_ALL, against the peer a Mosquitto user would reach for: a
//! second Mosquitto bridging `bench/#` to the same target at QoS 1. Prints msg/s, messages lost
//! and duplicated, peak RSS and CPU for both, in the same run.
//!
//! Run: `cargo build --release -p trib-dist && cargo bench -p trib-tests --bench mqtt_to_mqtt -- [MESSAGES] [PUBLISHERS] [--tuned]`
//!
//! After the throughput row, each path also gets a latency row: one publisher at 1,000 msg/s for
//! 5 s, each message carrying its send time, and the publish -> target p50/p99/max.
//!
//! Both paths publish to the target with the message's own topic; one subscriber on the target
//! (`bench/#`, QoS 1) counts what arrives. Both Mosquittos run from PATH (`mosquitto`) on free
//! loopback ports in their stock configuration (only a listener, anonymous access and quiet logs);
//! `--tuned` gives both the settings earlier runs used: no queue limit, 1,000 messages in flight
//! per client, `set_tcp_nodelay true`.
//!
//! A stock target keeps at most 1,000 messages queued for its counting subscriber and drops the
//! rest, so "lost" can be the target's doing: after each row the bench prints how many the target
//! dropped by its own `$SYS/broker/publish/messages/dropped` count, and what was lost before it.

// A benchmark program: printing its figures is its job.
#![allow(clippy::print_stdout)]

// The shared bench code also serves benchmarks that use parts this one does not.
#[allow(dead_code)]
mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{free_port, latency_run, print_row, run, start_tributary, wait_until_ready, Proc, Row, Shared, Sink};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// Mosquitto settings beyond stock that `--tuned` adds to both Mosquittos.
const TUNED: &str = "max_queued_messages 0\nmax_inflight_messages 1000\nset_tcp_nodelay true\n";

/// A Mosquitto on `port`: stock, plus `tuning` and `extra` lines.
fn mosquitto(dir: &Path, name: &str, port: u16, tuning: &str, extra: &str) -> Proc {
    let conf = dir.join(format!("{name}.conf"));
    let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\nlog_type error\n{tuning}{extra}");
    std::fs::write(&conf, text).expect("write the Mosquitto config");
    let proc =
        Proc(Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).spawn().expect("start mosquitto"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto {name} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    proc
}

/// Subscribes to `bench/#` on the target and counts numbered payloads (and `probe`s) into `sink`.
async fn subscribe(port: u16, sink: Shared) {
    let mut opts = MqttOptions::new("bench-target-sub", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30)).set_clean_session(true);
    let (client, mut events) = AsyncClient::new(opts, 100);
    client.subscribe("bench/#", QoS::AtLeastOnce).await.expect("subscribe");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    tokio::spawn(async move {
        let _client = client;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    sink.lock().expect("lock").record(std::str::from_utf8(&p.payload).unwrap_or(""));
                }
                Ok(_) => {}
                // The target goes away at the end of the run.
                Err(_) => break,
            }
        }
    });
    rx.await.expect("SUBACK from the target");
}

/// The target's own count of the messages it dropped (`$SYS/broker/publish/messages/dropped`:
/// a stock Mosquitto keeps at most 1,000 messages queued per client and drops the rest) and when
/// that count last arrived. Mosquitto publishes it every `sys_interval` (10 s in stock).
type Dropped = Arc<Mutex<(u64, Option<Instant>)>>;

async fn watch_dropped(port: u16) -> Dropped {
    let dropped: Dropped = Arc::new(Mutex::new((0, None)));
    let mut opts = MqttOptions::new("bench-target-sys", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30)).set_clean_session(true);
    let (client, mut events) = AsyncClient::new(opts, 10);
    client.subscribe("$SYS/broker/publish/messages/dropped", QoS::AtMostOnce).await.expect("subscribe to $SYS");
    let store = dropped.clone();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Some(n) = std::str::from_utf8(&p.payload).ok().and_then(|t| t.trim().parse().ok()) {
                        *store.lock().expect("lock") = (n, Some(Instant::now()));
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    dropped
}

/// Prints how many of the run's lost messages the target itself dropped. Mosquitto publishes the
/// count only when it changed (and not at all while it is 0), so the value is read once a full
/// `sys_interval` has passed since the last message arrived (`started` + the row's times).
fn print_target_drops(dropped: &Dropped, before: u64, started: Instant, row: &Row, total: usize) {
    let settled = started + row.delivered_in.max(row.published) + Duration::from_secs(11);
    if let Some(wait) = settled.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    let (count, seen) = *dropped.lock().expect("lock");
    let d = count.saturating_sub(before);
    let lost = total - row.unique;
    let source = if seen.is_some() { "its $SYS count" } else { "it never published a $SYS drop count: none so far" };
    println!(
        "  {:<28} the target dropped {d} for its subscriber ({source}); lost before reaching it: {}",
        "",
        lost.saturating_sub(d as usize)
    );
}

/// Saves the MQTT integration that forwards `bench/#` to the target under the same topics.
fn save_integration(api: &str, token: &str, target_port: u16) {
    let integration = serde_json::json!({
        "name": "bench-mqtt", "type": "MQTT", "enabled": true,
        "configuration": {
            "clientConfiguration": {
                "host": "127.0.0.1", "port": target_port, "clientId": "bench-bridge",
                "useMsgTopicName": true, "qos": 1, "useMsgQoS": false, "retained": false,
                "sendOnlyMsgPayload": true
            },
            "topicFilters": ["bench/#"],
            "metadata": {}
        }
    });
    ureq::post(&format!("{api}/api/integration"))
        .header("Content-Type", "application/json")
        .header("X-Authorization", &format!("Bearer {token}"))
        .send(integration.to_string())
        .expect("save the MQTT integration");
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let tuning = if std::env::args().any(|a| a == "--tuned") { TUNED } else { "" };
    let total = args.first().copied().unwrap_or(100_000);
    let publishers = args.get(1).copied().unwrap_or(4).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let version = Command::new("mosquitto")
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| "mosquitto".into());

    let target_port = free_port();
    let target = mosquitto(dir.path(), "target", target_port, tuning, "");
    let sink = Shared::default();
    runtime.block_on(subscribe(target_port, sink.clone()));
    let dropped = runtime.block_on(watch_dropped(target_port));

    println!(
        "MQTT QoS 1 -> integration/bridge -> MQTT QoS 1 to a target {version} ({}), {total} messages from {publishers} publishers as fast as they go:",
        if tuning.is_empty() {
            "stock configuration"
        } else {
            "tuned: set_tcp_nodelay, no queue limit, 1,000 in flight"
        }
    );
    let mut rows: Vec<Row> = Vec::new();
    {
        let node_dir = dir.path().join("tributary");
        std::fs::create_dir_all(&node_dir).expect("node dir");
        let extra: Vec<(String, String)> = std::env::var("TRIB_BENCH_ENV")
            .unwrap_or_default()
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (node, mqtt_port, api, token) = start_tributary(&node_dir, &extra);
        save_integration(&api, &token, target_port);
        runtime.block_on(wait_until_ready(mqtt_port, &sink, "tributary"));
        let (before, started) = (dropped.lock().expect("lock").0, Instant::now());
        let row =
            run(&runtime, "tributary all-in-one", &sink, mqtt_port, total, publishers, &[("tributary", node.0.id())]);
        print_row(&row, total);
        print_target_drops(&dropped, before, started, &row, total);
        rows.push(row);
        latency_run(&runtime, "tributary all-in-one", &sink, mqtt_port, 1_000, 5);
    }
    *sink.lock().expect("lock") = Sink::default();
    {
        let bridge_port = free_port();
        let bridge = mosquitto(
            dir.path(),
            "bridge",
            bridge_port,
            tuning,
            &format!(
                "connection bench-bridge\naddress 127.0.0.1:{target_port}\ntopic bench/# out 1\ncleansession true\n\
                 bridge_protocol_version mqttv311\n"
            ),
        );
        runtime.block_on(wait_until_ready(bridge_port, &sink, "the Mosquitto bridge"));
        let (before, started) = (dropped.lock().expect("lock").0, Instant::now());
        let row =
            run(&runtime, "Mosquitto bridge", &sink, bridge_port, total, publishers, &[("bridge", bridge.0.id())]);
        print_row(&row, total);
        print_target_drops(&dropped, before, started, &row, total);
        rows.push(row);
        latency_run(&runtime, "Mosquitto bridge", &sink, bridge_port, 1_000, 5);
    }
    drop(target);
    let rate = |r: &Row| r.unique as f64 / r.delivered_in.as_secs_f64();
    println!("  tributary / Mosquitto bridge throughput: {:.2}x", rate(&rows[0]) / rate(&rows[1]).max(1e-9));
}
