//! An MCP server reached over HTTP: Streamable HTTP (2025-03-26 and later, including
//! stateless 2026-07-28 requests), with a fallback to the legacy HTTP+SSE transport
//! (2024-11-05).

mod authorize;
#[cfg(test)]
mod authorize_tests;
mod context;
mod dispatch;
mod ends;
mod legacy;
mod post;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Uri};
use shadowcat_raw_transport::{HttpClient, HttpClientConfig};
use tokio::sync::{Semaphore, mpsc};

use crate::{Error, Outgoing, Result, TransportKind, Upstream};
pub use authorize::{ChallengeAction, UpstreamAuthorizer, UpstreamChallenge};
use context::Context;
use dispatch::Dispatcher;
use ends::{HttpReader, HttpWriter};

/// How many frames wait for the reader before the request tasks pause.
const FRAME_QUEUE: usize = 256;

/// Which HTTP transport to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HttpMode {
    /// Streamable HTTP, falling back to the legacy HTTP+SSE transport when the upstream
    /// answers the `initialize` POST with 400, 404 or 405. The fallback happens after
    /// `connect`, so [`Upstream::kind`] says `StreamableHttp` either way.
    #[default]
    Auto,
    /// Streamable HTTP only.
    StreamableHttp,
    /// The legacy HTTP+SSE transport only: `connect` opens its event stream and waits for
    /// the endpoint.
    LegacySse,
}

/// Settings of an [`HttpOutgoing`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOutgoingConfig {
    /// Headers sent with every request (for example `Authorization` from configuration).
    pub headers: HeaderMap,
    /// The largest message (JSON body or SSE event) accepted from the upstream, in bytes.
    pub max_message_size: usize,
    /// How long a POST may wait for its answer's head (a JSON answer comes whole, so this
    /// bounds it all); `None`: no limit (the session's request timeout still applies).
    pub request_timeout: Option<Duration>,
    /// How long a GET stream, the DELETE, the head of the `initialize` answer, and the
    /// legacy `endpoint` event may take.
    pub handshake_timeout: Duration,
    /// Whether to open the standalone GET stream after `notifications/initialized`.
    pub standalone_stream: bool,
    /// How many reconnections in a row may fail (resuming a POST's stream, or the
    /// standalone stream) before giving up.
    pub reconnect_attempts: u32,
    /// The wait before reconnecting when the stream named no `retry`.
    pub default_retry: Duration,
    /// The longest wait before reconnecting (back-off doubles up to this).
    pub max_retry: Duration,
    /// How many POSTs may wait for their answer's head at once; flushing waits for a slot.
    pub max_concurrent_posts: usize,
    /// How long closing waits for requests in flight before ending the session.
    pub close_grace: Duration,
    /// Which transport to speak.
    pub mode: HttpMode,
    /// The HTTP client's settings (used when no client is given).
    pub client: HttpClientConfig,
    /// What supplies each request's `Authorization` header and answers the upstream's 401
    /// and 403 challenges (an OAuth client, say); it overrides an `Authorization` among
    /// [`headers`](Self::headers).
    pub authorizer: Option<Arc<dyn UpstreamAuthorizer>>,
}

impl Default for HttpOutgoingConfig {
    fn default() -> Self {
        Self {
            headers: HeaderMap::new(),
            max_message_size: shadowcat_mcp::DEFAULT_MAX_LINE,
            request_timeout: None,
            handshake_timeout: Duration::from_secs(30),
            standalone_stream: true,
            reconnect_attempts: 5,
            default_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(30),
            max_concurrent_posts: 64,
            close_grace: Duration::from_secs(2),
            mode: HttpMode::Auto,
            client: HttpClientConfig::default(),
            authorizer: None,
        }
    }
}

impl HttpOutgoingConfig {
    /// Adds a header sent with every request.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the largest message accepted from the upstream.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets the limit on waiting for a POST's answer head.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the limit on stream openings, DELETE, `initialize`'s answer head and the legacy
    /// endpoint.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets whether the standalone GET stream is opened.
    pub fn with_standalone_stream(mut self, open: bool) -> Self {
        self.standalone_stream = open;
        self
    }

    /// Sets how many reconnections in a row may fail.
    pub fn with_reconnect_attempts(mut self, attempts: u32) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// Sets the default and the longest wait before a reconnection.
    pub fn with_retry(mut self, default: Duration, max: Duration) -> Self {
        self.default_retry = default;
        self.max_retry = max.max(default);
        self
    }

    /// Sets how many POSTs may wait for their answer head at once (at least one).
    pub fn with_max_concurrent_posts(mut self, posts: usize) -> Self {
        self.max_concurrent_posts = posts.max(1);
        self
    }

    /// Sets how long closing waits for requests in flight.
    pub fn with_close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// Sets which transport to speak.
    pub fn with_mode(mut self, mode: HttpMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the HTTP client's settings.
    pub fn with_client(mut self, client: HttpClientConfig) -> Self {
        self.client = client;
        self
    }

    /// Sets what authorizes the requests (see [`UpstreamAuthorizer`]).
    pub fn with_authorizer(mut self, authorizer: impl UpstreamAuthorizer + 'static) -> Self {
        self.authorizer = Some(Arc::new(authorizer));
        self
    }

    /// Sets what authorizes the requests, shared with others.
    pub fn with_shared_authorizer(mut self, authorizer: Arc<dyn UpstreamAuthorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }
}

/// Connects to an MCP server over HTTP; each [`connect`](Outgoing::connect) is one
/// upstream MCP session.
///
/// The writer POSTs every flushed message (a batch as its array) without waiting for the
/// answers: each POST and the reading of its answer run in tasks the transport owns, at
/// most [`HttpOutgoingConfig::max_concurrent_posts`] waiting for an answer head at once.
/// Only `initialize` is waited for (its answer carries the session id). The reader yields
/// every message the upstream sends, in arrival order: JSON answers, each event of a POST's
/// SSE answer (related to that POST's request, and resumed with `Last-Event-ID` when the
/// stream ends before the response), and the standalone GET stream's messages.
///
/// When the upstream fails a request (unreachable, an HTTP error status, an answer that is
/// not JSON-RPC, a session the upstream no longer knows), the reader yields a JSON-RPC
/// error response for that request instead, so no request is left unanswered. Invalid
/// messages inside an SSE stream are yielded as errors.
///
/// ```no_run
/// # async fn demo() -> shadowcat_transport::Result<()> {
/// use shadowcat_transport::{HttpOutgoing, HttpOutgoingConfig, Outgoing};
///
/// let url = "http://127.0.0.1:8080/mcp".parse().expect("a URL");
/// let mut outgoing = HttpOutgoing::new(url, HttpOutgoingConfig::default());
/// let mut upstream = outgoing.connect().await?;
/// upstream.writer.send(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#).await?;
/// upstream.writer.flush().await?;
/// let answer = upstream.reader.recv().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HttpOutgoing {
    url: Uri,
    config: HttpOutgoingConfig,
    client: Option<HttpClient>,
}

impl HttpOutgoing {
    /// Connects to the MCP endpoint at `url` (`http://` or `https://`).
    pub fn new(url: Uri, config: HttpOutgoingConfig) -> Self {
        Self {
            url,
            config,
            client: None,
        }
    }

    /// Like [`new`](Self::new), with a client (and its connection pool) shared with others.
    pub fn with_client(url: Uri, config: HttpOutgoingConfig, client: HttpClient) -> Self {
        Self {
            url,
            config,
            client: Some(client),
        }
    }

    /// The upstream's URL.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The settings.
    pub fn config(&self) -> &HttpOutgoingConfig {
        &self.config
    }
}

#[async_trait]
impl Outgoing for HttpOutgoing {
    async fn connect(&mut self) -> Result<Upstream> {
        let url = self.url.clone();
        let scheme_ok = matches!(url.scheme_str(), Some("http" | "https"));
        if !scheme_ok || url.host().is_none() {
            return Err(Error::UpstreamConnect {
                url: url.to_string(),
                reason: "the URL must be http:// or https:// with a host".into(),
            });
        }
        let client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let client = HttpClient::new(&self.config.client)?;
                self.client = Some(client.clone());
                client
            }
        };
        let config = self.config.clone();
        let posts = config.max_concurrent_posts.max(1);
        let close_bound = config.close_grace + config.handshake_timeout + Duration::from_secs(1);
        let legacy_only = config.mode == HttpMode::LegacySse;
        let (frames_tx, frames_rx) = mpsc::channel(FRAME_QUEUE);
        let ctx = Arc::new(Context::new(client, url.clone(), config, frames_tx));
        let permits = Arc::new(Semaphore::new(posts));
        let (commands_tx, commands_rx) = mpsc::channel(posts + 1);
        let mut dispatcher = Dispatcher::new(ctx, permits.clone());
        let kind = if legacy_only {
            dispatcher
                .open_legacy()
                .await
                .map_err(|reason| Error::UpstreamConnect {
                    url: url.to_string(),
                    reason,
                })?;
            TransportKind::LegacySse
        } else {
            TransportKind::StreamableHttp
        };
        let task = tokio::spawn(dispatcher.run(commands_rx));
        Ok(Upstream {
            reader: Box::new(HttpReader::new(frames_rx)),
            writer: Box::new(HttpWriter::new(commands_tx, permits, close_bound, task)),
            process: None,
            kind,
            description: url.to_string(),
        })
    }
}
