//! An HTTP/1.1 and HTTP/2 server on hyper, and the response bodies it streams.
//!
//! The server knows nothing about MCP: it accepts TCP connections, serves each with hyper's
//! automatic HTTP/1.1-or-HTTP/2 connection builder, and hands every request to a handler
//! function. Streaming answers (SSE) use [`ChannelBody`], whose bounded channel gives
//! back-pressure: a writer waits while the client is not reading, and sees the channel closed
//! as soon as the client goes away.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::{Error, Result};

/// The body of every response the server sends.
pub type HttpBody = UnsyncBoxBody<Bytes, Infallible>;

/// A whole body from bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> HttpBody {
    http_body_util::Full::new(bytes.into()).boxed_unsync()
}

/// An empty body.
pub fn empty_body() -> HttpBody {
    http_body_util::Empty::new().boxed_unsync()
}

/// A streaming body fed through a bounded channel: each `Bytes` sent is one data frame;
/// the body ends when every sender is dropped.
#[derive(Debug)]
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// A body and the sender that feeds it; at most `capacity` chunks wait unread.
    pub fn new(capacity: usize) -> (mpsc::Sender<Bytes>, Self) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (tx, Self { rx })
    }

    /// As an [`HttpBody`].
    pub fn boxed(self) -> HttpBody {
        UnsyncBoxBody::new(self)
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// Server tuning.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpServerConfig {
    /// How long open connections get to finish after shutdown is requested.
    pub drain_timeout: Duration,
    /// How long a client may take to send a request's headers (HTTP/1.1).
    pub header_read_timeout: Duration,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// A bound HTTP listener.
#[derive(Debug)]
pub struct HttpServer {
    listener: TcpListener,
    addr: SocketAddr,
    config: HttpServerConfig,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, config: HttpServerConfig) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("reading the listener's address"))?;
        Ok(Self {
            listener,
            addr,
            config,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves every connection with `handler` (given each request and the client's address)
    /// until `shutdown` completes; then stops accepting and gives open connections
    /// [`HttpServerConfig::drain_timeout`] to finish.
    pub async fn serve<H, F>(self, handler: H, shutdown: impl Future<Output = ()>) -> Result<()>
    where
        H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<HttpBody>> + Send + 'static,
    {
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.config.header_read_timeout)
            .keep_alive(true);
        // Every connection task is owned here: aborted if still open when serving ends.
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while connections.try_join_next().is_some() {}
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            let service = hyper::service::service_fn(move |req| {
                let response = handler(req, peer);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            connections.spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, "HTTP connection ended: {e}");
                }
            });
        }
        drop(self.listener);
        if tokio::time::timeout(self.config.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::info!(
                "open HTTP connections did not finish within {:?}; closing them",
                self.config.drain_timeout
            );
        }
        connections.shutdown().await;
        Ok(())
    }
}
