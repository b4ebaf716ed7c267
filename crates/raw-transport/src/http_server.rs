//! An HTTP/1.1 and HTTP/2 server on hyper, and the response bodies it streams.
//!
//! The server knows nothing about MCP: it accepts TCP connections (TLS with rustls when
//! configured, ALPN `h2` and `http/1.1`), serves each with hyper's automatic
//! HTTP/1.1-or-HTTP/2 connection builder, and hands every request to a handler function. Streaming answers (SSE) use [`ChannelBody`], whose bounded channel gives
//! back-pressure: a writer waits while the client is not reading, and sees the channel closed
//! as soon as the client goes away.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
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
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
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
    /// How long a client may take to send a request's headers (HTTP/1.1), and to finish the
    /// TLS handshake.
    pub header_read_timeout: Duration,
    /// TLS for every connection; `None`: plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

impl HttpServerConfig {
    /// The configuration serving TLS with `tls` (see [`tls_server_config`]).
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The configuration serving TLS with the certificate chain and private key in two PEM
    /// files (the chain starts with the server's own certificate).
    pub fn with_tls_pem_files(self, certificates: &Path, private_key: &Path) -> Result<Self> {
        let chain = crate::http_client::certificates_from_pem_file(certificates)?;
        let key = PrivateKeyDer::from_pem_file(private_key).map_err(|e| Error::Pem {
            path: private_key.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(self.with_tls(tls_server_config(chain, key)?))
    }
}

/// A rustls server configuration for [`HttpServerConfig::with_tls`]: this certificate chain
/// and key, the ring crypto provider, TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`, no client
/// certificates. Fails when the key does not suit the certificate or is not supported.
pub fn tls_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Tls { source })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| Error::Tls { source })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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

    /// Whether connections are served over TLS (`https`).
    pub fn is_tls(&self) -> bool {
        self.config.tls.is_some()
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
            if let Some(tls) = &self.config.tls {
                // The handshake runs in the connection's task, never in the accept loop.
                let handshake = tls_handshake(
                    tokio_rustls::TlsAcceptor::from(Arc::clone(tls)),
                    stream,
                    self.config.header_read_timeout,
                );
                let builder = builder.clone();
                let watcher = graceful.watcher();
                connections.spawn(async move {
                    let stream = match handshake.await {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                    };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(%peer, "HTTPS connection ended: {e}");
                    }
                });
                continue;
            }
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

/// Accepts TLS on `stream`, giving up after `timeout`.
async fn tls_handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the TLS handshake took too long",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HttpClient, HttpClientConfig, HttpRequestBody};
    use rustls::pki_types::PrivatePkcs8KeyDer;

    /// A self-signed certificate for 127.0.0.1 and localhost: (certificate, key).
    fn self_signed() -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a self-signed certificate")
    }

    /// Serves `config` on loopback, answering every request with its HTTP version; returns
    /// the address and a sender that stops the server.
    async fn serve(config: HttpServerConfig) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let server = HttpServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .expect("bind");
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(
            |request: Request<Incoming>, _peer| async move {
                Response::new(full_body(format!("{:?}", request.version())))
            },
            async move {
                let _ = stopped.await;
            },
        ));
        (addr, stop)
    }

    async fn get(client: &HttpClient, url: &str) -> Result<(http::Version, String)> {
        let request = http::Request::get(url)
            .body(HttpRequestBody::default())
            .expect("request");
        let response = client.send(request).await?;
        let version = response.version();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        Ok((version, String::from_utf8_lossy(&body).into_owned()))
    }

    #[tokio::test]
    async fn serves_https_with_h2_to_a_client_trusting_the_certificate() {
        let certified = self_signed();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let tls = tls_server_config(vec![certified.cert.der().clone()], key).expect("tls");
        let (addr, _stop) = serve(HttpServerConfig::default().with_tls(tls)).await;
        let url = format!("https://{addr}/x");

        let trusting = HttpClient::new(
            &HttpClientConfig::default().with_extra_roots(vec![certified.cert.der().clone()]),
        )
        .expect("client");
        let (version, body) = get(&trusting, &url).await.expect("an answer over TLS");
        assert_eq!(version, http::Version::HTTP_2, "ALPN offers h2 first");
        assert_eq!(body, "HTTP/2.0");

        let default = HttpClient::new(&HttpClientConfig::default()).expect("client");
        let error = get(&default, &url)
            .await
            .expect_err("the certificate is not trusted by default");
        assert!(error.to_string().contains(&url), "{error}");

        let plain = get(&trusting, &format!("http://{addr}/x")).await;
        assert!(plain.is_err(), "plain HTTP to a TLS port fails: {plain:?}");
    }

    #[tokio::test]
    async fn tls_from_pem_files_and_roots_from_a_pem_file() {
        let certified = self_signed();
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).expect("write");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
        let config = HttpServerConfig::default()
            .with_tls_pem_files(&cert, &key)
            .expect("TLS from PEM files");
        let (addr, _stop) = serve(config).await;
        let client_config = HttpClientConfig::default()
            .with_extra_roots_pem_file(&cert)
            .expect("roots from a PEM file");
        let client = HttpClient::new(&client_config).expect("client");
        let (_, body) = get(&client, &format!("https://localhost:{}/", addr.port()))
            .await
            .expect("an answer over TLS");
        assert!(body.starts_with("HTTP/"), "{body}");
    }

    #[test]
    fn pem_files_without_certificates_or_keys_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").expect("write");
        let error = HttpClientConfig::default()
            .with_extra_roots_pem_file(&empty)
            .expect_err("no certificate");
        assert!(error.to_string().contains("empty.pem"), "{error}");
        let missing = dir.path().join("missing.pem");
        let error = HttpServerConfig::default()
            .with_tls_pem_files(&missing, &empty)
            .expect_err("no such file");
        assert!(error.to_string().contains("missing.pem"), "{error}");
    }

    #[tokio::test]
    async fn plain_tcp_is_unchanged() {
        let (addr, stop) = serve(HttpServerConfig::default()).await;
        let client = HttpClient::new(&HttpClientConfig::default()).expect("client");
        let (version, _) = get(&client, &format!("http://{addr}/"))
            .await
            .expect("an answer");
        assert_eq!(version, http::Version::HTTP_11);
        drop(stop);
    }
}
