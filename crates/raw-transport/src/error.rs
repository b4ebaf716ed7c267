//! The crate's one error type.

/// An I/O failure, saying what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The program that failed to start.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Any other I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// An HTTP request to the server failed before a response arrived (connection refused,
    /// TLS handshake, connection reset).
    #[error("HTTP {method} {uri} failed: {}", chain(source))]
    Http {
        /// The request's method.
        method: http::Method,
        /// The request's URL.
        uri: String,
        /// Why.
        source: hyper_util::client::legacy::Error,
    },
    /// The TLS configuration could not be built.
    #[error("cannot configure TLS: {source}")]
    Tls {
        /// Why.
        source: rustls::Error,
    },
    /// A PEM file (certificates, private key) could not be read or holds nothing usable.
    #[error("{}: {message}", path.display())]
    Pem {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether an HTTP request failed while connecting (nothing was sent).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Http { source, .. } if source.is_connect())
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { context, source }
    }
}

/// An error and its sources, joined with `: ` (hyper's errors keep the cause in the source).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
