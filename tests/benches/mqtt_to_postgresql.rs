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
    types::{ToSql, Type},
    NoTls,
};
use trib_test_support::postgres::{self, Postgres};

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
        .or_else(|| std::env::var(postgres::URL_VAR).ok())
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        println!("MQTT -> PostgreSQL: skipped, set TRIB_TEST_POSTGRES_URL (or pass --url <postgres://...>).");
        return;
    };
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let total = numbers.first().copied().unwrap_or(50_000);
    let publishers = numbers.get(1).copied().unwrap_or(4).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let db = Postgres::connect_with(postgres::parse(&url), runtime, NoTls);
    println!(
        "MQTT QoS 1 -> PostgreSQL ({}), {total} messages from {publishers} publishers as fast as they go:",
        db.value("SHOW server_version")
    );

    let mut rows = Vec::new();
    for (name, mode, keyed) in [
        ("tributary, insert", "insert", false),
        ("tributary, insert + key", "insert", true),
        ("tributary, copy", "copy", false),
    ] {
        let figures = through_tributary(&db, name, mode, keyed, total, publishers);
        print(&figures, total);
        rows.push(figures);
    }
    for (name, pack) in [("plain COPY, one statement", total), ("plain COPY, packs of 500", PACK)] {
        let figures = plain_copy(&db, name, total, pack);
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
fn through_tributary(db: &Postgres, name: &str, mode: &str, keyed: bool, total: usize, publishers: usize) -> Figures {
    let table = create_table(db, "mqtt", keyed);
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
    wait_until_ready(db, &table, mqtt_port);
    let cpu_before = cpu_secs(node.0.id());
    let start = Instant::now();
    db.runtime.block_on(common::publish(mqtt_port, total, publishers));
    let published = start.elapsed();
    let (mut last, mut progress_at, mut written_at) = (0u64, Instant::now(), Instant::now());
    loop {
        let count = count(db, &table);
        if count != last {
            (last, progress_at, written_at) = (count, Instant::now(), Instant::now());
        }
        if count >= total as u64 || progress_at.elapsed() > STALL {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let written_in = written_at.duration_since(start);
    let (rows, distinct) = verify(db, &table, total);
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
    db.exec(&format!("DROP TABLE {table}"));
    figures
}

/// The same rows written straight to the server with a binary `COPY`, `pack` rows per
/// statement, each in its own transaction.
fn plain_copy(db: &Postgres, name: &str, total: usize, pack: usize) -> Figures {
    let table = create_table(db, "copy", false);
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64;
    let types = [Type::INT8, Type::TEXT, Type::TEXT, Type::TIMESTAMPTZ];
    let start = Instant::now();
    db.runtime.block_on(async {
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
    let (rows, distinct) = verify(db, &table, total);
    db.exec(&format!("DROP TABLE {table}"));
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
fn wait_until_ready(db: &Postgres, table: &str, mqtt_port: u16) {
    use rumqttc::{AsyncClient, MqttOptions, QoS};
    let mut opts = MqttOptions::new("bench-probe", "127.0.0.1", mqtt_port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(opts, 100);
    let poller = db.runtime.spawn(async move { while events.poll().await.is_ok() {} });
    let deadline = Instant::now() + Duration::from_secs(90);
    while db.value(&format!("SELECT count(*) FROM {table} WHERE seq = -1")) == "0" {
        assert!(Instant::now() < deadline, "tributary did not write a probe within 90 s");
        let _ = db.runtime.block_on(client.publish("bench/probe", QoS::AtLeastOnce, false, "-1"));
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = db.runtime.block_on(client.disconnect());
    poller.abort();
    // Let probes still in flight land before the figures start.
    std::thread::sleep(Duration::from_millis(500));
    db.exec(&format!("DELETE FROM {table} WHERE seq = -1"));
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

/// A fresh table `bench_<what>_<pid>_<time>`: the bench's four columns, plus a message key with
/// its unique index when `keyed`.
fn create_table(db: &Postgres, what: &str, keyed: bool) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let table = format!("public.bench_{what}_{}_{nanos:x}", std::process::id());
    let key = if keyed { ", k uuid NOT NULL, UNIQUE (k, time)" } else { "" };
    db.exec(&format!("CREATE TABLE {table} (seq bigint, topic text, device text, time timestamptz NOT NULL{key})"));
    table
}

/// (rows, distinct sequence numbers in `0..total`).
fn verify(db: &Postgres, table: &str, total: usize) -> (u64, u64) {
    let sql = format!(
        "SELECT count(*), count(DISTINCT seq) FILTER (WHERE seq >= 0 AND seq < {total}) FROM {table} WHERE seq >= 0"
    );
    let row = db.runtime.block_on(db.client.query_one(&sql, &[])).expect("verify");
    (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64)
}

fn count(db: &Postgres, table: &str) -> u64 {
    db.value(&format!("SELECT count(*) FROM {table} WHERE seq >= 0")).parse().unwrap_or(0)
}
