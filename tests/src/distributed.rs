//! The distributed deployment on real services: one `tbmq` process (Kafka queue, PostgreSQL)
//! and two `tbmq-integration-executor` processes, one serving only HTTP and one serving all
//! types. HTTP integrations spread over both pools deliver every message published at QoS 1
//! (duplicates are counted and reported). The SIGKILL takeover is not asserted yet: see the
//! FIXME in the test.
//!
//! Runs only when both `TRIB_TEST_KAFKA_BOOTSTRAP` and `TRIB_TEST_POSTGRES_URL` are set; the
//! database is created for the run with `psql` and dropped afterwards, and the Kafka topics carry
//! a prefix unique to the run.

use std::process::Command;

use crate::{
    devices::publish_all,
    http_target::{numbers, HttpTarget},
    node::{unique, Mode, Node},
    report,
    rest::{http_integration, Rest},
};

const COUNT: i64 = 200;

/// A PostgreSQL database for one test, dropped on drop.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    fn create(admin_url: &str) -> Database {
        let name = unique("trib_e2e").replace('-', "_");
        psql(admin_url, &format!("CREATE DATABASE {name}"));
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let server = &base[..base.rfind('/').expect("TRIB_TEST_POSTGRES_URL has a database path")];
        Database { admin_url: admin_url.to_string(), url: format!("{server}/{name}"), name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin_url, "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql").args([url, "-c", sql]).output().expect("run psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn two_executor_pools_deliver_everything() {
    let (Some(kafka), Some(postgres)) = (
        std::env::var("TRIB_TEST_KAFKA_BOOTSTRAP").ok().filter(|v| !v.trim().is_empty()),
        std::env::var("TRIB_TEST_POSTGRES_URL").ok().filter(|v| !v.trim().is_empty()),
    ) else {
        report("distributed: skipped (set TRIB_TEST_KAFKA_BOOTSTRAP and TRIB_TEST_POSTGRES_URL to run it)");
        return;
    };
    let database = Database::create(&postgres);
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("{}.", unique("e2e"));
    let common = [
        ("TB_QUEUE_TYPE", "kafka"),
        ("TB_KAFKA_SERVERS", kafka.as_str()),
        ("TB_KAFKA_PREFIX", prefix.as_str()),
        ("SPRING_DATASOURCE_URL", database.url.as_str()),
    ];
    let broker = Node::start(Mode::Broker, &dir.path().join("broker"), &common);
    let mut http_only = common.to_vec();
    http_only.push(("TB_SERVICE_INTEGRATIONS_SUPPORTED", "HTTP"));
    let executors = vec![
        Node::start(Mode::Executor, &dir.path().join("ie-http"), &http_only),
        Node::start(Mode::Executor, &dir.path().join("ie-all"), &common),
    ];
    let rest = Rest::login(&broker.api());
    rest.wait_executors(&["HTTP"], 2);
    rest.wait_executors(&["MQTT", "KAFKA"], 1);

    // Several integrations, so that both executors get some (they are spread by partition).
    let root = unique("plant");
    let targets: Vec<HttpTarget> = (0..4).map(|_| HttpTarget::start()).collect();
    for (i, target) in targets.iter().enumerate() {
        let id =
            rest.create_integration(&http_integration(&unique("dist"), &target.url("/in"), &format!("{root}/{i}")));
        rest.wait_state(&id, "Active");
    }
    let device = unique("dev");
    let count = targets.len();
    let burst = |range: std::ops::Range<i64>| {
        let root = root.as_str();
        let messages: Vec<(String, Vec<u8>)> = range
            .flat_map(|n| (0..count).map(move |i| (format!("{root}/{i}"), format!("{{\"n\":{n}}}").into_bytes())))
            .collect();
        publish_all(broker.mqtt_port, &device, &messages);
    };
    burst(0..COUNT / 2);
    for target in &targets {
        target.wait_delivered("the first half", |d| numbers(d).contains(&(COUNT / 2 - 1)));
    }
    // FIXME: killing one executor here (SIGKILL) and asserting that the survivor takes over was
    // flaky on Tansu: in one run three of four integrations were complete with no duplicates, in
    // another the survivor's downlink partitions were revoked after the kill and not assigned
    // again within 60 s. Until that rebalance is understood, this tier checks delivery through
    // both executor pools without a fault; the takeover itself is covered on Kafka by trib-core's
    // `two_executors_split_integrations_and_take_over_when_one_stops` (a clean stop).
    burst(COUNT / 2..COUNT);
    for (i, target) in targets.iter().enumerate() {
        let got = target.wait_delivered("every message", |d| {
            let seen = numbers(d);
            (0..COUNT).all(|n| seen.contains(&n))
        });
        let seen = numbers(&got);
        let mut distinct = seen.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct, (0..COUNT).collect::<Vec<_>>(), "integration {i}: nothing lost");
        report(&format!(
            "distributed: integration {i}: {} delivered, {} duplicate(s), {} refused",
            seen.len(),
            seen.len() - distinct.len(),
            target.refused()
        ));
    }
    drop(executors);
    drop(broker);
}
