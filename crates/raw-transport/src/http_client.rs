//! A pooled HTTP client: HTTP/1.1 and HTTP/2 (by ALPN) over plain TCP or TLS (rustls).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::{Error, Result};

/// The body of a request sent with [`HttpClient`]: the whole body in memory.
pub type HttpRequestBody = Full<Bytes>;

/// Settings of an [`HttpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpClientConfig {
    /// How long opening a TCP connection may take; `None`: no limit.
    pub connect_timeout: Option<Duration>,
    /// How long an idle pooled connection is kept; `None`: until the server closes it.
    pub pool_idle_timeout: Option<Duration>,
    /// How many idle connections are kept per host.
    pub pool_max_idle_per_host: usize,
    /// Root certificates trusted for `https://` in addition to the Mozilla (webpki) roots:
    /// a private certificate authority, or a test's own.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for HttpClientConfig {
    /// Connect timeout 10 s, idle connections kept 90 s, at most 32 per host.
    fn default() -> Self {
        Self {
            connect_timeout: Some(Duration::from_secs(10)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: 32,
            extra_roots: Vec::new(),
        }
    }
}

impl HttpClientConfig {
    /// The configuration with another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The configuration with another idle timeout for pooled connections.
    pub fn with_pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// The configuration with another number of idle connections kept per host.
    pub fn with_pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// The configuration trusting these root certificates too (the webpki roots stay).
    pub fn with_extra_roots(mut self, roots: Vec<CertificateDer<'static>>) -> Self {
        self.extra_roots.extend(roots);
        self
    }

    /// The configuration trusting every certificate in a PEM file too (the webpki roots
    /// stay). Fails when the file cannot be read or holds no certificate.
    pub fn with_extra_roots_pem_file(self, path: &Path) -> Result<Self> {
        let roots = certificates_from_pem_file(path)?;
        Ok(self.with_extra_roots(roots))
    }
}

/// Every certificate in a PEM file, in order; an error when there is none.
pub(crate) fn certificates_from_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem_error = |e: rustls::pki_types::pem::Error| Error::Pem {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certificates.is_empty() {
        return Err(Error::Pem {
            path: path.to_path_buf(),
            message: "no CERTIFICATE section".to_owned(),
        });
    }
    Ok(certificates)
}

/// A pooled HTTP client for `http://` and `https://` URLs; clones share the pool.
///
/// TLS uses rustls with the ring crypto provider (installed here, not taken from a process
/// default) and the Mozilla (webpki) root certificates, plus
/// [`HttpClientConfig::extra_roots`]; HTTP/2 is used when the server offers it by ALPN.
///
/// ```no_run
/// # async fn demo() -> shadowcat_raw_transport::Result<()> {
/// use shadowcat_raw_transport::{HttpRequestBody, HttpClient, HttpClientConfig};
///
/// let client = HttpClient::new(&HttpClientConfig::default())?;
/// let request = http::Request::get("http://127.0.0.1:8080/health")
///     .body(HttpRequestBody::default())
///     .expect("a valid request");
/// let response = client.send(request).await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Client<HttpsConnector<HttpConnector>, HttpRequestBody>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with these settings.
    ///
    /// Fails only when the TLS configuration cannot be built (the crypto provider offers no
    /// usable protocol version, or an extra root is not a usable certificate).
    pub fn new(config: &HttpClientConfig) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(config.connect_timeout);
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for root in &config.extra_roots {
            roots
                .add(root.clone())
                .map_err(|source| Error::Tls { source })?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| Error::Tls { source })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(tcp);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host);
        Ok(Self {
            inner: Arc::new(builder.build(https)),
        })
    }

    /// Sends `request` and returns the response once its head has arrived; the body is read
    /// from the returned response.
    pub async fn send(
        &self,
        request: http::Request<HttpRequestBody>,
    ) -> Result<http::Response<Incoming>> {
        let method = request.method().clone();
        let uri = request.uri().to_string();
        self.inner
            .request(request)
            .await
            .map_err(|source| Error::Http {
                method,
                uri,
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_naming_the_url() {
        // Bind and drop a listener so the port is (very likely) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let client = HttpClient::new(&HttpClientConfig::default()).expect("client");
        let url = format!("http://127.0.0.1:{port}/mcp");
        let request = http::Request::post(&url)
            .body(HttpRequestBody::from("{}"))
            .expect("request");
        let error = client.send(request).await.expect_err("nothing listens");
        assert!(error.is_connect(), "{error}");
        let text = error.to_string();
        assert!(text.contains(&url) && text.contains("POST"), "{text}");
    }

    #[tokio::test]
    async fn talks_http_1_over_loopback() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.expect("read");
                seen.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .expect("write");
            String::from_utf8_lossy(&seen).into_owned()
        });
        let client = HttpClient::new(&HttpClientConfig::default()).expect("client");
        let request = http::Request::get(format!("http://{addr}/x"))
            .header("x-probe", "1")
            .body(HttpRequestBody::default())
            .expect("request");
        let response = client.send(request).await.expect("response");
        assert_eq!(response.status(), http::StatusCode::OK);
        let head = server.await.expect("server task");
        assert!(head.starts_with("GET /x HTTP/1.1"), "{head}");
        assert!(head.contains("x-probe: 1"), "{head}");
    }
}
