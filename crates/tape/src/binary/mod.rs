//! The binary framed tape format: a file header, then one CRC-checked record per frame or
//! dropped marker, each record's length repeated after it so the file can be read
//! backwards. Specified in `docs/tape-format.md`.

mod reverse;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use crate::codec::{
    TapeItem, decode_dropped, decode_frame, encode_dropped, encode_frame, encode_header,
};
use crate::record::{Next, RecordReader, push_file_header, push_record};
use crate::{Error, Result, TapeFrame, TapeHeader};

pub use reverse::ReverseReader;

/// The first 8 bytes of a binary tape.
pub(crate) const MAGIC: [u8; 8] = *b"\x89SCTAPE\n";

/// The binary format version this build writes, and the newest it reads.
pub const VERSION: u32 = 1;

/// The record kind of a frame.
pub(crate) const KIND_FRAME: u8 = 1;
/// The record kind of a dropped marker.
pub(crate) const KIND_DROPPED: u8 = 2;

/// Writes a binary tape (format version [`BINARY_VERSION`](crate::BINARY_VERSION)) to any
/// [`Write`], buffered. Each record is handed to the buffer whole; after
/// [`flush`](Self::flush) every record written is in the file, and a crash between flushes
/// leaves at most a torn last record.
#[derive(Debug)]
pub struct BinaryWriter<W: Write> {
    inner: BufWriter<W>,
    name: String,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl BinaryWriter<File> {
    /// Creates (or truncates) the file at `path` and writes the header.
    pub fn create(path: impl AsRef<Path>, header: &TapeHeader) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::create(path).map_err(|source| Error::Io {
            context: format!("creating {name}"),
            source,
        })?;
        Self::new(file, header, name)
    }
}

impl<W: Write> BinaryWriter<W> {
    /// Writes the header of a new tape to `inner`; errors call it `name`.
    pub fn new(inner: W, header: &TapeHeader, name: impl Into<String>) -> Result<Self> {
        let mut writer = Self {
            inner: BufWriter::with_capacity(64 * 1024, inner),
            name: name.into(),
            buf: Vec::with_capacity(1024),
            scratch: Vec::with_capacity(1024),
        };
        push_file_header(&mut writer.buf, &MAGIC, VERSION, &encode_header(header));
        writer.write_buf()?;
        Ok(writer)
    }

    /// A writer that appends records to a tape whose header is already written.
    pub fn append(inner: W, name: impl Into<String>) -> Self {
        Self {
            inner: BufWriter::with_capacity(64 * 1024, inner),
            name: name.into(),
            buf: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Writes one frame record.
    pub fn write_frame(&mut self, frame: &TapeFrame) -> Result<()> {
        self.scratch.clear();
        encode_frame(frame, &mut self.scratch);
        push_record(&mut self.buf, KIND_FRAME, &self.scratch);
        self.write_buf()
    }

    /// Writes a marker: `count` frames were dropped by the recorder at `offset_ns`.
    pub fn write_dropped(&mut self, count: u64, offset_ns: u64) -> Result<()> {
        self.scratch.clear();
        encode_dropped(count, offset_ns, &mut self.scratch);
        push_record(&mut self.buf, KIND_DROPPED, &self.scratch);
        self.write_buf()
    }

    /// Writes everything buffered to the underlying writer and flushes it.
    pub fn flush(&mut self) -> Result<()> {
        let result = self.inner.flush();
        result.map_err(|e| self.io_error(e))
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        self.inner.get_ref()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> Result<W> {
        let name = self.name;
        self.inner.into_inner().map_err(|e| Error::Io {
            context: format!("writing {name}"),
            source: e.into_error(),
        })
    }

    fn write_buf(&mut self) -> Result<()> {
        let result = self.inner.write_all(&self.buf);
        self.buf.clear();
        result.map_err(|e| self.io_error(e))
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Io {
            context: format!("writing {}", self.name),
            source,
        }
    }
}

/// Reads a binary tape from any [`Read`], one record at a time (memory is bounded by the
/// largest record). As an iterator it yields frames; dropped markers are counted
/// ([`dropped`](Self::dropped)), or seen with [`next_item`](Self::next_item).
///
/// A record whose CRC does not match is reported as [`Error::Malformed`] with its byte
/// offset and skipped; a torn tail ([`Error::TornTail`]) or broken framing ends the tape.
#[derive(Debug)]
pub struct BinaryReader<R> {
    records: RecordReader<R>,
    header: TapeHeader,
    version: u32,
    dropped: u64,
}

impl BinaryReader<BufReader<File>> {
    /// Opens the tape at `path` and reads its header; errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let (file, name) = crate::error::open_tape_file(path.as_ref())?;
        Self::named(file, name)
    }
}

impl<R: Read> BinaryReader<R> {
    /// Reads the header of a tape; errors call it `<tape>`.
    pub fn new(inner: R) -> Result<Self> {
        Self::named(inner, "<tape>")
    }

    /// Reads the header of a tape; errors call it `source`.
    pub fn named(inner: R, source: impl Into<Arc<str>>) -> Result<Self> {
        let (records, header, version) =
            RecordReader::open(inner, source.into(), &MAGIC, VERSION, "binary")?;
        Ok(Self {
            records,
            header,
            version,
            dropped: 0,
        })
    }

    /// The tape's header.
    pub fn header(&self) -> &TapeHeader {
        &self.header
    }

    /// The format version the tape was written in.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Frames the recorder dropped, summed over the markers read so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The byte offset of the next record: after reading to the end, the length of the
    /// intact part of the file.
    pub fn next_offset(&self) -> u64 {
        self.records.position().byte
    }

    /// The next frame or dropped marker.
    pub fn next_item(&mut self) -> Option<Result<TapeItem>> {
        let (kind, at) = match self.records.next() {
            Ok(Next::End) => return None,
            Ok(Next::Record { kind, at }) => (kind, at),
            Err(e) => return Some(Err(e)),
        };
        let payload = self.records.payload();
        let item = match kind {
            KIND_FRAME => decode_frame(payload).map(TapeItem::Frame),
            KIND_DROPPED => decode_dropped(payload),
            other => Err(format!("unknown record kind {other}")),
        };
        Some(match item {
            Ok(item) => {
                if let TapeItem::Dropped { count, .. } = item {
                    self.dropped = self.dropped.saturating_add(count);
                }
                Ok(item)
            }
            Err(reason) => Err(Error::Malformed { at, reason }),
        })
    }
}

impl<R: Read> Iterator for BinaryReader<R> {
    type Item = Result<TapeFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_item()? {
                Ok(TapeItem::Frame(frame)) => return Some(Ok(frame)),
                Ok(TapeItem::Dropped { .. }) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
