//! Reading a binary tape backwards from its end, using each record's repeated length.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use super::{BinaryReader, KIND_DROPPED, KIND_FRAME};
use crate::codec::{TapeItem, decode_dropped, decode_frame};
use crate::crc32::Crc32;
use crate::record::{MAX_PAYLOAD, RECORD_OVERHEAD};
use crate::{Error, Position, Result, TapeFrame, TapeHeader};

/// Reads a binary tape's items from the last to the first, one record at a time, without
/// reading the rest of the file. A torn tail is skipped: the walk starts at the end of the
/// last intact record (found by a forward pass only when the tail is torn). A record that
/// fails its CRC is reported and skipped; lengths that disagree end the walk with an error.
#[derive(Debug)]
pub struct ReverseReader {
    file: File,
    source: Arc<str>,
    header: TapeHeader,
    data_start: u64,
    /// The end of the next record to read.
    pos: u64,
    buf: Vec<u8>,
    done: bool,
}

impl ReverseReader {
    /// Opens the tape at `path` for reading backwards.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let forward = BinaryReader::open(path)?;
        let header = forward.header().clone();
        let data_start = forward.next_offset();
        let source: Arc<str> = path.display().to_string().into();
        let file = File::open(path).map_err(|e| io(&source, e))?;
        let len = file.metadata().map_err(|e| io(&source, e))?.len();
        let mut reader = Self {
            file,
            source,
            header,
            data_start,
            pos: len,
            buf: Vec::new(),
            done: false,
        };
        if len > data_start && !matches!(reader.read_before(len), Ok((_, Ok(_)))) {
            reader.pos = intact_end(forward);
        }
        Ok(reader)
    }

    /// The tape's header.
    pub fn header(&self) -> &TapeHeader {
        &self.header
    }

    /// Reads the record that ends at `end`; returns its start and its item, or the error
    /// of a record whose framing holds but whose CRC or contents do not (it is skipped).
    /// An outer error means the framing is lost: the walk cannot go on.
    fn read_before(&mut self, end: u64) -> Result<(u64, Result<TapeItem>)> {
        let at = Position::new(self.source.clone(), 0, end);
        let malformed = |reason: String| Error::Malformed {
            at: at.clone(),
            reason,
        };
        if end < self.data_start + RECORD_OVERHEAD {
            return Err(malformed("a record ends here but is too short".to_owned()));
        }
        let mut len = [0u8; 4];
        self.file
            .seek(SeekFrom::Start(end - 4))
            .and_then(|_| self.file.read_exact(&mut len))
            .map_err(|e| io(&self.source, e))?;
        let len = u32::from_le_bytes(len);
        let total = u64::from(len) + RECORD_OVERHEAD;
        if len > MAX_PAYLOAD || end - self.data_start < total {
            return Err(malformed(format!(
                "trailing record length {len} is impossible"
            )));
        }
        let start = end - total;
        self.buf.resize(total as usize, 0);
        self.file
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.file.read_exact(&mut self.buf))
            .map_err(|e| io(&self.source, e))?;
        let b = &self.buf;
        let lead = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let at = Position::new(self.source.clone(), 0, start);
        let malformed = |reason: String| Error::Malformed {
            at: at.clone(),
            reason,
        };
        if lead != len {
            return Err(malformed(format!(
                "record framing broken: length {lead} at the start, {len} at the end"
            )));
        }
        let kind = b[4];
        let payload = &b[5..5 + len as usize];
        let c = &b[5 + len as usize..];
        let stored = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let mut crc = Crc32::new();
        crc.update(&[kind]);
        crc.update(payload);
        if crc.finish() != stored {
            let reason = format!("record CRC mismatch (kind {kind}, {len} bytes); record skipped");
            return Ok((start, Err(malformed(reason))));
        }
        let item = match kind {
            KIND_FRAME => decode_frame(payload).map(TapeItem::Frame),
            KIND_DROPPED => decode_dropped(payload),
            other => Err(format!("unknown record kind {other}")),
        };
        Ok((start, item.map_err(malformed)))
    }

    /// The last `n` frames, oldest first.
    pub fn last_frames(mut self, n: usize) -> Result<Vec<TapeFrame>> {
        let mut frames = Vec::with_capacity(n.min(1024));
        while frames.len() < n {
            match self.next() {
                None => break,
                Some(Ok(TapeItem::Frame(f))) => frames.push(f),
                Some(Ok(TapeItem::Dropped { .. })) => {}
                Some(Err(e)) => return Err(e),
            }
        }
        frames.reverse();
        Ok(frames)
    }
}

impl Iterator for ReverseReader {
    type Item = Result<TapeItem>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos <= self.data_start {
            return None;
        }
        match self.read_before(self.pos) {
            Ok((start, item)) => {
                self.pos = start;
                Some(item)
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The end of the last intact record, found by reading forward.
fn intact_end<R: Read>(mut reader: BinaryReader<R>) -> u64 {
    let mut end = reader.next_offset();
    while let Some(item) = reader.next_item() {
        match item {
            Ok(_) => end = reader.next_offset(),
            Err(Error::Malformed { .. }) if !reader.records.done => end = reader.next_offset(),
            Err(_) => break,
        }
    }
    end
}

fn io(source: &str, e: std::io::Error) -> Error {
    Error::Io {
        context: format!("reading {source}"),
        source: e,
    }
}
