//! What the proxy knows about one session.

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;
use shadowcat_mcp::{Era, Message, ProtocolVersion};

use crate::SessionId;

/// The client-facing transport a session arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// Streamable HTTP (2025-03-26 and later): one endpoint, `Mcp-Session-Id`.
    StreamableHttp,
    /// The 2024-11-05 HTTP+SSE transport: a GET event stream plus a POST endpoint.
    LegacySse,
    /// Newline-delimited JSON over a child process's standard input and output.
    Stdio,
}

impl TransportKind {
    /// The name used in logs and metric labels: `streamable-http`, `legacy-sse`, `stdio`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StreamableHttp => "streamable-http",
            Self::LegacySse => "legacy-sse",
            Self::Stdio => "stdio",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name and version a peer gives in `clientInfo` or `serverInfo` (MCP's
/// `Implementation`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Implementation {
    /// The program's name.
    pub name: String,
    /// The program's version.
    pub version: String,
}

impl Implementation {
    /// A name and a version.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
        }
    }
}

/// What the proxy knows about one session, whatever its transport.
///
/// The registry keeps one per session; [`SessionInfo::record_initialize`] and
/// [`SessionInfo::record_initialize_result`] fill it from the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The proxy-issued id the client uses.
    pub id: SessionId,
    /// The transport the client speaks.
    pub transport: TransportKind,
    /// The era, once known (from the handshake or the first stateless request).
    pub era: Option<Era>,
    /// The negotiated protocol revision, once known.
    pub protocol_version: Option<ProtocolVersion>,
    /// The client's `clientInfo`.
    pub client_info: Option<Implementation>,
    /// The server's `serverInfo`.
    pub server_info: Option<Implementation>,
    /// The client's `capabilities`, as the JSON text it sent.
    pub client_capabilities: Option<String>,
    /// The server's `capabilities`, as the JSON text it sent.
    pub server_capabilities: Option<String>,
    /// Which upstream the session is bound to (sticky sessions), e.g. `http://10.0.0.7:8080/mcp`
    /// or `stdio pool "files" #3`.
    pub upstream: Option<String>,
    /// The upstream's own session id. Never sent to the client.
    pub upstream_session_id: Option<String>,
    /// When the session was created.
    pub created: Instant,
    /// When the client last used the session.
    pub last_activity: Instant,
    /// How many client requests are awaiting an answer.
    pub pending: usize,
}

impl SessionInfo {
    /// A session that has just been created: nothing known but its id and transport.
    pub fn new(id: SessionId, transport: TransportKind, now: Instant) -> Self {
        Self {
            id,
            transport,
            era: None,
            protocol_version: None,
            client_info: None,
            server_info: None,
            client_capabilities: None,
            server_capabilities: None,
            upstream: None,
            upstream_session_id: None,
            created: now,
            last_activity: now,
            pending: 0,
        }
    }

    /// Records what an `initialize` request says: `clientInfo`, `capabilities` and the
    /// requested `protocolVersion` (provisionally, until the answer names the negotiated one).
    /// Returns `false`, changing nothing, when `request` is not a well-formed `initialize`.
    pub fn record_initialize(&mut self, request: &Message) -> bool {
        if !request.is_request() || request.method() != Some("initialize") {
            return false;
        }
        let Some(fields) = request.params().and_then(Handshake::read) else {
            return false;
        };
        self.client_info = fields.info.or(self.client_info.take());
        self.client_capabilities = fields.capabilities.or(self.client_capabilities.take());
        self.set_version(fields.version);
        true
    }

    /// Records what the answer to `initialize` says: `serverInfo`, `capabilities` and the
    /// negotiated `protocolVersion`. Returns `false`, changing nothing, when `response` is not
    /// a successful response with an object result.
    pub fn record_initialize_result(&mut self, response: &Message) -> bool {
        let Some(fields) = response.result().and_then(Handshake::read) else {
            return false;
        };
        self.server_info = fields.info.or(self.server_info.take());
        self.server_capabilities = fields.capabilities.or(self.server_capabilities.take());
        self.set_version(fields.version);
        true
    }

    fn set_version(&mut self, version: Option<ProtocolVersion>) {
        if let Some(v) = version {
            self.protocol_version = Some(v);
            self.era = Some(v.era());
        }
    }
}

/// The fields `initialize` params and results share.
struct Handshake {
    info: Option<Implementation>,
    capabilities: Option<String>,
    version: Option<ProtocolVersion>,
}

#[derive(Deserialize)]
struct HandshakeJson<'a> {
    #[serde(borrow, default, rename = "protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    capabilities: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "clientInfo")]
    client_info: Option<ImplementationJson<'a>>,
    #[serde(borrow, default, rename = "serverInfo")]
    server_info: Option<ImplementationJson<'a>>,
}

#[derive(Deserialize)]
struct ImplementationJson<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    version: Option<Cow<'a, str>>,
}

impl Handshake {
    fn read(json: &str) -> Option<Self> {
        let parsed: HandshakeJson<'_> = serde_json::from_str(json).ok()?;
        let info = parsed.client_info.or(parsed.server_info).map(|i| {
            Implementation::new(
                i.name.unwrap_or_default().into_owned(),
                i.version.unwrap_or_default().into_owned(),
            )
        });
        Some(Self {
            info,
            capabilities: parsed.capabilities.map(|c| c.get().to_owned()),
            version: parsed
                .protocol_version
                .and_then(|v| ProtocolVersion::parse(&v)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SessionInfo {
        SessionInfo::new(
            SessionId::parse("s1").unwrap(),
            TransportKind::StreamableHttp,
            Instant::now(),
        )
    }

    #[test]
    fn handshake_fills_client_and_server_fields() {
        let mut info = info();
        let request = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"inspector","version":"0.16.2"}}}"#,
        )
        .unwrap();
        assert!(info.record_initialize(&request));
        assert_eq!(
            info.client_info,
            Some(Implementation::new("inspector", "0.16.2"))
        );
        assert_eq!(
            info.client_capabilities.as_deref(),
            Some(r#"{"roots":{"listChanged":true}}"#)
        );
        assert_eq!(info.protocol_version, Some(ProtocolVersion::V2025_06_18));

        let response = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-03-26","capabilities":{"tools":{}},"serverInfo":{"name":"everything","version":"1.0.0"}}}"#,
        )
        .unwrap();
        assert!(info.record_initialize_result(&response));
        assert_eq!(
            info.server_info,
            Some(Implementation::new("everything", "1.0.0"))
        );
        assert_eq!(info.server_capabilities.as_deref(), Some(r#"{"tools":{}}"#));
        assert_eq!(info.protocol_version, Some(ProtocolVersion::V2025_03_26));
        assert_eq!(info.era, Some(Era::Session));
        assert_eq!(
            info.client_info,
            Some(Implementation::new("inspector", "0.16.2"))
        );
    }

    #[test]
    fn other_messages_change_nothing() {
        let mut info = info();
        let before = info.clone();
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":[1,2]}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"no"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":"text"}"#,
        ] {
            let msg = Message::parse(text).unwrap();
            assert!(!info.record_initialize(&msg));
            assert!(!info.record_initialize_result(&msg));
        }
        assert_eq!(info, before);
    }

    #[test]
    fn unknown_versions_and_missing_info_are_tolerated() {
        let mut info = info();
        let request = Message::parse(
            r#"{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"1999-01-01","clientInfo":{"name":"x"}}}"#,
        )
        .unwrap();
        assert!(info.record_initialize(&request));
        assert_eq!(info.protocol_version, None);
        assert_eq!(info.client_info, Some(Implementation::new("x", "")));
        assert_eq!(info.client_capabilities, None);
    }

    #[test]
    fn transport_names() {
        assert_eq!(TransportKind::StreamableHttp.to_string(), "streamable-http");
        assert_eq!(TransportKind::LegacySse.as_str(), "legacy-sse");
        assert_eq!(TransportKind::Stdio.as_str(), "stdio");
    }
}
