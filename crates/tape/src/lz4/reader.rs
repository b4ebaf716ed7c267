//! Reading lz4 tapes forward, block by block.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::{KIND_BLOCK, KIND_FOOTER, MAGIC, TRAILER_LEN, TRAILER_MAGIC, VERSION};
use crate::binary::{KIND_DROPPED, KIND_FRAME};
use crate::codec::{Cursor, TapeItem, decode_dropped, decode_frame};
use crate::record::{MAX_PAYLOAD, Next, RecordReader};
use crate::{Error, Position, Result, TapeFrame, TapeHeader};

/// Decompresses a block record's payload: `u32 uncompressed length | lz4 block`.
pub(crate) fn decompress(payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut c = Cursor::new(payload);
    let raw_len = c.u32("block length")?;
    let compressed = &payload[4..];
    // lz4 expands at most 255 times; this also bounds what garbage can make us allocate.
    let bound = (compressed.len() as u64)
        .saturating_mul(255)
        .saturating_add(16);
    if raw_len > MAX_PAYLOAD.saturating_mul(2) || u64::from(raw_len) > bound {
        return Err(format!(
            "block: uncompressed length {raw_len} is impossible"
        ));
    }
    let out = lz4_flex::block::decompress(compressed, raw_len as usize)
        .map_err(|e| format!("block: lz4: {e}"))?;
    if out.len() != raw_len as usize {
        return Err(format!(
            "block: {} bytes decompressed, {raw_len} declared",
            out.len()
        ));
    }
    Ok(out)
}

/// Splits a decompressed block into its items: `u32 len | u8 kind | payload`.
pub(crate) fn next_in_block(block: &[u8], pos: &mut usize) -> Option<Result<TapeItem, String>> {
    if *pos >= block.len() {
        return None;
    }
    let mut c = Cursor::new(&block[*pos..]);
    let item = (|| {
        let len = c.u32("item length")?;
        let kind = c.u8("item kind")?;
        let payload = c.take(len as usize, "item")?;
        match kind {
            KIND_FRAME => decode_frame(payload).map(TapeItem::Frame),
            KIND_DROPPED => decode_dropped(payload),
            other => Err(format!("unknown item kind {other}")),
        }
    })();
    match item {
        Ok(item) => {
            *pos += c.pos();
            Some(Ok(item))
        }
        Err(e) => {
            *pos = block.len();
            Some(Err(e))
        }
    }
}

/// Reads an lz4 tape from any [`Read`], one block at a time: memory is bounded by the
/// largest block, whatever the tape's size. As an iterator it yields frames; dropped
/// markers are counted ([`dropped`](Self::dropped)) or seen with
/// [`next_item`](Self::next_item).
///
/// A tape without its footer (the recorder was killed) reads block by block up to its torn
/// tail; [`has_footer`](Self::has_footer) tells, after the last item, whether the footer
/// and trailer were there.
#[derive(Debug)]
pub struct Lz4Reader<R> {
    records: RecordReader<R>,
    header: TapeHeader,
    version: u32,
    block: Vec<u8>,
    block_at: Option<Position>,
    pos: usize,
    dropped: u64,
    footer: bool,
}

impl Lz4Reader<BufReader<File>> {
    /// Opens the tape at `path` and reads its header; errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let (file, name) = crate::error::open_tape_file(path.as_ref())?;
        Self::named(file, name)
    }
}

impl<R: Read> Lz4Reader<R> {
    /// Reads the header of a tape; errors call it `<tape>`.
    pub fn new(inner: R) -> Result<Self> {
        Self::named(inner, "<tape>")
    }

    /// Reads the header of a tape; errors call it `source`.
    pub fn named(inner: R, source: impl Into<Arc<str>>) -> Result<Self> {
        let (records, header, version) =
            RecordReader::open(inner, source.into(), &MAGIC, VERSION, "lz4")?;
        Ok(Self {
            records,
            header,
            version,
            block: Vec::new(),
            block_at: None,
            pos: 0,
            dropped: 0,
            footer: false,
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

    /// Whether the footer index and trailer were read (known after the last item).
    pub fn has_footer(&self) -> bool {
        self.footer
    }

    /// The byte offset of the next record: after reading to the end, the file's length.
    pub fn next_offset(&self) -> u64 {
        self.records.position().byte
    }

    /// The next frame or dropped marker.
    pub fn next_item(&mut self) -> Option<Result<TapeItem>> {
        loop {
            if let Some(item) = next_in_block(&self.block, &mut self.pos) {
                return Some(match item {
                    Ok(item) => {
                        if let TapeItem::Dropped { count, .. } = item {
                            self.dropped = self.dropped.saturating_add(count);
                        }
                        Ok(item)
                    }
                    Err(reason) => Err(Error::Malformed {
                        at: self
                            .block_at
                            .clone()
                            .unwrap_or_else(|| self.records.position()),
                        reason,
                    }),
                });
            }
            self.block.clear();
            self.pos = 0;
            let (kind, at) = match self.records.next() {
                Ok(Next::End) => return None,
                Ok(Next::Record { kind, at }) => (kind, at),
                Err(e) => return Some(Err(e)),
            };
            match kind {
                KIND_BLOCK => match decompress(self.records.payload()) {
                    Ok(block) => {
                        self.block = block;
                        self.block_at = Some(at);
                    }
                    Err(reason) => return Some(Err(Error::Malformed { at, reason })),
                },
                KIND_FOOTER => return self.read_trailer(at),
                other => {
                    let reason = format!("unknown record kind {other}");
                    return Some(Err(Error::Malformed { at, reason }));
                }
            }
        }
    }

    /// After the footer record: the 16-byte trailer, then the end of the file.
    fn read_trailer(&mut self, footer_at: Position) -> Option<Result<TapeItem>> {
        let mut buf = [0u8; TRAILER_LEN as usize + 1];
        let at = self.records.position();
        self.records.done = true;
        let n = match self.records.read_rest(&mut buf) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        let offset = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
        if n < TRAILER_LEN as usize {
            return Some(Err(Error::TornTail { at, len: n as u64 }));
        }
        if n > TRAILER_LEN as usize || buf[8..16] != TRAILER_MAGIC || offset != footer_at.byte {
            let reason = "bad trailer after the footer".to_owned();
            return Some(Err(Error::Malformed { at, reason }));
        }
        self.footer = true;
        None
    }
}

impl<R: Read> Iterator for Lz4Reader<R> {
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
