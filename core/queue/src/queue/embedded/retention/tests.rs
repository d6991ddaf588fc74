//! The cleanup decision as data: a partition's segments (base, bytes, age), its committed
//! offset and its topic's settings in, the plan out. Then the settings parsed from properties.

use super::*;

const NOW: i64 = 1_000_000_000;
const KIB: u64 = 1024;

/// A segment at `base` of `kib` KiB last written `age_ms` ago.
fn seg(base: i64, kib: u64, age_ms: i64) -> SegmentFacts {
    SegmentFacts { base, bytes: kib * KIB, last_write_ms: NOW - age_ms }
}

fn keep_forever() -> Retention {
    Retention { ms: None, bytes: None, segment_bytes: None }
}

fn check(segments: &[SegmentFacts], next: i64, committed: Option<i64>, retention: Retention, expected: Plan) {
    check_pressed(segments, next, committed, false, retention, expected);
}

fn check_pressed(
    segments: &[SegmentFacts],
    next: i64,
    committed: Option<i64>,
    pressed: bool,
    retention: Retention,
    expected: Plan,
) {
    let p = Partition { segments, next_offset: next, committed, pressed };
    assert_eq!(plan(p, &retention, NOW), expected, "{segments:?} next {next} committed {committed:?}");
}

const KEEP: Plan = Plan { roll: false, delete: 0 };

fn delete(n: usize) -> Plan {
    Plan { roll: false, delete: n }
}

fn roll_and_delete(n: usize) -> Plan {
    Plan { roll: true, delete: n }
}

#[test]
fn nothing_goes_without_a_commit_or_a_limit() {
    check(&[seg(0, 100, 0), seg(10, 100, 0), seg(20, 50, 0)], 25, None, keep_forever(), KEEP);
}

#[test]
fn segments_go_once_committed_past_their_last_record() {
    let segments = [seg(0, 100, 0), seg(10, 100, 0), seg(20, 64, 0)];
    check(&segments, 25, Some(9), keep_forever(), KEEP);
    check(&segments, 25, Some(10), keep_forever(), delete(1));
    check(&segments, 25, Some(19), keep_forever(), delete(1));
    check(&segments, 25, Some(20), keep_forever(), delete(2));
    // Committed up to the end: the active segment (at least 64 KiB) is closed and goes too.
    check(&segments, 25, Some(25), keep_forever(), roll_and_delete(3));
}

#[test]
fn a_small_drained_active_segment_stays_unless_the_producer_waits() {
    let segments = [seg(0, 100, 0), seg(10, 63, 0)];
    check(&segments, 12, Some(12), keep_forever(), delete(1));
    check_pressed(&segments, 12, Some(12), true, keep_forever(), roll_and_delete(2));
    // Pressed, but not everything is committed: the active segment stays.
    check_pressed(&segments, 12, Some(11), true, keep_forever(), delete(1));
    // An empty active segment is never closed.
    check_pressed(&[seg(12, 0, 0)], 12, Some(12), true, keep_forever(), KEEP);
}

#[test]
fn retention_ms_deletes_old_segments_oldest_first() {
    let week = Retention { ms: Some(1000), ..keep_forever() };
    check(&[seg(0, 10, 5000), seg(10, 10, 2000), seg(20, 10, 10)], 25, None, week, delete(2));
    // A young segment in front keeps the older ones behind it (Kafka does the same).
    check(&[seg(0, 10, 10), seg(10, 10, 5000), seg(20, 10, 10)], 25, None, week, KEEP);
    // An expired active segment is closed and goes: the whole partition is older than the limit.
    check(&[seg(0, 10, 5000), seg(10, 10, 2000)], 15, None, week, roll_and_delete(2));
    // Exactly at the limit it stays.
    check(&[seg(0, 10, 1000), seg(10, 10, 0)], 15, None, week, KEEP);
}

#[test]
fn retention_bytes_keeps_the_newest_segments_that_hold_the_limit() {
    let limit = Retention { bytes: Some(150 * KIB), ..keep_forever() };
    // 250 KiB: the first 100 KiB can go (150 are left), the next cannot.
    check(&[seg(0, 100, 0), seg(10, 100, 0), seg(20, 50, 0)], 25, None, limit, delete(1));
    check(&[seg(0, 40, 0), seg(10, 40, 0), seg(20, 100, 0), seg(30, 50, 0)], 35, None, limit, delete(2));
    // Never the active segment, however large.
    check(&[seg(0, 400, 0)], 5, None, limit, KEEP);
}

#[test]
fn any_reason_deletes_and_the_first_kept_segment_stops_the_rest() {
    let both = Retention { ms: Some(1000), bytes: Some(1000 * KIB), segment_bytes: None };
    // Committed past the first, the second is old, the third is neither.
    let segments = [seg(0, 10, 0), seg(10, 10, 5000), seg(20, 10, 0), seg(30, 10, 5000), seg(40, 10, 0)];
    check(&segments, 45, Some(10), both, delete(2));
}

#[test]
fn settings_come_from_kafka_properties_with_kafkas_defaults() {
    let parse = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Retention::from_map(&map)
    };
    let tbmq = [("retention.ms", "604800000"), ("segment.bytes", "26214400"), ("retention.bytes", "1048576000")];
    assert_eq!(
        parse(&tbmq),
        Ok(Retention { ms: Some(604_800_000), bytes: Some(1_048_576_000), segment_bytes: Some(26_214_400) })
    );
    assert_eq!(parse(&[]), Ok(Retention { ms: Some(604_800_000), bytes: None, segment_bytes: None }));
    assert_eq!(parse(&[("retention.ms", "-1"), ("retention.bytes", "-1")]), Ok(keep_forever()));
    assert_eq!(parse(&[("retention.ms", "0")]).map(|r| r.ms), Ok(Some(0)));
    assert!(parse(&[("retention.ms", "a week")]).is_err());
    assert!(parse(&[("retention.bytes", "-2")]).is_err());
    assert!(parse(&[("segment.bytes", "0")]).is_err());
}

#[test]
fn settings_round_trip_through_meta_lines() {
    for retention in
        [Retention::default(), keep_forever(), Retention { ms: Some(5), bytes: Some(7), segment_bytes: Some(4096) }]
    {
        let lines = retention.meta_lines();
        let map: BTreeMap<String, String> =
            lines.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
        assert_eq!(Retention::from_map(&map), Ok(retention), "{lines}");
    }
}

#[test]
fn segment_size_is_the_topics_within_the_queues() {
    let mib = 1024 * KIB;
    assert_eq!(Retention::default().roll_bytes(64 * mib), 64 * mib);
    assert_eq!(Retention { segment_bytes: Some(25 * mib), ..keep_forever() }.roll_bytes(64 * mib), 25 * mib);
    assert_eq!(Retention { segment_bytes: Some(1024 * mib), ..keep_forever() }.roll_bytes(64 * mib), 64 * mib);
}
