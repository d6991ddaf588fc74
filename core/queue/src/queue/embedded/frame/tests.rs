//! The frame codec as data: byte strings with a comment per field, decoded by `check` (records)
//! and `check_entry` (`groups.log` entries); the fixtures are format 1 as written to disk, so a
//! change of the format fails here. Then a property test: seeded pseudo-random records round
//! trip, and damaged or random bytes never panic the decoder nor yield a record whose CRC does
//! not match.

use super::*;

/// The record at offset 7 with key "key" and value "value", as stored.
const RECORD_7: &[u8] = &[
    20, 0, 0, 0, // body length: 8 (offset) + 4 (key length) + 3 (key) + 5 (value)
    0xae, 0x73, 0x01, 0x80, // CRC32 of the length and the body
    7, 0, 0, 0, 0, 0, 0, 0, // offset 7
    3, 0, 0, 0, // key length 3
    b'k', b'e', b'y', // key
    b'v', b'a', b'l', b'u', b'e', // value
];

/// The record at offset 8 without a key and with an empty value, as stored.
const RECORD_8: &[u8] = &[
    12, 0, 0, 0, // body length: 8 (offset) + 4 (key length)
    0x80, 0xce, 0x2e, 0x93, // CRC32 of the length and the body
    8, 0, 0, 0, 0, 0, 0, 0, // offset 8
    0xff, 0xff, 0xff, 0xff, // key length -1: no key
];

/// The committed offset 42 of group "g" on partition 3 of topic "t", as stored.
const COMMIT: &[u8] = &[
    23, 0, 0, 0, // body length: 1 + 5 + 5 + 4 + 8
    0x7f, 0x82, 0xa6, 0xfe, // CRC32 of the length and the body
    1,    // kind: a committed offset
    1, 0, 0, 0, b'g', // group: length 1, "g"
    1, 0, 0, 0, b't', // topic: length 1, "t"
    3, 0, 0, 0, // partition 3
    42, 0, 0, 0, 0, 0, 0, 0, // next offset 42
];

/// The deletion of group "g", as stored.
const DELETE_GROUP: &[u8] = &[
    6, 0, 0, 0, // body length: 1 + 5
    0x71, 0x64, 0xea, 0x4d, // CRC32 of the length and the body
    2,    // kind: a deleted group
    1, 0, 0, 0, b'g', // group: length 1, "g"
];

/// The deletion of topic "t", as stored.
const DELETE_TOPIC: &[u8] = &[
    6, 0, 0, 0, // body length: 1 + 5
    0x0a, 0xf6, 0x08, 0x02, // CRC32 of the length and the body
    3,    // kind: a deleted topic
    1, 0, 0, 0, b't', // topic: length 1, "t"
];

type Decoded<'a> = (i64, Option<&'a [u8]>, &'a [u8]);

/// Decodes `bytes` as consecutive records: the records read, and the error that stopped the
/// reading (`Ok` at the end of the bytes). Checks every record as it goes: its ranges lie in its
/// frame, its CRC matches (computed here, not by the codec), and encoding it again gives back
/// its frame byte for byte.
fn decode_all(bytes: &[u8]) -> (Vec<Decoded<'_>>, Result<(), Error>) {
    let (mut records, mut pos) = (Vec::new(), 0);
    loop {
        let rest = &bytes[pos..];
        let record = match decode_record(rest) {
            Ok(Some(record)) => record,
            Ok(None) => return (records, Ok(())),
            Err(e) => return (records, Err(e)),
        };
        let frame = &rest[..record.len];
        assert!(crc_matches(frame), "a record whose CRC does not match: {frame:?}");
        let key = record.key.map(|r| &frame[r]);
        let value = &frame[record.value];
        let mut again = Vec::new();
        encode_record(&mut again, record.offset, key, value).expect("a decoded record encodes");
        assert_eq!(again, frame, "decoding and encoding again changed the frame");
        records.push((record.offset, key, value));
        pos += record.len;
    }
}

/// Whether the frame's stored CRC is the CRC32 of its length field and its body.
fn crc_matches(frame: &[u8]) -> bool {
    frame.len() >= HEADER && frame[4..8] == crc32fast::hash(&[&frame[..4], &frame[HEADER..]].concat()).to_le_bytes()
}

fn check(bytes: &[u8], records: &[Decoded<'_>], end: Result<(), Error>) {
    assert_eq!(decode_all(bytes), (records.to_vec(), end), "{bytes:?}");
}

/// A frame around `body`, built here rather than by the codec.
fn framed(body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(&[&len[..], body].concat()).to_le_bytes();
    [&len[..], &crc[..], body].concat()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 1;
    out
}

const REC_7: Decoded<'static> = (7, Some(b"key"), b"value");
const REC_8: Decoded<'static> = (8, None, b"");

#[test]
fn records_encode_to_the_stored_bytes() {
    let mut out = vec![0xaa; 3];
    encode_record(&mut out, 7, Some(b"key"), b"value").unwrap();
    assert_eq!(out, RECORD_7);
    encode_record(&mut out, 8, None, b"").unwrap();
    assert_eq!(out, RECORD_8);
}

#[test]
fn frame_lengths_come_from_the_sizes_and_the_header() {
    assert_eq!(record_frame_len(3, 5), RECORD_7.len());
    assert_eq!(record_frame_len(0, 0), RECORD_8.len(), "no key and an empty key take the same room");
    assert_eq!(frame_len_at(RECORD_7), Some(RECORD_7.len()));
    // The header alone is enough, whatever follows.
    assert_eq!(frame_len_at(&RECORD_7[..4]), Some(RECORD_7.len()));
    assert_eq!(frame_len_at(&RECORD_7[..3]), None);
}

#[test]
fn nothing_is_the_end() {
    check(&[], &[], Ok(()));
}

#[test]
fn a_record_with_a_key() {
    check(RECORD_7, &[REC_7], Ok(()));
}

#[test]
fn a_record_without_a_key() {
    check(RECORD_8, &[REC_8], Ok(()));
}

#[test]
fn records_follow_each_other() {
    check(&cat(&[RECORD_7, RECORD_8, RECORD_7]), &[REC_7, REC_8, REC_7], Ok(()));
}

#[test]
fn a_cut_header_is_torn() {
    check(&RECORD_7[..5], &[], Err(Error::ShortHeader));
    check(&cat(&[RECORD_8, &[0, 0, 0]]), &[REC_8], Err(Error::ShortHeader));
    assert!(Error::ShortHeader.is_torn());
}

#[test]
fn a_cut_body_is_torn() {
    check(&RECORD_7[..RECORD_7.len() - 2], &[], Err(Error::ShortBody));
    check(&RECORD_7[..HEADER], &[], Err(Error::ShortBody));
    assert!(Error::ShortBody.is_torn());
}

#[test]
fn a_length_past_anything_is_a_cut_body() {
    check(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3], &[], Err(Error::ShortBody));
}

#[test]
fn a_flipped_bit_in_the_last_frame_is_torn() {
    check(&cat(&[RECORD_8, &flipped(RECORD_7, HEADER + 9)]), &[REC_8], Err(Error::Crc { torn: true }));
    // The stored CRC itself damaged.
    check(&flipped(RECORD_7, 5), &[], Err(Error::Crc { torn: true }));
}

#[test]
fn a_flipped_bit_with_a_frame_after_it_is_corrupt() {
    let bytes = cat(&[&flipped(RECORD_7, HEADER + 9), RECORD_8]);
    check(&bytes, &[], Err(Error::Crc { torn: false }));
    assert!(!Error::Crc { torn: false }.is_torn());
}

#[test]
fn zeros_after_the_last_record_are_torn() {
    // A file extended but not written when the power went: the zeros read as a header of an
    // empty body whose CRC is not 0.
    check(&cat(&[RECORD_7, &[0; 32]]), &[REC_7], Err(Error::Crc { torn: true }));
}

#[test]
fn a_body_shorter_than_offset_and_key_length_is_malformed() {
    check(&framed(&[]), &[], Err(Error::MalformedRecord));
    check(&framed(&[7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]), &[], Err(Error::MalformedRecord));
    assert!(!Error::MalformedRecord.is_torn());
}

#[test]
fn a_key_length_below_minus_one_is_malformed() {
    let body = [
        7, 0, 0, 0, 0, 0, 0, 0, // offset 7
        0xfe, 0xff, 0xff, 0xff, // key length -2
        b'v', // value
    ];
    check(&framed(&body), &[], Err(Error::MalformedRecord));
}

#[test]
fn a_key_longer_than_the_body_is_malformed() {
    let body = [
        7, 0, 0, 0, 0, 0, 0, 0, // offset 7
        4, 0, 0, 0, // key length 4
        b'k', b'e', b'y', // only 3 bytes left
    ];
    check(&framed(&body), &[], Err(Error::MalformedRecord));
}

#[test]
fn a_key_that_takes_the_whole_body_leaves_an_empty_value() {
    let body = [
        9, 0, 0, 0, 0, 0, 0, 0, // offset 9
        3, 0, 0, 0, // key length 3
        b'k', b'e', b'y', // key, no value
    ];
    check(&framed(&body), &[(9, Some(b"key"), b"")], Ok(()));
}

#[test]
fn a_negative_offset_is_malformed() {
    let body = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // offset -1
        0xff, 0xff, 0xff, 0xff, // no key
    ];
    check(&framed(&body), &[], Err(Error::MalformedRecord));
}

#[test]
fn errors_read_as_the_logged_reasons() {
    for (error, text) in [
        (Error::FrameTooLarge, "a queue record cannot exceed 4 GiB"),
        (Error::KeyTooLarge, "a queue record key cannot exceed 2 GiB"),
        (Error::ShortHeader, "incomplete frame header"),
        (Error::ShortBody, "frame runs past the end of the file"),
        (Error::Crc { torn: true }, "CRC mismatch"),
        (Error::MalformedRecord, "malformed record"),
    ] {
        assert_eq!(error.to_string(), text);
    }
}

/// Decodes `frame` as one `groups.log` entry, and checks that an entry encodes back to it.
fn check_entry(frame: &[u8], expected: Option<GroupEntry<'_>>) {
    let decoded = decode_frame(frame).expect("a whole frame").expect("not empty");
    assert_eq!(decoded.len, frame.len());
    assert_eq!(GroupEntry::decode(decoded.body), expected, "{frame:?}");
    if let Some(entry) = expected {
        let mut out = Vec::new();
        entry.encode(&mut out).unwrap();
        assert_eq!(out, frame);
    }
}

#[test]
fn a_commit_entry() {
    check_entry(COMMIT, Some(GroupEntry::Commit { group: "g", topic: "t", partition: 3, offset: 42 }));
}

#[test]
fn a_deleted_group_entry() {
    check_entry(DELETE_GROUP, Some(GroupEntry::DeleteGroup { group: "g" }));
}

#[test]
fn a_deleted_topic_entry() {
    check_entry(DELETE_TOPIC, Some(GroupEntry::DeleteTopic { topic: "t" }));
}

#[test]
fn an_unknown_entry_kind_is_not_an_entry() {
    check_entry(&framed(&[9]), None);
    check_entry(&framed(&[]), None);
}

#[test]
fn an_entry_with_bytes_missing_or_left_over_is_not_an_entry() {
    let body = &COMMIT[HEADER..];
    check_entry(&framed(&body[..body.len() - 1]), None);
    check_entry(&framed(&cat(&[body, &[0]])), None);
}

#[test]
fn an_entry_string_past_the_body_is_not_an_entry() {
    let body = [
        2, // kind: a deleted group
        2, 0, 0, 0, b'g', // group: length 2, only 1 byte left
    ];
    check_entry(&framed(&body), None);
}

#[test]
fn an_entry_string_that_is_not_utf8_is_not_an_entry() {
    let body = [
        3, // kind: a deleted topic
        1, 0, 0, 0, 0xff, // topic: length 1, not UTF-8
    ];
    check_entry(&framed(&body), None);
}

/// Random bytes of a random length below `max`, mostly short.
fn random_bytes(rng: &mut fastrand::Rng, max: usize) -> Vec<u8> {
    let len = if rng.u8(..) < 16 { rng.usize(..max) } else { rng.usize(..max.min(24)) };
    let mut bytes = vec![0; len];
    rng.fill(&mut bytes);
    bytes
}

#[test]
fn random_records_round_trip_and_damage_never_yields_a_bad_record() {
    const SEED: u64 = 0x7472_6962_7175_6575;
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut stream = Vec::new();
    let mut expected: Vec<(i64, Option<Vec<u8>>, Vec<u8>)> = Vec::new();
    let mut frame = Vec::new();
    for _ in 0..3000 {
        let offset = if rng.bool() { rng.i64(0..1000) } else { rng.i64(0..) };
        let key = rng.bool().then(|| random_bytes(&mut rng, 300));
        let value = random_bytes(&mut rng, 2000);
        encode_record(&mut frame, offset, key.as_deref(), &value).unwrap();
        stream.extend_from_slice(&frame);
        expected.push((offset, key, value));
    }
    let (records, end) = decode_all(&stream);
    let records: Vec<_> = records.into_iter().map(|(o, k, v)| (o, k.map(<[u8]>::to_vec), v.to_vec())).collect();
    assert_eq!((records, end), (expected, Ok(())), "seed {SEED:#x}");

    // Damaged streams: `decode_all` checks the CRC of every record it gets; a panic fails too.
    for round in 0..4000 {
        let start = rng.usize(..stream.len());
        let mut bytes = stream[start..(start + rng.usize(1..4000)).min(stream.len())].to_vec();
        match round % 4 {
            0 => bytes.truncate(rng.usize(..=bytes.len())),
            1 => {
                for _ in 0..rng.usize(1..4) {
                    let at = rng.usize(..bytes.len());
                    bytes[at] ^= 1 << rng.u8(..8);
                }
            }
            2 => bytes = random_bytes(&mut rng, 64),
            _ => {
                // A frame header in front of random bytes, so that the body is reached.
                let body = random_bytes(&mut rng, 64);
                bytes = if rng.bool() { framed(&body) } else { cat(&[&framed(&body)[..8], &body[..body.len() / 2]]) };
            }
        }
        let _checked_inside = decode_all(&bytes);
        if let Ok(Some(frame)) = decode_frame(&bytes) {
            // An entry decoded from any body encodes back to the same frame.
            if let Some(entry) = GroupEntry::decode(frame.body) {
                let mut out = Vec::new();
                entry.encode(&mut out).unwrap();
                assert_eq!(out, &bytes[..frame.len], "seed {SEED:#x}, round {round}");
            }
        }
    }
}
