//! MQTT load generator: throughput, loss and publish-to-delivery latency against any MQTT 3.1.1 broker.
//!
//! ```text
//! cargo run --release -p trib-broker --example loadgen -- --host 127.0.0.1 --port 1883 \
//!     --publishers 4 --subscribers 1 --qos 1 --payload 64 --rate 0 --messages 100000 --topic-mode fan-in
//! cargo run --release -p trib-broker --example loadgen -- --embedded --publishers 1 --subscribers 4 ...
//! ```
//!
//! Topic modes (every subscriber receives every message in both, so `expected = messages x subscribers`):
//! - `fan-in`: publisher `i` publishes to `bench/<run>/p<i>`, subscribers subscribe to the wildcard
//!   `bench/<run>/#`; meant for many publishers and one subscriber.
//! - `fan-out`: all publishers publish to the one topic `bench/<run>/all`, which every subscriber
//!   subscribes to exactly; meant for one publisher and many subscribers.
//!
//! Subscribers connect and receive their SUBACK before any publisher starts. The first 8 bytes of each
//! payload are the send time (nanoseconds since an instant shared by all clients of this process, little
//! endian), taken just before the message is handed to the client, so latency includes client-side
//! queueing. `--rate 0` publishes as fast as the client allows; then latency mostly measures queues.
//! A run ends when every expected message arrived, when nothing arrived for 3 s after the publishers
//! finished, or after 55 s; missing messages are reported as lost.
//! `--embedded` starts `trib_broker::Broker` in-process on 127.0.0.1:0 and ignores `--host`/`--port`.
//! Embedded brokers run with their cluster link (`trib_broker::cluster`) on an in-process queue, as
//! the broker service runs them. `--nodes 2` starts two joined on one queue and connects the
//! publishers to node 1 and the subscribers to node 2; `--nodes both` runs one node, then two,
//! and prints both lines.
//! Only MQTT 3.1.1 clients (rumqttc v4) are used so the same run works against any broker.
// A command-line tool: its report goes to stdout, usage errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str = "usage: loadgen [--embedded] [--host H] [--port P] [--publishers N] [--subscribers M] \
[--qos 0|1|2] [--payload BYTES>=8] [--rate MSGS_PER_SEC_TOTAL (0 = max)] [--messages TOTAL] \
[--topic-mode fan-in|fan-out] [--nodes 1|2|both (with --embedded)]";
const IDLE_END: Duration = Duration::from_secs(3);
const MAX_RUN: Duration = Duration::from_secs(55);

#[derive(Debug, Clone)]
struct Args {
    host: String,
    port: u16,
    publishers: usize,
    subscribers: usize,
    qos: QoS,
    payload: usize,
    rate: f64,
    messages: u64,
    fan_out: bool,
    embedded: bool,
    /// Where subscribers connect (node 2 of a two-node run); `None`: where publishers do.
    sub_port: Option<u16>,
    /// Broker nodes to start with `--embedded`: 1, 2, or 0 for both runs in turn.
    nodes: usize,
    /// Node 1's router in a two-node run (to wait until it knows node 2's subscribers).
    subscribers_known: Option<Arc<trib_broker::Router>>,
}

/// What one subscriber saw: per-message latencies (ns) and the time of its last message.
struct Received {
    latencies: Vec<u64>,
    last_ns: u64,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if !args.embedded {
        println!("{}", run(&args).await?);
        return Ok(());
    }
    let counts: &[usize] = match args.nodes {
        0 => &[1, 2],
        1 => &[1],
        _ => &[2],
    };
    for &nodes in counts {
        let mut brokers = Vec::new();
        let queue: Arc<dyn trib_queue::queue::Queue> = Arc::new(trib_queue::queue::embedded::EmbeddedQueue::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for n in 0..nodes {
            brokers.push(start_node(&queue, &format!("node-{}", n + 1), &stop).await?);
        }
        let addr = |i: usize| brokers[i].tcp_addr().ok_or("embedded broker has no tcp listener");
        args.host = addr(0)?.ip().to_string();
        args.port = addr(0)?.port();
        args.sub_port = (nodes > 1).then(|| addr(1).map(|a| a.port())).transpose()?;
        if nodes > 1 {
            // Node 1 must know node 2's subscribers before anything is published.
            args.subscribers_known = Some(brokers[0].router().clone());
        }
        let result = run(&args).await;
        stop.store(true, Ordering::Relaxed);
        for handle in brokers {
            handle.shutdown().await;
        }
        println!("nodes={nodes} {}", result?);
    }
    Ok(())
}

/// Starts one in-process broker with its cluster link on `queue` (as the broker service runs it),
/// joined to the others started on it.
async fn start_node(
    queue: &Arc<dyn trib_queue::queue::Queue>,
    id: &str,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<trib_broker::BrokerHandle, BoxError> {
    let mut config = trib_broker::BrokerConfig::default();
    config.listener.tcp.bind_address = "127.0.0.1".to_owned();
    config.listener.tcp.bind_port = 0;
    let router = Arc::new(trib_broker::Router::new(None));
    let names = trib_queue::topics::TopicNames::default();
    let link =
        trib_broker::cluster::ClusterLink::open(queue.clone(), &names, id, &router, Duration::from_millis(100)).await?;
    link.catch_up().await?;
    let hooks = trib_broker::BrokerHooks { router: Some(router), ..Default::default() };
    let handle = trib_broker::Broker::start_with(config, hooks).await?;
    link.follow_broker(&handle, stop.clone())?;
    Ok(handle)
}

async fn run(args: &Args) -> Result<String, BoxError> {
    let start = Instant::now();
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis()
    );
    let prefix = format!("bench/{run_id}");
    let filter = if args.fan_out { format!("{prefix}/all") } else { format!("{prefix}/#") };
    let expected = args.messages * args.subscribers as u64;
    let received_total = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut subscribers = Vec::new();
    for i in 0..args.subscribers {
        let (ready_tx, ready_rx) = oneshot::channel();
        let opts = options_at(args, &format!("lg-{run_id}-s{i}"), args.sub_port.unwrap_or(args.port));
        let task = tokio::spawn(subscriber(
            opts,
            filter.clone(),
            args.qos,
            args.messages,
            start,
            ready_tx,
            stop_rx.clone(),
            received_total.clone(),
        ));
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .map_err(|_| "subscriber got no suback in 10 s")??;
        subscribers.push(task);
    }
    if let Some(router) = &args.subscribers_known {
        let deadline = Instant::now() + Duration::from_secs(10);
        while router.remote_client_count() < args.subscribers {
            if Instant::now() > deadline {
                return Err("node 1 did not learn node 2's subscribers in 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    let pub_t0 = start.elapsed();
    let mut publishers = Vec::new();
    for i in 0..args.publishers {
        let count =
            args.messages / args.publishers as u64 + u64::from((i as u64) < args.messages % args.publishers as u64);
        let topic = if args.fan_out { format!("{prefix}/all") } else { format!("{prefix}/p{i}") };
        let opts = options(args, &format!("lg-{run_id}-p{i}"));
        let rate = args.rate / args.publishers as f64;
        publishers.push(publisher(opts, topic, args.qos, count, args.payload, rate, start));
    }
    let mut pub_done = Duration::ZERO;
    let mut drivers = Vec::new();
    for p in publishers {
        let (done, driver) = p.await?;
        pub_done = pub_done.max(done);
        drivers.push(driver);
    }

    wait_for_deliveries(&received_total, expected, start).await;
    let _ = stop_tx.send(true);
    let mut latencies = Vec::with_capacity(expected as usize);
    let mut last_ns = 0;
    for s in subscribers {
        let r = s.await??;
        latencies.extend(r.latencies);
        last_ns = last_ns.max(r.last_ns);
    }
    for d in drivers {
        d.abort();
    }
    Ok(report(args, expected, &mut latencies, pub_t0, pub_done, Duration::from_nanos(last_ns)))
}

fn options(args: &Args, id: &str) -> MqttOptions {
    options_at(args, id, args.port)
}

fn options_at(args: &Args, id: &str, port: u16) -> MqttOptions {
    let mut opts = MqttOptions::new(id, args.host.clone(), port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(args.payload + 1024, args.payload + 1024);
    opts.set_request_channel_capacity(1000);
    opts
}

/// Connects, subscribes, signals `ready` on SUBACK, then records every PUBLISH until `stop`.
#[allow(clippy::too_many_arguments)]
async fn subscriber(
    opts: MqttOptions,
    filter: String,
    qos: QoS,
    expected: u64,
    start: Instant,
    ready: oneshot::Sender<()>,
    mut stop: watch::Receiver<bool>,
    total: Arc<AtomicU64>,
) -> Result<Received, BoxError> {
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    client.subscribe(filter, qos).await?;
    let mut ready = Some(ready);
    let mut got = Received { latencies: Vec::with_capacity(expected as usize), last_ns: 0 };
    loop {
        // Cancelling `poll` can lose a partly read packet; that only happens once, at the end.
        tokio::select! {
            event = eventloop.poll() => match event? {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let now = start.elapsed().as_nanos() as u64;
                    let sent = p.payload.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).ok_or("payload under 8 bytes")?;
                    got.latencies.push(now.saturating_sub(sent));
                    got.last_ns = now;
                    total.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            },
            _ = stop.changed() => return Ok(got),
        }
    }
}

/// Publishes `count` messages at `rate` msg/s (0 = unpaced); resolves to the time the last one was
/// written (QoS 0) or acknowledged (QoS 1/2), and the event loop task that keeps the connection open.
fn publisher(
    opts: MqttOptions,
    topic: String,
    qos: QoS,
    count: u64,
    payload_len: usize,
    rate: f64,
    start: Instant,
) -> JoinHandle<(Duration, JoinHandle<()>)> {
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    let (done_tx, done_rx) = oneshot::channel();
    let driver = tokio::spawn(async move {
        let (mut written, mut acked) = (0u64, 0u64);
        let mut done_tx = Some(done_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Publish(_))) => written += 1,
                Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("publisher connection error: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let finished = if qos == QoS::AtMostOnce { written >= count } else { acked >= count };
            if finished {
                if let Some(tx) = done_tx.take() {
                    let _ = tx.send(start.elapsed());
                }
            }
        }
    });
    tokio::spawn(async move {
        let t0 = Instant::now();
        for k in 0..count {
            if rate > 0.0 {
                tokio::time::sleep_until((t0 + Duration::from_secs_f64(k as f64 / rate)).into()).await;
            }
            let mut payload = vec![0u8; payload_len];
            payload[..8].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_le_bytes());
            if client.publish(topic.clone(), qos, false, payload).await.is_err() {
                break;
            }
        }
        let done = if count == 0 { start.elapsed() } else { done_rx.await.unwrap_or_else(|_| start.elapsed()) };
        (done, driver)
    })
}

async fn wait_for_deliveries(received: &AtomicU64, expected: u64, start: Instant) {
    let (mut last_count, mut last_change) = (0, Instant::now());
    loop {
        let n = received.load(Ordering::Relaxed);
        if n >= expected || last_change.elapsed() > IDLE_END || start.elapsed() > MAX_RUN {
            return;
        }
        if n != last_count {
            (last_count, last_change) = (n, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn report(
    args: &Args,
    expected: u64,
    lat: &mut [u64],
    pub_t0: Duration,
    pub_done: Duration,
    last_rx: Duration,
) -> String {
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(f64::NAN, |ns| *ns as f64 / 1e6)
    };
    let rate = |n: u64, end: Duration| n as f64 / end.saturating_sub(pub_t0).as_secs_f64().max(1e-9);
    let received = lat.len() as u64;
    format!(
        "{} qos={} pubs={} subs={} payload={} rate={} messages={} | published {:.0} msg/s | received {:.0} msg/s | lost {} of {} | latency ms p50 {:.2} p99 {:.2} max {:.2}",
        if args.fan_out { "fan-out" } else { "fan-in" },
        args.qos as u8,
        args.publishers,
        args.subscribers,
        args.payload,
        args.rate,
        args.messages,
        rate(args.messages, pub_done),
        rate(received, last_rx),
        expected.saturating_sub(received),
        expected,
        pct(0.50),
        pct(0.99),
        lat.last().map_or(f64::NAN, |ns| *ns as f64 / 1e6),
    )
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        host: "127.0.0.1".to_owned(),
        port: 1883,
        publishers: 1,
        subscribers: 1,
        qos: QoS::AtMostOnce,
        payload: 64,
        rate: 0.0,
        messages: 100_000,
        fan_out: false,
        embedded: false,
        sub_port: None,
        nodes: 1,
        subscribers_known: None,
    };
    while let Some(flag) = it.next() {
        if flag == "--embedded" {
            a.embedded = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--host" => a.host = value.clone(),
            "--nodes" => {
                a.nodes = match value.as_str() {
                    "1" => 1,
                    "2" => 2,
                    "both" => 0,
                    _ => return Err(format!("bad value for --nodes: {value} (1, 2 or both)")),
                }
            }
            "--port" => a.port = value.parse().map_err(bad)?,
            "--publishers" => a.publishers = value.parse().map_err(bad)?,
            "--subscribers" => a.subscribers = value.parse().map_err(bad)?,
            "--payload" => a.payload = value.parse().map_err(bad)?,
            "--rate" => a.rate = value.parse().map_err(|_| format!("bad value for --rate: {value}"))?,
            "--messages" => a.messages = value.parse().map_err(bad)?,
            "--qos" => {
                a.qos = match value.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    "2" => QoS::ExactlyOnce,
                    _ => return Err(format!("bad value for --qos: {value}")),
                }
            }
            "--topic-mode" => {
                a.fan_out = match value.as_str() {
                    "fan-in" => false,
                    "fan-out" => true,
                    _ => return Err(format!("bad value for --topic-mode: {value}")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.payload < 8 || a.publishers == 0 || a.subscribers == 0 || a.rate < 0.0 {
        return Err("need --payload >= 8, --publishers >= 1, --subscribers >= 1, --rate >= 0".to_owned());
    }
    Ok(a)
}
