//! The footer index of an lz4 tape: per block, where it is, its time range, its counts and
//! the methods, tools and sessions in it.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::reader::{decompress, next_in_block};
use super::{KIND_BLOCK, KIND_FOOTER, MAGIC, TRAILER_LEN, TRAILER_MAGIC, VERSION};
use crate::codec::{TapeItem, method_and_tool};
use crate::crc32::Crc32;
use crate::record::{MAX_PAYLOAD, Next, RecordReader, read_full};
use crate::{Error, Position, Result, TapeHeader};

/// One block in an lz4 tape's footer index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockEntry {
    /// The byte offset of the block's record.
    pub offset: u64,
    /// The record's length in bytes, framing included.
    pub len: u64,
    /// The smallest offset (ns) of a frame or marker in the block.
    pub first_offset_ns: u64,
    /// The largest offset (ns) of a frame or marker in the block.
    pub last_offset_ns: u64,
    /// Frames in the block.
    pub frames: u64,
    /// Frames and dropped markers in the block.
    pub items: u64,
    /// Frames the recorder dropped, summed over the block's markers.
    #[serde(default)]
    pub dropped: u64,
    /// The JSON-RPC methods of the block's requests and notifications.
    #[serde(default)]
    pub methods: BTreeSet<String>,
    /// The tool names of the block's `tools/call` requests.
    #[serde(default)]
    pub tools: BTreeSet<String>,
    /// The session ids in the block.
    #[serde(default)]
    pub sessions: BTreeSet<String>,
}

impl BlockEntry {
    pub(crate) fn note_offset(&mut self, offset_ns: u64) {
        if self.items == 1 {
            self.first_offset_ns = offset_ns;
            self.last_offset_ns = offset_ns;
        } else {
            self.first_offset_ns = self.first_offset_ns.min(offset_ns);
            self.last_offset_ns = self.last_offset_ns.max(offset_ns);
        }
    }

    /// Whether the block's time range holds `offset_ns`.
    pub fn covers(&self, offset_ns: u64) -> bool {
        self.first_offset_ns <= offset_ns && offset_ns <= self.last_offset_ns
    }

    /// Whether the block's time range overlaps `from..=to`.
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.first_offset_ns <= to && from <= self.last_offset_ns
    }
}

#[derive(Serialize, Deserialize)]
struct Footer {
    blocks: Vec<BlockEntry>,
}

/// The footer record's payload: `{"blocks":[...]}`.
pub(crate) fn encode_footer(blocks: &[BlockEntry]) -> Vec<u8> {
    let footer = Footer {
        blocks: blocks.to_vec(),
    };
    serde_json::to_vec(&footer).expect("writing plain data into memory cannot fail")
}

/// An lz4 tape's block index: from its footer when it has one, otherwise rebuilt by
/// reading the blocks. Answers which blocks hold a tool, a method, a session or a time
/// without decompressing the others; [`read_block`](Self::read_block) reads one block.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Lz4Index {
    path: PathBuf,
    header: TapeHeader,
    blocks: Vec<BlockEntry>,
    from_footer: bool,
    /// Where the intact blocks end (the footer's offset, or the torn tail's).
    end: u64,
}

impl Lz4Index {
    /// Reads the index of the tape at `path`: the footer through the trailer, or, when the
    /// tape has none (it was not finished), a scan of its blocks up to a torn tail.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let source: Arc<str> = path.display().to_string().into();
        let file = File::open(path).map_err(|e| io(&source, e))?;
        let (_, header, _) = RecordReader::open(
            BufReader::new(file.try_clone().map_err(|e| io(&source, e))?),
            source.clone(),
            &MAGIC,
            VERSION,
            "lz4",
        )?;
        if let Some((blocks, end)) = read_footer(file, &source)? {
            return Ok(Self {
                path: path.to_owned(),
                header,
                blocks,
                from_footer: true,
                end,
            });
        }
        let scan = scan(path)?;
        Ok(Self {
            path: path.to_owned(),
            header,
            blocks: scan.blocks,
            from_footer: false,
            end: scan.end,
        })
    }

    /// The tape's header.
    pub fn header(&self) -> &TapeHeader {
        &self.header
    }

    /// Every block, in file order.
    pub fn blocks(&self) -> &[BlockEntry] {
        &self.blocks
    }

    /// Whether the index came from the footer (rather than a scan of an unfinished tape).
    pub fn has_footer(&self) -> bool {
        self.from_footer
    }

    /// Where the intact blocks end.
    pub fn blocks_end(&self) -> u64 {
        self.end
    }

    /// Blocks with a `tools/call` of `tool`.
    pub fn blocks_with_tool<'a>(&'a self, tool: &'a str) -> impl Iterator<Item = &'a BlockEntry> {
        self.blocks.iter().filter(move |b| b.tools.contains(tool))
    }

    /// Blocks with a request or notification of `method`.
    pub fn blocks_with_method<'a>(
        &'a self,
        method: &'a str,
    ) -> impl Iterator<Item = &'a BlockEntry> {
        self.blocks
            .iter()
            .filter(move |b| b.methods.contains(method))
    }

    /// Blocks with frames of `session`.
    pub fn blocks_with_session<'a>(
        &'a self,
        session: &'a str,
    ) -> impl Iterator<Item = &'a BlockEntry> {
        self.blocks
            .iter()
            .filter(move |b| b.sessions.contains(session))
    }

    /// Blocks whose time range overlaps `from..=to` (ns from the tape's start).
    pub fn blocks_between(&self, from: u64, to: u64) -> impl Iterator<Item = &BlockEntry> {
        self.blocks.iter().filter(move |b| b.overlaps(from, to))
    }

    /// Reads and decompresses one block.
    pub fn read_block(&self, entry: &BlockEntry) -> Result<Vec<TapeItem>> {
        let source: Arc<str> = self.path.display().to_string().into();
        let at = Position::new(source.clone(), 0, entry.offset);
        let malformed = |reason: String| Error::Malformed {
            at: at.clone(),
            reason,
        };
        if entry.len < 13 || entry.len > u64::from(MAX_PAYLOAD) + 13 {
            return Err(malformed(format!(
                "index: block length {} is impossible",
                entry.len
            )));
        }
        let mut file = File::open(&self.path).map_err(|e| io(&source, e))?;
        let mut buf = vec![0u8; entry.len as usize];
        file.seek(SeekFrom::Start(entry.offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| io(&source, e))?;
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len + 13 != buf.len() || buf[4] != KIND_BLOCK {
            return Err(malformed(
                "index: no block record at this offset".to_owned(),
            ));
        }
        let payload = &buf[5..5 + len];
        let stored = u32::from_le_bytes(buf[5 + len..9 + len].try_into().unwrap_or_default());
        let mut crc = Crc32::new();
        crc.update(&buf[4..5 + len]);
        if crc.finish() != stored {
            return Err(malformed("record CRC mismatch".to_owned()));
        }
        let block = decompress(payload).map_err(&malformed)?;
        let mut pos = 0;
        let mut items = Vec::new();
        while let Some(item) = next_in_block(&block, &mut pos) {
            items.push(item.map_err(&malformed)?);
        }
        Ok(items)
    }
}

/// Reads the trailer and the footer it points at; `None` when the tape has no valid footer.
fn read_footer(mut file: File, source: &Arc<str>) -> Result<Option<(Vec<BlockEntry>, u64)>> {
    let len = file.metadata().map_err(|e| io(source, e))?.len();
    if len < TRAILER_LEN + 13 {
        return Ok(None);
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(len - TRAILER_LEN))
        .map_err(|e| io(source, e))?;
    if read_full(&mut file, &mut trailer).map_err(|e| io(source, e))? < trailer.len()
        || trailer[8..] != TRAILER_MAGIC
    {
        return Ok(None);
    }
    let at = u64::from_le_bytes(trailer[..8].try_into().unwrap_or_default());
    if at >= len - TRAILER_LEN {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(at)).map_err(|e| io(source, e))?;
    let footer_len = len - TRAILER_LEN - at;
    if footer_len > u64::from(MAX_PAYLOAD) {
        return Ok(None);
    }
    let mut buf = Vec::new();
    (&mut file)
        .take(footer_len)
        .read_to_end(&mut buf)
        .map_err(|e| io(source, e))?;
    let n = buf.len();
    if n < 13 || buf[4] != KIND_FOOTER {
        return Ok(None);
    }
    let plen = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if plen + 13 != n || buf[n - 4..] != buf[..4] {
        return Ok(None);
    }
    let mut crc = Crc32::new();
    crc.update(&buf[4..5 + plen]);
    if crc.finish().to_le_bytes() != buf[5 + plen..9 + plen] {
        return Ok(None);
    }
    match serde_json::from_slice::<Footer>(&buf[5..5 + plen]) {
        Ok(footer) => Ok(Some((footer.blocks, at))),
        Err(_) => Ok(None),
    }
}

/// What reading an lz4 tape's blocks from the start found.
pub(crate) struct Scan {
    pub(crate) blocks: Vec<BlockEntry>,
    /// Where the last intact block ends.
    pub(crate) end: u64,
}

/// Reads every block of the tape at `path`, rebuilding its index, up to a torn tail, a
/// footer or broken framing. Blocks that fail their CRC or do not decode are left out.
pub(crate) fn scan(path: &Path) -> Result<Scan> {
    let source: Arc<str> = path.display().to_string().into();
    let file = File::open(path).map_err(|e| io(&source, e))?;
    let (mut records, _, _) = RecordReader::open(
        BufReader::with_capacity(64 * 1024, file),
        source,
        &MAGIC,
        VERSION,
        "lz4",
    )?;
    let mut blocks = Vec::new();
    let mut end = records.position().byte;
    loop {
        let (kind, at) = match records.next() {
            Ok(Next::Record { kind, at }) => (kind, at),
            Ok(Next::End) | Err(_) if records.done => break,
            Ok(Next::End) => break,
            Err(_) => {
                end = records.position().byte;
                continue;
            }
        };
        if kind != KIND_BLOCK {
            break;
        }
        let next = records.position().byte;
        end = next;
        let Ok(block) = decompress(records.payload()) else {
            continue;
        };
        let mut entry = BlockEntry {
            offset: at.byte,
            len: next - at.byte,
            ..BlockEntry::default()
        };
        let mut pos = 0;
        while let Some(Ok(item)) = next_in_block(&block, &mut pos) {
            entry.items += 1;
            match item {
                TapeItem::Frame(frame) => {
                    entry.note_offset(frame.offset_ns);
                    entry.frames += 1;
                    let (method, tool) = method_and_tool(&frame.message);
                    entry.methods.extend(method);
                    entry.tools.extend(tool);
                    entry.sessions.extend(frame.session_id);
                }
                TapeItem::Dropped { count, offset_ns } => {
                    entry.note_offset(offset_ns);
                    entry.dropped = entry.dropped.saturating_add(count);
                }
            }
        }
        blocks.push(entry);
    }
    Ok(Scan { blocks, end })
}

fn io(source: &str, e: std::io::Error) -> Error {
    Error::Io {
        context: format!("reading {source}"),
        source: e,
    }
}
