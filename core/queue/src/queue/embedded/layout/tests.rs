//! Names and meta files of the queue directory.

use super::*;

#[test]
fn topic_names_encode_to_safe_directory_names_and_back() {
    for (name, encoded) in [
        ("tbmq.msg.ie.0123abcd", "tbmq.msg.ie.0123abcd"),
        ("a/b c", "a%2Fb%20c"),
        ("100%", "100%25"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("ü", "%C3%BC"),
    ] {
        assert_eq!(encode_topic(name), encoded);
        assert_eq!(decode_topic(encoded).as_deref(), Some(name));
    }
    // Non-canonical and broken forms are not topic directories.
    assert_eq!(decode_topic("%61"), None);
    assert_eq!(decode_topic("a%2"), None);
    assert_eq!(decode_topic("a%zz"), None);
    assert_eq!(decode_topic("a b"), None);
    assert_eq!(decode_topic(""), None);
}

#[test]
fn segment_names_are_twenty_digits_and_back() {
    assert_eq!(segment_name(0), "00000000000000000000.log");
    assert_eq!(segment_name(i64::MAX), "09223372036854775807.log");
    assert_eq!(parse_segment_name("00000000000000000042.log"), Some(42));
    assert_eq!(parse_segment_name("42.log"), None);
    assert_eq!(parse_segment_name("00000000000000000042.log.swap"), None);
    assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
    assert_eq!(parse_segment_name("99999999999999999999.log"), None, "past i64");
}

fn meta(partitions: i32, compacted: bool, retention: Retention) -> TopicMeta {
    TopicMeta { partitions, compacted, retention }
}

#[test]
fn meta_files_parse_and_reject_nonsense() {
    // As written before the cleanup settings: Kafka's defaults.
    assert_eq!(parse_meta("# c\nformat=1\npartitions=6\ncompacted=true\n"), Ok(meta(6, true, Retention::default())));
    let kept = meta(3, false, Retention { ms: Some(60_000), bytes: None, segment_bytes: Some(4096) });
    assert_eq!(parse_meta(&meta_text(&kept)), Ok(kept));
    assert_eq!(
        meta_text(&kept),
        "# Tributary embedded queue topic.\nformat=1\npartitions=3\ncompacted=false\n\
         retention.ms=60000\nretention.bytes=-1\nsegment.bytes=4096\n"
    );
    assert!(parse_meta("format=1\npartitions=1\ncompacted=false\nretention.ms=soon\n").is_err());
    assert!(parse_meta("format=2\npartitions=6\ncompacted=true\n").is_err());
    assert!(parse_meta("format=1\npartitions=0\ncompacted=true\n").is_err());
    assert!(parse_meta("format=1\npartitions=1\ncompacted=yes\n").is_err());
    assert!(parse_meta("format=1\npartitions=1\n").is_err());
}

#[test]
fn segments_roll_at_a_quarter_of_the_bound_within_limits() {
    const MIB: u64 = 1024 * 1024;
    assert_eq!(roll_bytes(10), MIB);
    assert_eq!(roll_bytes(16 * MIB as usize), 4 * MIB);
    assert_eq!(roll_bytes(super::super::DEFAULT_MAX_PARTITION_BYTES), 64 * MIB);
    assert_eq!(roll_bytes(usize::MAX), 64 * MIB);
}
