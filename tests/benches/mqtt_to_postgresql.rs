//! End-to-end benchmark: MQTT publishers -> all-in-one `tributary` -> PostgreSQL driver -> a
//! table on the server named by `TRIB_TEST_POSTGRES_URL` (or `--url <url>`), QoS 1, RETRY_ALL.
//! Prints msg/s once every row is in the table (all rows are verified present, duplicates
//! counted), the process's peak RSS and CPU, for each write mode of the driver, beside the
//! physical limit in the same run: the same rows written with a plain binary `COPY` through the
//! same client library (tokio-postgres), in one statement and in packs of 500 (one transaction
//! each, as the driver writes them).
//!
//! Run: `cargo build --release -p trib-dist && TRIB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p trib-tests --bench mqtt_to_postgresql -- [MESSAGES] [PUBLISHERS]`
//!
//! Without a server it prints why and exits 0. Each run creates its own tables and drops them.

// A benchmark program: printing its figures is its job.
#![allow(clippy::print_stdout)]

// The shared bench code also serves benchmarks that use parts this one does not.
#[allow(dead_code)]
mod common;

use std::{
    pin::pin,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{cpu_secs, peak_rss_mib, start_tributary, Proc};
use serde_json::{json, Value};
use tokio_postgres::{
    binary_copy::BinaryCopyInWriter,
    config::Host,
    types::{ToSql, Type},
    Client, NoTls,
};

/// No new row for this long ends the wait for the rest.
const STALL: Duration = Duration::from_secs(30);
/// The size of the driver's packs (the executor's default `TB_IE_MSG_MAX_POLL_RECORDS`).
const PACK: usize = 500;

/// One row of the printed table.
struct Figures {
    name: String,
    published: Option<Duration>,
    written_in: Duration,
    rows: u64,
    distinct: u64,
    rss_mib: Option<f64>,
    cpu_secs: Option<f64>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .iter()
        .position(|a| a == "--url")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("TRIB_TEST_POSTGRES_URL").ok())
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        println!("MQTT -> PostgreSQL: skipped, set TRIB_TEST_POSTGRES_URL (or pass --url <postgres://...>).");
        return;
    };
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let total = numbers.first().copied().unwrap_or(50_000);
    let publishers = numbers.get(1).copied().unwrap_or(4).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let db = Db::connect(&runtime, &url);
    println!(
        "MQTT QoS 1 -> PostgreSQL ({}), {total} messages from {publishers} publishers as fast as they go:",
        db.value(&runtime, "SHOW server_version")
    );

    let mut rows = Vec::new();
    for (name, mode, keyed) in [
        ("tributary, insert", "insert", false),
        ("tributary, insert + key", "insert", true),
        ("tributary, copy", "copy", false),
    ] {
        let figures = through_tributary(&runtime, &db, name, mode, keyed, total, publishers);
        print(&figures, total);
        rows.push(figures);
    }
    for (name, pack) in [("plain COPY, one statement", total), ("plain COPY, packs of 500", PACK)] {
        let figures = plain_copy(&runtime, &db, name, total, pack);
        print(&figures, total);
        rows.push(figures);
    }
    let rate = |f: &Figures| f.distinct as f64 / f.written_in.as_secs_f64().max(1e-9);
    let best = rows.iter().filter(|f| f.published.is_some()).map(rate).fold(0.0, f64::max);
    println!("  tributary (best mode) / plain COPY in one statement: {:.2}", best / rate(&rows[3]).max(1e-9));
}

/// Publishes `total` numbered messages to a fresh all-in-one node whose POSTGRESQL integration
/// writes them to a fresh table, and waits until every row is there (or nothing moves for
/// [`STALL`]).
fn through_tributary(
    runtime: &tokio::runtime::Runtime,
    db: &Db,
    name: &str,
    mode: &str,
    keyed: bool,
    total: usize,
    publishers: usize,
) -> Figures {
    let table = db.create_table(runtime, "mqtt", keyed);
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, mqtt_port, api, token) = start_tributary(dir.path(), &[]);
    let mut columns = json!({
        "seq": {"source": "jsonPath", "path": "$"},
        "topic": {"source": "topic"},
        "device": {"source": "clientId"},
        "time": {"source": "ts"}
    });
    let mut client_configuration = db.connection_fields();
    if keyed {
        columns["k"] = json!({"source": "messageKey"});
        client_configuration["idempotencyKeyColumn"] = json!("k");
    }
    client_configuration["table"] = json!(table);
    client_configuration["columns"] = columns;
    client_configuration["writeMode"] = json!(mode);
    save_integration(&api, &token, &client_configuration);
    wait_until_ready(runtime, db, &table, mqtt_port);
    let cpu_before = cpu_secs(node.0.id());
    let start = Instant::now();
    runtime.block_on(common::publish(mqtt_port, total, publishers));
    let published = start.elapsed();
    let (mut last, mut progress_at, mut written_at) = (0u64, Instant::now(), Instant::now());
    loop {
        let count = db.count(runtime, &table);
        if count != last {
            (last, progress_at, written_at) = (count, Instant::now(), Instant::now());
        }
        if count >= total as u64 || progress_at.elapsed() > STALL {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let written_in = written_at.duration_since(start);
    let (rows, distinct) = db.verify(runtime, &table, total);
    let figures = Figures {
        name: name.to_string(),
        published: Some(published),
        written_in,
        rows,
        distinct,
        rss_mib: Some(peak_rss_mib(node.0.id())),
        cpu_secs: Some(cpu_secs(node.0.id()) - cpu_before),
    };
    drop::<Proc>(node);
    db.exec(runtime, &format!("DROP TABLE {table}"));
    figures
}

/// The same rows written straight to the server with a binary `COPY`, `pack` rows per
/// statement, each in its own transaction.
fn plain_copy(runtime: &tokio::runtime::Runtime, db: &Db, name: &str, total: usize, pack: usize) -> Figures {
    let table = db.create_table(runtime, "copy", false);
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64;
    let types = [Type::INT8, Type::TEXT, Type::TEXT, Type::TIMESTAMPTZ];
    let start = Instant::now();
    runtime.block_on(async {
        for first in (0..total).step_by(pack.max(1)) {
            db.client.batch_execute("BEGIN").await.expect("BEGIN");
            let sink = db
                .client
                .copy_in(&format!("COPY {table} (seq, topic, device, time) FROM STDIN (FORMAT binary)"))
                .await
                .expect("COPY");
            let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
            for n in first..(first + pack).min(total) {
                let (seq, publisher) = (n as i64, n % 4);
                let topic = format!("bench/{publisher}");
                let device = format!("bench-pub-{publisher}");
                let time = UNIX_EPOCH + Duration::from_millis(now_ms + n as u64);
                let row: [&(dyn ToSql + Sync); 4] = [&seq, &topic, &device, &time];
                writer.as_mut().write(&row).await.expect("row");
            }
            writer.finish().await.expect("finish COPY");
            db.client.batch_execute("COMMIT").await.expect("COMMIT");
        }
    });
    let written_in = start.elapsed();
    let (rows, distinct) = db.verify(runtime, &table, total);
    db.exec(runtime, &format!("DROP TABLE {table}"));
    Figures { name: name.to_string(), published: None, written_in, rows, distinct, rss_mib: None, cpu_secs: None }
}

/// Saves the integration that writes `bench/#` to the table.
fn save_integration(api: &str, token: &str, client_configuration: &Value) {
    let integration = json!({
        "name": "bench-postgresql", "type": "POSTGRESQL", "enabled": true,
        "configuration": {"clientConfiguration": client_configuration, "topicFilters": ["bench/#"]}
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the integration was not saved");
        let saved = ureq::post(&format!("{api}/api/integration"))
            .header("X-Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(integration.to_string());
        if saved.is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Publishes `-1` on `bench/probe` until its row arrives (the path is ready), then removes it.
fn wait_until_ready(runtime: &tokio::runtime::Runtime, db: &Db, table: &str, mqtt_port: u16) {
    use rumqttc::{AsyncClient, MqttOptions, QoS};
    let mut opts = MqttOptions::new("bench-probe", "127.0.0.1", mqtt_port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(opts, 100);
    let poller = runtime.spawn(async move { while events.poll().await.is_ok() {} });
    let deadline = Instant::now() + Duration::from_secs(90);
    while db.value(runtime, &format!("SELECT count(*) FROM {table} WHERE seq = -1")) == "0" {
        assert!(Instant::now() < deadline, "tributary did not write a probe within 90 s");
        let _ = runtime.block_on(client.publish("bench/probe", QoS::AtLeastOnce, false, "-1"));
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = runtime.block_on(client.disconnect());
    poller.abort();
    // Let probes still in flight land before the figures start.
    std::thread::sleep(Duration::from_millis(500));
    db.exec(runtime, &format!("DELETE FROM {table} WHERE seq = -1"));
}

fn print(f: &Figures, total: usize) {
    let rate = f.distinct as f64 / f.written_in.as_secs_f64().max(1e-9);
    let published = f.published.map_or_else(|| "-".to_string(), |p| format!("{:.2} s", p.as_secs_f64()));
    let process = match (f.rss_mib, f.cpu_secs) {
        (Some(rss), Some(cpu)) => format!(" | tributary peak RSS {rss:.1} MiB, CPU {cpu:.1} s"),
        _ => String::new(),
    };
    let lost = total as u64 - f.distinct.min(total as u64);
    println!(
        "  {:<28} published in {published:>7} | {:>7} rows in {:>6.2} s = {rate:>7.0} msg/s | lost {lost}, duplicates {}, all present: {}{process}",
        f.name,
        f.distinct,
        f.written_in.as_secs_f64(),
        f.rows - f.distinct,
        if lost == 0 { "yes" } else { "NO" }
    );
}

/// The benchmark's session to the server.
struct Db {
    client: Client,
    config: tokio_postgres::Config,
}

impl Db {
    fn connect(runtime: &tokio::runtime::Runtime, url: &str) -> Db {
        let config: tokio_postgres::Config = url.parse().expect("a PostgreSQL URL");
        let client = runtime.block_on(async {
            let (client, connection) = config.connect(NoTls).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"));
            tokio::spawn(connection);
            client
        });
        Db { client, config }
    }

    /// A fresh table `bench_<what>_<pid>_<time>`: the bench's four columns, plus a message key
    /// with its unique index when `keyed`.
    fn create_table(&self, runtime: &tokio::runtime::Runtime, what: &str, keyed: bool) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let table = format!("public.bench_{what}_{}_{nanos:x}", std::process::id());
        let key = if keyed { ", k uuid NOT NULL, UNIQUE (k, time)" } else { "" };
        self.exec(
            runtime,
            &format!("CREATE TABLE {table} (seq bigint, topic text, device text, time timestamptz NOT NULL{key})"),
        );
        table
    }

    /// (rows, distinct sequence numbers in `0..total`).
    fn verify(&self, runtime: &tokio::runtime::Runtime, table: &str, total: usize) -> (u64, u64) {
        let sql = format!(
            "SELECT count(*), count(DISTINCT seq) FILTER (WHERE seq >= 0 AND seq < {total}) FROM {table} WHERE seq >= 0"
        );
        let row = runtime.block_on(self.client.query_one(&sql, &[])).expect("verify");
        (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64)
    }

    fn count(&self, runtime: &tokio::runtime::Runtime, table: &str) -> u64 {
        self.value(runtime, &format!("SELECT count(*) FROM {table} WHERE seq >= 0")).parse().unwrap_or(0)
    }

    fn value(&self, runtime: &tokio::runtime::Runtime, sql: &str) -> String {
        let messages = runtime.block_on(self.client.simple_query(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"));
        messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn exec(&self, runtime: &tokio::runtime::Runtime, sql: &str) {
        runtime.block_on(self.client.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The connection fields of the driver's configuration.
    fn connection_fields(&self) -> Value {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "127.0.0.1".to_string(),
        };
        json!({
            "sslMode": if host.starts_with('/') { "disable" } else { "prefer" },
            "host": host,
            "port": self.config.get_ports().first().copied().unwrap_or(5432),
            "database": self.config.get_dbname().unwrap_or("postgres"),
            "username": self.config.get_user().unwrap_or("postgres"),
            "password": self.config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default()
        })
    }
}
