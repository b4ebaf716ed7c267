//! Server-sent events framing (Streamable HTTP and the legacy HTTP+SSE transport), as a
//! push/next decoder and an encoder, following the WHATWG `text/event-stream` rules.

use bytes::{Buf, BytesMut};

use crate::{Error, Result};

/// The UTF-8 byte order mark, skipped once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched server-sent event.
///
/// ```
/// use shadowcat_mcp::SseEvent;
///
/// let event = SseEvent::new("{}").with_id("42").with_event("message");
/// assert_eq!((event.id.as_deref(), event.event_type()), (Some("42"), "message"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SseEvent {
    /// The value of the block's last `event` field; `None` when it had none (a listener then
    /// sees the type `message`, see [`SseEvent::event_type`]).
    pub event: Option<String>,
    /// The `data` lines of the block joined with `\n`.
    pub data: String,
    /// The last event ID in force when the event was dispatched: set by this block's `id`
    /// field or an earlier one. `Some("")` after an empty `id` field reset it; `None` when
    /// the stream never set one.
    pub id: Option<String>,
    /// The value of the block's `retry` field, when it had a valid one (milliseconds).
    pub retry: Option<u64>,
}

impl SseEvent {
    /// An event carrying `data`, with no type, id or retry.
    pub fn new(data: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            ..Self::default()
        }
    }

    /// The event with its `event` field (type) set.
    pub fn with_event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// The event with its `id` field set.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The event with its `retry` field (reconnection time in milliseconds) set.
    pub fn with_retry(mut self, retry: u64) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The type a listener dispatches on: the `event` field, or `message` when it is absent
    /// or empty.
    pub fn event_type(&self) -> &str {
        match self.event.as_deref() {
            None | Some("") => "message",
            Some(name) => name,
        }
    }
}

/// What an event stream yields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SseItem {
    /// A dispatched event.
    Event(SseEvent),
    /// A comment line (`: text`), without the colon and one following space; servers send
    /// them as keep-alives.
    Comment(String),
}

/// Splits a `text/event-stream` into events: bytes go in with [`push`](Self::push) (or
/// straight into [`buffer`](Self::buffer)), items come out of
/// [`next_item`](Self::next_item).
///
/// Parsing follows the WHATWG rules: lines end with CRLF, LF or a lone CR; a leading byte
/// order mark is skipped; a blank line dispatches the event when it has data; `id` fields
/// containing NUL and `retry` fields that are not all ASCII digits are ignored; unknown
/// fields are ignored; invalid UTF-8 is replaced with U+FFFD.
///
/// An event whose lines (without their line endings, comments included) add up to more
/// than `max_event_size` bytes yields one [`Error::TooLarge`] as soon as the limit is passed,
/// and the rest of it is discarded up to the next blank line without being buffered.
///
/// ```
/// use shadowcat_mcp::{SseDecoder, SseEvent, SseItem};
///
/// let mut dec = SseDecoder::new(1 << 20);
/// dec.push(b": keep-alive\r\n\r\nid: 7\r\ndata: {\"a\":1}\r\ndata: {\"b\"");
/// assert_eq!(dec.next_item(), Some(Ok(SseItem::Comment("keep-alive".into()))));
/// assert_eq!(dec.next_item(), None);
/// dec.push(b":2}\r\n\r\n");
/// let expected = SseEvent::new("{\"a\":1}\n{\"b\":2}").with_id("7");
/// assert_eq!(dec.next_item(), Some(Ok(SseItem::Event(expected))));
/// assert_eq!(dec.last_event_id(), Some("7"));
/// ```
#[derive(Debug)]
pub struct SseDecoder {
    buf: BytesMut,
    max: usize,
    /// How far `buf` has been searched for a line ending.
    scanned: usize,
    /// Stream offset of `buf[0]`.
    offset: u64,
    /// Whether the start of the stream has been checked for a byte order mark.
    bom_checked: bool,
    /// The last line ended with a CR at the end of the input: a leading LF is part of it.
    skip_lf: bool,
    /// Discarding the rest of an oversized event.
    discarding: bool,
    /// While discarding: bytes of the current line were already dropped.
    line_dropped: bool,
    /// Stream offset of the current event's first line.
    event_start: Option<u64>,
    /// Bytes in the current event's lines so far, without line endings.
    event_len: usize,
    data: String,
    event: Option<String>,
    event_retry: Option<u64>,
    /// The last event ID buffer: set by `id` fields, committed by blank lines.
    id_buffer: Option<String>,
    /// The last event ID as of the last blank line.
    last_id: Option<String>,
    retry: Option<u64>,
}

impl SseDecoder {
    /// A decoder that accepts events of at most `max_event_size` bytes.
    pub fn new(max_event_size: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(8 * 1024),
            max: max_event_size,
            scanned: 0,
            offset: 0,
            bom_checked: false,
            skip_lf: false,
            discarding: false,
            line_dropped: false,
            event_start: None,
            event_len: 0,
            data: String::new(),
            event: None,
            event_retry: None,
            id_buffer: None,
            last_id: None,
            retry: None,
        }
    }

    /// The configured limit.
    pub fn max_event_size(&self) -> usize {
        self.max
    }

    /// Appends input.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The input buffer, with room reserved for at least `reserve` more bytes, for reading
    /// straight into it without a copy (`AsyncReadExt::read_buf`). Only append to it.
    pub fn buffer(&mut self, reserve: usize) -> &mut BytesMut {
        self.buf.reserve(reserve);
        &mut self.buf
    }

    /// The last event ID, for a reconnection's `Last-Event-ID` header: set by `id` fields
    /// once the blank line that ends their event has arrived (whether or not the event had
    /// data). `None` before any `id` field and after an empty one.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref().filter(|id| !id.is_empty())
    }

    /// The reconnection time the stream asked for with its last valid `retry` field, in
    /// milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Ends the stream: an event without its closing blank line, or a last line without its
    /// line ending, is discarded, as WHATWG requires, together with an `id` it set. The last
    /// event ID and retry time are kept, and the decoder then reads a new stream (a
    /// reconnection) from its start.
    pub fn finish(&mut self) {
        self.id_buffer.clone_from(&self.last_id);
        self.buf.clear();
        self.scanned = 0;
        self.offset = 0;
        self.bom_checked = false;
        self.skip_lf = false;
        self.discarding = false;
        self.line_dropped = false;
        self.reset_event();
    }

    /// The next event or comment, an error for an oversized event, or `None` when more input
    /// is needed.
    pub fn next_item(&mut self) -> Option<Result<SseItem>> {
        if !self.bom_checked {
            if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
                return None;
            }
            if self.buf.starts_with(BOM) {
                self.advance(BOM.len());
            }
            self.bom_checked = true;
        }
        loop {
            if self.skip_lf {
                match self.buf.first() {
                    None => return None,
                    Some(b'\n') => self.advance(1),
                    Some(_) => {}
                }
                self.skip_lf = false;
            }
            let Some(end) = find_line_end(&self.buf[self.scanned..]).map(|i| self.scanned + i)
            else {
                return self.partial_line();
            };
            let line_offset = self.offset;
            let line = self.buf.split_to(end);
            self.offset += end as u64;
            self.scanned = 0;
            let cr = self.buf[0] == b'\r';
            self.advance(1);
            if cr {
                match self.buf.first() {
                    Some(b'\n') => self.advance(1),
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.discarding {
                if line.is_empty() && !self.line_dropped {
                    self.discarding = false;
                    self.last_id.clone_from(&self.id_buffer);
                }
                self.line_dropped = false;
                continue;
            }
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Some(Ok(SseItem::Event(event)));
                }
                continue;
            }
            let start = *self.event_start.get_or_insert(line_offset);
            self.event_len += line.len();
            if self.event_len > self.max {
                let err = self.too_large(start, self.event_len);
                return Some(Err(err));
            }
            if let Some(comment) = self.field(&line) {
                return Some(Ok(SseItem::Comment(comment)));
            }
        }
    }

    /// No line ending in the buffer: drop it while discarding, or stop an event that has
    /// grown past the limit.
    fn partial_line(&mut self) -> Option<Result<SseItem>> {
        self.scanned = self.buf.len();
        if self.discarding {
            self.line_dropped |= !self.buf.is_empty();
            self.drop_buffer();
        } else if self.event_len + self.buf.len() > self.max {
            let start = self.event_start.unwrap_or(self.offset);
            let err = self.too_large(start, self.event_len + self.buf.len());
            self.line_dropped = true;
            self.drop_buffer();
            return Some(Err(err));
        }
        None
    }

    fn too_large(&mut self, start: u64, size: usize) -> Error {
        self.reset_event();
        self.discarding = true;
        Error::TooLarge {
            size,
            limit: self.max,
            location: format!("event starting at byte offset {start}"),
        }
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.offset += n as u64;
        self.scanned = self.scanned.saturating_sub(n);
    }

    fn drop_buffer(&mut self) {
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        self.scanned = 0;
    }

    fn reset_event(&mut self) {
        self.event_start = None;
        self.event_len = 0;
        self.data.clear();
        self.event = None;
        self.event_retry = None;
    }

    /// The blank line: commits the last event ID, and yields the event when it has data;
    /// either way the next event starts.
    fn dispatch(&mut self) -> Option<SseEvent> {
        self.last_id.clone_from(&self.id_buffer);
        let event = if self.data.is_empty() {
            None
        } else {
            self.data.pop();
            Some(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
                id: self.last_id.clone(),
                retry: self.event_retry,
            })
        };
        self.reset_event();
        event
    }

    /// Applies one non-blank line; a comment is returned.
    fn field(&mut self, line: &[u8]) -> Option<String> {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return Some(text(strip_space(&line[1..])).into_owned()),
            Some(colon) => (&line[..colon], strip_space(&line[colon + 1..])),
            None => (line, &b""[..]),
        };
        match name {
            b"event" => self.event = Some(text(value).into_owned()),
            b"data" => {
                self.data.push_str(&text(value));
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => self.id_buffer = Some(text(value).into_owned()),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits: the parse fails only on overflow, which is ignored too.
                if let Ok(ms) = text(value).parse() {
                    self.retry = Some(ms);
                    self.event_retry = Some(ms);
                }
            }
            _ => {}
        }
        None
    }
}

/// The position of the first CR or LF.
fn find_line_end(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == b'\n' || b == b'\r')
}

fn strip_space(value: &[u8]) -> &[u8] {
    value.strip_prefix(b" ").unwrap_or(value)
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Writes server-sent events and comments.
///
/// `decode(encode(event))` gives the event back, with one exception: line breaks in `data`
/// are written as separate `data` lines, so CRLF and CR come back as LF.
///
/// An `id` that contains CR, LF or NUL, or an `event` that contains CR or LF, cannot be
/// written without breaking the stream or being ignored by the reader; encoding such an
/// event fails with [`Error::InvalidMessage`] and writes nothing. (NUL in an event type is
/// allowed by WHATWG and round-trips.)
///
/// ```
/// use bytes::BytesMut;
/// use shadowcat_mcp::{SseEncoder, SseEvent};
///
/// let mut out = BytesMut::new();
/// let enc = SseEncoder::new();
/// enc.encode_event(&SseEvent::new("a\nb").with_id("1"), &mut out).unwrap();
/// enc.encode_comment("ping", &mut out);
/// assert_eq!(&out[..], b"id: 1\ndata: a\ndata: b\n\n: ping\n\n");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseEncoder;

impl SseEncoder {
    /// An encoder.
    pub const fn new() -> Self {
        Self
    }

    /// Appends `event` and the blank line that dispatches it to `out`: its `event`, `id` and
    /// `retry` fields when set, then one `data` line per line of data (a single empty `data`
    /// line for empty data).
    pub fn encode_event(&self, event: &SseEvent, out: &mut BytesMut) -> Result<()> {
        if event
            .id
            .as_deref()
            .is_some_and(|id| id.contains(['\r', '\n', '\0']))
        {
            return Err(Error::invalid(
                None,
                "an SSE event id must not contain CR, LF or NUL",
            ));
        }
        if event
            .event
            .as_deref()
            .is_some_and(|name| name.contains(['\r', '\n']))
        {
            return Err(Error::invalid(
                None,
                "an SSE event type must not contain CR or LF",
            ));
        }
        if let Some(name) = &event.event {
            write_field(out, "event", name);
        }
        if let Some(id) = &event.id {
            write_field(out, "id", id);
        }
        if let Some(retry) = event.retry {
            write_field(out, "retry", &retry.to_string());
        }
        for line in split_lines(&event.data) {
            write_field(out, "data", line);
        }
        out.extend_from_slice(b"\n");
        Ok(())
    }

    /// Appends a comment (`: text`, one comment line per line of `text`) and a blank line to
    /// `out`: a keep-alive that readers skip.
    pub fn encode_comment(&self, text: &str, out: &mut BytesMut) {
        for line in split_lines(text) {
            write_field(out, "", line);
        }
        out.extend_from_slice(b"\n");
    }
}

/// `name: value\n`, or `name:\n` for an empty value.
fn write_field(out: &mut BytesMut, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b":");
    if !value.is_empty() {
        out.extend_from_slice(b" ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\n");
}

/// The lines of `text`, split at CRLF, LF and CR; an empty text is one empty line, and a
/// trailing line break gives a trailing empty line.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(current)
            }
            Some(i) => {
                let skip = if current[i..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[i + skip..]);
                Some(&current[..i])
            }
        }
    })
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
