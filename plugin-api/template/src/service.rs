//! The IO: the file of one started instance, opened for appending. A batch's lines go out in one
//! write and are flushed (and, when configured, synced to disk) before anyone calls them
//! delivered. A write that fails half-way may leave some lines in the file; they are reported as
//! not delivered and written again on retry (at least once, never lost).

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

/// An open output file.
#[derive(Debug)]
pub struct Sink {
    file: File,
    path: PathBuf,
    sync: bool,
}

impl Sink {
    /// Opens `path` for appending, creating it when missing; `sync` = fsync after every batch.
    pub fn open(path: &Path, sync: bool) -> io::Result<Sink> {
        Ok(Sink { file: append(path)?, path: path.to_path_buf(), sync })
    }

    /// The connection check: opens `path` for appending (creating it, empty, when missing) and
    /// closes it again.
    pub fn probe(path: &Path) -> io::Result<()> {
        append(path).map(drop)
    }

    /// Appends `lines` in one write, then flushes (and syncs when configured).
    pub fn write_batch(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        self.file.write_all(&lines.concat())?;
        self.file.flush()?;
        if self.sync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}
