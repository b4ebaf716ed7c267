//! MCP protocol revisions, version negotiation and era detection.

use std::fmt;

use serde::Deserialize;

use crate::Message;

/// An MCP protocol revision this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// 2024-11-05: the first revision (HTTP+SSE transport).
    V2024_11_05,
    /// 2025-03-26: Streamable HTTP, batches, OAuth 2.1.
    V2025_03_26,
    /// 2025-06-18: structured tool output, elicitation; no batches.
    V2025_06_18,
    /// 2025-11-25: the last session-era revision.
    V2025_11_25,
    /// 2026-07-28: stateless; per-request `_meta`, `server/discover`.
    V2026_07_28,
}

impl ProtocolVersion {
    /// Every known revision, oldest first.
    pub const ALL: [Self; 5] = [
        Self::V2024_11_05,
        Self::V2025_03_26,
        Self::V2025_06_18,
        Self::V2025_11_25,
        Self::V2026_07_28,
    ];

    /// The newest known revision.
    pub const LATEST: Self = Self::V2026_07_28;

    /// The newest revision that uses the `initialize` handshake.
    pub const LATEST_SESSION_ERA: Self = Self::V2025_11_25;

    /// The revision's date string, as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// Looks up a revision by its date string.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The era the revision belongs to.
    pub const fn era(self) -> Era {
        match self {
            Self::V2026_07_28 => Era::Stateless,
            _ => Era::Session,
        }
    }

    /// Whether JSON-RPC batches are allowed (2025-03-26 only).
    pub const fn allows_batches(self) -> bool {
        matches!(self, Self::V2025_03_26)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a conversation carries its protocol state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Era {
    /// 2024-11-05 to 2025-11-25: an `initialize` handshake negotiates the version once.
    Session,
    /// 2026-07-28: every request carries its version and capabilities in `params._meta`.
    Stateless,
}

/// The `_meta` key that carries a stateless request's protocol version.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The `_meta` key that carries a stateless request's client capabilities.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// The `_meta` key that carries a stateless request's client info.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// The server's side of version negotiation: the revision to answer an `initialize` that
/// asked for `requested` with, given the revisions the server `supported`s.
///
/// The requested revision when supported; otherwise the newest supported session-era
/// revision (the client then decides whether it can go on). `None` when `supported` has no
/// session-era revision.
pub fn negotiate(requested: &str, supported: &[ProtocolVersion]) -> Option<ProtocolVersion> {
    if let Some(v) = ProtocolVersion::parse(requested)
        && supported.contains(&v)
        && v.era() == Era::Session
    {
        return Some(v);
    }
    supported
        .iter()
        .copied()
        .filter(|v| v.era() == Era::Session)
        .max()
}

/// The client's side: whether a server's answer `offered` is one the client, which
/// `supported`s these revisions, can speak.
pub fn accept(offered: &str, supported: &[ProtocolVersion]) -> Option<ProtocolVersion> {
    ProtocolVersion::parse(offered).filter(|v| supported.contains(v))
}

#[derive(Deserialize)]
struct ParamsMeta<'a> {
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<MetaFields<'a>>,
    #[serde(borrow, default, rename = "protocolVersion")]
    protocol_version: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MetaFields<'a> {
    #[serde(borrow, default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<std::borrow::Cow<'a, str>>,
}

/// What a single message says about its era and revision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EraSignal {
    /// The era the message belongs to.
    pub era: Era,
    /// The revision the message names, as written (it may be one this crate does not know).
    pub version: String,
}

/// Detects the era of a request from the message alone: an `initialize` request belongs to
/// the session era (its `params.protocolVersion` is the revision asked for); a request whose
/// `params._meta` carries [`META_PROTOCOL_VERSION`] is stateless. `None` when the message
/// says nothing (notifications, responses, and requests of a session already set up).
pub fn detect_era(msg: &Message) -> Option<EraSignal> {
    if !msg.is_request() {
        return None;
    }
    let params: ParamsMeta<'_> = serde_json::from_str(msg.params()?).ok()?;
    if msg.method() == Some("initialize") {
        return Some(EraSignal {
            era: Era::Session,
            version: params.protocol_version?.into_owned(),
        });
    }
    let version = params.meta?.protocol_version?.into_owned();
    Some(EraSignal {
        era: Era::Stateless,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_round_trip_and_order() {
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::parse(v.as_str()), Some(v));
        }
        assert!(ProtocolVersion::V2024_11_05 < ProtocolVersion::LATEST);
        assert_eq!(ProtocolVersion::parse("2099-01-01"), None);
        assert!(ProtocolVersion::V2025_03_26.allows_batches());
        assert!(!ProtocolVersion::V2025_06_18.allows_batches());
    }

    #[test]
    fn negotiation_is_pure() {
        use ProtocolVersion::*;
        let all = ProtocolVersion::ALL;
        assert_eq!(negotiate("2025-03-26", &all), Some(V2025_03_26));
        assert_eq!(negotiate("2099-01-01", &all), Some(V2025_11_25));
        assert_eq!(negotiate("2026-07-28", &all), Some(V2025_11_25));
        assert_eq!(negotiate("2025-06-18", &[V2024_11_05]), Some(V2024_11_05));
        assert_eq!(negotiate("2025-06-18", &[V2026_07_28]), None);
        assert_eq!(accept("2025-06-18", &all), Some(V2025_06_18));
        assert_eq!(accept("1999-01-01", &all), None);
    }

    #[test]
    fn detects_eras() {
        let init = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
        )
        .unwrap();
        assert_eq!(
            detect_era(&init),
            Some(EraSignal {
                era: Era::Session,
                version: "2025-06-18".into()
            })
        );
        let stateless = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        )
        .unwrap();
        assert_eq!(detect_era(&stateless).unwrap().era, Era::Stateless);
        let plain = Message::parse(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).unwrap();
        assert_eq!(detect_era(&plain), None);
    }
}
