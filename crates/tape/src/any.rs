//! Tapes of any format: detecting the format, reading and writing through one API.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::codec::TapeItem;
use crate::{
    BinaryReader, BinaryWriter, Error, JsonlReader, JsonlWriter, Lz4Reader, Lz4Writer, Position,
    Result, TapeFrame, TapeHeader,
};

/// A tape format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TapeFormat {
    /// One JSON object per line (`.jsonl`).
    Jsonl,
    /// CRC-checked binary records, readable backwards (`.sctape`).
    Binary,
    /// lz4-compressed blocks with a footer index (`.sctape.lz4`).
    Lz4,
}

impl TapeFormat {
    /// Every format.
    pub const ALL: [Self; 3] = [Self::Jsonl, Self::Binary, Self::Lz4];

    /// The file name extension, without the leading dot: `jsonl`, `sctape` or
    /// `sctape.lz4`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Binary => "sctape",
            Self::Lz4 => "sctape.lz4",
        }
    }

    /// The format a file name's extension names (`x.jsonl`, `x.sctape`, `x.sctape.lz4` or
    /// `x.lz4`), if any.
    pub fn from_extension(path: impl AsRef<Path>) -> Option<Self> {
        let name = path.as_ref().file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".lz4") {
            Some(Self::Lz4)
        } else if name.ends_with(".sctape") {
            Some(Self::Binary)
        } else if name.ends_with(".jsonl") {
            Some(Self::Jsonl)
        } else {
            None
        }
    }

    /// The name used on the command line: `jsonl`, `binary` or `lz4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Binary => "binary",
            Self::Lz4 => "lz4",
        }
    }

    /// Parses a name written by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The version of this format this build writes, and the newest it reads.
    pub fn version(self) -> u32 {
        match self {
            Self::Jsonl => crate::JSONL_VERSION,
            Self::Binary => crate::BINARY_VERSION,
            Self::Lz4 => crate::LZ4_VERSION,
        }
    }

    /// The format of a file that starts with `start` (at least 8 bytes), if it is a tape.
    pub fn detect(start: &[u8]) -> Option<Self> {
        if start.starts_with(&crate::binary::MAGIC) {
            Some(Self::Binary)
        } else if start.starts_with(&crate::lz4::MAGIC) {
            Some(Self::Lz4)
        } else if start.starts_with(b"{\"shadowcat_tape\"") || start.first() == Some(&b'{') {
            Some(Self::Jsonl)
        } else {
            None
        }
    }
}

impl std::fmt::Display for TapeFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
enum Inner {
    Jsonl(JsonlReader<BufReader<File>>),
    Binary(BinaryReader<BufReader<File>>),
    Lz4(Lz4Reader<BufReader<File>>),
}

/// A tape of any format, read forward in constant memory. As an iterator it yields frames
/// (dropped markers are counted, [`dropped`](Self::dropped)); [`next_item`](Self::next_item)
/// yields both.
#[derive(Debug)]
pub struct TapeReader {
    inner: Inner,
}

/// Opens the tape at `path`, detecting its format from its first bytes, and reads its
/// header.
///
/// ```
/// use shadowcat_tape::{Direction, Edge, TapeFormat, TapeFrame, TapeHeader, TapeWriter, open};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join(format!("t.{}", TapeFormat::Lz4.extension()));
/// let frame = TapeFrame::new(7, Direction::ClientToServer, Edge::Client, &b"{}"[..]);
/// let mut writer = TapeWriter::create(&path, TapeFormat::Lz4, &TapeHeader::from_unix_ns("t", 0))?;
/// writer.write_frame(&frame)?;
/// writer.write_dropped(3, 9)?;
/// writer.finish()?;
///
/// let mut reader = open(&path)?;
/// assert_eq!(reader.format(), TapeFormat::Lz4);
/// assert_eq!(reader.next().expect("one frame")?, frame);
/// assert!(reader.next().is_none());
/// assert_eq!(reader.dropped(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open(path: impl AsRef<Path>) -> Result<TapeReader> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(|source| Error::Io {
        context: format!("opening {name}"),
        source,
    })?;
    let mut start = [0u8; 17];
    let n = crate::record::read_full(&mut file, &mut start).map_err(|source| Error::Io {
        context: format!("reading {name}"),
        source,
    })?;
    let format = TapeFormat::detect(&start[..n]).ok_or_else(|| Error::Malformed {
        at: Position::new(name.clone(), 1, 0),
        reason: "not a Shadowcat tape: unknown magic bytes".to_owned(),
    })?;
    drop(file);
    let inner = match format {
        TapeFormat::Jsonl => Inner::Jsonl(JsonlReader::open(path)?),
        TapeFormat::Binary => Inner::Binary(BinaryReader::open(path)?),
        TapeFormat::Lz4 => Inner::Lz4(Lz4Reader::open(path)?),
    };
    Ok(TapeReader { inner })
}

impl TapeReader {
    /// The tape's header.
    pub fn header(&self) -> &TapeHeader {
        match &self.inner {
            Inner::Jsonl(r) => r.header(),
            Inner::Binary(r) => r.header(),
            Inner::Lz4(r) => r.header(),
        }
    }

    /// The tape's format.
    pub fn format(&self) -> TapeFormat {
        match &self.inner {
            Inner::Jsonl(_) => TapeFormat::Jsonl,
            Inner::Binary(_) => TapeFormat::Binary,
            Inner::Lz4(_) => TapeFormat::Lz4,
        }
    }

    /// The format version the tape was written in.
    pub fn version(&self) -> u32 {
        match &self.inner {
            Inner::Jsonl(r) => r.version(),
            Inner::Binary(r) => r.version(),
            Inner::Lz4(r) => r.version(),
        }
    }

    /// Frames the recorder dropped, summed over the markers read so far.
    pub fn dropped(&self) -> u64 {
        match &self.inner {
            Inner::Jsonl(r) => r.dropped(),
            Inner::Binary(r) => r.dropped(),
            Inner::Lz4(r) => r.dropped(),
        }
    }

    /// Bytes read so far (after reading to the end: the intact length of the file, the
    /// trailer of an lz4 tape excluded).
    pub fn next_offset(&self) -> u64 {
        match &self.inner {
            Inner::Jsonl(r) => r.next_position().byte,
            Inner::Binary(r) => r.next_offset(),
            Inner::Lz4(r) => r.next_offset(),
        }
    }

    /// The next frame or dropped marker.
    pub fn next_item(&mut self) -> Option<Result<TapeItem>> {
        match &mut self.inner {
            Inner::Jsonl(r) => r.next_item(),
            Inner::Binary(r) => r.next_item(),
            Inner::Lz4(r) => r.next_item(),
        }
    }

    /// Whether an lz4 tape's footer was read (known after the last item); `true` for the
    /// other formats, which have none.
    pub fn is_complete(&self) -> bool {
        match &self.inner {
            Inner::Lz4(r) => r.has_footer(),
            _ => true,
        }
    }
}

impl Iterator for TapeReader {
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

#[derive(Debug)]
enum WriterInner {
    Jsonl(JsonlWriter<File>),
    Binary(BinaryWriter<File>),
    Lz4(Lz4Writer<File>),
}

/// Writes a tape file in any format.
#[derive(Debug)]
pub struct TapeWriter {
    inner: WriterInner,
}

impl TapeWriter {
    /// Creates (or truncates) the file at `path` and writes `header` in `format` (flushed to
    /// the file before this returns).
    pub fn create(path: impl AsRef<Path>, format: TapeFormat, header: &TapeHeader) -> Result<Self> {
        let path = path.as_ref();
        let inner = match format {
            TapeFormat::Jsonl => {
                let mut w = JsonlWriter::create(path)?;
                w.write_header(header)?;
                WriterInner::Jsonl(w)
            }
            TapeFormat::Binary => WriterInner::Binary(BinaryWriter::create(path, header)?),
            TapeFormat::Lz4 => WriterInner::Lz4(Lz4Writer::create(path, header)?),
        };
        let mut writer = Self { inner };
        // The header reaches the file at once: a tape killed before its first flush opens.
        writer.flush()?;
        Ok(writer)
    }

    /// The format being written.
    pub fn format(&self) -> TapeFormat {
        match &self.inner {
            WriterInner::Jsonl(_) => TapeFormat::Jsonl,
            WriterInner::Binary(_) => TapeFormat::Binary,
            WriterInner::Lz4(_) => TapeFormat::Lz4,
        }
    }

    /// Writes one frame (buffered).
    pub fn write_frame(&mut self, frame: &TapeFrame) -> Result<()> {
        match &mut self.inner {
            WriterInner::Jsonl(w) => w.write_frame(frame),
            WriterInner::Binary(w) => w.write_frame(frame),
            WriterInner::Lz4(w) => w.write_frame(frame),
        }
    }

    /// Writes one frame whose message a validating JSON parser has accepted as one JSON
    /// value (a parsed `shadowcat_mcp::Message`'s bytes): the JSONL writer skips its own
    /// check of the message (see [`JsonlWriter::write_parsed_frame`]); the binary formats
    /// store bytes as they are either way.
    pub fn write_parsed_frame(&mut self, frame: &TapeFrame) -> Result<()> {
        match &mut self.inner {
            WriterInner::Jsonl(w) => w.write_parsed_frame(frame),
            WriterInner::Binary(w) => w.write_frame(frame),
            WriterInner::Lz4(w) => w.write_frame(frame),
        }
    }

    /// Writes a marker: `count` frames were dropped by the recorder at `offset_ns`.
    pub fn write_dropped(&mut self, count: u64, offset_ns: u64) -> Result<()> {
        match &mut self.inner {
            WriterInner::Jsonl(w) => w.write_dropped(count, offset_ns),
            WriterInner::Binary(w) => w.write_dropped(count, offset_ns),
            WriterInner::Lz4(w) => w.write_dropped(count, offset_ns),
        }
    }

    /// Writes a frame or a marker.
    pub fn write_item(&mut self, item: &TapeItem) -> Result<()> {
        match item {
            TapeItem::Frame(frame) => self.write_frame(frame),
            TapeItem::Dropped { count, offset_ns } => self.write_dropped(*count, *offset_ns),
        }
    }

    /// Hands everything written so far to the operating system: once it returns, the
    /// frames survive the process being killed (an lz4 tape closes its current block).
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.inner {
            WriterInner::Jsonl(w) => w.flush(),
            WriterInner::Binary(w) => w.flush(),
            WriterInner::Lz4(w) => w.flush(),
        }
    }

    /// Like [`flush`](Self::flush), then `fsync`s the file's data, so the frames also
    /// survive a power loss.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        let file = match &self.inner {
            WriterInner::Jsonl(w) => w.get_ref(),
            WriterInner::Binary(w) => w.get_ref(),
            WriterInner::Lz4(w) => w.get_ref(),
        };
        file.sync_data().map_err(|source| Error::Io {
            context: "syncing a tape".to_owned(),
            source,
        })
    }

    /// Writes what is left (an lz4 tape's last block, footer and trailer), flushes and
    /// closes the file.
    pub fn finish(self) -> Result<()> {
        match self.inner {
            WriterInner::Jsonl(w) => w.into_inner().map(drop),
            WriterInner::Binary(w) => w.into_inner().map(drop),
            WriterInner::Lz4(w) => w.finish().map(drop),
        }
    }
}
