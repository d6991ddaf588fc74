//! What the end-to-end benchmarks share: starting `tributary` and measuring processes, the
//! publishers, the wait for the target to have seen everything, and the printed row.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// What the target saw.
#[derive(Default)]
pub struct Sink {
    /// Distinct sequence numbers.
    pub seen: HashSet<u64>,
    pub duplicates: u64,
    /// Time of the last numbered request.
    pub last: Option<Instant>,
    /// Requests whose body was `probe` (readiness checks, not counted).
    pub probes: u64,
    /// Publish -> target latency of the messages that carried their send time (`n@micros`).
    pub latencies: Vec<Duration>,
}

impl Sink {
    /// Counts one message the target received: a sequence number, or a readiness `probe`.
    pub fn record(&mut self, body: &str) {
        let (body, sent_at) = match body.split_once('@') {
            Some((n, micros)) => (n, micros.parse::<u64>().ok()),
            None => (body, None),
        };
        if let Some(sent) = sent_at {
            self.latencies.push(Duration::from_micros(epoch_micros().saturating_sub(sent)));
        }
        if let Ok(n) = body.parse::<u64>() {
            if !self.seen.insert(n) {
                self.duplicates += 1;
            }
            self.last = Some(Instant::now());
        } else if body == "probe" {
            self.probes += 1;
        }
    }
}

pub type Shared = Arc<Mutex<Sink>>;

/// No new message for this long ends the wait for the rest.
pub const STALL: Duration = Duration::from_secs(30);
/// The longest wait for the last message after publishing.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

pub use trib_test_support::free_port;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped binary the benchmarks run: this checkout's release build, or the one
/// `TRIB_BENCH_BINARY` names (another revision's build, to compare two revisions with the same
/// benchmark program; the drivers beside that binary are the ones it loads).
pub fn binary() -> PathBuf {
    let path = std::env::var_os("TRIB_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/tributary"));
    assert!(path.exists(), "build it first: cargo build --release -p trib-dist ({} is missing)", path.display());
    path
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn peak_rss_mib(pid: u32) -> f64 {
    proc_status(pid, "VmHWM:").map_or(0.0, |kib| kib / 1024.0)
}

/// The number after `field` (with its colon, e.g. `VmRSS:`; kB for sizes) in a process's
/// `/proc/<pid>/status`; `None` when the process or the field is gone.
pub fn proc_status(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// User + system CPU seconds of a process so far (clock ticks of 10 ms).
pub fn cpu_secs(pid: u32) -> f64 {
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
pub fn start_tributary(dir: &Path, env: &[(&str, &str)]) -> (Proc, u16, String, String) {
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
pub async fn publish(mqtt_port: u16, total: usize, publishers: usize) {
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

/// Microseconds since the Unix epoch (publisher and target run on this machine).
pub fn epoch_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Publishes `total` numbered messages (QoS 1) from one client at `rate` per second, each
/// carrying its send time (`n@micros`) so the target can measure the latency.
pub async fn publish_paced(mqtt_port: u16, total: usize, rate: u64) {
    let mut opts = MqttOptions::new("bench-paced", "127.0.0.1", mqtt_port);
    opts.set_inflight(1000).set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(opts, 10_000);
    let poller = tokio::spawn(async move {
        let mut acked = 0;
        while acked < total {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("paced publisher: {e}"),
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..total {
        tick.tick().await;
        let body = format!("{n}@{}", epoch_micros());
        client.publish(format!("bench/{}", n % 4), QoS::AtLeastOnce, false, body).await.expect("publish");
    }
    poller.await.expect("paced publisher");
}

/// Publishes `rate` messages per second for `secs` seconds and prints the publish -> target
/// latency percentiles the sink measured.
pub fn latency_run(runtime: &tokio::runtime::Runtime, name: &str, sink: &Shared, mqtt_port: u16, rate: u64, secs: u64) {
    *sink.lock().expect("lock") = Sink::default();
    let total = (rate * secs) as usize;
    runtime.block_on(publish_paced(mqtt_port, total, rate));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.lock().expect("lock").seen.len() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = sink.lock().expect("lock");
    let mut l = s.latencies.clone();
    l.sort();
    let at =
        |q: f64| l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {:<28} {rate} msg/s for {secs} s: delivered {}/{total} | publish -> target p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        name,
        s.seen.len(),
        ms(at(0.50)),
        ms(at(0.99)),
        ms(l.last().copied().unwrap_or_default()),
    );
}

/// Publishes `probe` on `bench/probe` until the target has seen one (the path is ready).
pub async fn wait_until_ready(mqtt_port: u16, sink: &Shared, what: &str) {
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
pub struct Row {
    pub name: String,
    pub published: Duration,
    pub delivered_in: Duration,
    pub unique: usize,
    pub duplicates: u64,
    pub rss: Vec<(String, f64)>,
    pub cpu: Vec<(String, f64)>,
}

/// Runs the workload against `mqtt_port` and waits for the target to have seen it all (or to
/// stall). `procs` are measured (peak RSS, CPU seconds of the run).
pub fn run(
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

pub fn print_row(row: &Row, total: usize) {
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

/// What a loopback target does with each request body it accepted.
pub type OnBody = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// A loopback HTTP/1.1 server (keep-alive, `Content-Length` bodies) that answers `200`, or `503`
/// while `down` is set; hands every body it answered `200` to `on_body`. Returns its port.
pub fn http_target(
    runtime: &tokio::runtime::Runtime,
    down: Arc<std::sync::atomic::AtomicBool>,
    on_body: OnBody,
) -> u16 {
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind the target");
    let port = listener.local_addr().expect("target address").port();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, Arc::clone(&down), Arc::clone(&on_body)));
        }
    });
    port
}

async fn answer(mut stream: tokio::net::TcpStream, down: Arc<std::sync::atomic::AtomicBool>, on_body: OnBody) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = req.parse(&buf) {
            let length: usize = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                .find_map(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= head + length {
                let answer: &[u8] = if down.load(std::sync::atomic::Ordering::Relaxed) {
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                } else {
                    on_body(&buf[head..head + length]);
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                };
                buf.drain(..head + length);
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                continue;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The `state` of integration `id` (`GET /api/integration/{id}/status`), if it answered.
pub fn integration_state(api: &str, token: &str, id: &str) -> Option<String> {
    ureq::get(&format!("{api}/api/integration/{id}/status"))
        .header("X-Authorization", &format!("Bearer {token}"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["state"].as_str().map(str::to_string))
}
