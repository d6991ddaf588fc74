//! Benchmark of the plugin boundary and of the loader + HTTP driver path.
//!
//! Run: `cargo bench -p trib-core --bench plugin_boundary` (add `-- 200000` for a shorter run).
//! Prints, in one run:
//! 1. the per-message cost of the plugin boundary: the same no-op driver called through its
//!    loaded `.so` (frozen ABI, R-types, panic guards) versus called directly as a Rust trait
//!    object linked into this binary; the difference is the boundary;
//! 2. messages/s of the loader + HTTP driver `.so` delivering to a local HTTP server (poem), with
//!    nothing lost (the server counts every request).

// A benchmark program: printing its figures is its job.
#![allow(clippy::print_stdout)]

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::RStr;
use trib_core::{
    loader::load_dir,
    registry::{Registry, TypeSelection},
};
use trib_plugin_api::{
    abi::{Message, StartConfig},
    driver::{Driver, Host, Outcome},
};

const BATCH: usize = 50;

fn message(payload: &[u8]) -> Message<'_> {
    Message {
        qos: 1,
        client_id: RStr::from_str("device-1"),
        broker_node: RStr::from_str("tbmq1"),
        timestamp_ms: 1_717_000_000_000,
        ..Message::new("sensors/1/temp", payload)
    }
}

fn start_config(client_configuration: &str) -> StartConfig<'_> {
    StartConfig {
        integration_id: RStr::from_str("00000000-0000-0000-0000-000000000001"),
        integration_name: RStr::from_str("bench"),
        service_id: RStr::from_str("bench-ie"),
        client_configuration: RStr::from_str(client_configuration),
        metadata: RStr::from_str(r#"{"integrationName":"bench"}"#),
    }
}

/// `target/<profile>/deps`, where cargo put the driver cdylibs (dev-dependencies of trib-core).
fn plugins_dir(names: &[&str]) -> tempfile::TempDir {
    let deps: PathBuf = std::env::current_exe().expect("exe").parent().expect("deps").to_path_buf();
    let dir = tempfile::tempdir().expect("tempdir");
    for name in names {
        let file = format!("lib{name}.so");
        std::fs::copy(deps.join(&file), dir.path().join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    dir
}

fn boundary(total: usize) {
    let dir = plugins_dir(&["trib_fixture_scripted"]);
    let registry = Registry::new(&load_dir(dir.path()), &TypeSelection::all());
    let config = r#"{"discard":true}"#;
    let payloads: Vec<Vec<u8>> = (0..BATCH).map(|i| format!("{{\"t\":{i}}}").into_bytes()).collect();
    let batch: Vec<Message<'_>> = payloads.iter().map(|p| message(p)).collect();
    let rounds = total / BATCH;
    let timeout = Duration::from_secs(30);

    let mut handle = registry.create("SCRIPTED", "bench").expect("create");
    handle.start(&start_config(config)).expect("start");
    let t = Instant::now();
    let mut delivered = 0usize;
    for _ in 0..rounds {
        let outcomes = handle.process(&batch, timeout).expect("process");
        delivered += outcomes.iter().filter(|o| **o == Outcome::Delivered).count();
    }
    let through_so = t.elapsed();
    assert_eq!(delivered, rounds * BATCH);

    let mut direct: Box<dyn Driver2> =
        Box::new(trib_fixture_scripted::Scripted::create(Host::detached()).expect("create"));
    direct.start(&start_config(config));
    let t = Instant::now();
    let mut delivered = 0usize;
    for _ in 0..rounds {
        let deadline = Instant::now() + timeout;
        let outcomes = direct.process(&batch, deadline);
        delivered += outcomes.iter().filter(|o| **o == Outcome::Delivered).count();
    }
    let in_process = t.elapsed();
    assert_eq!(delivered, rounds * BATCH);

    let n = (rounds * BATCH) as f64;
    let per_so = through_so.as_nanos() as f64 / n;
    let per_direct = in_process.as_nanos() as f64 / n;
    println!("plugin boundary, {} messages in batches of {BATCH}:", rounds * BATCH);
    println!("  through the loaded .so : {per_so:8.1} ns/msg  ({:.0} msg/s)", 1e9 / per_so);
    println!("  direct Rust call (peer): {per_direct:8.1} ns/msg  ({:.0} msg/s)", 1e9 / per_direct);
    println!("  boundary cost          : {:8.1} ns/msg (target < 1000 ns)", per_so - per_direct);
}

/// Object-safe view of the driver, so the direct call goes through a vtable too (as a host
/// holding drivers as trait objects would).
trait Driver2 {
    fn start(&mut self, config: &StartConfig<'_>);
    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome>;
}

impl<T: Driver> Driver2 for T {
    fn start(&mut self, config: &StartConfig<'_>) {
        Driver::start(self, config).expect("start");
    }
    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        Driver::process(self, batch, deadline)
    }
}

fn http(total: usize) {
    let received = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let counter = received.clone();
    runtime.spawn(async move {
        use poem::{handler, listener::TcpListener, post, web::Data, EndpointExt, Route, Server};
        #[handler]
        fn ingest(Data(c): Data<&Arc<AtomicU64>>, body: Vec<u8>) -> &'static str {
            if !body.is_empty() {
                c.fetch_add(1, Ordering::Relaxed);
            }
            "ok"
        }
        let app = Route::new().at("/ingest", post(ingest)).data(counter);
        let _ = Server::new(TcpListener::bind(addr)).run(app).await;
    });
    std::thread::sleep(Duration::from_millis(300));

    let dir = plugins_dir(&["trib_driver_http"]);
    let registry = Registry::new(&load_dir(dir.path()), &TypeSelection::all());
    let mut handle = registry.create("HTTP", "bench").expect("create");
    let config = format!(
        r#"{{"restEndpointUrl":"http://{addr}/ingest","requestMethod":"POST","headers":{{}},"maxParallelRequestsCount":16,"payloadContentType":"JSON","sendOnlyMsgPayload":false}}"#
    );
    handle.start(&start_config(&config)).expect("start");
    let payloads: Vec<Vec<u8>> = (0..BATCH).map(|i| format!("{{\"temperature\":{i}.5}}").into_bytes()).collect();
    let batch: Vec<Message<'_>> = payloads.iter().map(|p| message(p)).collect();
    let rounds = total / BATCH;
    let t = Instant::now();
    let mut delivered = 0usize;
    for _ in 0..rounds {
        let outcomes = handle.process(&batch, Duration::from_secs(30)).expect("process");
        delivered += outcomes.iter().filter(|o| **o == Outcome::Delivered).count();
    }
    let elapsed = t.elapsed();
    handle.stop().expect("stop");
    let got = received.load(Ordering::Relaxed);
    println!(
        "loader + HTTP driver .so -> local HTTP server (poem), {} messages, 16 parallel requests:",
        rounds * BATCH
    );
    println!(
        "  {:.0} msg/s, delivered {delivered}, server received {got}, lost {}",
        delivered as f64 / elapsed.as_secs_f64(),
        (rounds * BATCH) as u64 - got
    );
    runtime.shutdown_timeout(Duration::from_secs(1));
}

fn main() {
    let total: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    boundary(total);
    http(total);
}
