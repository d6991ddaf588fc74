//! End-to-end benchmark: MQTT publishers -> all-in-one `tributary` -> HTTP driver -> local HTTP
//! server, QoS 1, RETRY_ALL. Prints msg/s sustained, messages lost and duplicated, and the
//! process's peak RSS.
//!
//! Run: `cargo build --release -p trib-dist && cargo bench -p trib-tests --bench mqtt_to_http -- [MESSAGES] [PUBLISHERS] [burst]`
//!
//! `burst` (default 100,000 messages instead of 50,000) is the same workload read as a memory
//! test: every message is published as fast as the publishers can, and the figures that matter
//! are whether all of them arrived and the peak RSS.
//!
//! The peer, in the same run: when Node-RED is installed (`tests/tools/install-node-red.sh` puts
//! it in `target/node-red`, or `TRIB_BENCH_NODE_RED=<path to the node-red executable>`), the same
//! workload goes a second time through Node-RED: a fresh `tributary` as the MQTT broker (no
//! integration, its per-session queue raised so that it drops nothing), a flow `mqtt in` (QoS 1,
//! `bench/#`) -> `http request` (POST, keep-alive) to the same HTTP server. Both rows are
//! printed side by side; `TRIB_BENCH_NODE_RED=off` skips the peer.

// A benchmark program: printing its figures is its job.
#![allow(clippy::print_stdout)]

use std::{
    collections::HashSet,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// What the target saw.
#[derive(Default)]
struct Sink {
    /// Distinct sequence numbers.
    seen: HashSet<u64>,
    duplicates: u64,
    /// Time of the last numbered request.
    last: Option<Instant>,
    /// Requests whose body was `probe` (readiness checks, not counted).
    probes: u64,
}

type Shared = Arc<Mutex<Sink>>;

/// One connection of the target: a minimal HTTP/1.1 server (keep-alive, `Content-Length`
/// bodies, pipelining) answering `200 ok` to everything, cheaper than a framework on a machine
/// whose two cores also run the publishers and the pipeline under test.
async fn serve(mut stream: tokio::net::TcpStream, sink: Shared) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    loop {
        // Answer every complete request in the buffer, then read more.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let head = match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            };
            let length = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() < head + length {
                break;
            }
            let body = std::str::from_utf8(&buf[head..head + length]).unwrap_or("").trim();
            {
                let mut s = sink.lock().expect("lock");
                if let Ok(n) = body.parse::<u64>() {
                    if !s.seen.insert(n) {
                        s.duplicates += 1;
                    }
                    s.last = Some(Instant::now());
                } else if body == "probe" {
                    s.probes += 1;
                }
            }
            buf.drain(..head + length);
            out.extend_from_slice(OK);
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// No new message for this long ends the wait for the rest.
const STALL: Duration = Duration::from_secs(30);
/// The longest wait for the last message after publishing.
const MAX_WAIT: Duration = Duration::from_secs(300);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn binary() -> PathBuf {
    let path = root().join("target/release/tributary");
    assert!(path.exists(), "build it first: cargo build --release -p trib-dist");
    path
}

/// The Node-RED executable: `TRIB_BENCH_NODE_RED`, else the install of
/// `tests/tools/install-node-red.sh`.
fn node_red() -> Option<PathBuf> {
    match std::env::var_os("TRIB_BENCH_NODE_RED") {
        Some(p) if p == "off" => None,
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => Some(root().join("target/node-red/node_modules/node-red/red.js")).filter(|p| p.exists()),
    }
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

/// User + system CPU seconds of a process so far (clock ticks of 10 ms).
fn cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Starts a `tributary` all-in-one node with `env` added; returns it with its MQTT port, its
/// REST address and a token.
fn start_tributary(dir: &Path, env: &[(&str, &str)]) -> (Proc, u16, String, String) {
    let (mqtt_port, http_port) = (free_port(), free_port());
    let node = Proc(
        Command::new(binary())
            .current_dir(dir)
            .envs(env.iter().copied())
            .env("LISTENER_TCP_BIND_PORT", mqtt_port.to_string())
            .env("HTTP_BIND_PORT", http_port.to_string())
            .env("TB_ADMIN_PASSWORD", "bench-secret")
            .env("TB_SERVICE_ID", "bench")
            .env("TB_IE_MSG_ACK_STRATEGY_TYPE", "RETRY_ALL")
            .env("TB_IE_MSG_ACK_STRATEGY_PAUSE_BETWEEN_RETRIES", "1")
            .env("TB_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start tributary"),
    );
    let api = format!("http://127.0.0.1:{http_port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let token = loop {
        assert!(Instant::now() < deadline, "tributary did not start");
        let login = ureq::post(&format!("{api}/api/auth/login"))
            .header("Content-Type", "application/json")
            .send(r#"{"username":"sysadmin@thingsboard.org","password":"bench-secret"}"#);
        if let Ok(mut r) = login {
            let text = r.body_mut().read_to_string().expect("login body");
            let v: serde_json::Value = serde_json::from_str(&text).expect("login json");
            break v["token"].as_str().expect("token").to_string();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (node, mqtt_port, api, token)
}

/// Publishes `total` numbered messages (QoS 1) from `publishers` clients; returns when every
/// one is PUBACKed.
async fn publish(mqtt_port: u16, total: usize, publishers: usize) {
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let share = total / publishers + usize::from(p < total % publishers);
        tasks.push(tokio::spawn(async move {
            let mut opts = MqttOptions::new(format!("bench-pub-{p}"), "127.0.0.1", mqtt_port);
            opts.set_inflight(1000).set_keep_alive(Duration::from_secs(30));
            let (client, mut events) = AsyncClient::new(opts, 10_000);
            let sender = tokio::spawn(async move {
                for i in 0..share {
                    let n = (i * publishers + p) as u64;
                    client
                        .publish(format!("bench/{p}"), QoS::AtLeastOnce, false, n.to_string())
                        .await
                        .expect("publish");
                }
                client
            });
            let mut acked = 0;
            while acked < share {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(_) => {}
                    Err(e) => panic!("publisher {p}: {e}"),
                }
            }
            let _ = sender.await;
        }));
    }
    for t in tasks {
        t.await.expect("publisher");
    }
}

/// Publishes `probe` on `bench/probe` until the target has seen one (the path is ready).
async fn wait_until_ready(mqtt_port: u16, sink: &Shared, what: &str) {
    let mut opts = MqttOptions::new("bench-probe", "127.0.0.1", mqtt_port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(opts, 100);
    let poller = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let deadline = Instant::now() + Duration::from_secs(90);
    while sink.lock().expect("lock").probes == 0 {
        assert!(Instant::now() < deadline, "{what} did not deliver a probe within 90 s");
        let _ = client.publish("bench/probe", QoS::AtLeastOnce, false, "probe").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = client.disconnect().await;
    poller.abort();
    // Let probes still in flight land before the figures start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut s = sink.lock().expect("lock");
    *s = Sink { probes: s.probes, ..Sink::default() };
}

/// One row of the table.
struct Row {
    name: String,
    published: Duration,
    delivered_in: Duration,
    unique: usize,
    duplicates: u64,
    rss: Vec<(String, f64)>,
    cpu: Vec<(String, f64)>,
}

/// Runs the workload against `mqtt_port` and waits for the target to have seen it all (or to
/// stall). `procs` are measured (peak RSS, CPU seconds of the run).
fn run(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    sink: &Shared,
    mqtt_port: u16,
    total: usize,
    publishers: usize,
    procs: &[(&str, u32)],
) -> Row {
    let cpu_before: Vec<f64> = procs.iter().map(|(_, pid)| cpu_secs(*pid)).collect();
    let start = Instant::now();
    runtime.block_on(publish(mqtt_port, total, publishers));
    let published = start.elapsed();
    let hard = Instant::now() + MAX_WAIT;
    let (mut progress_at, mut last_count) = (Instant::now(), 0);
    loop {
        let n = sink.lock().expect("lock").seen.len();
        if n >= total || Instant::now() > hard {
            break;
        }
        if n != last_count {
            (progress_at, last_count) = (Instant::now(), n);
        } else if progress_at.elapsed() > STALL {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = sink.lock().expect("lock");
    Row {
        name: name.to_string(),
        published,
        delivered_in: s.last.map_or(published, |l| l.duration_since(start)),
        unique: s.seen.len(),
        duplicates: s.duplicates,
        rss: procs.iter().map(|(n, pid)| (n.to_string(), peak_rss_mib(*pid))).collect(),
        cpu: procs.iter().zip(cpu_before).map(|((n, pid), b)| (n.to_string(), cpu_secs(*pid) - b)).collect(),
    }
}

/// Saves the HTTP integration that posts `bench/#` to the target.
fn save_integration(api: &str, token: &str, sink_port: u16) {
    let integration = serde_json::json!({
        "name": "bench-http", "type": "HTTP", "enabled": true,
        "configuration": {
            "clientConfiguration": {"restEndpointUrl": format!("http://127.0.0.1:{sink_port}/ingest"), "requestMethod": "POST",
                "headers": {"Content-Type": "text/plain"}, "payloadContentType": "TEXT", "sendOnlyMsgPayload": true,
                "maxParallelRequestsCount": 32},
            "topicFilters": ["bench/#"]}});
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "integration was not saved");
        let saved = ureq::post(&format!("{api}/api/integration"))
            .header("X-Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(integration.to_string());
        if saved.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The Node-RED flow: `mqtt in` (QoS 1) -> `http request` POST with keep-alive.
fn node_red_flow(mqtt_port: u16, sink_port: u16) -> serde_json::Value {
    serde_json::json!([
        {"id": "bench-tab", "type": "tab", "label": "bench"},
        {"id": "bench-broker", "type": "mqtt-broker", "name": "bench", "broker": "127.0.0.1", "port": mqtt_port.to_string(),
         "clientid": "nodered-bench", "autoConnect": true, "usetls": false, "protocolVersion": "4", "keepalive": "60",
         "cleansession": true},
        {"id": "bench-in", "type": "mqtt in", "z": "bench-tab", "name": "", "topic": "bench/#", "qos": "1",
         "datatype": "utf8", "broker": "bench-broker", "nl": false, "rap": true, "rh": 0, "inputs": 0,
         "wires": [["bench-post"]]},
        {"id": "bench-post", "type": "http request", "z": "bench-tab", "name": "", "method": "POST", "ret": "txt",
         "paytoqs": "ignore", "url": format!("http://127.0.0.1:{sink_port}/ingest"), "tls": "", "persist": true,
         "proxy": "", "insecureHTTPParser": false, "authType": "", "senderr": false, "headers": [], "wires": [[]]}
    ])
}

fn print_row(row: &Row, total: usize) {
    let lost = total - row.unique;
    let rate = row.unique as f64 / row.delivered_in.as_secs_f64();
    let rss: Vec<String> = row.rss.iter().map(|(n, v)| format!("{n} {v:.1} MiB")).collect();
    let cpu: Vec<String> = row.cpu.iter().map(|(n, v)| format!("{n} {v:.1} s")).collect();
    println!(
        "  {:<28} published in {:>6.2} s | delivered {:>7} in {:>6.2} s = {:>7.0} msg/s | lost {:>6}, duplicates {:>5}, all arrived: {} | peak RSS: {} | CPU: {}",
        row.name,
        row.published.as_secs_f64(),
        row.unique,
        row.delivered_in.as_secs_f64(),
        rate,
        lost,
        row.duplicates,
        if lost == 0 { "yes" } else { "NO" },
        rss.join(", "),
        cpu.join(", ")
    );
}

fn main() {
    let burst = std::env::args().any(|a| a == "burst");
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let total = args.first().copied().unwrap_or(if burst { 100_000 } else { 50_000 });
    let publishers = args.get(1).copied().unwrap_or(4).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    // The target: counts every request body (a sequence number) it receives.
    let sink: Shared = Arc::default();
    let sink_port = free_port();
    {
        let sink = sink.clone();
        let listener = std::net::TcpListener::bind(("127.0.0.1", sink_port)).expect("bind the target");
        listener.set_nonblocking(true).expect("nonblocking");
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, sink.clone()));
            }
        });
    }

    let mode = if burst { "burst" } else { "sustained" };
    println!(
        "MQTT QoS 1 -> HTTP POST per message -> local HTTP server, {total} messages from {publishers} publishers as fast as they go ({mode}):"
    );
    let mut rows = Vec::new();
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let (node, mqtt_port, api, token) = start_tributary(dir.path(), &[]);
        save_integration(&api, &token, sink_port);
        runtime.block_on(wait_until_ready(mqtt_port, &sink, "tributary"));
        let row =
            run(&runtime, "tributary all-in-one", &sink, mqtt_port, total, publishers, &[("tributary", node.0.id())]);
        print_row(&row, total);
        rows.push(row);
    }
    *sink.lock().expect("lock") = Sink::default();

    match node_red() {
        None => println!(
            "  Node-RED 4: not installed (tests/tools/install-node-red.sh, or TRIB_BENCH_NODE_RED=<node-red executable>)"
        ),
        Some(red) => {
            let dir = tempfile::tempdir().expect("tempdir");
            // The broker must not be what loses messages: its per-session queue (10,000 by
            // default, like TBMQ) is raised above the workload for Node-RED's subscription.
            let (broker, mqtt_port, _, _) =
                start_tributary(dir.path(), &[("MQTT_PERSISTENT_SESSION_DEVICE_PERSISTED_MESSAGES_LIMIT", "10000000")]);
            let user_dir = dir.path().join("node-red");
            std::fs::create_dir_all(&user_dir).expect("node-red dir");
            let flow = user_dir.join("flows.json");
            std::fs::write(&flow, node_red_flow(mqtt_port, sink_port).to_string()).expect("flow");
            let red = Proc(
                Command::new(&red)
                    .arg("-u")
                    .arg(&user_dir)
                    .arg("-p")
                    .arg(free_port().to_string())
                    .args(["-D", "logging.console.level=warn", "-D", "httpAdminRoot=false", "-D", "httpNodeRoot=false"])
                    .arg(&flow)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("start Node-RED"),
            );
            let version = std::fs::read_to_string(
                red_package_json(&PathBuf::from(std::env::var_os("TRIB_BENCH_NODE_RED").unwrap_or_default()))
                    .unwrap_or_else(|| root().join("target/node-red/node_modules/node-red/package.json")),
            )
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_string))
            .unwrap_or_else(|| "4".to_string());
            runtime.block_on(wait_until_ready(mqtt_port, &sink, "Node-RED"));
            let name = format!("Node-RED {version}");
            let row = run(
                &runtime,
                &name,
                &sink,
                mqtt_port,
                total,
                publishers,
                &[("node-red", red.0.id()), ("broker (tributary)", broker.0.id())],
            );
            print_row(&row, total);
            rows.push(row);
        }
    }
    if rows.len() == 2 {
        let rate = |r: &Row| r.unique as f64 / r.delivered_in.as_secs_f64();
        println!("  tributary / Node-RED throughput: {:.1}x", rate(&rows[0]) / rate(&rows[1]).max(1e-9));
    }
}

/// `package.json` next to a `node-red` executable given as `.../node_modules/.bin/node-red` or
/// `.../node_modules/node-red/red.js`.
fn red_package_json(bin: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(bin).ok()?;
    let p = real.parent()?.join("package.json");
    p.exists().then_some(p)
}
