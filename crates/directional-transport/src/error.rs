//! The crate's one error type.

/// A transport failure, saying which side failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading from or writing to the client failed.
    #[error("client {context}: {source}")]
    Client {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading from or writing to the server failed.
    #[error("server {context}: {source}")]
    Upstream {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server's URL cannot be used, or its transport could not be set up.
    #[error("cannot connect to the server at {url}: {reason}")]
    UpstreamConnect {
        /// The server's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Starting or stopping the server process failed.
    #[error(transparent)]
    Process(#[from] shadowcat_raw_transport::Error),
}

impl Error {
    /// Whether the client's side failed.
    pub fn is_client(&self) -> bool {
        matches!(self, Self::Client { .. })
    }

    /// Whether the server's side failed.
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            Self::Upstream { .. } | Self::UpstreamConnect { .. } | Self::Process(_)
        )
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
