//! The crate's one error type.

/// What went wrong with a session: the registry is full, a session has too many requests in
/// flight, a session is unknown, or the system's random number generator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry already holds its maximum number of sessions, none of them idle long
    /// enough to be evicted. The gateway answers 503 (or 429) and counts the refusal.
    #[error("too many sessions: the limit is {max}")]
    TooManySessions {
        /// The configured maximum.
        max: usize,
    },
    /// The session already has its maximum number of requests in flight.
    #[error("too many pending requests in this session: the limit is {max}")]
    TooManyPending {
        /// The configured maximum.
        max: usize,
    },
    /// No session with this id is open (it never existed, ended, or was evicted).
    #[error("unknown session")]
    UnknownSession,
    /// The operating system's random number generator failed, so no unguessable id could
    /// be made.
    #[error("the system random number generator failed")]
    Random,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
