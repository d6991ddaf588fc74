//! The persistent embedded queue: what a directory holds after the queue is dropped (or its
//! process killed) and opened again. The backend conformance checks also run on it, in
//! `queue/tests.rs`. Giving back disk and memory is tested in `tests/reclaim.rs` (commits and
//! retention), `tests/cache.rs` (the cache budget, reading from the files), `tests/bound.rs`
//! (the partition bound) and `tests/full_disk.rs` (a full disk); `tests/wakers.rs` tests the
//! callbacks of consumers that are not polling (`on_records`).

mod bound;
mod cache;
mod full_disk;
mod reclaim;
mod wakers;

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use super::{EmbeddedQueue, Limits, DEFAULT_CACHE_MAX_BYTES, DEFAULT_MAX_PARTITION_BYTES};
use crate::queue::{murmur2, partition_for_key};
use crate::queue::{
    tests::{poll_records, spec, values},
    wait_delivery, ConsumerEvent, Partitioning, Queue, TopicPartition, TopicSpec,
};

type Contents = Vec<(i64, Option<String>, String)>;

fn open(dir: &Path) -> EmbeddedQueue {
    EmbeddedQueue::open(dir, DEFAULT_MAX_PARTITION_BYTES).expect("open the queue directory")
}

/// Stores a record in a fixed partition; returns its offset.
fn put(q: &EmbeddedQueue, topic: &str, partition: i32, key: Option<&str>, value: &str) -> i64 {
    let delivery = q.producer().send(topic, Partitioning::Fixed(partition), key.map(str::as_bytes), value.as_bytes());
    let (p, offset) = wait_delivery(delivery).expect("stored");
    assert_eq!(p, partition);
    offset
}

/// A queue in `dir` within these bounds.
fn open_with(dir: &Path, max_partition_bytes: usize, cache_max_bytes: usize) -> EmbeddedQueue {
    EmbeddedQueue::open_with(dir, Limits { max_partition_bytes, cache_max_bytes }).expect("open the queue directory")
}

/// A topic of one partition with these properties (`key:value;...`).
fn spec_with(name: &str, properties: &str) -> TopicSpec {
    TopicSpec::from_properties(name, properties).expect("valid properties")
}

/// Every record of a partition (offset, key, value) and its watermarks, read by a consumer
/// (from memory or the files) outside any group that commits.
fn contents(q: &EmbeddedQueue, topic: &str, partition: i32) -> (Contents, (i64, i64)) {
    let tp = TopicPartition::new(topic, partition);
    let mut c = q.assign("contents-probe", "probe", &tp).expect("assigned");
    let (first, next) = c.watermarks(&tp).expect("the partition exists");
    c.seek(&tp, first).unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut records = Vec::new();
    // A poll returns at least one record while any is left: this ends, and reads them all.
    for _ in first..=next {
        let events = c.poll(Duration::ZERO, 1000).unwrap();
        let mut got = events.into_iter().flat_map(|e| match e {
            ConsumerEvent::Records(r) => r,
            _ => Vec::new(),
        });
        let Some(r) = got.next() else { break };
        for r in std::iter::once(r).chain(got) {
            records.push((r.offset, r.key.as_deref().map(text), text(&r.value)));
        }
    }
    (records, (first, next))
}

/// The bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| if e.file_type().unwrap().is_dir() { dir_bytes(&e.path()) } else { e.metadata().unwrap().len() })
        .sum()
}

fn committed(q: &EmbeddedQueue, group: &str, topic: &str, partition: i32) -> Option<i64> {
    let tp = TopicPartition::new(topic, partition);
    q.assign(group, "probe", &tp).unwrap().committed(&tp).unwrap()
}

fn commit(q: &EmbeddedQueue, group: &str, topic: &str, partition: i32, offset: i64) {
    let tp = TopicPartition::new(topic, partition);
    q.assign(group, "committer", &tp).unwrap().commit(&tp, offset).unwrap();
}

fn partition_dir(dir: &Path, encoded_topic: &str, partition: i32) -> PathBuf {
    dir.join("topics").join(encoded_topic).join(partition.to_string())
}

/// The segment files of a partition directory, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn murmur2_is_kafkas() {
    // librdkafka's reference values (src/rdmurmur2.c), the same as the Java client's.
    for (key, hash) in [
        ("kafka", 0xd067_cf64u32),
        ("giberish123456789", 0x8f55_2b0c),
        ("1234", 0x9fc9_7b14),
        ("234", 0xe7c0_09ca),
        ("34", 0x8739_30da),
        ("4", 0x5a4b_5ca1),
        ("PreAmbleWillBeRemoved,ThePrePartThatIs", 0x7842_4f1c),
        ("", 0x106e_08d9),
    ] {
        assert_eq!(murmur2(key.as_bytes()), hash, "{key:?}");
    }
    assert_eq!(partition_for_key(b"kafka", 6), (0xd067_cf64u32 & 0x7fff_ffff) as i32 % 6);
    assert!((0..1000).all(|i| (0..6).contains(&partition_for_key(format!("k{i}").as_bytes(), 6))));
}

/// A queue directory of format 1, byte for byte as this version writes it: every later version
/// must load it. Offsets and integers are little-endian; each frame is the body's length, a
/// CRC32 of the length and the body, then the body.
#[test]
fn persistent_directory_of_format_1_loads() {
    const SEGMENT: &[u8] = &[
        // The record at offset 0, with a key.
        20, 0, 0, 0, // body length: 8 (offset) + 4 (key length) + 3 (key) + 5 (value)
        0x3d, 0xd5, 0x45, 0x61, // CRC32 of the length and the body
        0, 0, 0, 0, 0, 0, 0, 0, // offset 0
        3, 0, 0, 0, // key length 3
        b'k', b'e', b'y', // key
        b'v', b'a', b'l', b'u', b'e', // value
        // The record at offset 1, without a key and with an empty value.
        12, 0, 0, 0, // body length: 8 (offset) + 4 (key length)
        0x11, 0xf4, 0x87, 0x0e, // CRC32 of the length and the body
        1, 0, 0, 0, 0, 0, 0, 0, // offset 1
        0xff, 0xff, 0xff, 0xff, // key length -1: no key
    ];
    const GROUPS_LOG: &[u8] = &[
        23, 0, 0, 0, // body length: 1 + 5 + 5 + 4 + 8
        0x8f, 0x2e, 0x24, 0x2d, // CRC32 of the length and the body
        1,    // kind: a committed offset
        1, 0, 0, 0, b'g', // group: length 1, "g"
        1, 0, 0, 0, b't', // topic: length 1, "t"
        0, 0, 0, 0, // partition 0
        1, 0, 0, 0, 0, 0, 0, 0, // next offset 1
    ];
    const META: &str = "# Tributary embedded queue topic.\nformat=1\npartitions=1\ncompacted=false\n";
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "t", 0);
    let segment = pdir.join("00000000000000000000.log");
    fs::create_dir_all(&pdir).unwrap();
    fs::write(dir.path().join("topics/t/meta"), META).unwrap();
    fs::write(&segment, SEGMENT).unwrap();
    fs::write(dir.path().join("groups.log"), GROUPS_LOG).unwrap();

    let q = open(dir.path());
    let expected = vec![(0, Some("key".to_string()), "value".to_string()), (1, None, String::new())];
    assert_eq!(contents(&q, "t", 0), (expected, (0, 2)));
    assert_eq!(committed(&q, "g", "t", 0), Some(1));
    assert_eq!(put(&q, "t", 0, None, "next"), 2);
    drop(q);
    // Written in the same format: the segment kept byte for byte with one 24-byte frame after
    // it (8 header, 12 fixed, 4 value), `groups.log` rewritten at start to the same bytes.
    let bytes = fs::read(&segment).unwrap();
    assert_eq!((&bytes[..SEGMENT.len()], bytes.len()), (SEGMENT, SEGMENT.len() + 24));
    assert_eq!(fs::read(dir.path().join("groups.log")).unwrap(), GROUPS_LOG);
}

#[test]
fn persistent_records_offsets_and_commits_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let odd = "a/b c%\u{fc}";
    let before = {
        let q = open(dir.path());
        q.create_topic(&spec("t", 3)).unwrap();
        q.create_topic(&spec(odd, 1)).unwrap();
        for i in 0..30 {
            let key = (i % 3 != 0).then(|| format!("k{}", i % 5));
            put(&q, "t", i % 3, key.as_deref(), &format!("v{i}"));
        }
        put(&q, "t", 2, Some("empty"), "");
        put(&q, odd, 0, None, "odd");
        commit(&q, "g", "t", 1, 4);
        commit(&q, "g", "t", 2, 7);
        commit(&q, "g", "t", 2, 9);
        commit(&q, "h", odd, 0, 1);
        (0..3).map(|p| contents(&q, "t", p)).collect::<Vec<_>>()
    };
    assert_eq!(before[2].0.len(), 11);
    assert!(dir.path().join("topics/a%2Fb%20c%25%C3%BC/0").is_dir(), "topic names are encoded for the file system");

    let q = open(dir.path());
    assert!(q.topic_exists("t").unwrap() && q.topic_exists(odd).unwrap());
    for (p, expected) in before.iter().enumerate() {
        assert_eq!(&contents(&q, "t", p as i32), expected, "partition {p}");
    }
    assert_eq!(contents(&q, odd, 0).0, vec![(0, None, "odd".to_string())]);
    assert_eq!(committed(&q, "g", "t", 1), Some(4));
    assert_eq!(committed(&q, "g", "t", 2), Some(9));
    assert_eq!(committed(&q, "g", "t", 0), None);
    assert_eq!(committed(&q, "h", odd, 0), Some(1));
    // Offsets go on from the stored ones, and a consumer resumes at the committed offset.
    assert_eq!(put(&q, "t", 2, None, "after"), 11);
    let tp = TopicPartition::new("t", 2);
    let mut c = q.assign("g", "c", &tp).unwrap();
    let (records, _) = poll_records(c.as_mut(), 3);
    assert_eq!(values(&records), vec!["v29", "", "after"]);
    drop(c);
    drop(q);

    let q = open(dir.path());
    assert_eq!(contents(&q, "t", 2).0.last(), Some(&(11, None, "after".to_string())));
    assert_eq!(contents(&q, "t", 2).1, (0, 12));
}

#[test]
fn persistent_compacted_topic_reloads_latest_per_key_at_the_same_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "c", 0);
    {
        let q = open(dir.path());
        q.create_topic(&spec("c", 1).compacted()).unwrap();
        for (key, value) in [(Some("a"), "a1"), (Some("b"), "b1"), (Some("a"), "a2"), (None, "x"), (Some("b"), "b2")] {
            put(&q, "c", 0, key, value);
        }
        put(&q, "c", 0, Some("a"), "a3");
        put(&q, "c", 0, Some("gone"), "g1");
        // A tombstone is the latest record of its key: it stays.
        put(&q, "c", 0, Some("gone"), "");
    }
    let expected = vec![
        (3, None, "x".to_string()),
        (4, Some("b".to_string()), "b2".to_string()),
        (5, Some("a".to_string()), "a3".to_string()),
        (7, Some("gone".to_string()), String::new()),
    ];
    let q = open(dir.path());
    assert_eq!(contents(&q, "c", 0), (expected.clone(), (3, 8)));
    assert_eq!(segments(&pdir), vec![pdir.join("00000000000000000003.log")], "rewritten as one segment");
    let mut c = q.assign("g", "c", &TopicPartition::new("c", 0)).unwrap();
    let (records, _) = poll_records(c.as_mut(), 4);
    assert_eq!(values(&records), vec!["x", "b2", "a3", ""]);
    drop(c);
    // The newest record superseded nothing stored after it: appends go on at the next offset.
    assert_eq!(put(&q, "c", 0, Some("b"), "b3"), 8);
    assert_eq!(put(&q, "c", 0, Some("b"), "b4"), 9);
    drop(q);

    let q = open(dir.path());
    let mut expected: Vec<_> = expected.into_iter().filter(|r| r.1.as_deref() != Some("b")).collect();
    expected.push((9, Some("b".to_string()), "b4".to_string()));
    assert_eq!(contents(&q, "c", 0), (expected, (3, 10)));
    assert_eq!(segments(&pdir).len(), 1);
    assert_eq!(put(&q, "c", 0, None, "y"), 10);
}

#[test]
fn persistent_compacted_topic_is_compacted_on_disk_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "c", 0);
    let q = open(dir.path());
    q.create_topic(&spec("c", 1).compacted()).unwrap();
    let tp = TopicPartition::new("c", 0);
    // A reader that started before any rewrite goes on from where it was.
    let mut reader = q.assign("g", "reader", &tp).unwrap();
    reader.seek(&tp, 0).unwrap();
    let value = |key: &str, i: usize| format!("{key}{i:06}{}", "x".repeat(1000));
    // Three keys rewritten 3,000 times each: about 9 MiB appended, 3 KiB live.
    let mut largest = 0;
    let mut last = 0;
    for i in 0..3000 {
        for key in ["a", "b", "c"] {
            last = put(&q, "c", 0, Some(key), &value(key, i));
        }
        if i == 0 {
            let (first, _) = poll_records(reader.as_mut(), 3);
            assert_eq!(first.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2]);
        }
        largest = largest.max(dir_bytes(&pdir));
    }
    assert!(largest < 3 << 20, "the partition's files reached {largest} bytes");
    let latest = |from: usize| {
        ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(j, k)| ((from + j) as i64, Some(k.to_string()), value(k, 2999)))
            .collect()
    };
    let expected: Contents = latest(last as usize - 2);
    let (records, (low, high)) = contents(&q, "c", 0);
    assert!(records == expected, "{:?}", records.iter().map(|r| (r.0, r.1.clone())).collect::<Vec<_>>());
    // Slots superseded since the last rewrite stay below the first record until the next one.
    assert!(low <= last - 2 && high == last + 1, "watermarks ({low}, {high})");
    let (rest, _) = poll_records(reader.as_mut(), 3);
    assert_eq!(rest.iter().map(|r| r.offset).collect::<Vec<_>>(), [last - 2, last - 1, last]);
    drop(reader);
    drop(q);

    let q = open(dir.path());
    assert_eq!(contents(&q, "c", 0), (expected, (last - 2, last + 1)));
    assert_eq!(put(&q, "c", 0, Some("a"), "after"), last + 1);
}

#[test]
fn persistent_deleted_topics_and_groups_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let q = open(dir.path());
        for t in ["t1", "t2"] {
            q.create_topic(&spec(t, 1)).unwrap();
            for i in 0..5 {
                put(&q, t, 0, None, &format!("{t}-{i}"));
            }
        }
        commit(&q, "g1", "t1", 0, 3);
        commit(&q, "g1", "t2", 0, 4);
        commit(&q, "g2", "t2", 0, 2);
        q.delete_topic("t1").unwrap();
        q.delete_group("g2").unwrap();
    }
    assert!(!dir.path().join("topics/t1").exists(), "the topic's files are gone");
    let q = open(dir.path());
    assert!(!q.topic_exists("t1").unwrap());
    assert!(q.topic_exists("t2").unwrap());
    assert_eq!(committed(&q, "g1", "t2", 0), Some(4));
    assert_eq!(committed(&q, "g1", "t1", 0), None, "a deleted topic's offsets go with it");
    assert_eq!(committed(&q, "g2", "t2", 0), None, "a deleted group stays deleted");
    // A topic created again under the old name starts empty.
    q.create_topic(&spec("t1", 1)).unwrap();
    assert_eq!(contents(&q, "t1", 0), (Vec::new(), (0, 0)));
    assert_eq!(put(&q, "t1", 0, None, "new"), 0);
    drop(q);
    let q = open(dir.path());
    assert_eq!(contents(&q, "t1", 0).0, vec![(0, None, "new".to_string())]);
    assert_eq!(committed(&q, "g1", "t1", 0), None);
}

#[test]
fn persistent_torn_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let segment = partition_dir(dir.path(), "t", 0).join("00000000000000000000.log");
    {
        let q = open(dir.path());
        q.create_topic(&spec("t", 1)).unwrap();
        for i in 0..10 {
            put(&q, "t", 0, Some("k"), &format!("value-{i}"));
        }
    }
    // The last record cut short, as by a kill in the middle of its write.
    let len = fs::metadata(&segment).unwrap().len();
    fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 3).unwrap();
    {
        let q = open(dir.path());
        let (records, marks) = contents(&q, "t", 0);
        assert_eq!(records.len(), 9);
        assert_eq!(records.last().unwrap().2, "value-8");
        assert_eq!(marks, (0, 9));
        // Cut off on disk too: the torn record's 28 bytes (8 header, 12 fixed, key, value).
        assert_eq!(fs::metadata(&segment).unwrap().len(), len - 28);
        assert_eq!(put(&q, "t", 0, Some("k"), "value-9 again"), 9);
    }
    // Garbage after the last record.
    let len = fs::metadata(&segment).unwrap().len();
    fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(b"\x07garbage").unwrap();
    let q = open(dir.path());
    assert_eq!(fs::metadata(&segment).unwrap().len(), len);
    let (records, marks) = contents(&q, "t", 0);
    assert_eq!(marks, (0, 10));
    assert_eq!(records.last().unwrap().2, "value-9 again");
    assert_eq!(put(&q, "t", 0, None, "value-10"), 10);
    drop(q);
    let q = open(dir.path());
    assert_eq!(contents(&q, "t", 0).1, (0, 11));
}

#[test]
fn persistent_damage_in_an_older_segment_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "t", 0);
    let value = "v".repeat(100 * 1024);
    // A 4 MiB bound: segments of 1 MiB, and the 3 MiB written all kept.
    let open = |dir: &Path| EmbeddedQueue::open(dir, 4 * 1024 * 1024).unwrap();
    {
        let q = open(dir.path());
        q.create_topic(&spec("t", 1)).unwrap();
        for i in 0..30 {
            put(&q, "t", 0, None, &format!("{i:03}{value}"));
        }
    }
    let files = segments(&pdir);
    assert!(files.len() >= 3, "segments roll at 1 MiB: {files:?}");
    // Flip a byte of the third record's value in the oldest segment.
    let mut bytes = fs::read(&files[0]).unwrap();
    let frame = 8 + 12 + value.len() + 3;
    bytes[2 * frame + 100] ^= 0xff;
    fs::write(&files[0], bytes).unwrap();

    let q = open(dir.path());
    let (records, marks) = contents(&q, "t", 0);
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    let second: i64 = files[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let mut expected = vec![0, 1];
    expected.extend(second..30);
    assert_eq!(offsets, expected, "the records before the damage and every later segment");
    assert_eq!(marks, (0, 30));
    assert_eq!(put(&q, "t", 0, None, "next"), 30);
}

#[test]
fn persistent_committed_offsets_file_is_rewritten_when_large() {
    let dir = tempfile::tempdir().unwrap();
    let groups = dir.path().join("groups.log");
    {
        let q = open(dir.path());
        q.create_topic(&spec("t", 2)).unwrap();
        let tp = TopicPartition::new("t", 0);
        let mut c = q.assign("g", "c", &tp).unwrap();
        for i in 1..=2000 {
            c.commit(&tp, i).unwrap();
        }
        commit(&q, "g", "t", 1, 5);
        // Far below 2000 entries of about 30 bytes: rewritten with only the live offsets.
        let len = fs::metadata(&groups).unwrap().len();
        assert!(len < 8 * 1024, "groups.log is {len} bytes");
    }
    let q = open(dir.path());
    assert_eq!(committed(&q, "g", "t", 0), Some(2000));
    assert_eq!(committed(&q, "g", "t", 1), Some(5));
    drop(q);
    assert!(fs::metadata(&groups).unwrap().len() < 200, "rewritten at start too");
}

#[test]
fn persistent_leftovers_and_unknown_files_do_not_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let q = open(dir.path());
        q.create_topic(&spec("t", 1)).unwrap();
        put(&q, "t", 0, None, "kept");
    }
    let topics = dir.path().join("topics");
    fs::write(dir.path().join("README"), "not ours").unwrap();
    fs::write(topics.join("t/0/notes.txt"), "not ours").unwrap();
    fs::write(topics.join("t/0/00000000000000000009.log.tmp"), "an interrupted rewrite").unwrap();
    // A creation interrupted before its meta file was written.
    fs::create_dir_all(topics.join("half/0")).unwrap();
    fs::create_dir_all(topics.join("bad%zzname")).unwrap();
    // A topic whose meta file is damaged.
    fs::create_dir_all(topics.join("broken")).unwrap();
    fs::write(topics.join("broken/meta"), "format=1\npartitions=many\n").unwrap();

    let q = open(dir.path());
    assert_eq!(contents(&q, "t", 0).0, vec![(0, None, "kept".to_string())]);
    assert!(!topics.join("t/0/00000000000000000009.log.tmp").exists());
    assert!(!q.topic_exists("half").unwrap() && !q.topic_exists("broken").unwrap());
    // Creating such a topic replaces the leftover directory.
    q.create_topic(&spec("half", 1)).unwrap();
    assert_eq!(put(&q, "half", 0, None, "h"), 0);
    drop(q);
    let q = open(dir.path());
    assert_eq!(contents(&q, "half", 0).0, vec![(0, None, "h".to_string())]);
}

#[test]
fn persistent_interrupted_compaction_is_finished_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path(), "c", 0);
    {
        let q = open(dir.path());
        q.create_topic(&spec("c", 1).compacted()).unwrap();
        put(&q, "c", 0, Some("a"), "a1");
        put(&q, "c", 0, Some("a"), "a2");
    }
    {
        // Compacts at start: one segment at offset 1.
        let q = open(dir.path());
        assert_eq!(contents(&q, "c", 0).0, vec![(1, Some("a".to_string()), "a2".to_string())]);
        put(&q, "c", 0, Some("a"), "a3");
    }
    // As if the process died after the compacted segment was complete (`.swap`) and before the
    // old segments were removed: the swap wins.
    let old = pdir.join("00000000000000000001.log");
    fs::copy(&old, pdir.join("00000000000000000000.log")).unwrap();
    fs::rename(&old, pdir.join("00000000000000000001.log.swap")).unwrap();
    let q = open(dir.path());
    assert_eq!(contents(&q, "c", 0), (vec![(2, Some("a".to_string()), "a3".to_string())], (2, 3)));
    assert_eq!(segments(&pdir), vec![pdir.join("00000000000000000002.log")]);
}

#[test]
fn persistent_directory_is_used_by_one_queue_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let err = EmbeddedQueue::open(dir.path(), DEFAULT_MAX_PARTITION_BYTES).unwrap_err();
    assert!(err.to_string().contains("another process"), "{err}");
    drop(first);
    open(dir.path());
}

const KILL_CHILD_DIR: &str = "TRIB_QUEUE_KILL_CHILD_DIR";
const KILL_RECORDS: i32 = 2000;
const KILL_MARKER: &str = "queue-kill-child: stored";

/// The child process of [`persistent_records_survive_sigkill`]: stores records and a committed
/// offset, says so, and waits to be killed.
#[test]
#[ignore = "the child process of persistent_records_survive_sigkill, which starts it"]
fn persistent_kill_child() {
    // Run by hand (`--ignored`) it has nothing to do.
    let Some(dir) = std::env::var_os(KILL_CHILD_DIR) else {
        return;
    };
    let q = open(Path::new(&dir));
    q.create_topic(&spec("k", 2)).unwrap();
    for i in 0..KILL_RECORDS {
        put(&q, "k", i % 2, Some(&format!("key{i}")), &format!("value{i}"));
    }
    commit(&q, "g", "k", 1, 77);
    let mut out = std::io::stdout();
    writeln!(out, "\n{KILL_MARKER}").unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_secs(300));
}

#[test]
fn persistent_records_survive_sigkill() {
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "queue::embedded::tests::persistent_kill_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(KILL_CHILD_DIR, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let stored = BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains(KILL_MARKER));
        let _ = tx.send(stored);
    });
    let stored = rx.recv_timeout(Duration::from_secs(120)).unwrap_or(false);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(stored, "the child did not report its records stored ({status})");
    assert_eq!(status.signal(), Some(9), "the child was killed (SIGKILL = 9), not stopped");

    let q = open(dir.path());
    for p in 0..2 {
        let (records, marks) = contents(&q, "k", p);
        assert_eq!(marks, (0, i64::from(KILL_RECORDS / 2)), "partition {p}");
        for (n, (offset, key, value)) in records.iter().enumerate() {
            let i = 2 * n as i32 + p;
            assert_eq!(
                (*offset, key.as_deref(), value.as_str()),
                (n as i64, Some(&*format!("key{i}")), &*format!("value{i}"))
            );
        }
    }
    assert_eq!(committed(&q, "g", "k", 1), Some(77));
}
