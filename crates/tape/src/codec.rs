//! The encodings the binary and lz4 formats share: the header as a JSON object, a frame as
//! compact binary fields, and a dropped marker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{Direction, Edge, HttpMeta, TapeFrame, TapeHeader};

/// One item of a tape: a recorded frame, or a marker saying the recorder dropped frames.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TapeItem {
    /// A recorded message.
    Frame(TapeFrame),
    /// `count` frames were dropped by the recorder (its queue was full) around `offset_ns`.
    Dropped {
        /// How many frames were not recorded.
        count: u64,
        /// When the drop was noticed, in nanoseconds from the tape's start.
        offset_ns: u64,
    },
}

const HAS_SESSION: u8 = 1;
const HAS_HTTP: u8 = 2;
const HAS_STATUS: u8 = 4;
const HAS_EVENT_ID: u8 = 8;
const KNOWN_FLAGS: u8 = HAS_SESSION | HAS_HTTP | HAS_STATUS | HAS_EVENT_ID;

/// The header as the JSON object the binary formats store, members in a fixed order.
pub(crate) fn encode_header(header: &TapeHeader) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a> {
        tape_id: &'a str,
        started_at: &'a str,
        started_at_unix_ns: u64,
        shadowcat_version: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        tags: &'a [String],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        metadata: &'a BTreeMap<String, serde_json::Value>,
    }
    let out = Out {
        tape_id: &header.tape_id,
        started_at: &header.started_at,
        started_at_unix_ns: header.started_at_unix_ns,
        shadowcat_version: &header.shadowcat_version,
        name: header.name.as_deref(),
        tags: &header.tags,
        metadata: &header.metadata,
    };
    serde_json::to_vec(&out).expect("writing JSON values with string keys into memory cannot fail")
}

#[derive(Deserialize)]
struct HeaderBlob {
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

/// Parses a header JSON object.
pub(crate) fn decode_header(blob: &[u8]) -> Result<TapeHeader, String> {
    let h: HeaderBlob = serde_json::from_slice(blob).map_err(|e| format!("header: {e}"))?;
    let mut header = TapeHeader::from_unix_ns(h.tape_id, h.started_at_unix_ns);
    header.started_at = h.started_at;
    header.shadowcat_version = h.shadowcat_version;
    header.name = h.name;
    header.tags = h.tags;
    header.metadata = h.metadata;
    Ok(header)
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes[..len as usize]);
}

/// Appends a frame's binary encoding to `out`.
pub(crate) fn encode_frame(frame: &TapeFrame, out: &mut Vec<u8>) {
    out.extend_from_slice(&frame.offset_ns.to_le_bytes());
    out.push(match frame.direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    });
    out.push(match frame.edge {
        Edge::Client => 0,
        Edge::Server => 1,
    });
    let mut flags = 0;
    if frame.session_id.is_some() {
        flags |= HAS_SESSION;
    }
    if let Some(http) = &frame.http {
        flags |= HAS_HTTP;
        if http.status.is_some() {
            flags |= HAS_STATUS;
        }
        if http.event_id.is_some() {
            flags |= HAS_EVENT_ID;
        }
    }
    out.push(flags);
    if let Some(session) = &frame.session_id {
        push_bytes(out, session.as_bytes());
    }
    if let Some(http) = &frame.http {
        if let Some(status) = http.status {
            out.extend_from_slice(&status.to_le_bytes());
        }
        let count = u32::try_from(http.headers.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (name, value) in http.headers.iter().take(count as usize) {
            push_bytes(out, name.to_ascii_lowercase().as_bytes());
            push_bytes(out, value.as_bytes());
        }
        if let Some(event_id) = &http.event_id {
            push_bytes(out, event_id.as_bytes());
        }
    }
    push_bytes(out, &frame.message);
}

/// Appends a dropped marker's encoding (count, then offset) to `out`.
pub(crate) fn encode_dropped(count: u64, offset_ns: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&offset_ns.to_le_bytes());
}

/// Reads fields from a byte slice, checking every bound.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(format!(
                "{what}: {n} bytes needed, {} left",
                self.data.len() - self.pos
            ));
        };
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let bytes = self.bytes(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what}: not UTF-8"))
    }
}

/// Decodes a frame payload; every byte must be used.
pub(crate) fn decode_frame(payload: &[u8]) -> Result<TapeFrame, String> {
    let mut c = Cursor::new(payload);
    let offset_ns = c.u64("offset_ns")?;
    let direction = match c.u8("direction")? {
        0 => Direction::ClientToServer,
        1 => Direction::ServerToClient,
        other => return Err(format!("unknown direction {other}")),
    };
    let edge = match c.u8("edge")? {
        0 => Edge::Client,
        1 => Edge::Server,
        other => return Err(format!("unknown edge {other}")),
    };
    let flags = c.u8("flags")?;
    if flags & !KNOWN_FLAGS != 0
        || (flags & (HAS_STATUS | HAS_EVENT_ID) != 0 && flags & HAS_HTTP == 0)
    {
        return Err(format!("invalid flags {flags:#04x}"));
    }
    let session_id = if flags & HAS_SESSION != 0 {
        Some(c.string("session_id")?)
    } else {
        None
    };
    let http = if flags & HAS_HTTP != 0 {
        let mut meta = HttpMeta::new();
        if flags & HAS_STATUS != 0 {
            meta.status = Some(c.u16("http status")?);
        }
        let count = c.u32("http header count")?;
        for _ in 0..count {
            let name = c.string("http header name")?;
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(format!("http header name \"{name}\" is not lowercase"));
            }
            let value = c.string("http header value")?;
            meta.headers.insert(name, value);
        }
        if flags & HAS_EVENT_ID != 0 {
            meta.event_id = Some(c.string("http event id")?);
        }
        Some(meta)
    } else {
        None
    };
    let message = c.bytes("message")?.to_vec();
    if !c.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the message",
            payload.len() - c.pos()
        ));
    }
    let mut frame = TapeFrame::new(offset_ns, direction, edge, message);
    frame.session_id = session_id;
    frame.http = http;
    Ok(frame)
}

/// Decodes a dropped marker payload.
pub(crate) fn decode_dropped(payload: &[u8]) -> Result<TapeItem, String> {
    let mut c = Cursor::new(payload);
    let count = c.u64("dropped count")?;
    let offset_ns = c.u64("dropped offset_ns")?;
    if !c.is_empty() {
        return Err("unexpected bytes after a dropped marker".to_owned());
    }
    Ok(TapeItem::Dropped { count, offset_ns })
}

/// The JSON-RPC method and, for `tools/call`, the tool name of a message, when it has them.
/// Only `tools/call` params are parsed, and only their `name`.
pub(crate) fn method_and_tool(message: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Params<'a> {
        #[serde(borrow)]
        name: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Msg<'a> {
        #[serde(borrow)]
        method: Option<&'a RawValue>,
        #[serde(borrow)]
        params: Option<&'a RawValue>,
    }
    let as_string = |raw: &RawValue| serde_json::from_str::<String>(raw.get()).ok();
    let Ok(msg) = serde_json::from_slice::<Msg<'_>>(message) else {
        return (None, None);
    };
    let Some(method) = msg.method.and_then(as_string) else {
        return (None, None);
    };
    let tool = if method == "tools/call" {
        msg.params
            .and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok())
            .and_then(|p| p.name)
            .and_then(as_string)
    } else {
        None
    };
    (Some(method), tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_methods_and_tool_names() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"name":1},"name":"get_weather"}}"#;
        assert_eq!(
            method_and_tool(call),
            (Some("tools/call".into()), Some("get_weather".into()))
        );
        let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"name":"x"}}"#;
        assert_eq!(method_and_tool(ping), (Some("ping".into()), None));
        assert_eq!(method_and_tool(br#"{"id":1,"result":{}}"#), (None, None));
        assert_eq!(method_and_tool(b"\xFF not json"), (None, None));
        assert_eq!(method_and_tool(br#"{"method":7}"#), (None, None));
    }
}
