//! The crate's one error type.

/// Why the proxy could not run, saying which side failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client side failed (its stream broke).
    #[error("client side: {0}")]
    Client(#[source] shadowcat_transport::Error),
    /// The server side failed (it could not be started, or its stream broke).
    #[error("server side: {0}")]
    Upstream(#[source] shadowcat_transport::Error),
    /// The client transport accepted no client.
    #[error("no client connected")]
    NoClient,
    /// The control API was asked to listen on an address other than loopback.
    #[error("the control API listens on loopback only; {addr} is not a loopback address")]
    ControlNotLoopback {
        /// The address asked for.
        addr: std::net::SocketAddr,
    },
    /// The control API could not listen or serve.
    #[error("control API: {0}")]
    Control(#[source] shadowcat_raw_transport::Error),
    /// Recording could not start (its directory, or its redaction settings).
    #[error("recording: {0}")]
    Record(String),
    /// The gateway's security configuration is invalid, or a part of it could not start.
    #[error("auth: {0}")]
    Auth(#[source] shadowcat_auth::Error),
    /// A configuration file could not be read or is invalid.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// Whether the client side failed.
    pub fn is_client(&self) -> bool {
        matches!(self, Self::Client(_) | Self::NoClient)
    }

    /// Whether the server side failed.
    pub fn is_upstream(&self) -> bool {
        matches!(self, Self::Upstream(_))
    }

    pub(crate) fn from_auth(err: shadowcat_auth::Error) -> Self {
        Self::Auth(err)
    }

    pub(crate) fn from_transport(err: shadowcat_transport::Error) -> Self {
        if err.is_client() {
            Self::Client(err)
        } else {
            Self::Upstream(err)
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
