//! End-to-end benchmark: MQTT publishers -> all-in-one `tributary` -> HTTP driver -> local HTTP
//! server, QoS 1, RETRY_ALL. Prints msg/s sustained, messages lost and duplicated, and the
//! process's peak RSS.
//!
//! Run: `cargo build --release -p trib-dist && cargo bench -p trib-tests --bench mqtt_to_http -- [MESSAGES] [PUBLISHERS] [burst] [--tuned]`
//!
//! The target keeps its sockets' defaults (`--tuned` sets TCP_NODELAY on them). Sustained runs
//! add a latency row per path: one publisher at 1,000 msg/s for 5 s, publish -> target p50/p99.
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

// The shared bench code also serves benchmarks that use parts this one does not.
#[allow(dead_code)]
mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use common::{
    free_port, latency_run, print_row, root, run, start_tributary, wait_until_ready, Proc, Row, Shared, Sink,
};

/// One connection of the target: a minimal HTTP/1.1 server (keep-alive, `Content-Length`
/// bodies, pipelining) answering `200 ok` to everything, cheaper than a framework on a machine
/// whose two cores also run the publishers and the pipeline under test. Its sockets keep the
/// operating system's defaults (Nagle on), as a stock server's do; `tuned` sets TCP_NODELAY.
async fn serve(mut stream: tokio::net::TcpStream, sink: Shared, tuned: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
    if tuned {
        let _ = stream.set_nodelay(true);
    }
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
            sink.lock().expect("lock").record(body);
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

/// The Node-RED executable: `TRIB_BENCH_NODE_RED`, else the install of
/// `tests/tools/install-node-red.sh`.
fn node_red() -> Option<PathBuf> {
    match std::env::var_os("TRIB_BENCH_NODE_RED") {
        Some(p) if p == "off" => None,
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => Some(root().join("target/node-red/node_modules/node-red/red.js")).filter(|p| p.exists()),
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

fn main() {
    let burst = std::env::args().any(|a| a == "burst");
    let tuned = std::env::args().any(|a| a == "--tuned");
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
                tokio::spawn(serve(stream, sink.clone(), tuned));
            }
        });
    }

    let mode = if burst { "burst" } else { "sustained" };
    let target = if tuned { "TCP_NODELAY set (--tuned)" } else { "socket defaults" };
    println!(
        "MQTT QoS 1 -> HTTP POST per message -> local HTTP server ({target}), {total} messages from {publishers} publishers as fast as they go ({mode}):"
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
        if !burst {
            latency_run(&runtime, "tributary all-in-one", &sink, mqtt_port, 1_000, 5);
        }
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
            if !burst {
                latency_run(&runtime, &name, &sink, mqtt_port, 1_000, 5);
            }
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
