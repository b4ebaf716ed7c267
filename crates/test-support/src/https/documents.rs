//! A small HTTP(S) server of JSON documents for tests: what it serves can change while the
//! test runs, and it counts the requests for every path.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use shadowcat_raw_transport::{HttpServer, HttpServerConfig, full_body};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::TestCa;

/// A request as a [`DocumentServer`] handler sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DocumentRequest {
    /// The method.
    pub method: http::Method,
    /// The path, without the query.
    pub path: String,
    /// The query, if any.
    pub query: Option<String>,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl DocumentRequest {
    /// The body's `application/x-www-form-urlencoded` fields, percent-decoded (`+` is a
    /// space).
    pub fn form(&self) -> HashMap<String, String> {
        let text = String::from_utf8_lossy(&self.body);
        text.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(name), form_decode(value))
            })
            .collect()
    }
}

/// What a [`DocumentServer`] answers: a status and a JSON body.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DocumentReply {
    /// The status.
    pub status: http::StatusCode,
    /// The body, sent as `application/json`.
    pub body: Value,
}

impl DocumentReply {
    /// `200 OK` with this JSON.
    pub fn json(body: Value) -> Self {
        Self {
            status: http::StatusCode::OK,
            body,
        }
    }

    /// This status with this JSON.
    pub fn status(status: u16, body: Value) -> Self {
        Self {
            status: http::StatusCode::from_u16(status).expect("a valid status code"),
            body,
        }
    }
}

type Handler = Arc<dyn Fn(&DocumentRequest) -> DocumentReply + Send + Sync>;

#[derive(Clone)]
enum Route {
    Fixed(DocumentReply),
    Handler(Handler),
}

#[derive(Default)]
struct Routes {
    routes: HashMap<String, Route>,
    delays: HashMap<String, Duration>,
    hits: HashMap<String, usize>,
}

/// An HTTP or HTTPS server on a loopback port serving JSON at paths, for tests: a JWKS,
/// metadata documents, an introspection endpoint.
///
/// Documents can be replaced while it runs (key rotation), answers can be delayed (a slow
/// authorization server), and [`DocumentServer::hits`] counts the requests each path got.
/// Dropping it stops the server.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use shadowcat_test_support::{DocumentServer, TestCa};
///
/// let ca = TestCa::new();
/// let server = DocumentServer::https(&ca).await;
/// server.set_json("/jwks.json", serde_json::json!({"keys": []}));
/// assert!(server.url("/jwks.json").starts_with("https://127.0.0.1:"));
/// assert_eq!(server.hits("/jwks.json"), 0);
/// # }
/// ```
pub struct DocumentServer {
    addr: SocketAddr,
    scheme: &'static str,
    routes: Arc<Mutex<Routes>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for DocumentServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentServer")
            .field("addr", &self.addr)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl DocumentServer {
    /// A server over HTTPS with `ca`'s server certificate, on `127.0.0.1`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound. Must be called inside a Tokio runtime.
    pub async fn https(ca: &TestCa) -> Self {
        Self::start(
            HttpServerConfig::default().with_tls(ca.server_tls()),
            "https",
        )
        .await
    }

    /// A server over plain HTTP on `127.0.0.1`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound. Must be called inside a Tokio runtime.
    pub async fn http() -> Self {
        Self::start(HttpServerConfig::default(), "http").await
    }

    async fn start(mut config: HttpServerConfig, scheme: &'static str) -> Self {
        config.drain_timeout = Duration::from_millis(100);
        let server = HttpServer::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
            .await
            .expect("binding a loopback port");
        let addr = server.local_addr();
        let routes = Arc::new(Mutex::new(Routes::default()));
        let (stop, stopped) = oneshot::channel::<()>();
        let state = Arc::clone(&routes);
        let task = tokio::spawn(async move {
            let served = server
                .serve(
                    move |request, _peer| {
                        let state = Arc::clone(&state);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|collected| collected.to_bytes())
                                .unwrap_or_default();
                            let request = DocumentRequest {
                                method: parts.method,
                                path: parts.uri.path().to_owned(),
                                query: parts.uri.query().map(str::to_owned),
                                headers: parts.headers,
                                body,
                            };
                            answer(&state, &request).await
                        }
                    },
                    async move {
                        let _ = stopped.await;
                    },
                )
                .await;
            if let Err(e) = served {
                eprintln!("the document server stopped: {e}");
            }
        });
        Self {
            addr,
            scheme,
            routes,
            stop: Some(stop),
            task,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The absolute URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// Serves `body` with `200 OK` at `path` from now on, replacing what was there.
    pub fn set_json(&self, path: &str, body: Value) {
        self.set_reply(path, DocumentReply::json(body));
    }

    /// Answers every request for `path` with `reply` from now on.
    pub fn set_reply(&self, path: &str, reply: DocumentReply) {
        self.lock()
            .routes
            .insert(path.to_owned(), Route::Fixed(reply));
    }

    /// Answers every request for `path` with what `handler` makes of it from now on.
    pub fn set_handler(
        &self,
        path: &str,
        handler: impl Fn(&DocumentRequest) -> DocumentReply + Send + Sync + 'static,
    ) {
        self.lock()
            .routes
            .insert(path.to_owned(), Route::Handler(Arc::new(handler)));
    }

    /// Waits `delay` before answering each request for `path` from now on.
    pub fn set_delay(&self, path: &str, delay: Duration) {
        self.lock().delays.insert(path.to_owned(), delay);
    }

    /// Stops serving `path` (404 from now on).
    pub fn remove(&self, path: &str) {
        self.lock().routes.remove(path);
    }

    /// How many requests `path` got so far (answered or not).
    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// The answer to one request: the route's reply after its delay, or 404.
async fn answer(
    routes: &Mutex<Routes>,
    request: &DocumentRequest,
) -> http::Response<shadowcat_raw_transport::HttpBody> {
    let (route, delay) = {
        let mut routes = routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *routes.hits.entry(request.path.clone()).or_default() += 1;
        (
            routes.routes.get(&request.path).cloned(),
            routes.delays.get(&request.path).copied(),
        )
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let reply = match route {
        Some(Route::Fixed(reply)) => reply,
        Some(Route::Handler(handler)) => handler(request),
        None => DocumentReply::status(404, serde_json::json!({"error": "not_found"})),
    };
    http::Response::builder()
        .status(reply.status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(full_body(reply.body.to_string()))
        .expect("a valid response")
}

/// Percent-decodes one `application/x-www-form-urlencoded` name or value.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::form_decode;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%2Fc%3d"), "a b/c=");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz"), "%zz");
    }
}
