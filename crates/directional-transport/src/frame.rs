//! Frames and the transport traits.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use shadowcat_mcp::{Message, RequestId};
use shadowcat_raw_transport::ChildProcess;

use crate::Result;

/// One message's bytes as they arrived, with where they came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Frame {
    /// The message bytes, without framing (no line ending).
    pub bytes: Bytes,
    /// The 1-based line number, on line-framed transports.
    pub line: Option<u64>,
    /// The byte offset within the stream, on stream transports.
    pub offset: Option<u64>,
    /// The client request this message belongs to, when the transport knows it: a server
    /// message that arrived on the HTTP stream answering that request. An HTTP incoming
    /// transport sends such a message on the same request's stream.
    pub related: Option<RequestId>,
    /// HTTP headers that travel with the message to the other side (for example the
    /// 2026-07-28 `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` request headers), on HTTP
    /// transports; `None` elsewhere.
    pub headers: Option<Box<http::HeaderMap>>,
    /// The message already parsed from `bytes`, when the transport had to parse it anyway
    /// (HTTP reads a POST body to route it), so the pipeline does not parse it twice.
    pub parsed: Option<Box<Message>>,
    /// The status of the HTTP response that carried the message, on HTTP transports (a
    /// server message: the answer to a POST, or a GET stream). An error answer the
    /// transport makes in place of a response it could not use (an error status, an
    /// unexpected content type) has that response's status; one made for a request that
    /// got no response has none.
    pub status: Option<u16>,
    /// The SSE event id the message came with, when it came in a server-sent event that
    /// had one.
    pub event_id: Option<Box<str>>,
}

impl Frame {
    /// A frame with no position.
    pub fn new(bytes: Bytes) -> Self {
        Self {
            bytes,
            line: None,
            offset: None,
            related: None,
            headers: None,
            parsed: None,
            status: None,
            event_id: None,
        }
    }

    /// A frame of a message the transport has already parsed.
    pub fn parsed(message: Message) -> Self {
        Self {
            bytes: message.as_bytes().clone(),
            parsed: Some(Box::new(message)),
            ..Self::new(Bytes::new())
        }
    }
}

/// What a reader yields: a frame, or a framing error (such as an oversized line, whose bytes
/// were skipped) after which reading can go on.
pub type Received = std::result::Result<Frame, shadowcat_mcp::Error>;

/// Receives frames from one peer.
#[async_trait]
pub trait FrameReader: Send {
    /// The next frame; `Ok(None)` at the end of the stream. Cancel-safe: dropping the future
    /// loses no input.
    async fn recv(&mut self) -> Result<Option<Received>>;

    /// The next frame when one is already complete in the buffer, without I/O; `None` when
    /// [`recv`](Self::recv) must wait. Lets a caller handle a whole burst per wake-up.
    fn next_buffered(&mut self) -> Option<Received> {
        None
    }

    /// Whether another frame may be ready without waiting for I/O. A writer on the other
    /// side flushes when this is false, so bursts go out in one write.
    fn has_buffered(&self) -> bool {
        false
    }
}

/// How a writer's transport sends the message it was last given: the status of the HTTP
/// response the message goes out in, and the SSE event id it was given. See
/// [`FrameWriter::last_delivery`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivered {
    /// The status of the HTTP response that carries the message.
    pub status: Option<u16>,
    /// The id of the server-sent event that carries the message, when it has one.
    pub event_id: Option<Arc<str>>,
}

impl Delivered {
    /// A delivery in a response with `status`, in an event with `event_id` when given.
    pub fn new(status: Option<u16>, event_id: Option<Arc<str>>) -> Self {
        Self { status, event_id }
    }
}

/// Sends frames to one peer. Frames are buffered until [`flush`](Self::flush).
#[async_trait]
pub trait FrameWriter: Send {
    /// Adds one message (its bytes, without framing) to the buffer, without I/O.
    ///
    /// Messages the proxy makes itself (error answers) arrive here as bytes; transports that
    /// route by message (HTTP) parse them.
    fn enqueue(&mut self, message: &[u8]);

    /// Adds one parsed message to the buffer, without I/O, with what a transport may need to
    /// route it: the client request it belongs to (`related`, known when it arrived on that
    /// request's HTTP stream) and HTTP headers that travel with it. Line transports only
    /// need the bytes (the default).
    fn enqueue_message(
        &mut self,
        message: &Message,
        related: Option<&RequestId>,
        headers: Option<&http::HeaderMap>,
    ) {
        let _ = (related, headers);
        self.enqueue(message.as_bytes());
    }

    /// Adds deliberately broken bytes in place of `instead_of` (a fault injected on
    /// purpose), without I/O. Transports that route by message send them where
    /// `instead_of` would have gone; the default writes them like any message.
    fn enqueue_corrupt(&mut self, bytes: &[u8], instead_of: &Message, related: Option<&RequestId>) {
        let _ = (instead_of, related);
        self.enqueue(bytes);
    }

    /// Produces a transport-level fault for `message` (injected on purpose), without I/O.
    /// The default, for line transports: [`StreamFault::Cut`] writes the first half of
    /// the message's line (a truncated message); [`StreamFault::ExpireSession`] is
    /// reported back as `false`, and the caller then ends the connection.
    fn fault(
        &mut self,
        fault: StreamFault,
        message: &Message,
        related: Option<&RequestId>,
    ) -> bool {
        let _ = related;
        match fault {
            StreamFault::Cut => {
                let bytes = message.as_bytes();
                self.enqueue(&bytes[..bytes.len() / 2]);
                true
            }
            StreamFault::ExpireSession => false,
        }
    }

    /// How the message last given to [`enqueue`](Self::enqueue),
    /// [`enqueue_message`](Self::enqueue_message),
    /// [`enqueue_corrupt`](Self::enqueue_corrupt) or [`send`](Self::send) goes out, when
    /// the transport knows (HTTP: the response status and SSE event id); `None` when it
    /// does not say, or the message has no way out yet. A writer that wraps another one
    /// passes this on.
    fn last_delivery(&self) -> Option<Delivered> {
        None
    }

    /// How many bytes are buffered and not yet written.
    fn buffered(&self) -> usize;

    /// Queues one message, writing the buffer out when it has grown large.
    async fn send(&mut self, message: &[u8]) -> Result<()>;

    /// Writes out everything queued.
    async fn flush(&mut self) -> Result<()>;

    /// Flushes and closes the stream (the peer sees end of input).
    async fn close(&mut self) -> Result<()>;
}

/// A fault only a transport can produce, injected on purpose (interception rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamFault {
    /// Cut the stream in the middle of the message (an SSE event cut mid-way and the
    /// stream ended; on a line transport, half a line).
    Cut,
    /// End the session as if it had expired (HTTP: this and later requests get 404).
    ExpireSession,
}

/// The kind of transport a connection runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// Newline-delimited JSON over stdin/stdout.
    Stdio,
    /// Streamable HTTP (POST, GET stream, DELETE; 2025-03-26 and later).
    StreamableHttp,
    /// The legacy HTTP+SSE transport (2024-11-05: GET stream with an `endpoint` event).
    LegacySse,
}

/// An accepted client connection.
pub struct Connection {
    /// Frames from the client.
    pub reader: Box<dyn FrameReader>,
    /// Frames to the client.
    pub writer: Box<dyn FrameWriter>,
    /// The transport it runs on.
    pub kind: TransportKind,
    /// The proxy's id of the client session, on transports that have sessions (HTTP).
    pub session: Option<String>,
    /// Who the session's requests come from, when a gateway authenticated them (HTTP).
    pub grant: Option<crate::SessionGrant>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A connection to a server.
pub struct Upstream {
    /// Frames from the server.
    pub reader: Box<dyn FrameReader>,
    /// Frames to the server.
    pub writer: Box<dyn FrameWriter>,
    /// The server's process, when the proxy started it.
    pub process: Option<ChildProcess>,
    /// The transport it runs on.
    pub kind: TransportKind,
    /// What the upstream is, for messages (a command line or URL).
    pub description: String,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("kind", &self.kind)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// The side where the proxy accepts clients.
#[async_trait]
pub trait Incoming: Send {
    /// The next client connection; `Ok(None)` when no more will come.
    async fn accept(&mut self) -> Result<Option<Connection>>;
}

/// The side where the proxy connects to a server.
#[async_trait]
pub trait Outgoing: Send {
    /// Connects (for a subprocess: starts it).
    async fn connect(&mut self) -> Result<Upstream>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_stays_small_enough_to_move_per_message() {
        // Frames go through channels one per message: the HTTP facts add a status and a
        // boxed event id, not a map or an inline string.
        assert!(
            std::mem::size_of::<Frame>() <= 144,
            "{}",
            std::mem::size_of::<Frame>()
        );
        let frame = Frame::new(Bytes::from_static(b"{}"));
        assert_eq!((frame.status, frame.event_id), (None, None));
    }
}
