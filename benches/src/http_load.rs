//! The HTTP load generator: `sessions` MCP sessions over Streamable HTTP, each on its own
//! keep-alive connection with one request in flight, until a fixed number of echo calls has
//! been answered. Every answer is checked: it must be the echo of the request that session
//! sent (ids are unique across sessions, so an answer delivered to the wrong session fails
//! the run).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use shadowcat_mcp::{Message, SseDecoder, SseItem};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::answer::{check_answer, check_initialize};
use crate::load::message_bytes;
use crate::{Error, LatencySummary, LoadReport, Result, fixtures};

/// The protocol version the load generator asks for.
const PROTOCOL_VERSION: &str = "2025-11-25";

/// One HTTP load run.
#[derive(Debug, Clone)]
pub struct HttpLoadConfig {
    /// The MCP endpoint, `http://host:port/path`.
    pub url: String,
    /// Concurrent sessions, each with one request in flight.
    pub sessions: usize,
    /// Requests measured, after the warm-up.
    pub requests: u64,
    /// Requests sent and checked but not measured.
    pub warmup: u64,
    /// How long one request may take before the run fails.
    pub timeout: Duration,
    /// The `Authorization` header every request carries, if any.
    pub authorization: Option<String>,
}

impl HttpLoadConfig {
    /// 16 sessions, 100,000 requests after 10,000 of warm-up, a 10 s timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            sessions: 16,
            requests: 100_000,
            warmup: 10_000,
            timeout: Duration::from_secs(10),
            authorization: None,
        }
    }

    /// Runs the load on a single-threaded runtime in the calling thread.
    pub fn run(&self) -> Result<LoadReport> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start a runtime: {e}")))?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(&self) -> Result<LoadReport> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| Error::Usage(format!("bad URL {}: {e}", self.url)))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(Error::Usage(format!(
                "the URL must be http://host:port/path: {}",
                self.url
            )));
        }
        let shared = Arc::new(Shared {
            next: AtomicU64::new(0),
            total: self.warmup + self.requests,
            warmup: self.warmup,
            epoch: Instant::now(),
            first_measured: AtomicU64::new(u64::MAX),
            last_answer: AtomicU64::new(0),
        });
        let mut sessions = JoinSet::new();
        for _ in 0..self.sessions.max(1) {
            let mut session =
                Session::open_with(&uri, self.timeout, self.authorization.as_deref()).await?;
            session.authorization = self
                .authorization
                .clone()
                .and_then(|a| HeaderValue::try_from(a).ok());
            sessions.spawn(session.drive(shared.clone()));
        }
        let mut samples = Vec::with_capacity(self.requests as usize);
        while let Some(done) = sessions.join_next().await {
            let mut latencies =
                done.map_err(|e| Error::Internal(format!("a session task failed: {e}")))??;
            samples.append(&mut latencies);
        }
        let start = shared.first_measured.load(Ordering::Relaxed);
        let end = shared.last_answer.load(Ordering::Relaxed);
        let elapsed = Duration::from_nanos(end.saturating_sub(start));
        Ok(LoadReport {
            in_flight: self.sessions,
            requests: self.requests,
            warmup: self.warmup,
            elapsed,
            rate: self.requests as f64 / elapsed.as_secs_f64().max(1e-9),
            latency: LatencySummary::from_nanos(&mut samples),
        })
    }
}

struct Shared {
    /// The last id handed out.
    next: AtomicU64,
    total: u64,
    warmup: u64,
    epoch: Instant,
    /// When the first measured request was sent (ns since `epoch`).
    first_measured: AtomicU64,
    /// When the latest answer arrived (ns since `epoch`).
    last_answer: AtomicU64,
}

impl Shared {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// One MCP session on its own connection.
pub(crate) struct Session {
    sender: SendRequest<Full<Bytes>>,
    /// Drives the connection; aborted with the session.
    connection: tokio::task::JoinHandle<()>,
    uri: Uri,
    session_id: Option<HeaderValue>,
    timeout: Duration,
    authorization: Option<HeaderValue>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Session {
    /// Connects, initializes (request id 0) and sends `notifications/initialized`.
    pub(crate) async fn open(uri: &Uri, timeout: Duration) -> Result<Self> {
        Self::open_with(uri, timeout, None).await
    }

    /// Opens a session whose requests carry `authorization`.
    pub(crate) async fn open_with(
        uri: &Uri,
        timeout: Duration,
        authorization: Option<&str>,
    ) -> Result<Self> {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|source| Error::Io {
                context: format!("connecting to {authority}"),
                source,
            })?;
        stream.set_nodelay(true).map_err(|source| Error::Io {
            context: "setting TCP_NODELAY".into(),
            source,
        })?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::TargetGone(format!("refused the HTTP handshake: {e}")))?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut session = Self {
            sender,
            connection,
            uri: uri.clone(),
            session_id: None,
            timeout,
            authorization: authorization.and_then(|a| HeaderValue::try_from(a).ok()),
        };
        let body = fixtures::initialize_request(0, PROTOCOL_VERSION);
        let (status, session_id, answers) = session.post(body).await?;
        if status != StatusCode::OK {
            return Err(Error::Mismatch(format!("initialize answered {status}")));
        }
        let answer = answers
            .into_iter()
            .find(|m| m.is_response())
            .ok_or_else(|| Error::Mismatch("no answer to initialize".into()))?;
        check_initialize(&answer)?;
        session.session_id = session_id;
        let (status, _, _) = session.post(fixtures::initialized_notification()).await?;
        if !status.is_success() {
            return Err(Error::Mismatch(format!(
                "notifications/initialized answered {status}"
            )));
        }
        Ok(session)
    }

    /// Sends one POST; its status, the session id header and the messages of the answer.
    async fn post(
        &mut self,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Option<HeaderValue>, Vec<Message>)> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.path())
            .header(
                hyper::header::HOST,
                self.uri.authority().map_or("", |a| a.as_str()),
            )
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION);
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id.clone());
        }
        if let Some(a) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, a.clone());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Internal(format!("cannot build a request: {e}")))?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| Error::TargetGone(format!("closed the connection: {e}")))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| Error::TargetGone(format!("failed a request: {e}")))?;
            let status = response.status();
            let session_id = response.headers().get("mcp-session-id").cloned();
            let sse = response
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::TargetGone(format!("broke off an answer: {e}")))?
                .to_bytes();
            Ok((status, session_id, messages(body, sse)?))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                seconds: self.timeout.as_secs(),
                answered: 0,
                expected: 1,
            })?
    }

    /// Sends echo calls, one at a time, until every id is handed out; the latencies of the
    /// measured ones, in nanoseconds.
    async fn drive(mut self, shared: Arc<Shared>) -> Result<Vec<u64>> {
        let mut latencies = Vec::new();
        let mut body = Vec::with_capacity(128);
        loop {
            let id = shared.next.fetch_add(1, Ordering::Relaxed) + 1;
            if id > shared.total {
                return Ok(latencies);
            }
            body.clear();
            fixtures::write_echo_call(&mut body, id, &message_bytes(id));
            let sent = shared.now();
            if id == shared.warmup + 1 {
                shared.first_measured.fetch_min(sent, Ordering::Relaxed);
            }
            let (status, _, answers) = self.post(body.clone()).await?;
            let received = shared.now();
            if status != StatusCode::OK {
                return Err(Error::Mismatch(format!("request {id} answered {status}")));
            }
            let mut answered = None;
            for answer in &answers {
                if let Some(got) = check_answer(answer.as_bytes(), shared.total)? {
                    answered = Some(got);
                }
            }
            match answered {
                Some(got) if got == id => {}
                Some(got) => {
                    return Err(Error::Mismatch(format!(
                        "the session that sent request {id} received the answer to {got}"
                    )));
                }
                None => return Err(Error::Mismatch(format!("request {id} got no answer"))),
            }
            shared.last_answer.fetch_max(received, Ordering::Relaxed);
            if id > shared.warmup {
                latencies.push(received - sent);
            }
        }
    }
}

/// The messages of an answer body: one JSON message, or the `message` events of a stream.
fn messages(body: Bytes, sse: bool) -> Result<Vec<Message>> {
    let parse = |bytes: Bytes| {
        Message::parse(bytes).map_err(|e| Error::Mismatch(format!("unreadable answer: {e}")))
    };
    if !sse {
        if body.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(vec![parse(body)?]);
    }
    let mut decoder = SseDecoder::new(usize::MAX);
    decoder.push(&body);
    decoder.finish();
    let mut out = Vec::new();
    while let Some(item) = decoder.next_item() {
        match item.map_err(|e| Error::Mismatch(format!("bad event stream: {e}")))? {
            SseItem::Event(event) if event.event_type() == "message" && !event.data.is_empty() => {
                out.push(parse(Bytes::from(event.data))?);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Opens `count` sessions (16 at a time), each on a connection of its own that is closed
/// once the session is initialized: the sessions stay open on the target, idle, for
/// measuring what an idle session costs it. The session ids, in no particular order.
pub async fn open_idle_sessions(url: &str, count: usize) -> Result<Vec<String>> {
    let uri: Uri = url
        .parse()
        .map_err(|e| Error::Usage(format!("bad URL {url}: {e}")))?;
    let mut ids = Vec::with_capacity(count);
    let mut batch = JoinSet::new();
    let mut started = 0;
    while ids.len() < count {
        while started < count && batch.len() < 16 {
            let uri = uri.clone();
            batch.spawn(async move {
                let session = Session::open(&uri, Duration::from_secs(30)).await?;
                let id = session.session_id.as_ref().and_then(|v| v.to_str().ok());
                id.map(str::to_owned)
                    .ok_or_else(|| Error::Mismatch("initialize gave no Mcp-Session-Id".into()))
            });
            started += 1;
        }
        match batch.join_next().await {
            Some(done) => {
                ids.push(done.map_err(|e| Error::Internal(format!("a session task failed: {e}")))??)
            }
            None => break,
        }
    }
    Ok(ids)
}
