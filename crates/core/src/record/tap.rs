//! The taps: a frame reader and a frame writer that record every message passing through
//! them at their edge of the proxy, and otherwise do exactly what the wrapped one does.

use async_trait::async_trait;
use bytes::Bytes;
use shadowcat_mcp::{Message, RequestId};
use shadowcat_tape::{Direction, Edge, HttpMeta, TapeFrame};
use shadowcat_transport::{
    Connection, FrameReader, FrameWriter, Received, Result, StreamFault, TransportKind, Upstream,
};

use super::{RecordEdges, RecordHandle, SessionTap};

/// Where a tap sits: which way its messages travel, on which edge, over HTTP or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub(crate) direction: Direction,
    pub(crate) edge: Edge,
    pub(crate) http: bool,
}

impl Place {
    fn record(&self, tap: &SessionTap, bytes: Bytes, headers: Option<&http::HeaderMap>) {
        let mut frame = TapeFrame::new(tap.offset_now(), self.direction, self.edge, bytes);
        if self.http {
            frame = frame.with_http(meta(headers));
        }
        tap.try_record(frame);
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

/// The HTTP metadata a frame's pass-through headers give.
fn meta(headers: Option<&http::HeaderMap>) -> HttpMeta {
    let mut meta = HttpMeta::new();
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
    fn seen(&self, item: &Received) {
        if let Ok(frame) = item {
            self.place
                .record(&self.tap, frame.bytes.clone(), frame.headers.as_deref());
        }
    }
}

#[async_trait]
impl FrameReader for RecordingReader {
    async fn recv(&mut self) -> Result<Option<Received>> {
        let item = self.inner.recv().await?;
        if let Some(received) = &item {
            self.seen(received);
        }
        Ok(item)
    }

    fn next_buffered(&mut self) -> Option<Received> {
        let item = self.inner.next_buffered();
        if let Some(received) = &item {
            self.seen(received);
        }
        item
    }

    fn has_buffered(&self) -> bool {
        self.inner.has_buffered()
    }
}

/// Records every message written, as sent (after interception changed it).
pub(crate) struct RecordingWriter {
    pub(crate) inner: Box<dyn FrameWriter>,
    pub(crate) tap: SessionTap,
    pub(crate) place: Place,
}

#[async_trait]
impl FrameWriter for RecordingWriter {
    fn enqueue(&mut self, message: &[u8]) {
        self.place
            .record(&self.tap, Bytes::copy_from_slice(message), None);
        self.inner.enqueue(message);
    }

    fn enqueue_message(
        &mut self,
        message: &Message,
        related: Option<&RequestId>,
        headers: Option<&http::HeaderMap>,
    ) {
        self.place
            .record(&self.tap, message.as_bytes().clone(), headers);
        self.inner.enqueue_message(message, related, headers);
    }

    fn enqueue_corrupt(&mut self, bytes: &[u8], instead_of: &Message, related: Option<&RequestId>) {
        self.place
            .record(&self.tap, Bytes::copy_from_slice(bytes), None);
        self.inner.enqueue_corrupt(bytes, instead_of, related);
    }

    fn fault(
        &mut self,
        fault: StreamFault,
        message: &Message,
        related: Option<&RequestId>,
    ) -> bool {
        self.inner.fault(fault, message, related)
    }

    fn buffered(&self) -> usize {
        self.inner.buffered()
    }

    async fn send(&mut self, message: &[u8]) -> Result<()> {
        self.place
            .record(&self.tap, Bytes::copy_from_slice(message), None);
        self.inner.send(message).await
    }

    async fn flush(&mut self) -> Result<()> {
        self.inner.flush().await
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
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
