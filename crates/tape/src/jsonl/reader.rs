//! Reading JSONL tapes, one line at a time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::Path;
use std::sync::Arc;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::message::read_fields;
use super::{FORMAT_NAME, VERSION};
use crate::{Direction, Edge, Error, HttpMeta, Position, Result, TapeFrame, TapeHeader, TapeItem};

/// The longest line a reader accepts unless told otherwise: 256 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 256 << 20;

/// Reads a JSONL tape from any [`BufRead`]: the header when it is made, then its frames as
/// an iterator of `Result<TapeFrame>`, one line at a time (memory stays bounded by the
/// longest line, whatever the tape's size).
///
/// A malformed frame line is reported and skipped: the iterator goes on with the next
/// line. A torn tail (an incomplete last line) or a read error ends it.
///
/// ```
/// use shadowcat_tape::{Direction, JsonlReader};
///
/// let tape = concat!(
///     r#"{"shadowcat_tape":"jsonl","version":1,"tape_id":"t1","started_at":"2025-06-18T09:30:00.000000000Z","started_at_unix_ns":1750239000000000000,"shadowcat_version":"0.1.0"}"#, "\n",
///     r#"{"offset_ns":1200,"direction":"client_to_server","edge":"client","message":{"jsonrpc":"2.0","id":1,"method":"ping"}}"#, "\n",
/// );
/// let mut reader = JsonlReader::new(tape.as_bytes())?;
/// assert_eq!(reader.header().tape_id, "t1");
/// let frame = reader.next().unwrap()?;
/// assert_eq!(frame.direction, Direction::ClientToServer);
/// assert_eq!(&frame.message[..], br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
/// assert!(reader.next().is_none());
/// # Ok::<(), shadowcat_tape::Error>(())
/// ```
#[derive(Debug)]
pub struct JsonlReader<R> {
    inner: R,
    source: Arc<str>,
    header: TapeHeader,
    version: u32,
    /// Lines read so far.
    line: u64,
    /// Bytes read so far: the offset of the next line.
    byte: u64,
    buf: Vec<u8>,
    max_line_len: usize,
    done: bool,
    dropped: u64,
}

/// What reading one line found.
enum Line {
    Eof,
    /// A line ending in a line feed (in `buf`, without it).
    Complete,
    /// The file's last line, without a line feed (in `buf`).
    Unterminated,
    /// A line longer than the limit (not kept).
    TooLong {
        terminated: bool,
    },
}

impl JsonlReader<BufReader<File>> {
    /// Opens the tape at `path` and reads its header; errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let (file, name) = crate::error::open_tape_file(path.as_ref())?;
        Self::named(file, name)
    }
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads the header of a tape; errors call it `<tape>`.
    pub fn new(inner: R) -> Result<Self> {
        Self::named(inner, "<tape>")
    }

    /// Reads the header of a tape; errors call it `source` (usually its path).
    pub fn named(inner: R, source: impl Into<Arc<str>>) -> Result<Self> {
        let mut reader = Self {
            inner,
            source: source.into(),
            header: TapeHeader::from_unix_ns("", 0),
            version: VERSION,
            line: 0,
            byte: 0,
            buf: Vec::new(),
            max_line_len: DEFAULT_MAX_LINE_LEN,
            done: false,
            dropped: 0,
        };
        let at = reader.next_position();
        match reader.read_line()? {
            Line::Eof => Err(reader.malformed(at, "empty file: no header line".to_owned())),
            Line::TooLong { terminated } => Err(reader.too_long(at, terminated)),
            Line::Complete => reader.parse_header(at),
            // An incomplete header is torn; a complete line that is no header is not.
            Line::Unterminated => reader.parse_header(at.clone()).map_err(|e| {
                let cut = serde_json::from_slice::<IgnoredAny>(&reader.buf)
                    .is_err_and(|json| json.is_eof());
                if cut { reader.torn(at) } else { e }
            }),
        }?;
        Ok(reader)
    }

    /// The tape's header.
    pub fn header(&self) -> &TapeHeader {
        &self.header
    }

    /// The format version the tape was written in (at most [`JSONL_VERSION`](crate::JSONL_VERSION)).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Where the next line starts: after iterating to the end, the tape's length and line
    /// count; after a torn tail, the place to cut.
    pub fn next_position(&self) -> Position {
        Position::new(self.source.clone(), self.line + 1, self.byte)
    }

    /// Frames the recorder dropped, summed over the `dropped` marker lines read so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next frame or dropped marker (the iterator skips markers).
    pub fn next_item(&mut self) -> Option<Result<TapeItem>> {
        if self.done {
            return None;
        }
        let at = self.next_position();
        let result = match self.read_line() {
            Err(e) => Err(e),
            Ok(Line::Eof) => {
                self.done = true;
                return None;
            }
            Ok(Line::Complete) => self.parse_item(&at),
            Ok(Line::TooLong { terminated }) => {
                self.done = !terminated;
                Err(self.too_long(at, terminated))
            }
            Ok(Line::Unterminated) => {
                self.done = true;
                self.parse_item(&at).map_err(|_| self.torn(at))
            }
        };
        if let Ok(TapeItem::Dropped { count, .. }) = &result {
            self.dropped = self.dropped.saturating_add(*count);
        }
        Some(result)
    }

    /// A frame line, or a `{"dropped":N,"offset_ns":T}` marker line.
    fn parse_item(&self, at: &Position) -> Result<TapeItem> {
        if memchr::memmem::find(&self.buf, b"\"dropped\"").is_some()
            && let Ok(marker) = serde_json::from_slice::<DroppedLine>(&self.buf)
            && let Some(count) = marker.dropped
        {
            return match marker.offset_ns {
                Some(offset_ns) => Ok(TapeItem::Dropped { count, offset_ns }),
                None => Err(self.malformed(
                    at.clone(),
                    "dropped marker: missing field `offset_ns`".to_owned(),
                )),
            };
        }
        self.parse_frame(at).map(TapeItem::Frame)
    }

    /// Sets the longest line (in bytes, without its line feed) to accept; a longer frame
    /// line is reported as malformed and skipped without being held in memory.
    pub fn set_max_line_len(&mut self, max: usize) {
        self.max_line_len = max;
    }

    fn read_line(&mut self) -> Result<Line> {
        self.buf.clear();
        let (mut len, mut too_long) = (0u64, false);
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.done = true;
                    return Err(Error::Io {
                        context: format!("reading {}", self.source),
                        source,
                    });
                }
            };
            if available.is_empty() {
                if len == 0 {
                    return Ok(Line::Eof);
                }
                self.line += 1;
                self.byte += len;
                return Ok(if too_long {
                    Line::TooLong { terminated: false }
                } else {
                    Line::Unterminated
                });
            }
            let newline = memchr::memchr(b'\n', available);
            let take = newline.map_or(available.len(), |i| i + 1);
            let content = newline.map_or(take, |i| i);
            if !too_long && self.buf.len() + content > self.max_line_len {
                too_long = true;
                self.buf = Vec::new();
            }
            if !too_long {
                self.buf.extend_from_slice(&available[..content]);
            }
            self.inner.consume(take);
            len += take as u64;
            if newline.is_some() {
                self.line += 1;
                self.byte += len;
                return Ok(if too_long {
                    Line::TooLong { terminated: true }
                } else {
                    Line::Complete
                });
            }
        }
    }

    fn parse_header(&mut self, at: Position) -> Result<()> {
        if !is_object(&self.buf) {
            let reason = "not a Shadowcat tape: line 1 is not a JSON object".to_owned();
            return Err(self.malformed(at, reason));
        }
        let probe: Probe = serde_json::from_slice(&self.buf).map_err(|e| {
            let reason = format!("not a Shadowcat tape: {}", strip_location(&e));
            self.malformed(json_position(&at, &e, self.buf.len()), reason)
        })?;
        match probe.shadowcat_tape {
            Some(serde_json::Value::String(format)) if format == FORMAT_NAME => {}
            Some(other) => {
                let reason = format!("not a JSONL tape: \"shadowcat_tape\" is {other}");
                return Err(self.malformed(at, reason));
            }
            None => {
                let reason = "not a Shadowcat tape: no \"shadowcat_tape\" field".to_owned();
                return Err(self.malformed(at, reason));
            }
        }
        let version = match probe.version {
            Some(serde_json::Value::Number(n)) if n.as_u64().is_some_and(|v| v > 0) => {
                n.as_u64().unwrap_or_default()
            }
            Some(other) => {
                let reason = format!("header: \"version\" must be a positive integer, not {other}");
                return Err(self.malformed(at, reason));
            }
            None => return Err(self.malformed(at, "header: missing field `version`".to_owned())),
        };
        if version > u64::from(VERSION) {
            return Err(Error::NewerVersion {
                at,
                found: version,
                supported: VERSION,
            });
        }
        let line: HeaderLine = serde_json::from_slice(&self.buf).map_err(|e| {
            let reason = format!("header: {}", strip_location(&e));
            self.malformed(json_position(&at, &e, self.buf.len()), reason)
        })?;
        self.version = u32::try_from(version).unwrap_or(VERSION);
        let mut header = TapeHeader::from_unix_ns(line.tape_id, line.started_at_unix_ns);
        header.started_at = line.started_at;
        header.shadowcat_version = line.shadowcat_version;
        header.name = line.name;
        header.tags = line.tags;
        header.metadata = line.metadata;
        self.header = header;
        Ok(())
    }

    fn parse_frame(&self, at: &Position) -> Result<TapeFrame> {
        if self.buf.is_empty() {
            return Err(self.malformed(at.clone(), "empty line".to_owned()));
        }
        if !is_object(&self.buf) {
            return Err(self.malformed(at.clone(), "frame: not a JSON object".to_owned()));
        }
        let line: FrameLine<'_> = serde_json::from_slice(&self.buf).map_err(|e| {
            let reason = format!("frame: {}", strip_location(&e));
            self.malformed(json_position(at, &e, self.buf.len()), reason)
        })?;
        let frame_error = |reason: String| self.malformed(at.clone(), format!("frame: {reason}"));
        let message =
            read_fields(line.message, line.raw, line.raw_base64.as_deref()).map_err(frame_error)?;
        let http = match line.http {
            None => None,
            Some(http) => {
                if let Some(name) = http
                    .headers
                    .keys()
                    .find(|n| n.bytes().any(|b| b.is_ascii_uppercase()))
                {
                    return Err(frame_error(format!(
                        "http header name \"{name}\" is not lowercase"
                    )));
                }
                let mut meta = HttpMeta::new();
                meta.status = http.status;
                meta.headers = http.headers;
                meta.event_id = http.event_id;
                Some(meta)
            }
        };
        let mut frame = TapeFrame::new(
            line.offset_ns,
            line.direction.into(),
            line.edge.into(),
            message,
        );
        frame.session_id = line.session_id;
        frame.http = http;
        Ok(frame)
    }

    fn malformed(&self, at: Position, reason: String) -> Error {
        Error::Malformed { at, reason }
    }

    fn torn(&self, at: Position) -> Error {
        let len = self.byte - at.byte;
        Error::TornTail { at, len }
    }

    fn too_long(&self, at: Position, terminated: bool) -> Error {
        if terminated {
            let reason = format!("line longer than {} bytes", self.max_line_len);
            self.malformed(at, reason)
        } else {
            self.torn(at)
        }
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
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

/// Whether a line holds a JSON object (rather than something serde would also take for a
/// struct, such as an array).
fn is_object(line: &[u8]) -> bool {
    line.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r'))
        .is_some_and(|&b| b == b'{')
}

/// The byte a `serde_json` error points at, within the line starting at `at`.
fn json_position(at: &Position, e: &serde_json::Error, line_len: usize) -> Position {
    let column = if e.line() == 1 {
        e.column().saturating_sub(1)
    } else {
        0
    };
    let byte = at.byte + column.min(line_len) as u64;
    Position::new(at.source.clone(), at.line, byte)
}

/// A `serde_json` error's message without its ` at line L column C` suffix.
fn strip_location(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

#[derive(Deserialize)]
struct DroppedLine {
    dropped: Option<u64>,
    offset_ns: Option<u64>,
}

#[derive(Deserialize)]
struct Probe {
    shadowcat_tape: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct HeaderLine {
    tape_id: String,
    started_at: String,
    started_at_unix_ns: u64,
    shadowcat_version: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    metadata: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct FrameLine<'a> {
    offset_ns: u64,
    direction: WireDirection,
    edge: WireEdge,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    http: Option<HttpLine>,
    /// Any JSON value, `null` included, so not an `Option` to serde.
    #[serde(default, borrow, deserialize_with = "present")]
    message: Option<&'a RawValue>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    raw_base64: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct HttpLine {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    event_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireDirection {
    ClientToServer,
    ServerToClient,
}

impl From<WireDirection> for Direction {
    fn from(d: WireDirection) -> Self {
        match d {
            WireDirection::ClientToServer => Self::ClientToServer,
            WireDirection::ServerToClient => Self::ServerToClient,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireEdge {
    Client,
    Server,
}

impl From<WireEdge> for Edge {
    fn from(e: WireEdge) -> Self {
        match e {
            WireEdge::Client => Self::Client,
            WireEdge::Server => Self::Server,
        }
    }
}
