//! End-to-end benchmark: MQTT publishers -> all-in-one `tributary` -> HTTP driver -> local HTTP
//! server, QoS 1, RETRY_ALL. Prints msg/s sustained, messages lost and duplicated, and the
//! process's peak RSS.
//!
//! Run: `cargo build --release -p trib-dist && cargo bench -p trib-tests --bench mqtt_to_http -- [MESSAGES] [PUBLISHERS]`

// A benchmark program: printing its figures is its job.
#![allow(clippy::print_stdout)]

use std::{
    collections::HashSet,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// What the target saw: distinct sequence numbers, duplicates, time of the last request.
type Seen = Arc<Mutex<(HashSet<u64>, u64, Option<Instant>)>>;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn binary() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target/release/tributary");
    assert!(path.exists(), "build it first: cargo build --release -p trib-dist");
    path
}

struct Node(Child);

impl Drop for Node {
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

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let total = args.first().copied().unwrap_or(100_000);
    let publishers = args.get(1).copied().unwrap_or(4).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    // The target: counts every request body (a sequence number) it receives.
    let seen: Seen = Arc::new(Mutex::new((HashSet::new(), 0, None)));
    let sink_port = free_port();
    {
        let seen = seen.clone();
        runtime.spawn(async move {
            use poem::{handler, listener::TcpListener, post, web::Data, EndpointExt, Route, Server};
            #[handler]
            fn ingest(Data(seen): Data<&Seen>, body: String) -> &'static str {
                if let Ok(n) = body.trim().parse::<u64>() {
                    let mut s = seen.lock().expect("lock");
                    if !s.0.insert(n) {
                        s.1 += 1;
                    }
                    s.2 = Some(Instant::now());
                }
                "ok"
            }
            let app = Route::new().at("/ingest", post(ingest)).data(seen);
            let _ = Server::new(TcpListener::bind(format!("127.0.0.1:{sink_port}"))).run(app).await;
        });
    }

    let (mqtt_port, http_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node(
        Command::new(binary())
            .current_dir(dir.path())
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
    std::thread::sleep(Duration::from_secs(2));

    let start = Instant::now();
    runtime.block_on(async {
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
    });
    let published = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.lock().expect("lock").0.len() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (unique, duplicates, last) = {
        let s = seen.lock().expect("lock");
        (s.0.len(), s.1, s.2)
    };
    let delivered_in = last.map_or(published, |l| l.duration_since(start));
    println!("MQTT QoS 1 -> tributary all-in-one -> HTTP driver -> local HTTP server, {total} messages, {publishers} publishers:");
    println!(
        "  published (PUBACKed) in {:.2} s ({:.0} msg/s)",
        published.as_secs_f64(),
        total as f64 / published.as_secs_f64()
    );
    println!(
        "  delivered in {:.2} s: {:.0} msg/s end to end; lost {}, duplicates {}",
        delivered_in.as_secs_f64(),
        unique as f64 / delivered_in.as_secs_f64(),
        total - unique,
        duplicates
    );
    println!("  tributary peak RSS {:.1} MiB", peak_rss_mib(node.0.id()));
    println!(
        "  peer: Node-RED 4 on this machine ~2.7k msg/s (figure from the project brief, not re-measured in this run)"
    );
}
