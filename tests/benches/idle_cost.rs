//! What idle integrations cost the shipped binary: resident memory (VmRSS) and threads of an
//! all-in-one `tributary` with no integration, then with N idle integrations of one type, and,
//! for HTTP, after 10,000 messages were delivered through them (issue 13, section 5).
//!
//! Run: `cargo build --release -p trib-dist && cargo bench -p trib-tests --bench idle_cost -- [N...] [http] [mqtt] [kafka]`
//!
//! Defaults: N = 100, every type. Each (type, N) starts a fresh node in a temporary directory
//! and saves N integrations over REST, then waits until every one is `Active`
//! (`GET /api/integration/{id}/status`). Targets: HTTP integrations post to a loopback server
//! of this program (`maxParallelRequestsCount` left at its default); MQTT integrations connect
//! to a stock `mosquitto` started from PATH on a free port (skipped when there is none); Kafka
//! integrations use `TRIB_TEST_KAFKA_BOOTSTRAP` (skipped when unset). Figures only, no
//! assertions; the thread line names the largest groups of threads by name.

// A benchmark program: printing its figures is its job.
#![allow(clippy::print_stdout)]

// Only part of the shared helpers is used here.
#[allow(dead_code)]
mod common;

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{free_port, http_target, integration_state, proc_status, publish, start_tributary, Proc};

/// Messages sent through the HTTP integrations after the idle figures.
const MESSAGES: usize = 10_000;
/// How long the node may settle before a figure is taken.
const SETTLE: Duration = Duration::from_secs(3);
/// The longest wait for N integrations to become Active.
const ACTIVE_WAIT: Duration = Duration::from_secs(600);

/// Resident memory (MiB) and thread count of a process.
fn rss_and_threads(pid: u32) -> (f64, u64) {
    let field = |name| proc_status(pid, name).unwrap_or(0.0);
    (field("VmRSS:") / 1024.0, field("Threads:") as u64)
}

/// Threads grouped by name without trailing digits (`trib-http-3` -> `trib-http-`), largest first.
fn thread_groups(pid: u32) -> String {
    let mut groups: BTreeMap<String, u64> = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let name = name.trim().trim_end_matches(|c: char| c.is_ascii_digit()).to_string();
            *groups.entry(name).or_default() += 1;
        }
    }
    let mut groups: Vec<(String, u64)> = groups.into_iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    groups.iter().take(5).map(|(n, c)| format!("{n} {c}")).collect::<Vec<_>>().join(", ")
}

fn figure(label: &str, pid: u32, idle: Option<(f64, u64)>) -> (f64, u64) {
    let (rss, threads) = rss_and_threads(pid);
    let added =
        idle.map_or(String::new(), |(r, t)| format!(" (+{:.1} MiB, +{} threads)", rss - r, threads.saturating_sub(t)));
    println!("  {label:<34} RSS {rss:>7.1} MiB, threads {threads:>5}{added} | {}", thread_groups(pid));
    (rss, threads)
}

/// A stock Mosquitto on a free loopback port, or `None` when it is not on PATH.
fn mosquitto(dir: &std::path::Path) -> Option<(Proc, u16)> {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\nlog_type error\n")).ok()?;
    let child = Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).spawn().ok()?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((proc, port))
}

/// The `clientConfiguration` of integration `i` of `kind`.
fn client_configuration(kind: &str, i: usize, target: &str) -> serde_json::Value {
    match kind {
        "http" => serde_json::json!({"restEndpointUrl": format!("http://{target}/idle/{i}"), "requestMethod": "POST",
            "payloadContentType": "TEXT", "sendOnlyMsgPayload": true}),
        "mqtt" => serde_json::json!({"host": "127.0.0.1", "port": target.parse::<u16>().unwrap_or(1883),
            "clientId": format!("idle-cost-{i}"), "useMsgTopicName": true, "qos": 1, "sendOnlyMsgPayload": true}),
        _ => serde_json::json!({"bootstrapServers": target, "topic": "idle-cost"}),
    }
}

/// Saves integration `i`; returns its id.
fn save(api: &str, token: &str, kind: &str, i: usize, target: &str) -> String {
    let integration = serde_json::json!({
        "name": format!("idle-{kind}-{i}"), "type": kind.to_uppercase(), "enabled": true,
        "configuration": {"clientConfiguration": client_configuration(kind, i, target),
            "topicFilters": [format!("bench/{i}")], "metadata": {}}});
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let saved = ureq::post(&format!("{api}/api/integration"))
            .header("X-Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(integration.to_string());
        match saved {
            Ok(mut r) => {
                let text = r.body_mut().read_to_string().expect("saved integration");
                let v: serde_json::Value = serde_json::from_str(&text).expect("saved integration json");
                return v["id"].as_str().expect("integration id").to_string();
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "integration {i} was not saved: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// Waits until every integration's state is `Active`; returns how many are.
fn wait_active(api: &str, token: &str, ids: &[String]) -> usize {
    let deadline = Instant::now() + ACTIVE_WAIT;
    let mut active = 0;
    for id in ids {
        loop {
            let state = integration_state(api, token, id);
            if state.as_deref() == Some("Active") {
                active += 1;
                break;
            }
            if Instant::now() > deadline {
                return active;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    active
}

fn run(runtime: &tokio::runtime::Runtime, kind: &str, n: usize) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let served = Arc::new(AtomicU64::new(0));
    let (_target, target) = match kind {
        "http" => {
            let counted = Arc::clone(&served);
            let count = Arc::new(move |_: &[u8]| {
                counted.fetch_add(1, Ordering::Relaxed);
            });
            (None, format!("127.0.0.1:{}", http_target(runtime, Arc::new(AtomicBool::new(false)), count)))
        }
        "mqtt" => match mosquitto(dir.path()) {
            Some((proc, port)) => (Some(proc), port.to_string()),
            None => {
                println!("{kind} x {n}: skipped: no `mosquitto` on PATH");
                return;
            }
        },
        _ => match std::env::var("TRIB_TEST_KAFKA_BOOTSTRAP") {
            Ok(bootstrap) if !bootstrap.is_empty() => (None, bootstrap),
            _ => {
                println!("{kind} x {n}: skipped: TRIB_TEST_KAFKA_BOOTSTRAP is not set");
                return;
            }
        },
    };
    println!("{kind} x {n}:");
    let (node, mqtt_port, api, token) = start_tributary(dir.path(), &[]);
    let pid = node.0.id();
    std::thread::sleep(SETTLE);
    let idle = figure("no integration", pid, None);
    let started = Instant::now();
    let ids: Vec<String> = (0..n).map(|i| save(&api, &token, kind, i, &target)).collect();
    let active = wait_active(&api, &token, &ids);
    println!("  {active} of {n} Active {:.1} s after the first save", started.elapsed().as_secs_f64());
    std::thread::sleep(SETTLE);
    figure(&format!("{n} idle integrations"), pid, Some(idle));
    if kind != "http" {
        return;
    }
    let start = Instant::now();
    // One publisher per integration: `bench/<i>` reaches integration i.
    runtime.block_on(publish(mqtt_port, MESSAGES, n));
    let deadline = Instant::now() + Duration::from_secs(300);
    while (served.load(Ordering::Relaxed) as usize) < MESSAGES && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("  delivered {} of {MESSAGES} in {:.2} s", served.load(Ordering::Relaxed), start.elapsed().as_secs_f64());
    figure("right after delivery", pid, Some(idle));
    std::thread::sleep(Duration::from_secs(15));
    figure("15 s after delivery", pid, Some(idle));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes.push(100);
    }
    let mut kinds: Vec<&str> = ["http", "mqtt", "kafka"].into_iter().filter(|k| args.iter().any(|a| a == k)).collect();
    if kinds.is_empty() {
        kinds = vec!["http", "mqtt", "kafka"];
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    for kind in &kinds {
        for &n in &sizes {
            run(&runtime, kind, n);
        }
    }
}
