//! The byte codec of the persistent queue's files: frames, and the record and `groups.log` entry
//! bodies inside them. Pure: bytes in, bytes or values out; no I/O, no locks, no logging.
//! Reading files, cutting torn tails and logging damage live in `segments` and `groups`.
//!
//! A frame is the body's length (u32), a CRC32 of the length and the body (u32), then the body;
//! integers are little-endian. A record's body is its offset (i64), its key's length (i32, -1 =
//! no key), the key and the value. An entry's body is a kind byte followed by its fields,
//! strings as a u32 length and UTF-8.
//!
//! This file uses nothing of the crate, only `std` and `crc32fast`: the fuzz project in
//! `core/queue/fuzz` compiles it on its own (with `#[path]`), without librdkafka.

use std::{fmt, ops::Range};

/// Frame header: body length and CRC.
pub(super) const HEADER: usize = 8;
/// A record body without key and value: offset and key length.
pub(super) const RECORD_FIXED: usize = 12;

const ENTRY_COMMIT: u8 = 1;
const ENTRY_DELETE_GROUP: u8 = 2;
const ENTRY_DELETE_TOPIC: u8 = 3;

/// Why bytes could not be encoded or decoded.
///
/// Display is a fixed text ([`Error::reason`]) so that it can be logged as a static field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Error {
    /// The body does not fit the u32 length.
    FrameTooLarge,
    /// The key does not fit the i32 key length.
    KeyTooLarge,
    /// Fewer bytes than a frame header are left.
    ShortHeader,
    /// The header's length runs past the end of the bytes.
    ShortBody,
    /// The CRC does not match the length and the body. `torn` when the frame reaches the end of
    /// the bytes or only zeros follow it, as a frame being written when the process or the
    /// machine died does; otherwise the damage is in the middle.
    Crc { torn: bool },
    /// The CRC matches but the body is not a record.
    MalformedRecord,
}

impl Error {
    /// The error's fixed text.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Error::FrameTooLarge => "a queue record cannot exceed 4 GiB",
            Error::KeyTooLarge => "a queue record key cannot exceed 2 GiB",
            Error::ShortHeader => "incomplete frame header",
            Error::ShortBody => "frame runs past the end of the file",
            Error::Crc { .. } => "CRC mismatch",
            Error::MalformedRecord => "malformed record",
        }
    }

    /// Whether the damage looks like a write cut short by a crash rather than a corrupt file.
    pub(super) fn is_torn(self) -> bool {
        matches!(self, Error::ShortHeader | Error::ShortBody | Error::Crc { torn: true })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Error {}

/// A frame whose CRC matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frame<'a> {
    pub(super) body: &'a [u8],
    /// Header and body: where the next frame starts.
    pub(super) len: usize,
}

/// A record decoded from the start of some bytes. The key and the value are ranges of those
/// bytes, so that a caller holding them in a shared buffer can slice it instead of copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecordAt {
    pub(super) offset: i64,
    pub(super) key: Option<Range<usize>>,
    pub(super) value: Range<usize>,
    /// The frame's length: where the next frame starts.
    pub(super) len: usize,
}

/// One entry of `groups.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GroupEntry<'a> {
    Commit { group: &'a str, topic: &'a str, partition: i32, offset: i64 },
    DeleteGroup { group: &'a str },
    DeleteTopic { topic: &'a str },
}

/// Replaces the contents of `out` by the frame of a record.
pub(super) fn encode_record(out: &mut Vec<u8>, offset: i64, key: Option<&[u8]>, value: &[u8]) -> Result<(), Error> {
    start_frame(out);
    out.reserve(RECORD_FIXED + key.map_or(0, <[u8]>::len) + value.len());
    out.extend_from_slice(&offset.to_le_bytes());
    match key {
        Some(k) => {
            let len = i32::try_from(k.len()).map_err(|_| Error::KeyTooLarge)?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(k);
        }
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    out.extend_from_slice(value);
    finish_frame(out)
}

/// The length of a record's frame: what it takes in a segment file.
pub(super) fn record_frame_len(key_len: usize, value_len: usize) -> usize {
    HEADER + RECORD_FIXED + key_len + value_len
}

/// The length of the frame starting `bytes` (header and body) as its header says; `None` when
/// `bytes` is shorter than a header. Tells a reader how many bytes to fetch before decoding.
pub(super) fn frame_len_at(bytes: &[u8]) -> Option<usize> {
    u32_at(bytes, 0).map(|len| HEADER + len as usize)
}

/// The frame at the start of `bytes`; `None` when `bytes` is empty.
pub(super) fn decode_frame(bytes: &[u8]) -> Result<Option<Frame<'_>>, Error> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let (Some(len), Some(crc)) = (u32_at(bytes, 0), u32_at(bytes, 4)) else {
        return Err(Error::ShortHeader);
    };
    let end = HEADER as u64 + u64::from(len);
    if end > bytes.len() as u64 {
        return Err(Error::ShortBody);
    }
    let end = end as usize;
    let body = &bytes[HEADER..end];
    if frame_crc(len, body) != crc {
        let torn = end == bytes.len() || bytes.iter().all(|b| *b == 0);
        return Err(Error::Crc { torn });
    }
    Ok(Some(Frame { body, len: end }))
}

/// The record at the start of `bytes`; `None` when `bytes` is empty.
pub(super) fn decode_record(bytes: &[u8]) -> Result<Option<RecordAt>, Error> {
    let Some(frame) = decode_frame(bytes)? else {
        return Ok(None);
    };
    let body = frame.body;
    let offset = i64_at(body, 0).ok_or(Error::MalformedRecord)?;
    let key_len = u32_at(body, 8).ok_or(Error::MalformedRecord)? as i32;
    let (key, value_start) = match key_len {
        -1 => (None, RECORD_FIXED),
        n if n >= 0 && RECORD_FIXED + n as usize <= body.len() => {
            (Some(RECORD_FIXED..RECORD_FIXED + n as usize), RECORD_FIXED + n as usize)
        }
        _ => return Err(Error::MalformedRecord),
    };
    if offset < 0 {
        return Err(Error::MalformedRecord);
    }
    // Ranges of `bytes`, not of the body.
    let at = |r: Range<usize>| HEADER + r.start..HEADER + r.end;
    Ok(Some(RecordAt { offset, key: key.map(at), value: at(value_start..body.len()), len: frame.len }))
}

impl GroupEntry<'_> {
    /// Replaces the contents of `out` by the entry's frame.
    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        start_frame(out);
        match self {
            GroupEntry::Commit { group, topic, partition, offset } => {
                out.push(ENTRY_COMMIT);
                put_str(out, group);
                put_str(out, topic);
                out.extend_from_slice(&partition.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
            }
            GroupEntry::DeleteGroup { group } => {
                out.push(ENTRY_DELETE_GROUP);
                put_str(out, group);
            }
            GroupEntry::DeleteTopic { topic } => {
                out.push(ENTRY_DELETE_TOPIC);
                put_str(out, topic);
            }
        }
        finish_frame(out)
    }

    /// The entry in a frame's body; `None` when the body is not an entry (an unknown kind,
    /// missing or extra bytes, a string that is not UTF-8).
    pub(super) fn decode(body: &[u8]) -> Option<GroupEntry<'_>> {
        let mut f = Fields(body);
        let entry = match f.u8()? {
            ENTRY_COMMIT => {
                GroupEntry::Commit { group: f.str()?, topic: f.str()?, partition: f.i32()?, offset: f.i64()? }
            }
            ENTRY_DELETE_GROUP => GroupEntry::DeleteGroup { group: f.str()? },
            ENTRY_DELETE_TOPIC => GroupEntry::DeleteTopic { topic: f.str()? },
            _ => return None,
        };
        f.0.is_empty().then_some(entry)
    }
}

fn frame_crc(len: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// Starts a frame in `out` (cleared); [`finish_frame`] fills in the length and the CRC.
fn start_frame(out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0; HEADER]);
}

fn finish_frame(out: &mut [u8]) -> Result<(), Error> {
    let len = u32::try_from(out.len() - HEADER).map_err(|_| Error::FrameTooLarge)?;
    let crc = frame_crc(len, &out[HEADER..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn i64_at(bytes: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// A reader of an entry body.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))?;
        std::str::from_utf8(self.take(n as usize)?).ok()
    }
}

#[cfg(test)]
mod tests;
