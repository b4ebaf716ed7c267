//! The crate's error type.

/// What went wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid: which field, and why.
    #[error("{field}: {message}")]
    Config {
        /// The field at fault (`auth.jwks_url`).
        field: String,
        /// Why.
        message: String,
    },
    /// An HTTP exchange with an authorization server, a JWKS endpoint or a metadata
    /// document failed.
    #[error("{url}: {message}")]
    Http {
        /// What was asked for.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// A file (token store, audit log) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The OAuth flow could not complete.
    #[error("authorization failed: {0}")]
    Authorization(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
