//! The shape of a persistent queue's directory, as pure functions: the names of topic
//! directories and segment files, the text of a topic's `meta` file, and the segment size.
//! No I/O here: `store` and `segments` create, read and delete the files.
//!
//! A `meta` file holds `format=1`, `partitions=N`, `compacted=true|false` and the topic's
//! cleanup settings (`retention.ms`, `retention.bytes`, `segment.bytes`). Older files have no
//! cleanup settings (Kafka's defaults apply), and older versions ignore them: the format stays 1.

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use super::retention::Retention;

/// The `format` a `meta` file names; the only one this version reads.
const META_FORMAT: &str = "1";

/// The segment size of a queue whose partitions keep at most `max_partition_bytes`:
/// a quarter of the bound, within 1 MiB..=64 MiB.
pub(super) fn roll_bytes(max_partition_bytes: usize) -> u64 {
    const MIB: u64 = 1024 * 1024;
    (max_partition_bytes as u64 / 4).clamp(MIB, 64 * MIB)
}

/// The directory name of a topic: `[A-Za-z0-9._-]` kept, every other byte as `%XX`.
pub(super) fn encode_topic(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}

/// The topic name of a directory name made by [`encode_topic`] (`None` for any other name).
pub(super) fn decode_topic(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    // Only the canonical form, so that two directories never mean the same topic.
    (!name.is_empty() && encode_topic(&name) == encoded).then_some(name)
}

/// The file name of the segment whose first offset is `base`.
pub(super) fn segment_name(base: i64) -> String {
    format!("{base:020}.log")
}

pub(super) fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(segment_name(base))
}

/// The base offset of a file name made by [`segment_name`] (`None` for any other name).
pub(super) fn parse_segment_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a topic's `meta` file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TopicMeta {
    pub(super) partitions: i32,
    pub(super) compacted: bool,
    pub(super) retention: Retention,
}

/// The text of a topic's `meta` file.
pub(super) fn meta_text(meta: &TopicMeta) -> String {
    let TopicMeta { partitions, compacted, retention } = meta;
    format!(
        "# Tributary embedded queue topic.\nformat={META_FORMAT}\npartitions={partitions}\ncompacted={compacted}\n{}",
        retention.meta_lines()
    )
}

/// What a meta file's text says.
pub(super) fn parse_meta(text: &str) -> Result<TopicMeta, String> {
    let mut values = HashMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (k, v) = line.split_once('=').ok_or_else(|| format!("line '{line}' is not key=value"))?;
        values.insert(k.trim(), v.trim());
    }
    match values.get("format") {
        Some(&META_FORMAT) => {}
        other => return Err(format!("unsupported format {other:?}")),
    }
    let partitions = values
        .get("partitions")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .ok_or("partitions missing or out of range")?;
    let compacted = match values.get("compacted") {
        Some(&"true") => true,
        Some(&"false") => false,
        other => return Err(format!("compacted is {other:?}, not true or false")),
    };
    let retention = Retention::from_configs(|k| values.get(k).copied())?;
    Ok(TopicMeta { partitions, compacted, retention })
}

#[cfg(test)]
mod tests;
