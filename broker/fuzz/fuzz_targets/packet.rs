//! Fuzz target: arbitrary client bytes through the broker's packet decoding, which must never panic.
//!
//! The first input byte picks the entry point the way a connection would reach it: the first packet
//! (`decode_connect`, which detects the protocol level) or an established connection's `Codec` for
//! MQTT 3.1, 3.1.1 or 5.0. The rest of the input is the byte stream; packets are decoded until more
//! bytes are needed or the codec reports an error (where the broker would close the connection).
//! Encoding is not fuzzed: the broker only encodes packets it built itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use trib_broker::protocol::{decode_connect, Codec, ProtocolVersion};

/// A small maximum so that the size checks are reached too.
const MAX_PACKET: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let mut buf = BytesMut::from(stream);
    let version = match selector % 4 {
        0 => {
            // The handshake path: after a CONNECT the link switches to the codec of its level.
            match decode_connect(&mut buf, MAX_PACKET) {
                Ok(Some(request)) => request.version,
                _ => return,
            }
        }
        1 => ProtocolVersion::V31,
        2 => ProtocolVersion::V311,
        _ => ProtocolVersion::V5,
    };
    let codec = Codec::new(version, MAX_PACKET);
    while let Ok(Some(_packet)) = codec.decode(&mut buf) {}
});
