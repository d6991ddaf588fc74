//! Fuzz target: arbitrary bytes through the embedded queue's frame decoding, the code that reads
//! segment files and `groups.log` back at start. Decoding must never panic, never accept a frame
//! whose CRC does not match, and whatever it accepts must encode back to the same bytes.
//!
//! The bytes are read twice, as the queue reads its two kinds of file: as a segment (records one
//! after the other until the end or the first error) and as `groups.log` (frames, each body an
//! entry or skipped). The codec's file is compiled in directly (see `Cargo.toml`).
//!
//! Fuzzing:
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd core/queue/fuzz && cargo +nightly fuzz run frame_decode -- -max_total_time=120
//! # stable only: RUSTC_BOOTSTRAP=1 cargo fuzz run -s none frame_decode -- -max_total_time=120
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;

// Not every item of the codec is used here.
#[allow(dead_code)]
#[path = "../../src/queue/embedded/frame.rs"]
mod frame;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some(record)) = frame::decode_record(rest) {
        let bytes = &rest[..record.len];
        assert_crc_matches(bytes);
        let key = record.key.map(|r| &bytes[r]);
        let mut again = Vec::new();
        frame::encode_record(&mut again, record.offset, key, &bytes[record.value]).expect("a decoded record encodes");
        assert_eq!(again, bytes, "a decoded record encodes back to other bytes");
        rest = &rest[record.len..];
    }

    let mut rest = data;
    while let Ok(Some(f)) = frame::decode_frame(rest) {
        let bytes = &rest[..f.len];
        assert_crc_matches(bytes);
        if let Some(entry) = frame::GroupEntry::decode(f.body) {
            let mut again = Vec::new();
            entry.encode(&mut again).expect("a decoded entry encodes");
            assert_eq!(again, bytes, "a decoded entry encodes back to other bytes");
        }
        rest = &rest[f.len..];
    }
});

/// Checks the frame's stored CRC against the CRC32 of its length field and body, computed here.
fn assert_crc_matches(frame: &[u8]) {
    let mut h = crc32fast::Hasher::new();
    h.update(&frame[..4]);
    h.update(&frame[frame::HEADER..]);
    assert_eq!(frame[4..8], h.finalize().to_le_bytes(), "a frame whose CRC does not match was accepted");
}
