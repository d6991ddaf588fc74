//! What the durable embedded queue gives back, and how fast it appends.
//!
//! ```sh
//! cargo run --release -p trib-queue --example embedded_reclaim -- [topics] [messages] [bytes]
//! ```
//!
//! Defaults: 100 integration message topics (TBMQ's properties: one partition, 25 MiB
//! segments, seven days' retention), 10,000 messages of 4,096 bytes each, in a temporary
//! directory on the disk of the working directory. Prints:
//!
//! 1. consumers keeping up (rounds of 500 messages per topic, each pack committed once read):
//!    the queue directory and the bytes cached in memory once everything was committed;
//! 2. a backlog (everything produced first, then consumed and committed): the same figures,
//!    and how fast the backlog streams back from the files through the 64 MiB cache;
//! 3. append throughput of one topic, against a plain `write(2)` per record with an `fsync`
//!    every second (what the queue does) of the same bytes to a file on the same disk.

#![allow(clippy::print_stdout)]

use std::{
    fs::{self, File},
    io::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use trib_queue::{
    queue::{
        embedded::{EmbeddedQueue, Limits},
        wait_delivery, Consumer, ConsumerEvent, Partitioning, Queue, TopicPartition,
    },
    topics::TopicNames,
};
use uuid::Uuid;

const PACK: usize = 500;
const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let topics = args.first().copied().unwrap_or(100);
    let messages = args.get(1).copied().unwrap_or(10_000);
    let size = args.get(2).copied().unwrap_or(4096);
    let total = (topics * messages * size) as f64 / MIB;
    println!("embedded queue: {topics} topics x {messages} messages x {size} bytes ({total:.0} MiB)");

    let work = tempfile::tempdir_in(".").expect("a temporary directory here");
    let value = vec![b'x'; size];
    for (phase, backlog) in [("consumers keep up", false), ("backlog first", true)] {
        let dir = work.path().join(if backlog { "backlog" } else { "steady" });
        let queue = EmbeddedQueue::open(&dir, trib_queue::queue::embedded::DEFAULT_MAX_PARTITION_BYTES).unwrap();
        let mut integrations = Integrations::new(&queue, topics);
        let started = Instant::now();
        if backlog {
            integrations.produce(messages, &value);
            let produced = started.elapsed();
            println!(
                "{phase}: produced in {:.1} s; directory {:.1} MiB, cached {:.1} MiB",
                produced.as_secs_f64(),
                dir_bytes(&dir) as f64 / MIB,
                queue.cached_bytes() as f64 / MIB
            );
            let start = Instant::now();
            integrations.consume(messages);
            let rate = (topics * messages) as f64 / start.elapsed().as_secs_f64();
            println!("{phase}: consumed and committed in {:.1} s ({rate:.0} msg/s)", start.elapsed().as_secs_f64());
        } else {
            let mut done = 0;
            while done < messages {
                let n = PACK.min(messages - done);
                integrations.produce(n, &value);
                integrations.consume(n);
                done += n;
            }
        }
        let rate = (topics * messages) as f64 / started.elapsed().as_secs_f64();
        println!(
            "{phase}: all committed after {:.1} s ({rate:.0} msg/s): directory {:.2} MiB, cached {} bytes, RSS {:.0} MiB (peak {:.0} MiB)",
            started.elapsed().as_secs_f64(),
            dir_bytes(&dir) as f64 / MIB,
            queue.cached_bytes(),
            status_kib("VmRSS:") as f64 / 1024.0,
            status_kib("VmHWM:") as f64 / 1024.0,
        );
        drop(integrations);
        drop(queue);
        fs::remove_dir_all(&dir).expect("remove the phase's directory");
    }
    append_throughput(work.path(), 100_000, &value);
}

/// The message topics of some integrations, each read by its own group like an executor's.
struct Integrations {
    producer: std::sync::Arc<dyn trib_queue::queue::Producer>,
    topics: Vec<(TopicPartition, Box<dyn Consumer>)>,
}

impl Integrations {
    fn new(queue: &EmbeddedQueue, n: usize) -> Self {
        let names = TopicNames::default();
        let topics = (0..n)
            .map(|_| {
                let id = Uuid::new_v4();
                queue.create_topic(&names.msg_spec(id).unwrap()).unwrap();
                let tp = TopicPartition::new(names.msg(id), 0);
                let mut consumer = queue.assign(&names.msg_group(id), "executor", &tp).unwrap();
                // As the broker does when an integration is saved.
                consumer.commit(&tp, 0).unwrap();
                (tp, consumer)
            })
            .collect();
        Integrations { producer: queue.producer(), topics }
    }

    fn produce(&self, per_topic: usize, value: &[u8]) {
        for (tp, _) in &self.topics {
            for _ in 0..per_topic {
                let key = Some(&b"sensors/temperature"[..]);
                wait_delivery(self.producer.send(&tp.topic, Partitioning::Fixed(0), key, value)).unwrap();
            }
        }
    }

    /// Reads `per_topic` messages of every topic in packs, committing each pack.
    fn consume(&mut self, per_topic: usize) {
        for (tp, consumer) in &mut self.topics {
            let mut read = 0;
            while read < per_topic {
                let events = consumer.poll(Duration::from_secs(5), PACK).unwrap();
                let records: Vec<_> = events
                    .into_iter()
                    .flat_map(|e| match e {
                        ConsumerEvent::Records(r) => r,
                        _ => Vec::new(),
                    })
                    .collect();
                let last = records.last().unwrap_or_else(|| panic!("{tp}: only {read} of {per_topic} arrived"));
                consumer.commit(tp, last.offset + 1).unwrap();
                read += records.len();
            }
        }
    }
}

/// Appends `n` records to one topic of a fresh queue, and writes the same bytes with one
/// `write(2)` each and an `fsync` every second; twice each, alternating, each from a clean page
/// cache (`sync`) and until its data is synced.
fn append_throughput(dir: &Path, n: usize, value: &[u8]) {
    let key = b"sensors/temperature";
    // The same frames: 20 bytes of header, offset and key length, then the key and the value.
    let mut frame = vec![0u8; 20];
    frame.extend_from_slice(key);
    frame.extend_from_slice(value);
    let mib = (n * frame.len()) as f64 / MIB;
    println!("append {n} x {} bytes, one producer thread, each run until synced:", value.len());
    for run in 1..=2 {
        let _ = std::process::Command::new("sync").status();
        let secs = append_queue(&dir.join("append"), n, key, value);
        println!(
            "  run {run}: durable queue (send acknowledged): {:>7.0} msg/s {:>5.0} MiB/s",
            n as f64 / secs,
            mib / secs
        );
        let _ = std::process::Command::new("sync").status();
        let secs = append_plain(&dir.join("plain.log"), n, &frame);
        println!(
            "  run {run}: write(2) + fsync every second:     {:>7.0} msg/s {:>5.0} MiB/s",
            n as f64 / secs,
            mib / secs
        );
    }
}

/// Seconds to append `n` records to a fresh queue in `dir`, until the queue is closed (its
/// last sync done).
fn append_queue(dir: &Path, n: usize, key: &[u8], value: &[u8]) -> f64 {
    // A bound above what is written: this measures appends, not refusals.
    let limits = Limits { max_partition_bytes: 2 * n * (value.len() + 64), ..Limits::default() };
    let queue = EmbeddedQueue::open_with(dir, limits).unwrap();
    let names = TopicNames::default();
    let id = Uuid::new_v4();
    queue.create_topic(&names.msg_spec(id).unwrap()).unwrap();
    let (producer, topic) = (queue.producer(), names.msg(id));
    let started = Instant::now();
    for _ in 0..n {
        wait_delivery(producer.send(&topic, Partitioning::Fixed(0), Some(key), value)).unwrap();
    }
    drop(producer);
    drop(queue);
    let secs = started.elapsed().as_secs_f64();
    fs::remove_dir_all(dir).unwrap();
    secs
}

/// Seconds to write `n` frames to a new file, one `write(2)` each, syncing once a second and at
/// the end.
fn append_plain(path: &Path, n: usize, frame: &[u8]) -> f64 {
    let mut file = File::create(path).unwrap();
    let started = Instant::now();
    let mut synced = Instant::now();
    for _ in 0..n {
        file.write_all(frame).unwrap();
        if synced.elapsed() >= Duration::from_secs(1) {
            file.sync_data().unwrap();
            synced = Instant::now();
        }
    }
    file.sync_data().unwrap();
    let secs = started.elapsed().as_secs_f64();
    fs::remove_file(path).unwrap();
    secs
}

/// The bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A `/proc/self/status` figure in KiB (0 where there is none).
fn status_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
