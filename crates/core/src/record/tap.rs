//! The taps: a frame reader and a frame writer that record every message passing through
//! them at their edge of the proxy, and otherwise do exactly what the wrapped one does.

use async_trait::async_trait;
use bytes::Bytes;
use shadowcat_mcp::{Message, RequestId};
use shadowcat_tape::{Direction, Edge, HttpMeta, TapeFrame};
use shadowcat_transport::{
    Connection, Delivered, FrameReader, FrameWriter, Received, Result, StreamFault, TransportKind,
    Upstream,
};

use super::{RecordEdges, RecordHandle, SessionTap};

/// Where a tap sits: which way its messages travel, on which edge, over HTTP or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub(crate) direction: Direction,
    pub(crate) edge: Edge,
    pub(crate) http: bool,
}

/// The HTTP facts of one message besides its pass-through headers: the status of the
/// response that carried it and its SSE event id.
#[derive(Debug, Clone, Copy, Default)]
struct Carried<'a> {
    status: Option<u16>,
    event_id: Option<&'a str>,
}

impl<'a> Carried<'a> {
    fn delivered(delivered: Option<&'a Delivered>) -> Self {
        delivered.map_or_else(Self::default, |d| Self {
            status: d.status,
            event_id: d.event_id.as_deref(),
        })
    }
}

/// The bytes of one message to record: `parsed` when they are a parsed [`Message`]'s (known
/// to be JSON, which spares the tape writer checking them again).
struct Seen {
    bytes: Bytes,
    parsed: bool,
}

impl Place {
    fn record(
        &self,
        tap: &SessionTap,
        seen: Seen,
        headers: Option<&http::HeaderMap>,
        carried: Carried<'_>,
    ) {
        let mut frame = TapeFrame::new(tap.offset_now(), self.direction, self.edge, seen.bytes);
        if self.http {
            frame = frame.with_http(meta(headers, carried));
        }
        if seen.parsed {
            tap.try_record_parsed(frame);
        } else {
            tap.try_record(frame);
        }
    }
}

/// The place of a tap: messages from `from`, seen on the client edge or the server edge.
pub(crate) fn tap_place(from: shadowcat_mcp::Peer, client_edge: bool, http: bool) -> Place {
    Place {
        direction: match from {
            shadowcat_mcp::Peer::Client => Direction::ClientToServer,
            _ => Direction::ServerToClient,
        },
        edge: if client_edge {
            Edge::Client
        } else {
            Edge::Server
        },
        http,
    }
}

/// The HTTP metadata of a frame: its pass-through headers, the status of the response that
/// carried it and its SSE event id.
fn meta(headers: Option<&http::HeaderMap>, carried: Carried<'_>) -> HttpMeta {
    let mut meta = HttpMeta::new();
    if let Some(status) = carried.status {
        meta = meta.with_status(status);
    }
    if let Some(event_id) = carried.event_id {
        meta = meta.with_event_id(event_id);
    }
    if let Some(headers) = headers {
        for name in headers.keys() {
            let joined = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            meta = meta.with_header(name.as_str(), joined);
        }
    }
    meta
}

/// Records every frame read, as received.
pub(crate) struct RecordingReader {
    pub(crate) inner: Box<dyn FrameReader>,
    pub(crate) tap: SessionTap,
    pub(crate) place: Place,
}

impl RecordingReader {
    /// Records a frame as received. A frame the transport did not parse is parsed here, and
    /// the pipeline takes the parsed message from the frame instead of parsing it again: the
    /// tape then knows the bytes are JSON without checking. Bytes that do not parse are left
    /// for the pipeline to answer, and recorded as they are.
    fn seen(&self, item: &mut Received) {
        if let Ok(frame) = item {
            if frame.parsed.is_none()
                && let Ok(message) = Message::parse(frame.bytes.clone())
            {
                frame.parsed = Some(Box::new(message));
            }
            let carried = Carried {
                status: frame.status,
                event_id: frame.event_id.as_deref(),
            };
            let seen = Seen {
                bytes: frame.bytes.clone(),
                parsed: frame.parsed.is_some(),
            };
            self.place
                .record(&self.tap, seen, frame.headers.as_deref(), carried);
        }
    }
}

#[async_trait]
impl FrameReader for RecordingReader {
    async fn recv(&mut self) -> Result<Option<Received>> {
        let mut item = self.inner.recv().await?;
        if let Some(received) = &mut item {
            self.seen(received);
        }
        Ok(item)
    }

    fn next_buffered(&mut self) -> Option<Received> {
        let mut item = self.inner.next_buffered();
        if let Some(received) = &mut item {
            self.seen(received);
        }
        item
    }

    fn has_buffered(&self) -> bool {
        self.inner.has_buffered()
    }
}

/// Records every message written, as sent (after interception changed it), with how the
/// wrapped writer sends it (on HTTP: the response status and SSE event id).
pub(crate) struct RecordingWriter {
    pub(crate) inner: Box<dyn FrameWriter>,
    pub(crate) tap: SessionTap,
    pub(crate) place: Place,
}

impl RecordingWriter {
    /// Records a message the wrapped writer was just given.
    fn written(&self, seen: Seen, headers: Option<&http::HeaderMap>) {
        let delivered = if self.place.http {
            self.inner.last_delivery()
        } else {
            None
        };
        self.place.record(
            &self.tap,
            seen,
            headers,
            Carried::delivered(delivered.as_ref()),
        );
    }
}

#[async_trait]
impl FrameWriter for RecordingWriter {
    fn enqueue(&mut self, message: &[u8]) {
        self.inner.enqueue(message);
        self.written(unparsed(message), None);
    }

    fn enqueue_message(
        &mut self,
        message: &Message,
        related: Option<&RequestId>,
        headers: Option<&http::HeaderMap>,
    ) {
        self.inner.enqueue_message(message, related, headers);
        let seen = Seen {
            bytes: message.as_bytes().clone(),
            parsed: true,
        };
        self.written(seen, headers);
    }

    fn enqueue_corrupt(&mut self, bytes: &[u8], instead_of: &Message, related: Option<&RequestId>) {
        self.inner.enqueue_corrupt(bytes, instead_of, related);
        self.written(unparsed(bytes), None);
    }

    fn fault(
        &mut self,
        fault: StreamFault,
        message: &Message,
        related: Option<&RequestId>,
    ) -> bool {
        self.inner.fault(fault, message, related)
    }

    fn last_delivery(&self) -> Option<Delivered> {
        self.inner.last_delivery()
    }

    fn buffered(&self) -> usize {
        self.inner.buffered()
    }

    async fn send(&mut self, message: &[u8]) -> Result<()> {
        let sent = self.inner.send(message).await;
        self.written(unparsed(message), None);
        sent
    }

    async fn flush(&mut self) -> Result<()> {
        self.inner.flush().await
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
}

/// Bytes written as they are, not known to be a parsed message.
fn unparsed(bytes: &[u8]) -> Seen {
    Seen {
        bytes: Bytes::copy_from_slice(bytes),
        parsed: false,
    }
}

/// Puts recording taps on the client edge (what the client sent and was sent) and, unless
/// the recorder records the client edge only, on the server edge (what the server was sent
/// and sent).
pub(crate) fn tap_both_edges(
    recorder: &RecordHandle,
    client: Connection,
    upstream: Upstream,
) -> (Connection, Upstream) {
    let tap = recorder.open_session(
        client.session.as_deref(),
        &upstream.description,
        transport_name(client.kind),
    );
    let (c_http, s_http) = (is_http(client.kind), is_http(upstream.kind));
    let client = Connection {
        reader: Box::new(RecordingReader {
            inner: client.reader,
            tap: tap.clone(),
            place: tap_place(shadowcat_mcp::Peer::Client, true, c_http),
        }),
        writer: Box::new(RecordingWriter {
            inner: client.writer,
            tap: tap.clone(),
            place: tap_place(shadowcat_mcp::Peer::Server, true, c_http),
        }),
        ..client
    };
    if recorder.edges() == RecordEdges::Client {
        return (client, upstream);
    }
    let upstream = Upstream {
        reader: Box::new(RecordingReader {
            inner: upstream.reader,
            tap: tap.clone(),
            place: tap_place(shadowcat_mcp::Peer::Server, false, s_http),
        }),
        writer: Box::new(RecordingWriter {
            inner: upstream.writer,
            tap,
            place: tap_place(shadowcat_mcp::Peer::Client, false, s_http),
        }),
        ..upstream
    };
    (client, upstream)
}

fn is_http(kind: TransportKind) -> bool {
    matches!(
        kind,
        TransportKind::StreamableHttp | TransportKind::LegacySse
    )
}

fn transport_name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::StreamableHttp => "streamable-http",
        TransportKind::LegacySse => "legacy-sse",
        _ => "stdio",
    }
}
