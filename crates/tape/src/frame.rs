//! The frame model: one recorded message and where it was seen.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

/// Which way a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Direction {
    /// From the MCP client towards the MCP server (requests, the client's notifications and
    /// its answers to server requests).
    ClientToServer,
    /// From the MCP server towards the MCP client.
    ServerToClient,
}

impl Direction {
    /// The name used in tapes: `client_to_server` or `server_to_client`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientToServer => "client_to_server",
            Self::ServerToClient => "server_to_client",
        }
    }

    /// Parses a name written by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "client_to_server" => Some(Self::ClientToServer),
            "server_to_client" => Some(Self::ServerToClient),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the proxy a message was seen on.
///
/// A message the proxy forwards is seen twice: a client's request arrives at the
/// [`Client`](Edge::Client) edge and leaves through the [`Server`](Edge::Server) edge. A tape
/// may hold either edge or both; recording both shows what the proxy changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Edge {
    /// The proxy's client-facing side.
    Client,
    /// The proxy's upstream side, facing the MCP server.
    Server,
}

impl Edge {
    /// The name used in tapes: `client` or `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }

    /// Parses a name written by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "client" => Some(Self::Client),
            "server" => Some(Self::Server),
            _ => None,
        }
    }
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HTTP facts about a message that arrived or left over HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpMeta {
    /// The status of the HTTP response that carried the message (server to client), or
    /// that answered it (client to server), when known.
    pub status: Option<u16>,
    /// Selected headers of the HTTP request or response that carried the message, by
    /// lowercase name. A repeated header is one entry, its values joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The SSE event id the message was sent with, when it came in a server-sent event.
    pub event_id: Option<String>,
}

impl HttpMeta {
    /// Empty metadata: no status, no headers, no event id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds a header; the name is lowercased.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// Sets the SSE event id.
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = Some(event_id.into());
        self
    }

    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.headers.is_empty() && self.event_id.is_none()
    }
}

/// One recorded message: when (relative to the tape's start), which way, on which edge, in
/// which session, its exact bytes, and HTTP metadata when it travelled over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TapeFrame {
    /// Nanoseconds from the tape's start (its header's wall-clock anchor), read from a
    /// monotonic clock.
    pub offset_ns: u64,
    /// Which way the message travelled.
    pub direction: Direction,
    /// Which side of the proxy it was seen on.
    pub edge: Edge,
    /// The proxy's session id (the one the client sees), which groups both edges' frames of
    /// one session. `None` for a message that belongs to no session, such as a request the
    /// proxy refused before any session existed.
    pub session_id: Option<String>,
    /// The message bytes exactly as they were received or sent, without framing (no line
    /// ending, no SSE field names). Usually a JSON-RPC message, but any bytes (a client's
    /// malformed input) are recorded as they were.
    pub message: Bytes,
    /// HTTP metadata, for messages that travelled over HTTP.
    pub http: Option<HttpMeta>,
}

impl TapeFrame {
    /// A frame with no session and no HTTP metadata.
    pub fn new(
        offset_ns: u64,
        direction: Direction,
        edge: Edge,
        message: impl Into<Bytes>,
    ) -> Self {
        Self {
            offset_ns,
            direction,
            edge,
            session_id: None,
            message: message.into(),
            http: None,
        }
    }

    /// Sets the session id.
    pub fn with_session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the HTTP metadata.
    pub fn with_http(mut self, http: HttpMeta) -> Self {
        self.http = Some(http);
        self
    }
}
