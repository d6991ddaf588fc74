//! Measures the executor's resident memory with N idle integrations (default 100) of the HTTP
//! driver on the embedded queue. Run: `cargo run --release -p trib-core --example idle_rss [-- N]`.
//! Prints the RSS of this process before the executor starts and once every integration started.

// A measurement program: printing its figures is its job.
#![allow(clippy::print_stdout)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use prost::Message as _;
use trib_core::{
    config::ExecutorConfig,
    executor::Executor,
    loader::load_dir,
    queue::{embedded::EmbeddedQueue, wait_delivery, Partitioning, Queue},
    topics::TopicNames,
    wire::{uuid_to_bits, ComponentLifecycleEvent, DownlinkIntegrationMsgProto, IntegrationMsgProto, WIRE_VERSION},
};
use uuid::Uuid;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100);
    let deps =
        std::env::current_exe().expect("exe").parent().expect("examples dir").parent().expect("profile").join("deps");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(deps.join("libtrib_driver_http.so"), dir.path().join("libtrib_driver_http.so"))
        .expect("http driver built");
    let before = rss_kib();
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let topics = TopicNames::default();
    let config = ExecutorConfig { service_id: "rss".into(), stats_enabled: false, ..ExecutorConfig::default() };
    let executor = Executor::start(config, queue.clone(), &load_dir(dir.path())).expect("executor");
    queue.create_topic(&topics.downlink_spec("HTTP").expect("spec")).expect("topic");
    for i in 0..n {
        let id = Uuid::new_v4();
        let (msb, lsb) = uuid_to_bits(id);
        let configuration = serde_json::json!({
            "clientConfiguration": {"restEndpointUrl": format!("http://127.0.0.1:9/idle/{i}"), "maxParallelRequestsCount": 0},
            "topicFilters": ["#"]
        });
        let msg = DownlinkIntegrationMsgProto {
            integration_msg: Some(IntegrationMsgProto {
                integration_id_msb: msb,
                integration_id_lsb: lsb,
                r#type: "HTTP".into(),
                name: Some(format!("idle-{i}")),
                enabled: Some(true),
                configuration: Some(configuration.to_string()),
                event: ComponentLifecycleEvent::Created as i32,
            }),
            validation_request_msg: None,
            wire_version: WIRE_VERSION,
        };
        let d = queue.producer().send(
            &topics.downlink("HTTP"),
            Partitioning::ByKey,
            Some(id.to_string().as_bytes()),
            &msg.encode_to_vec(),
        );
        wait_delivery(d).expect("send");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while executor.status().integrations < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib();
    println!("executor with {} idle HTTP integrations (embedded queue):", executor.status().integrations);
    println!("  RSS before start: {:.1} MiB", before as f64 / 1024.0);
    println!("  RSS with integrations: {:.1} MiB (target < 50 MiB)", after as f64 / 1024.0);
    executor.shutdown();
}
