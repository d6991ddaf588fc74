//! The all-in-one queue under load (issue 14), three figures, each beside its yardstick:
//!
//! 1. **Storing**: 4 KB records per second into the durable embedded queue (one topic, the
//!    queue's own `fsync` every second), beside the physical limit of this disk: the same frames
//!    written with `write` in a loop and `fsync` every second.
//! 2. **Given back**: RSS and size of `data/queue` of the shipped binary (all-in-one) idle, right
//!    after N integrations × M messages of 4 KB were delivered to a loopback HTTP target, and
//!    15 s and 30 s later (with the thread count). Goal: RSS back within 20 MiB of idle, the queue directory under 10 MiB.
//! 3. **Backlog**: B MiB of 4 KB messages queued for one integration while its target answers
//!    503, then delivered once it answers 200: time to deliver, peak RSS, lost and duplicated.
//!    The node runs RETRY_ALL without a retry limit, with `TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES`
//!    and the message topic's `retention.bytes` raised to twice B (the defaults, 256 MiB and
//!    1,000 MiB, refuse or age out a larger backlog: publishers get no PUBACK past the first).
//!
//! Run: `cargo build --release -p trib-dist && cargo bench -p trib-tests --bench queue_backlog -- [N] [M] [B]`
//! (defaults 100 10000 1024: 4 GB through the node, then a 1 GiB backlog; `-- 10 1000 64` is quick).
//! Figures only, no assertions.

// A benchmark program: printing its figures is its job.
#![allow(clippy::print_stdout)]

// Only part of the shared helpers is used here.
#[allow(dead_code)]
mod common;

use std::{
    io::Write,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use common::{http_target, integration_state, peak_rss_mib, proc_status, start_tributary};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use trib_queue::queue::{embedded::EmbeddedQueue, wait_delivery, Partitioning, Queue, TopicSpec};

/// Payload size of every message.
const SIZE: usize = 4096;
/// How long the node may settle before a figure is taken.
const SETTLE: Duration = Duration::from_secs(3);

/// Resident memory of a process now, MiB.
fn rss_mib(pid: u32) -> f64 {
    proc_status(pid, "VmRSS:").map_or(0.0, |kib| kib / 1024.0)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A payload of [`SIZE`] bytes starting with the sequence number `n` (20 digits).
fn payload(n: u64) -> Vec<u8> {
    let mut p = format!("{n:020}").into_bytes();
    p.resize(SIZE, b'x');
    p
}

/// 1. Records per second into the durable queue, and the `write` + `fsync` loop.
fn storing(dir: &Path, records: u64) {
    let queue = EmbeddedQueue::open(&dir.join("queue"), usize::MAX / 2).expect("open the queue");
    let spec = TopicSpec::from_properties("bench", "").expect("topic spec");
    queue.create_topic(&spec).expect("create the topic");
    let producer = queue.producer();
    let value = payload(0);
    let started = Instant::now();
    let mut pending = Vec::with_capacity(1024);
    for _ in 0..records {
        pending.push(producer.send("bench", Partitioning::Fixed(0), Some(b"k"), &value));
        if pending.len() == 1024 {
            for d in pending.drain(..) {
                wait_delivery(d).expect("stored");
            }
        }
    }
    for d in pending.drain(..) {
        wait_delivery(d).expect("stored");
    }
    let queued = started.elapsed();
    drop(producer);
    drop(queue);

    let mut file = std::fs::File::create(dir.join("plain.log")).expect("create the file");
    // The queue's frame is the record plus 20 bytes of header and a 1-byte key.
    let frame = vec![b'x'; SIZE + 21];
    let started = Instant::now();
    let mut last_sync = Instant::now();
    for _ in 0..records {
        file.write_all(&frame).expect("write");
        if last_sync.elapsed() >= Duration::from_secs(1) {
            file.sync_data().expect("fsync");
            last_sync = Instant::now();
        }
    }
    file.sync_data().expect("fsync");
    let plain = started.elapsed();
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    println!("1. storing {records} records of {SIZE} B (one topic, fsync every second):");
    println!(
        "   durable embedded queue     {:>10.0} records/s ({:>6.1} MiB/s)",
        rate(queued),
        rate(queued) * SIZE as f64 / 1048576.0
    );
    println!(
        "   write + fsync loop (limit) {:>10.0} records/s ({:>6.1} MiB/s)",
        rate(plain),
        rate(plain) * SIZE as f64 / 1048576.0
    );
    println!("   queue / limit: {:.2}", rate(queued) / rate(plain));
}

/// Saves an HTTP integration for `bench/<i>` posting to `target`; returns its id.
fn save(api: &str, token: &str, i: usize, target: &str) -> String {
    let integration = serde_json::json!({
        "name": format!("backlog-{i}"), "type": "HTTP", "enabled": true,
        "configuration": {"clientConfiguration": {"restEndpointUrl": format!("http://{target}/in/{i}"),
            "requestMethod": "POST", "payloadContentType": "TEXT", "sendOnlyMsgPayload": true},
            "topicFilters": [format!("bench/{i}")], "metadata": {}}});
    let mut saved = ureq::post(&format!("{api}/api/integration"))
        .header("X-Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(integration.to_string())
        .expect("save the integration");
    let v: serde_json::Value =
        serde_json::from_str(&saved.body_mut().read_to_string().expect("saved")).expect("saved json");
    v["id"].as_str().expect("integration id").to_string()
}

/// Waits until integration `id` is Active.
fn wait_active(api: &str, token: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let state = integration_state(api, token, id);
        if state.as_deref() == Some("Active") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("integration {id} never became Active");
}

/// Publishes `per_topic` numbered 4 KB messages (QoS 1) to each `bench/<i>` for `i < topics`,
/// one client per topic; numbers are unique across topics. Returns when all are PUBACKed.
async fn publish_sized(mqtt_port: u16, topics: usize, per_topic: u64) {
    let mut tasks = Vec::new();
    for t in 0..topics {
        tasks.push(tokio::spawn(async move {
            let mut opts = MqttOptions::new(format!("backlog-pub-{t}"), "127.0.0.1", mqtt_port);
            opts.set_inflight(100)
                .set_keep_alive(Duration::from_secs(60))
                .set_max_packet_size(SIZE + 1024, SIZE + 1024);
            let (client, mut events) = AsyncClient::new(opts, 1000);
            let sender = tokio::spawn(async move {
                for i in 0..per_topic {
                    let n = t as u64 * per_topic + i;
                    client.publish(format!("bench/{t}"), QoS::AtLeastOnce, false, payload(n)).await.expect("publish");
                }
                client
            });
            let mut acked = 0;
            while acked < per_topic {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(_) => {}
                    Err(e) => panic!("publisher {t}: {e}"),
                }
            }
            let _ = sender.await;
        }));
    }
    for t in tasks {
        t.await.expect("publisher");
    }
}

/// What the target received: distinct sequence numbers and duplicates.
#[derive(Default)]
struct Seen {
    numbers: std::collections::HashSet<u64>,
    duplicates: u64,
}

fn counting_target(runtime: &tokio::runtime::Runtime, down: Arc<AtomicBool>) -> (u16, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    let port = http_target(
        runtime,
        down,
        Arc::new(move |body: &[u8]| {
            if let Some(n) = body.get(..20).and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.parse().ok()) {
                let mut seen = record.lock().expect("seen");
                if !seen.numbers.insert(n) {
                    seen.duplicates += 1;
                }
            }
        }),
    );
    (port, seen)
}

/// Waits until the target saw `expected` distinct messages or nothing new came for 60 s.
fn wait_seen(seen: &Mutex<Seen>, expected: usize) {
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        let now = seen.lock().expect("seen").numbers.len();
        if now >= expected || last_change.elapsed() > Duration::from_secs(60) {
            return;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 2. RSS and queue directory after N × M messages were delivered.
fn given_back(runtime: &tokio::runtime::Runtime, integrations: usize, messages: u64) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (port, seen) = counting_target(runtime, Arc::new(AtomicBool::new(false)));
    let (node, mqtt_port, api, token) = start_tributary(dir.path(), &[]);
    let pid = node.0.id();
    let queue_dir = dir.path().join("data/queue");
    std::thread::sleep(SETTLE);
    let (idle_rss, idle_dir) = (rss_mib(pid), dir_bytes(&queue_dir));
    let target = format!("127.0.0.1:{port}");
    let ids: Vec<String> = (0..integrations).map(|i| save(&api, &token, i, &target)).collect();
    for id in &ids {
        wait_active(&api, &token, id);
    }
    std::thread::sleep(SETTLE);
    let (ready_rss, ready_dir, ready_threads) = (rss_mib(pid), dir_bytes(&queue_dir), threads(pid));
    let (ready_heap, ready_parts) = (heap_mib(&api), rss_parts_mib(pid));
    let total = integrations as u64 * messages;
    let started = Instant::now();
    runtime.block_on(publish_sized(mqtt_port, integrations, messages));
    let published = started.elapsed();
    wait_seen(&seen, total as usize);
    let delivered = started.elapsed();
    let (after_rss, after_dir) = (rss_mib(pid), dir_bytes(&queue_dir));
    std::thread::sleep(Duration::from_secs(15));
    let (later_rss, later_dir, later_threads) = (rss_mib(pid), dir_bytes(&queue_dir), threads(pid));
    let (later_heap, later_parts) = (heap_mib(&api), rss_parts_mib(pid));
    std::thread::sleep(Duration::from_secs(15));
    let (last_rss, last_dir, last_threads) = (rss_mib(pid), dir_bytes(&queue_dir), threads(pid));
    let (last_heap, last_parts) = (heap_mib(&api), rss_parts_mib(pid));
    let seen = seen.lock().expect("seen");
    println!(
        "2. {integrations} integrations x {messages} messages of {SIZE} B ({:.0} MiB) through the shipped binary:",
        mib(total * SIZE as u64)
    );
    println!(
        "   published in {:.1} s, delivered {} of {total} in {:.1} s ({:.0} msg/s), {} duplicates",
        published.as_secs_f64(),
        seen.numbers.len(),
        delivered.as_secs_f64(),
        seen.numbers.len() as f64 / delivered.as_secs_f64(),
        seen.duplicates
    );
    println!("   {:<36} RSS {:>7.1} MiB   data/queue {:>8.1} MiB", "idle, no integration", idle_rss, mib(idle_dir));
    println!(
        "   {:<36} RSS {:>7.1} MiB   data/queue {:>8.1} MiB",
        format!("{integrations} integrations, before traffic"),
        ready_rss,
        mib(ready_dir)
    );
    println!(
        "   {:<36} RSS {:>7.1} MiB   data/queue {:>8.1} MiB   (peak RSS {:.1} MiB)",
        "right after delivery",
        after_rss,
        mib(after_dir),
        peak_rss_mib(pid)
    );
    for (when, rss, dir, threads, heap, parts) in [
        ("15 s later", later_rss, later_dir, later_threads, later_heap, later_parts),
        ("30 s later", last_rss, last_dir, last_threads, last_heap, last_parts),
    ] {
        println!(
            "   {when:<36} RSS {rss:>7.1} MiB   data/queue {:>8.1} MiB   (RSS {:+.1} MiB vs before traffic; {threads} threads, {ready_threads} before)",
            mib(dir),
            rss - ready_rss
        );
        for (name, value) in &heap {
            let before = ready_heap.iter().find(|(n, _)| n == name).map_or(f64::NAN, |(_, v)| *v);
            println!("   {:<36} {name} {value:.1} MiB ({before:.1} before traffic)", "");
        }
        println!(
            "   {:<36} RSS anonymous {:>7.1} MiB ({:.1} before), of files {:.1} MiB ({:.1} before)",
            "", parts.0, ready_parts.0, parts.1, ready_parts.1
        );
    }
}

/// The process's memory as its allocators see it, in MiB: the `process_*_bytes` gauges of
/// `/metrics` (`process_heap_allocated_bytes` and `process_heap_free_bytes`: glibc's heap, what
/// the program holds and what the allocator keeps free).
fn heap_mib(api: &str) -> Vec<(String, f64)> {
    let text = ureq::get(&format!("{api}/metrics"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("process_") && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            name.ends_with("_bytes").then(|| (name.to_string(), value / (1024.0 * 1024.0)))
        })
        .collect()
}

/// `RssAnon` and `RssFile` of a process in MiB: its own memory, and pages of files it maps
/// (libraries, mapped files) that the kernel may drop under pressure.
fn rss_parts_mib(pid: u32) -> (f64, f64) {
    let mib = |field| proc_status(pid, field).map_or(f64::NAN, |kib| kib / 1024.0);
    (mib("RssAnon:"), mib("RssFile:"))
}

/// Threads of a process now.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

/// 3. A backlog of `backlog_mib` for one integration, delivered after the target comes back.
fn backlog(runtime: &tokio::runtime::Runtime, backlog_mib: u64) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let down = Arc::new(AtomicBool::new(true));
    let (port, seen) = counting_target(runtime, Arc::clone(&down));
    let limit = (backlog_mib * 2 * 1024 * 1024).to_string();
    let topic = format!("retention.ms:604800000;segment.bytes:26214400;retention.bytes:{limit};replication.factor:1");
    // RETRY_ALL without a limit (0 = forever): nothing is given up on while the target is down.
    let env = [
        ("TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES", limit.as_str()),
        ("TB_KAFKA_IE_MSG_TOPIC_PROPERTIES", topic.as_str()),
        ("TB_IE_MSG_ACK_STRATEGY_RETRIES", "0"),
    ];
    let (node, mqtt_port, api, token) = start_tributary(dir.path(), &env);
    let pid = node.0.id();
    std::thread::sleep(SETTLE);
    let idle_rss = rss_mib(pid);
    let id = save(&api, &token, 0, &format!("127.0.0.1:{port}"));
    wait_active(&api, &token, &id);
    let messages = backlog_mib * 1024 * 1024 / SIZE as u64;
    let started = Instant::now();
    runtime.block_on(publish_sized(mqtt_port, 1, messages));
    let queued = started.elapsed();
    let queued_rss = rss_mib(pid);
    let queue_dir = dir_bytes(&dir.path().join("data/queue"));
    down.store(false, Ordering::Relaxed);
    let back = Instant::now();
    wait_seen(&seen, messages as usize);
    let delivered = back.elapsed();
    let seen = seen.lock().expect("seen");
    println!(
        "3. backlog of {backlog_mib} MiB ({messages} x {SIZE} B) for one integration, target down (503) while queued:"
    );
    println!(
        "   queued in {:.1} s; RSS {:.1} MiB (idle {:.1}); data/queue {:.1} MiB",
        queued.as_secs_f64(),
        queued_rss,
        idle_rss,
        mib(queue_dir)
    );
    println!("   target back: delivered {} of {messages} in {:.1} s ({:.0} msg/s), {} lost, {} duplicates; peak RSS {:.1} MiB", seen.numbers.len(), delivered.as_secs_f64(), seen.numbers.len() as f64 / delivered.as_secs_f64(), messages.saturating_sub(seen.numbers.len() as u64), seen.duplicates, peak_rss_mib(pid));
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let integrations = args.first().copied().unwrap_or(100) as usize;
    let messages = args.get(1).copied().unwrap_or(10_000);
    let backlog_mib = args.get(2).copied().unwrap_or(1024);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    storing(dir.path(), (backlog_mib * 1024 * 1024 / SIZE as u64).max(10_000));
    drop(dir);
    given_back(&runtime, integrations, messages);
    backlog(&runtime, backlog_mib);
}
