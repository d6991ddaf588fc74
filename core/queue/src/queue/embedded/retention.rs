//! Which records of a partition may go, as pure functions: a topic's cleanup settings
//! ([`Retention`], from its properties with Kafka's names and defaults) and the decision
//! ([`plan`]) which of a partition's oldest segments are deleted and whether its active segment
//! is first closed so that it can go too.
//! No I/O, no locks, no clock: `reclaim` gathers the facts, calls [`plan`] and applies it.
//!
//! A segment goes when every consumer group that committed an offset on the partition has
//! committed past its last record, when its newest record is older than `retention.ms`, or when
//! the segments after it still hold `retention.bytes` (Kafka's rule); always oldest first.
//! Compacted topics never go through here: they keep the latest record per key.

use std::collections::BTreeMap;

/// The active segment of a partition whose every record is committed is closed (and deleted)
/// once it holds this much, so a drained partition keeps at most this on disk; below it, the
/// file is kept rather than replaced at every commit.
pub(super) const COMMITTED_ROLL_MIN: u64 = 64 * 1024;

/// Kafka's default `retention.ms` (`log.retention.hours=168`): seven days.
const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// A topic's cleanup settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Retention {
    /// `retention.ms`: a segment whose newest record is older goes; `None` (-1) keeps it.
    pub(super) ms: Option<i64>,
    /// `retention.bytes`: the oldest segments go while the rest still hold this much; `None` (-1,
    /// Kafka's default) sets no limit.
    pub(super) bytes: Option<u64>,
    /// `segment.bytes`: the size at which a new segment is started; `None`: the queue's default.
    pub(super) segment_bytes: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { ms: Some(DEFAULT_RETENTION_MS), bytes: None, segment_bytes: None }
    }
}

impl Retention {
    /// The settings among a topic's properties (or the lines of its `meta` file); a missing key
    /// takes Kafka's default. Fails on a value that is not a number Kafka would take.
    pub(super) fn from_configs<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Retention, String> {
        let number = |key: &str| -> Result<Option<i64>, String> {
            get(key).map(|v| v.trim().parse::<i64>().map_err(|_| format!("{key} '{v}' is not a number"))).transpose()
        };
        // -1 is Kafka's "no limit"; a missing key takes the default.
        let limit = |key: &str, default: Option<i64>| match number(key)? {
            None => Ok(default),
            Some(-1) => Ok(None),
            Some(v) if v >= 0 => Ok(Some(v)),
            Some(v) => Err(format!("{key} {v} is neither -1 nor positive")),
        };
        let segment_bytes = match number("segment.bytes")? {
            Some(b) if b > 0 => Some(b as u64),
            Some(b) => return Err(format!("segment.bytes {b} is not positive")),
            None => None,
        };
        Ok(Retention {
            ms: limit("retention.ms", Some(DEFAULT_RETENTION_MS))?,
            bytes: limit("retention.bytes", None)?.map(|b| b as u64),
            segment_bytes,
        })
    }

    /// The settings of a topic's properties map.
    pub(super) fn from_map(configs: &BTreeMap<String, String>) -> Result<Retention, String> {
        Retention::from_configs(|k| configs.get(k).map(String::as_str))
    }

    /// The segment size of a partition: `segment.bytes`, at most `default` (the queue's size,
    /// derived from the partition bound, so that a full partition holds several segments).
    pub(super) fn roll_bytes(&self, default: u64) -> u64 {
        self.segment_bytes.map_or(default, |b| b.min(default))
    }

    /// `key=value` lines for a topic's `meta` file; [`Retention::from_configs`] reads them back.
    pub(super) fn meta_lines(&self) -> String {
        let or_unlimited = |v: Option<i64>| v.unwrap_or(-1);
        let mut text = format!(
            "retention.ms={}\nretention.bytes={}\n",
            or_unlimited(self.ms),
            or_unlimited(self.bytes.map(|b| b as i64))
        );
        if let Some(b) = self.segment_bytes {
            text.push_str(&format!("segment.bytes={b}\n"));
        }
        text
    }
}

/// What the cleanup needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentFacts {
    /// The offset of its first record (or of the next record, for an empty active segment).
    pub(super) base: i64,
    /// Its size in bytes (frames).
    pub(super) bytes: u64,
    /// When its newest record was written (ms since the epoch).
    pub(super) last_write_ms: i64,
}

/// The partition as the cleanup sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Partition<'a> {
    /// Its segments, oldest first; the last is the active one (never empty).
    pub(super) segments: &'a [SegmentFacts],
    /// The offset the next record gets.
    pub(super) next_offset: i64,
    /// The smallest offset committed by the groups that committed one; `None` when none did.
    pub(super) committed: Option<i64>,
    /// The producer waits for room: close the active segment when every record in it is
    /// committed, whatever its size.
    pub(super) pressed: bool,
}

/// What to do with a partition's segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Plan {
    /// Close the active segment first (start an empty one at the next offset).
    pub(super) roll: bool,
    /// Then delete this many segments, oldest first (never the active one).
    pub(super) delete: usize,
}

/// Which segments go now (see the module documentation).
pub(super) fn plan(p: Partition<'_>, retention: &Retention, now_ms: i64) -> Plan {
    let Some((active, _)) = p.segments.split_last() else {
        return Plan::default();
    };
    let expired = |s: &SegmentFacts| retention.ms.is_some_and(|ms| s.last_write_ms < now_ms.saturating_sub(ms));
    let all_committed = p.committed.is_some_and(|c| c >= p.next_offset);
    let roll =
        active.bytes > 0 && ((all_committed && (p.pressed || active.bytes >= COMMITTED_ROLL_MIN)) || expired(active));
    // The segments that may go: all but the active one, which, once closed, may go too.
    let closed = if roll { p.segments.len() } else { p.segments.len() - 1 };
    let mut left: u64 = p.segments.iter().map(|s| s.bytes).sum();
    let mut delete = 0;
    for (i, segment) in p.segments[..closed].iter().enumerate() {
        let end = p.segments.get(i + 1).map_or(p.next_offset, |s| s.base);
        let consumed = p.committed.is_some_and(|c| end <= c);
        let too_large = retention.bytes.is_some_and(|b| left - segment.bytes >= b);
        if !(consumed || expired(segment) || too_large) {
            break;
        }
        left -= segment.bytes;
        delete += 1;
    }
    Plan { roll, delete }
}

#[cfg(test)]
mod tests;
