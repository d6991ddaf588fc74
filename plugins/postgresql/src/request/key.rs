//! The `messageKey` source: a deterministic 16-byte key of a message, so that a message the
//! executor delivers again produces the same key and `ON CONFLICT DO NOTHING` skips it.
//!
//! The key is the first 16 bytes of SHA-256 over the client id, the topic, the broker timestamp
//! and the payload, each length-prefixed so that no two different messages share an input:
//! `u64 len(clientId) | clientId | u64 len(topic) | topic | i64 ts | u64 len(payload) | payload`
//! (integers big-endian). The broker timestamp is stored with the queued message, so it is the
//! same on every delivery. Two messages that agree on all four (the same publisher, topic and
//! payload within the same millisecond) get the same key and are stored once.

use sha2::{Digest, Sha256};
use trib_plugin_api::driver::Message;

/// The key of `msg`.
pub fn message_key(msg: &Message<'_>) -> [u8; 16] {
    let mut hash = Sha256::new();
    for part in [msg.client_id().as_bytes(), msg.topic().as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(msg.timestamp_ms.to_be_bytes());
    hash.update((msg.payload().len() as u64).to_be_bytes());
    hash.update(msg.payload());
    let digest = hash.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The key as 32 lower-case hex digits (how it is stored in a text column).
pub fn hex(key: &[u8; 16]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}
