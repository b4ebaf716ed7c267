//! The crate's one error type.

use std::io;

/// Why a load run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target command could not be started.
    #[error("cannot start {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// What the OS said.
        source: io::Error,
    },
    /// Reading from or writing to the target failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The target answered wrongly: a bad message, an unknown or repeated id, wrong text.
    #[error("wrong answer from the target: {0}")]
    Mismatch(String),
    /// The target closed its output or exited before answering every request.
    #[error("the target {0}")]
    TargetGone(String),
    /// No answer arrived for too long.
    #[error("no progress for {seconds} s ({answered} of {expected} answers received)")]
    Timeout {
        /// How long the run waited.
        seconds: u64,
        /// Answers received (including the handshake).
        answered: u64,
        /// Answers expected.
        expected: u64,
    },
    /// One run of a comparison failed.
    #[error("{run}: {source}")]
    Run {
        /// Which run: direct or proxied, in flight, round.
        run: String,
        /// Why it failed.
        source: Box<Error>,
    },
    /// A failure inside the load generator itself (a thread that could not start or panicked).
    #[error("internal error: {0}")]
    Internal(String),
    /// A bad argument or missing file.
    #[error("{0}")]
    Usage(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
