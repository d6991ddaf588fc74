//! Reading records back from segment files: [`FrameReader`] walks a file's frames from a
//! position, a chunk at a time (the scan at start and consumers alike), and [`DiskRead`] serves a
//! consumer the records of one segment from an offset. A disk read is planned under the state
//! lock, with the file opened there (so a segment deleted meanwhile stays readable), and run
//! without it, so that producers do not wait for the disk.
//! Deliberately not here: which segment holds an offset (`segments`), the bytes (`frame`).

use std::{fs::File, io, os::unix::fs::FileExt, path::PathBuf};

use bytes::Bytes;

use super::frame::{self, HEADER};
use crate::queue::{Record, TopicPartition};

/// How much a reader fetches at a time (more when a frame is larger).
const CHUNK: usize = 1024 * 1024;

/// Reads the frames of a file one after the other, from a position up to an end.
pub(super) struct FrameReader<'f> {
    file: &'f File,
    /// Where the next frame starts.
    position: u64,
    /// Where the part of the file to read ends.
    end: u64,
    buf: Bytes,
    /// The file position of `buf[0]`.
    buf_at: u64,
}

/// A record read from a file: its position, and its key and value sliced from the chunk it came
/// in (no copy; the chunk lives as long as one of them does).
pub(super) struct FileRecord {
    pub(super) offset: i64,
    pub(super) position: u64,
    pub(super) key: Option<Bytes>,
    pub(super) value: Bytes,
}

impl<'f> FrameReader<'f> {
    pub(super) fn new(file: &'f File, position: u64, end: u64) -> Self {
        FrameReader { file, position, end, buf: Bytes::new(), buf_at: position }
    }

    /// Where the next frame starts (after damage: where the damage is).
    pub(super) fn position(&self) -> u64 {
        self.position
    }

    /// The next record; `Ok(None)` at the end; `Err` for a frame that does not decode (the
    /// reader stays at it). An I/O error is the outer `Err`.
    pub(super) fn next(&mut self) -> io::Result<Result<Option<FileRecord>, frame::Error>> {
        loop {
            if self.position >= self.end {
                return Ok(Ok(None));
            }
            let rel = (self.position - self.buf_at) as usize;
            let available = self.buf.get(rel..).unwrap_or_default();
            let has_rest = self.buf_at + self.buf.len() as u64 >= self.end;
            let needed = frame::frame_len_at(available).unwrap_or(HEADER);
            if available.len() < needed && !has_rest {
                self.fetch(needed)?;
                continue;
            }
            match frame::decode_record(available) {
                Ok(Some(r)) => {
                    let slice = |range: std::ops::Range<usize>| self.buf.slice(rel + range.start..rel + range.end);
                    let record = FileRecord {
                        offset: r.offset,
                        position: self.position,
                        key: r.key.map(slice),
                        value: slice(r.value),
                    };
                    self.position += r.len as u64;
                    return Ok(Ok(Some(record)));
                }
                Ok(None) => return Ok(Ok(None)),
                Err(e) if has_rest => return Ok(Err(e)),
                // Whether damage is a torn write or a corrupt file depends on what follows it:
                // decide with everything up to the end.
                Err(_) => self.fetch((self.end - self.position) as usize)?,
            }
        }
    }

    /// Reads at least `needed` bytes (up to the end) from the current position.
    fn fetch(&mut self, needed: usize) -> io::Result<()> {
        let want = needed.max(CHUNK).min((self.end - self.position) as usize);
        let mut buf = vec![0; want];
        self.file.read_exact_at(&mut buf, self.position)?;
        self.buf = Bytes::from(buf);
        self.buf_at = self.position;
        Ok(())
    }
}

/// A consumer's read of one segment: the records from `from` until `until` or the segment's
/// end, at most `max`.
pub(super) struct DiskRead {
    pub(super) tp: TopicPartition,
    pub(super) file: File,
    /// The file, for log lines.
    pub(super) path: PathBuf,
    /// Where to start reading: at or before the record at `from`.
    pub(super) position: u64,
    /// The size of the segment when the read was planned.
    pub(super) end: u64,
    pub(super) from: i64,
    /// The records from here on are in memory: the read stops before them.
    pub(super) until: i64,
    /// Where reading goes on when this segment is read to its end: the next segment's base.
    pub(super) after: i64,
    pub(super) max: usize,
}

impl DiskRead {
    /// The records read, and the offset to read next. Damage ends the segment early, with an
    /// ERROR log: the consumer goes on with the next segment.
    pub(super) fn run(self) -> io::Result<(Vec<Record>, i64)> {
        let mut reader = FrameReader::new(&self.file, self.position, self.end);
        let mut out = Vec::new();
        let end_of_segment = self.after.min(self.until);
        loop {
            let record = match reader.next()? {
                Ok(Some(record)) => record,
                Ok(None) => return Ok((out, end_of_segment)),
                Err(e) => {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(path = %self.path.display(), position = reader.position(), reason = e.reason(), "Corrupt queue segment; the rest of it is skipped.");
                    return Ok((out, end_of_segment));
                }
            };
            if record.offset >= self.until {
                return Ok((out, self.until));
            }
            if record.offset < self.from {
                continue;
            }
            let offset = record.offset;
            out.push(Record { tp: self.tp.clone(), offset, key: record.key, value: record.value });
            if out.len() >= self.max {
                return Ok((out, offset + 1));
            }
        }
    }
}
