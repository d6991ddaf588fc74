//! Record values of `tbmq.msg.retained`: what is written, and what a reader makes of it.

use bytes::Bytes;

use super::*;

fn message(payload: &'static [u8]) -> PublishedMessage {
    PublishedMessage {
        topic: "a/b".to_owned(),
        payload: Bytes::from_static(payload),
        qos: QoS::AtLeastOnce,
        retain: true,
        client_id: "c1".into(),
        user_properties: vec![("k".to_owned(), "v".to_owned())],
        content_type: Some("text/plain".to_owned()),
        correlation_data: Some(Bytes::from_static(b"corr")),
        response_topic: Some("reply".to_owned()),
        message_expiry_interval: None,
        payload_format_indicator: Some(1),
        received_at_ms: 1_000_000,
    }
}

/// Decodes a record with key `key` read at `now_ms`.
fn check(key: &[u8], value: &[u8], now_ms: u64, expected: Result<Option<(String, Change)>, DecodeError>) {
    assert_eq!(decode(Some(key), value, now_ms), expected);
}

#[test]
fn a_message_round_trips_with_its_properties_and_writer() {
    let msg = message(b"on");
    check(
        b"a/b",
        &encode(&msg, "node-1"),
        0,
        Ok(Some(("a/b".to_owned(), Change::Set(Box::new(msg), "node-1".to_owned())))),
    );
}

#[test]
fn an_empty_payload_is_a_tombstone_that_clears() {
    assert_eq!(encode(&message(b""), "node-1"), Vec::<u8>::new());
    check(b"a/b", b"", 0, Ok(Some(("a/b".to_owned(), Change::Clear))));
}

#[test]
fn the_expiry_interval_counts_from_when_the_message_was_received() {
    let mut msg = message(b"on");
    msg.message_expiry_interval = Some(10);
    let value = encode(&msg, "node-1");
    // 2.5 s later, 7.5 s are left: rounded up to 8.
    let mut left = msg.clone();
    left.message_expiry_interval = Some(8);
    check(b"a/b", &value, 1_002_500, Ok(Some(("a/b".to_owned(), Change::Set(Box::new(left), "node-1".to_owned())))));
    // 10 s later it is gone.
    check(b"a/b", &value, 1_010_000, Ok(Some(("a/b".to_owned(), Change::Clear))));
}

#[test]
fn markers_are_not_messages() {
    check(format!("{MARKER_KEY_PREFIX}x").as_bytes(), b"marker", 0, Ok(None));
}

#[test]
fn a_key_that_is_not_a_topic_name_is_refused() {
    check(b"a/#", &encode(&message(b"on"), "n"), 0, Err(DecodeError::Key));
    check(b"", b"", 0, Err(DecodeError::Key));
    check(&[0xff, 0xfe], b"", 0, Err(DecodeError::Key));
    assert_eq!(decode(None, b"", 0), Err(DecodeError::Key));
}

#[test]
fn an_undecodable_value_is_refused() {
    // Field 1, wire type 2 (bytes), length 10, but only 1 byte follows.
    let decoded = decode(Some(b"a/b"), &[0x0a, 0x0a, 0x01], 0);
    assert!(matches!(&decoded, Err(DecodeError::Value(why)) if why.contains("buffer underflow")), "{decoded:?}");
}

#[test]
fn an_invalid_qos_is_refused() {
    let value = RetainedMsgProto { payload: Bytes::from_static(b"x"), qos: 3, ..Default::default() }.encode_to_vec();
    check(b"a/b", &value, 0, Err(DecodeError::Qos(3)));
}
