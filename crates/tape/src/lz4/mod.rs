//! The lz4 block tape format: a file header, then CRC-checked records each holding an
//! lz4-compressed block of frames, then a footer index and a fixed-size trailer pointing
//! at it. Specified in `docs/tape-format.md`.

mod index;
mod reader;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::codec::{encode_dropped, encode_frame, encode_header, method_and_tool};
use crate::record::{push_file_header, push_record};
use crate::{Error, Result, TapeFrame, TapeHeader};

pub use index::{BlockEntry, Lz4Index};
pub use reader::Lz4Reader;

/// The first 8 bytes of an lz4 tape.
pub(crate) const MAGIC: [u8; 8] = *b"\x89SCTLZ4\n";

/// The last 8 bytes of an lz4 tape that has its footer.
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"SCTLZ4IX";

/// The trailer's size: the footer's offset (u64) and [`TRAILER_MAGIC`].
pub(crate) const TRAILER_LEN: u64 = 16;

/// The lz4 format version this build writes, and the newest it reads.
pub const VERSION: u32 = 1;

/// The record kind of a compressed block.
pub(crate) const KIND_BLOCK: u8 = 0x10;
/// The record kind of the footer index.
pub(crate) const KIND_FOOTER: u8 = 0x11;

/// A block is compressed and written once its uncompressed items reach this size...
pub(crate) const DEFAULT_BLOCK_BYTES: usize = 1 << 20;
/// ...or this many frames and markers.
pub(crate) const DEFAULT_BLOCK_ITEMS: usize = 4096;

/// Writes an lz4 tape (format version [`LZ4_VERSION`](crate::LZ4_VERSION)).
///
/// Frames collect in an uncompressed block in memory; a block is compressed and written
/// when it is full, on [`flush`](Self::flush) and on [`finish`](Self::finish), which also
/// writes the footer index. A crash loses the block being collected (at most the frames
/// since the last flush) and the footer, which `repair` rebuilds.
#[derive(Debug)]
pub struct Lz4Writer<W: Write> {
    inner: BufWriter<W>,
    name: String,
    /// Bytes written so far: the offset of the next record.
    pos: u64,
    block: Vec<u8>,
    stats: BlockEntry,
    index: Vec<BlockEntry>,
    max_bytes: usize,
    max_items: usize,
    record: Vec<u8>,
}

impl Lz4Writer<File> {
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

impl<W: Write> Lz4Writer<W> {
    /// Writes the header of a new tape to `inner`; errors call it `name`.
    pub fn new(inner: W, header: &TapeHeader, name: impl Into<String>) -> Result<Self> {
        let mut writer = Self {
            inner: BufWriter::with_capacity(64 * 1024, inner),
            name: name.into(),
            pos: 0,
            block: Vec::new(),
            stats: BlockEntry::default(),
            index: Vec::new(),
            max_bytes: DEFAULT_BLOCK_BYTES,
            max_items: DEFAULT_BLOCK_ITEMS,
            record: Vec::new(),
        };
        push_file_header(&mut writer.record, &MAGIC, VERSION, &encode_header(header));
        writer.write_record_buf()?;
        Ok(writer)
    }

    /// Sets when a block is full: `bytes` of uncompressed items or `items` items.
    pub fn with_block_limits(mut self, bytes: usize, items: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self.max_items = items.max(1);
        self
    }

    /// Adds a frame to the current block.
    pub fn write_frame(&mut self, frame: &TapeFrame) -> Result<()> {
        let start = self.block.len();
        self.block
            .extend_from_slice(&[0, 0, 0, 0, crate::binary::KIND_FRAME]);
        encode_frame(frame, &mut self.block);
        self.close_item(start);
        let s = &mut self.stats;
        s.note_offset(frame.offset_ns);
        s.frames += 1;
        let (method, tool) = method_and_tool(&frame.message);
        insert(&mut s.methods, method);
        insert(&mut s.tools, tool);
        insert(&mut s.sessions, frame.session_id.clone());
        self.maybe_cut()
    }

    /// Adds a marker: `count` frames were dropped by the recorder at `offset_ns`.
    pub fn write_dropped(&mut self, count: u64, offset_ns: u64) -> Result<()> {
        let start = self.block.len();
        self.block
            .extend_from_slice(&[0, 0, 0, 0, crate::binary::KIND_DROPPED]);
        encode_dropped(count, offset_ns, &mut self.block);
        self.close_item(start);
        self.stats.note_offset(offset_ns);
        self.stats.dropped = self.stats.dropped.saturating_add(count);
        self.maybe_cut()
    }

    /// Compresses and writes the current block (if any) and flushes the file.
    pub fn flush(&mut self) -> Result<()> {
        self.cut()?;
        let result = self.inner.flush();
        result.map_err(|e| self.io_error(e))
    }

    /// Writes the last block, the footer index and the trailer; returns the underlying
    /// writer.
    pub fn finish(mut self) -> Result<W> {
        self.cut()?;
        let footer = index::encode_footer(&self.index);
        let footer_at = self.pos;
        push_record(&mut self.record, KIND_FOOTER, &footer);
        self.record.extend_from_slice(&footer_at.to_le_bytes());
        self.record.extend_from_slice(&TRAILER_MAGIC);
        self.write_record_buf()?;
        let name = self.name;
        self.inner.into_inner().map_err(|e| Error::Io {
            context: format!("writing {name}"),
            source: e.into_error(),
        })
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        self.inner.get_ref()
    }

    /// The index of the blocks written so far.
    pub fn blocks(&self) -> &[BlockEntry] {
        &self.index
    }

    fn close_item(&mut self, start: usize) {
        let len = u32::try_from(self.block.len() - start - 5).unwrap_or(u32::MAX);
        self.block[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.stats.items += 1;
    }

    fn maybe_cut(&mut self) -> Result<()> {
        if self.block.len() >= self.max_bytes || self.stats.items as usize >= self.max_items {
            self.cut()?;
        }
        Ok(())
    }

    /// Compresses the current block and writes it as a record.
    fn cut(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let mut payload = Vec::with_capacity(self.block.len() / 2 + 16);
        let raw_len = u32::try_from(self.block.len()).unwrap_or(u32::MAX);
        payload.extend_from_slice(&raw_len.to_le_bytes());
        payload.extend_from_slice(&lz4_flex::block::compress(&self.block));
        push_record(&mut self.record, KIND_BLOCK, &payload);
        let mut entry = std::mem::take(&mut self.stats);
        entry.offset = self.pos;
        entry.len = self.record.len() as u64;
        self.block.clear();
        self.write_record_buf()?;
        self.index.push(entry);
        Ok(())
    }

    fn write_record_buf(&mut self) -> Result<()> {
        let result = self.inner.write_all(&self.record);
        self.pos += self.record.len() as u64;
        self.record.clear();
        result.map_err(|e| self.io_error(e))
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Io {
            context: format!("writing {}", self.name),
            source,
        }
    }
}

fn insert(set: &mut BTreeSet<String>, value: Option<String>) {
    if let Some(v) = value
        && !set.contains(&v)
    {
        set.insert(v);
    }
}
