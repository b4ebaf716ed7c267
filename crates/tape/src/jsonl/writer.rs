//! Writing JSONL tapes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::message::{push_json_str, write_fields};
use super::{FORMAT_NAME, VERSION};
use crate::{Error, Result, TapeFrame, TapeHeader};

/// Writes a JSONL tape (format version [`JSONL_VERSION`](crate::JSONL_VERSION)) to any
/// [`Write`], buffered: the header first, then one line per frame.
///
/// Each line is built in memory and handed to the buffer whole, so a line reaches the file
/// only in whole-buffer writes; after [`flush`](Self::flush) returns, every line written so
/// far is in the file. A crash between flushes leaves at most a torn last line, which
/// readers report as [`Error::TornTail`].
///
/// ```
/// use shadowcat_tape::{Direction, Edge, JsonlWriter, TapeFrame, TapeHeader};
///
/// let mut writer = JsonlWriter::new(Vec::new());
/// writer.write_header(&TapeHeader::from_unix_ns("tape-1", 0))?;
/// let frame = TapeFrame::new(5, Direction::ClientToServer, Edge::Client, &br#"{"jsonrpc":"2.0","method":"ping","id":1}"#[..]);
/// writer.write_frame(&frame)?;
/// let bytes = writer.into_inner()?;
/// assert!(bytes.starts_with(br#"{"shadowcat_tape":"jsonl","version":1,"#));
/// # Ok::<(), shadowcat_tape::Error>(())
/// ```
#[derive(Debug)]
pub struct JsonlWriter<W: Write> {
    inner: BufWriter<W>,
    name: String,
    line: Vec<u8>,
    header_written: bool,
    /// The last session id written and its `,"session_id":"..."` text: frames of one
    /// session follow each other, and the id is escaped once for all of them.
    session: Option<(String, Vec<u8>)>,
}

impl JsonlWriter<File> {
    /// Creates (or truncates) the file at `path` for a new tape.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::create(path).map_err(|source| Error::Io {
            context: format!("creating {name}"),
            source,
        })?;
        Ok(Self::new(file).named(name))
    }
}

impl<W: Write> JsonlWriter<W> {
    /// A writer for a new tape; call [`write_header`](Self::write_header) first.
    pub fn new(inner: W) -> Self {
        Self {
            inner: BufWriter::with_capacity(64 * 1024, inner),
            name: "<tape>".to_owned(),
            line: Vec::with_capacity(1024),
            header_written: false,
            session: None,
        }
    }

    /// A writer that appends frames to a tape whose header is already written (a tape
    /// reopened for more recording, or one just repaired).
    pub fn append(inner: W) -> Self {
        Self {
            header_written: true,
            ..Self::new(inner)
        }
    }

    /// Names the tape in error messages (usually its path).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Writes the header line. It must be the first line, written once.
    pub fn write_header(&mut self, header: &TapeHeader) -> Result<()> {
        if self.header_written {
            return Err(Error::WriterOrder("the header is already written"));
        }
        self.line.clear();
        encode_header(header, &mut self.line);
        self.write_line()?;
        self.header_written = true;
        Ok(())
    }

    /// Writes one frame line.
    pub fn write_frame(&mut self, frame: &TapeFrame) -> Result<()> {
        self.write_frame_line(frame, false)
    }

    /// Writes one frame line for a frame whose message a validating JSON parser has accepted
    /// as one JSON value (the bytes of a parsed `shadowcat_mcp::Message`, for instance): the
    /// writer then skips its own UTF-8 and grammar checks of the message. Bytes that are not
    /// valid JSON must go through [`write_frame`](Self::write_frame), or the line will not
    /// read back.
    pub fn write_parsed_frame(&mut self, frame: &TapeFrame) -> Result<()> {
        self.write_frame_line(frame, true)
    }

    fn write_frame_line(&mut self, frame: &TapeFrame, known_json: bool) -> Result<()> {
        if !self.header_written {
            return Err(Error::WriterOrder("a frame cannot come before the header"));
        }
        self.line.clear();
        encode_frame_start(frame, &mut self.line);
        if let Some(id) = &frame.session_id {
            let cached = self.session.as_ref().filter(|(last, _)| last == id);
            let field = match cached {
                Some((_, field)) => field,
                None => {
                    let mut field = b",\"session_id\":".to_vec();
                    push_json_str(&mut field, id);
                    &self.session.insert((id.clone(), field)).1
                }
            };
            self.line.extend_from_slice(field);
        }
        encode_frame_rest(frame, known_json, &mut self.line);
        self.write_line()
    }

    /// Writes a marker line `{"dropped":N,"offset_ns":T}`: `count` frames were dropped by
    /// the recorder at `offset_ns`.
    pub fn write_dropped(&mut self, count: u64, offset_ns: u64) -> Result<()> {
        if !self.header_written {
            return Err(Error::WriterOrder("a marker cannot come before the header"));
        }
        self.line.clear();
        self.line.extend_from_slice(
            format!("{{\"dropped\":{count},\"offset_ns\":{offset_ns}}}").as_bytes(),
        );
        self.write_line()
    }

    /// Writes everything buffered to the underlying writer and flushes it.
    pub fn flush(&mut self) -> Result<()> {
        self.inner.flush().map_err(|e| self.io_error(e))
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

    fn write_line(&mut self) -> Result<()> {
        self.line.push(b'\n');
        let written = self.inner.write_all(&self.line);
        written.map_err(|e| self.io_error(e))
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Io {
            context: format!("writing {}", self.name),
            source,
        }
    }
}

/// The header line, without its line feed.
fn encode_header(header: &TapeHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"shadowcat_tape\":");
    push_json_str(out, FORMAT_NAME);
    out.extend_from_slice(format!(",\"version\":{VERSION},\"tape_id\":").as_bytes());
    push_json_str(out, &header.tape_id);
    out.extend_from_slice(b",\"started_at\":");
    push_json_str(out, &header.started_at);
    out.extend_from_slice(
        format!(",\"started_at_unix_ns\":{}", header.started_at_unix_ns).as_bytes(),
    );
    out.extend_from_slice(b",\"shadowcat_version\":");
    push_json_str(out, &header.shadowcat_version);
    if let Some(name) = &header.name {
        out.extend_from_slice(b",\"name\":");
        push_json_str(out, name);
    }
    if !header.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":");
        serde_json::to_writer(&mut *out, &header.tags)
            .expect("writing strings into memory cannot fail");
    }
    if !header.metadata.is_empty() {
        out.extend_from_slice(b",\"metadata\":");
        serde_json::to_writer(&mut *out, &header.metadata)
            .expect("writing JSON values with string keys into memory cannot fail");
    }
    out.push(b'}');
}

/// The start of a frame line: offset, direction and edge (the session id comes next).
fn encode_frame_start(frame: &TapeFrame, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"offset_ns\":");
    push_u64(out, frame.offset_ns);
    out.extend_from_slice(b",\"direction\":\"");
    out.extend_from_slice(frame.direction.as_str().as_bytes());
    out.extend_from_slice(b"\",\"edge\":\"");
    out.extend_from_slice(frame.edge.as_str().as_bytes());
    out.push(b'"');
}

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The rest of a frame line after the session id: HTTP facts and the message, without the
/// line feed.
fn encode_frame_rest(frame: &TapeFrame, known_json: bool, out: &mut Vec<u8>) {
    if let Some(http) = &frame.http {
        out.extend_from_slice(b",\"http\":{");
        let mut sep = "";
        if let Some(status) = http.status {
            out.extend_from_slice(format!("\"status\":{status}").as_bytes());
            sep = ",";
        }
        if !http.headers.is_empty() {
            out.extend_from_slice(sep.as_bytes());
            out.extend_from_slice(b"\"headers\":{");
            for (i, (name, value)) in http.headers.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_json_str(out, &name.to_ascii_lowercase());
                out.push(b':');
                push_json_str(out, value);
            }
            out.push(b'}');
            sep = ",";
        }
        if let Some(event_id) = &http.event_id {
            out.extend_from_slice(sep.as_bytes());
            out.extend_from_slice(b"\"event_id\":");
            push_json_str(out, event_id);
        }
        out.push(b'}');
    }
    write_fields(&frame.message, known_json, out);
    out.push(b'}');
}
