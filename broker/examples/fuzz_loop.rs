//! libFuzzer-free fallback for `fuzz/fuzz_targets/packet.rs`: the same decoding entry points, fed with
//! mutated valid packets from a seeded xorshift generator, for machines where cargo-fuzz cannot build.
//!
//! `cargo run --release -p trib-broker --example fuzz_loop -- SECONDS [SEED]`
//! Each input is one selector byte plus a byte stream, exactly as in the cargo-fuzz target; a panic is
//! caught, its input printed in hex, and the run exits with status 1. No coverage guidance: the
//! cargo-fuzz target is the real fuzzer.
// A command-line tool: its report goes to stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use trib_broker::protocol::{decode_connect, Codec, ProtocolVersion};

const MAX_PACKET: usize = 4096;

/// Valid client packets to mutate, with the selector byte that reaches their decoder.
const SEEDS: &[(u8, &[u8])] = &[
    // CONNECT 3.1.1, client id "a", keep alive 60.
    (0, &[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'a']),
    // CONNECT 5, property length 0, then PUBLISH QoS 1 with property length 0.
    (
        0,
        &[
            0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 1, b'a', 0x32, 8, 0, 1, b't', 0, 1, 0, b'h',
            b'i',
        ],
    ),
    // CONNECT 3.1 (MQIsdp) with will, user name and password.
    (
        0,
        &[
            0x10, 27, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0xC6, 0, 60, 0, 1, b'a', 0, 1, b'w', 0, 1, b'm', 0,
            1, b'u', 0, 1, b'p',
        ],
    ),
    // 3.1.1 PUBLISH QoS 1 topic "a/b" id 1, SUBSCRIBE id 2 "a/#" QoS 1, PINGREQ.
    (2, &[0x32, 9, 0, 3, b'a', b'/', b'b', 0, 1, b'h', b'i', 0x82, 8, 0, 2, 0, 3, b'a', b'/', b'#', 1, 0xC0, 0]),
    // 5 SUBSCRIBE id 1, subscription identifier 7, "a/+" options 0x2D; UNSUBSCRIBE; DISCONNECT 0x04.
    (3, &[0x82, 11, 0, 1, 2, 0x0B, 7, 0, 3, b'a', b'/', b'+', 0x2D, 0xA2, 7, 0, 2, 0, 0, 2, b'a', b'/', 0xE0, 1, 4]),
    // 5 PUBLISH QoS 2 with topic alias 1 and user property, then PUBREL with reason and empty properties.
    (3, &[0x34, 20, 0, 1, b't', 0, 9, 12, 0x23, 0, 1, 0x26, 0, 1, b'k', 0, 1, b'v', 0, b'x', 0x62, 4, 0, 9, 0, 0]),
    // 3.1 PUBACK, PUBREC, PUBCOMP.
    (1, &[0x40, 2, 0, 1, 0x50, 2, 0, 2, 0x70, 2, 0, 3]),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(0x9E37_79B9_7F4A_7C15);
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = XorShift(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        for _ in 0..1000 {
            let input = mutate(&mut rng);
            if std::panic::catch_unwind(|| decode_all(&input)).is_err() {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                println!("PANIC after {runs} runs (seed {seed}) on input {hex}");
                std::process::exit(1);
            }
            runs += 1;
        }
    }
    println!("{runs} executions in {seconds} s (seed {seed}), no panic");
}

/// The body of the cargo-fuzz target.
fn decode_all(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let mut buf = BytesMut::from(stream);
    let version = match selector % 4 {
        0 => match decode_connect(&mut buf, MAX_PACKET) {
            Ok(Some(request)) => request.version,
            _ => return,
        },
        1 => ProtocolVersion::V31,
        2 => ProtocolVersion::V311,
        _ => ProtocolVersion::V5,
    };
    let codec = Codec::new(version, MAX_PACKET);
    while let Ok(Some(_packet)) = codec.decode(&mut buf) {}
}

/// A seed packet with 1 to 8 mutations: flip, set to an interesting byte, insert, delete or truncate.
fn mutate(rng: &mut XorShift) -> Vec<u8> {
    let (selector, seed) = SEEDS[rng.below(SEEDS.len())];
    let mut v = Vec::with_capacity(seed.len() + 9);
    v.push(if rng.below(16) == 0 { rng.next() as u8 } else { selector });
    v.extend_from_slice(seed);
    for _ in 0..1 + rng.below(8) {
        let i = 1 + rng.below(v.len());
        match rng.below(6) {
            0 if i < v.len() => v[i] ^= 1 << rng.below(8),
            1 if i < v.len() => v[i] = [0, 1, 0x7F, 0x80, 0xFF, 0xFE][rng.below(6)],
            2 if i < v.len() => v[i] = rng.next() as u8,
            3 => v.insert(i, rng.next() as u8),
            4 if i < v.len() => {
                v.remove(i);
            }
            5 => v.truncate(i),
            _ => {}
        }
    }
    v
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
