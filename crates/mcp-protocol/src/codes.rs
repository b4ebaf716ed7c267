//! JSON-RPC 2.0 and MCP error codes.

/// A JSON-RPC error code.
///
/// The standard codes are associated constants; MCP and Shadowcat add their own in the
/// implementation-defined ranges. Any other code a peer sends is kept as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub i64);

impl ErrorCode {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: Self = Self(-32700);
    /// The JSON sent is not a valid JSON-RPC request object.
    pub const INVALID_REQUEST: Self = Self(-32600);
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: Self = Self(-32601);
    /// Invalid method parameters.
    pub const INVALID_PARAMS: Self = Self(-32602);
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: Self = Self(-32603);
    /// MCP: the requested resource does not exist (`resources/read`).
    pub const RESOURCE_NOT_FOUND: Self = Self(-32002);
    /// MCP: the connection was closed before the request completed.
    pub const CONNECTION_CLOSED: Self = Self(-32000);
    /// MCP: the request timed out.
    pub const REQUEST_TIMEOUT: Self = Self(-32001);
    /// MCP: the elicitation or URL interaction that a request needs has not completed.
    pub const URL_ELICITATION_REQUIRED: Self = Self(-32042);
    /// MCP 2026-07-28: the `Mcp-Method` / `Mcp-Name` headers do not match the body.
    pub const HEADER_MISMATCH: Self = Self(-32020);
    /// Shadowcat: the upstream server is gone (exited, crashed or disconnected).
    pub const UPSTREAM_UNAVAILABLE: Self = Self(-32050);
    /// Shadowcat: too many requests are pending on this session.
    pub const TOO_MANY_PENDING: Self = Self(-32051);
    /// Shadowcat: a message exceeded the configured size limit.
    pub const MESSAGE_TOO_LARGE: Self = Self(-32052);

    /// The numeric code.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The name of a code this crate knows, for logs and messages.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::PARSE_ERROR => "parse error",
            Self::INVALID_REQUEST => "invalid request",
            Self::METHOD_NOT_FOUND => "method not found",
            Self::INVALID_PARAMS => "invalid params",
            Self::INTERNAL_ERROR => "internal error",
            Self::RESOURCE_NOT_FOUND => "resource not found",
            Self::CONNECTION_CLOSED => "connection closed",
            Self::REQUEST_TIMEOUT => "request timeout",
            Self::URL_ELICITATION_REQUIRED => "URL elicitation required",
            Self::HEADER_MISMATCH => "header mismatch",
            Self::UPSTREAM_UNAVAILABLE => "upstream unavailable",
            Self::TOO_MANY_PENDING => "too many pending requests",
            Self::MESSAGE_TOO_LARGE => "message too large",
            _ => return None,
        })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl From<i64> for ErrorCode {
    fn from(code: i64) -> Self {
        Self(code)
    }
}
