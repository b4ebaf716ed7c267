//! Why a request was not admitted.

use http::StatusCode;

/// What kind of authentication failure: decides the status and challenge, and names the
/// outcome in metrics and the audit log ([`AuthFailureKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailureKind {
    /// No bearer token (no `Authorization` header, or another scheme): 401 without an error
    /// code.
    Missing,
    /// An `access_token` in the query string: 400 `invalid_request`.
    TokenInQuery,
    /// A malformed `Authorization` header (two of them, `Bearer` without a token, characters
    /// a bearer token cannot have): 400 `invalid_request`.
    Malformed,
    /// A token that is not a well-formed JWT (bad base64 or JSON, missing `exp`, `crit`
    /// extensions) and cannot be introspected: 401 `invalid_token`.
    MalformedToken,
    /// A token longer than the configured limit: 401 `invalid_token`.
    Oversized,
    /// A JWT signed with an algorithm that is not allowed (`none`, HMAC, anything off the
    /// allow-list, or one that does not suit the key): 401 `invalid_token`.
    DisallowedAlgorithm,
    /// A JWT whose key id is not in the JWKS, even after refetching it: 401 `invalid_token`.
    UnknownKey,
    /// A JWT whose signature does not verify: 401 `invalid_token`.
    BadSignature,
    /// An expired token: 401 `invalid_token`.
    Expired,
    /// A token used before its `nbf`: 401 `invalid_token`.
    NotYetValid,
    /// A token from another issuer: 401 `invalid_token`.
    WrongIssuer,
    /// A token for another audience (not this resource): 401 `invalid_token`.
    WrongAudience,
    /// A token the introspection endpoint says is not active: 401 `invalid_token`.
    Inactive,
    /// A valid token without the scopes needed: 403 `insufficient_scope`.
    InsufficientScope,
    /// The JWKS or introspection endpoint could not be reached or answered badly: 503.
    Unavailable,
}

impl AuthFailureKind {
    /// A short snake_case name (`missing`, `expired`, `insufficient_scope`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::TokenInQuery => "token_in_query",
            Self::Malformed => "malformed",
            Self::MalformedToken => "malformed_token",
            Self::Oversized => "oversized",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Inactive => "inactive",
            Self::InsufficientScope => "insufficient_scope",
            Self::Unavailable => "unavailable",
        }
    }

    /// The HTTP status the gateway answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Missing => StatusCode::UNAUTHORIZED,
            Self::TokenInQuery | Self::Malformed => StatusCode::BAD_REQUEST,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::MalformedToken
            | Self::Oversized
            | Self::DisallowedAlgorithm
            | Self::UnknownKey
            | Self::BadSignature
            | Self::Expired
            | Self::NotYetValid
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::Inactive => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code of the challenge: `None` for [`AuthFailureKind::Missing`] and
    /// [`AuthFailureKind::Unavailable`].
    pub fn error_code(self) -> Option<&'static str> {
        match self {
            Self::Missing | Self::Unavailable => None,
            Self::TokenInQuery | Self::Malformed => Some("invalid_request"),
            Self::InsufficientScope => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }
}

impl std::fmt::Display for AuthFailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was refused: the kind and a precise reason. The reason never contains the
/// token.
///
/// ```
/// use shadowcat_auth::{AuthFailure, AuthFailureKind};
///
/// let failure = AuthFailure::new(AuthFailureKind::Expired, "the token expired 5 s ago");
/// assert_eq!(failure.kind(), AuthFailureKind::Expired);
/// assert_eq!(failure.to_string(), "the token expired 5 s ago");
/// assert_eq!(failure.kind().status(), http::StatusCode::UNAUTHORIZED);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    kind: AuthFailureKind,
    message: String,
    scopes: Vec<String>,
}

impl AuthFailure {
    /// A failure of this kind, for this reason.
    pub fn new(kind: AuthFailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            scopes: Vec::new(),
        }
    }

    /// An [`AuthFailureKind::InsufficientScope`] failure naming the scopes needed.
    pub fn insufficient_scope(scopes: &[String], message: impl Into<String>) -> Self {
        Self {
            kind: AuthFailureKind::InsufficientScope,
            message: message.into(),
            scopes: scopes.to_vec(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> AuthFailureKind {
        self.kind
    }

    /// The reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The scopes needed ([`AuthFailureKind::InsufficientScope`] only; empty otherwise).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The HTTP status for it.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuthFailure {}
