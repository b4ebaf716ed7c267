//! The crate's one error type.

use crate::{ErrorCode, Message, RequestId};

/// What went wrong reading MCP bytes: invalid JSON, a JSON value that is not a JSON-RPC
/// message, a message over the size limit, or a malformed event stream.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not valid JSON.
    #[error("invalid JSON: {reason}")]
    Json {
        /// The 1-based line of the first error within the message.
        line: usize,
        /// The 1-based column of the first error within that line.
        column: usize,
        /// What the JSON parser said, with its position.
        reason: String,
    },
    /// Valid JSON that is not a JSON-RPC 2.0 message.
    #[error("invalid JSON-RPC message: {reason}")]
    InvalidMessage {
        /// The message's id, when it had a usable one, so the error can answer it.
        id: Option<RequestId>,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A frame larger than the configured limit; its bytes were skipped.
    #[error("message of {size} bytes or more at {location} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// How many bytes the frame had when it was cut off (at least the limit plus one).
        size: usize,
        /// The configured limit.
        limit: usize,
        /// Where the frame started, e.g. `line 7 (byte offset 1024)`.
        location: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The JSON-RPC error code that answers this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Json { .. } => ErrorCode::PARSE_ERROR,
            Self::InvalidMessage { .. } => ErrorCode::INVALID_REQUEST,
            Self::TooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
        }
    }

    /// The id of the offending message, when it could be read.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            Self::InvalidMessage { id, .. } => id.as_ref(),
            _ => None,
        }
    }

    /// The JSON-RPC error response that tells the sender about this error
    /// (with `id: null` when the id could not be read).
    pub fn to_error_response(&self) -> Message {
        Message::error_response(self.request_id(), self.code(), &self.to_string(), None)
    }

    pub(crate) fn invalid(id: Option<RequestId>, reason: impl Into<String>) -> Self {
        Self::InvalidMessage {
            id,
            reason: reason.into(),
        }
    }
}
