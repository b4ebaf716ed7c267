//! The HTTP incoming transport: Streamable HTTP (POST, GET stream, DELETE, resumption) and
//! the legacy HTTP+SSE transport, on the proxy's own session ids.
//!
//! [`HttpIncoming::new`] gives the [`Incoming`] side (one [`Connection`] per client session,
//! handed out when the session starts) and the [`HttpHandler`] that an HTTP server calls
//! for every request. The proxy runs one pipeline per connection, exactly as for stdio.

mod admission;
mod checks;
mod delivery;
mod handler;
mod legacy;
mod session;
mod sse_body;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use shadowcat_mcp::Message;
use shadowcat_session::{Limits, Registry, SessionId};
use tokio::sync::mpsc;

pub use admission::{
    AdmissionContext, Admitted, AnswerFilter, Grant, MessageAdmission, SessionGrant,
};
pub use handler::HttpHandler;
use session::SessionState;

use crate::{
    Connection, Delivered, Frame, FrameReader, FrameWriter, Incoming, Received, Result,
    StreamFault, TransportKind,
};

/// How the HTTP incoming transport behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpIncomingConfig {
    /// The Streamable HTTP endpoint's path.
    pub path: String,
    /// The legacy transport's event stream path.
    pub sse_path: String,
    /// The legacy transport's message path.
    pub message_path: String,
    /// Largest request body, in bytes (413 above).
    pub max_body: usize,
    /// Session limits (count, idle timeout).
    pub limits: Limits,
    /// Hosts the `Host` header may name (DNS rebinding protection); `None` turns the check
    /// off. Defaults to the loopback names.
    pub allowed_hosts: Option<Vec<String>>,
    /// Origins accepted besides those naming an allowed host (exact `scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    /// Interval of keep-alive comments on idle SSE streams; `None` for none.
    pub keepalive: Option<Duration>,
    /// The `retry:` sent in priming events.
    pub retry: Duration,
    /// Events kept per SSE stream for resumption.
    pub events_per_stream: usize,
    /// SSE streams remembered per session for resumption.
    pub streams_per_session: usize,
    /// How long a client that left a resumable stream has to come back before its requests
    /// are cancelled upstream.
    pub resume_window: Duration,
    /// Frames from one session waiting for the proxy.
    pub inbox: usize,
    /// Messages waiting for one client stream.
    pub stream_queue: usize,
}

impl Default for HttpIncomingConfig {
    fn default() -> Self {
        Self {
            path: "/mcp".into(),
            sse_path: "/sse".into(),
            message_path: "/message".into(),
            max_body: 4 << 20,
            limits: Limits::default(),
            allowed_hosts: Some(checks::loopback_hosts()),
            allowed_origins: Vec::new(),
            keepalive: Some(Duration::from_secs(15)),
            retry: Duration::from_secs(1),
            events_per_stream: 256,
            streams_per_session: 64,
            resume_window: Duration::from_secs(30),
            inbox: 256,
            stream_queue: 64,
        }
    }
}

impl HttpIncomingConfig {
    /// Sets the session limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the hosts the `Host` header may name (`None`: no check).
    pub fn with_allowed_hosts(mut self, hosts: Option<Vec<String>>) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// Adds origins accepted besides those naming an allowed host.
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Sets the largest request body.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets the keep-alive interval of idle SSE streams.
    pub fn with_keepalive(mut self, every: Option<Duration>) -> Self {
        self.keepalive = every;
        self
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The client sent DELETE (or closed the legacy stream).
    Deleted,
    /// It was idle past the timeout.
    Idle,
    /// The proxy ended it (its upstream went away).
    Proxy,
}

/// Hooks for metrics; every method has a no-op default.
pub trait HttpObserver: Send + Sync {
    /// A client request got its answer (`ok`: not a JSON-RPC error) after `latency`.
    fn request_done(&self, method: &str, ok: bool, latency: Duration) {
        let _ = (method, ok, latency);
    }
    /// The transport answered an HTTP request with `status`.
    fn http_response(&self, status: u16) {
        let _ = status;
    }
    /// A session started.
    fn session_opened(&self, kind: TransportKind) {
        let _ = kind;
    }
    /// A session ended.
    fn session_closed(&self, why: SessionEnd) {
        let _ = why;
    }
    /// A session was refused (too many).
    fn session_rejected(&self) {}
}

/// An observer that records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl HttpObserver for NoObserver {}

/// A registry entry: the session's state, set right after the registry issued its id.
pub(crate) type Slot = Arc<std::sync::OnceLock<Arc<SessionState>>>;

/// State shared by the handler, the sessions and the incoming side.
pub(crate) struct Shared {
    pub(crate) config: HttpIncomingConfig,
    pub(crate) registry: Registry<Slot>,
    pub(crate) accept: mpsc::Sender<Connection>,
    pub(crate) observer: Arc<dyn HttpObserver>,
    pub(crate) admission: Option<Arc<dyn MessageAdmission>>,
}

impl Shared {
    /// Removes a session from the registry (later requests get 404).
    pub(crate) fn forget(&self, id: &SessionId, why: SessionEnd) {
        if self.registry.remove(id).is_some() {
            tracing::info!(session = %id, "session closed ({why:?})");
            self.observer.session_closed(why);
        }
    }

    /// Starts a session: registers it and hands its connection to the proxy.
    pub(crate) async fn open(
        self: &Arc<Self>,
        kind: TransportKind,
        grant: Option<&Grant>,
    ) -> std::result::Result<Arc<SessionState>, OpenError> {
        let (inbox_tx, inbox_rx) = mpsc::channel(self.config.inbox);
        let session_kind = match kind {
            TransportKind::LegacySse => shadowcat_session::TransportKind::LegacySse,
            _ => shadowcat_session::TransportKind::StreamableHttp,
        };
        // The registry makes the id; the state needs it, so it is built in two steps.
        let slot: Slot = Arc::default();
        let id = self
            .registry
            .create(
                slot.clone(),
                |info| info.transport = session_kind,
                Instant::now(),
            )
            .map_err(|e| {
                self.observer.session_rejected();
                OpenError::Full(e.to_string())
            })?;
        let owner = grant.map(|g| Arc::<str>::from(g.owner()));
        let session_grant = SessionGrant::default();
        session_grant.set(grant);
        let state = Arc::new(SessionState::new(
            id.clone(),
            kind,
            self.clone(),
            inbox_tx,
            owner,
            session_grant,
        ));
        let _ = slot.set(state.clone());
        let connection = Connection {
            reader: Box::new(HttpReader { rx: inbox_rx }),
            writer: Box::new(HttpWriter {
                session: state.clone(),
                queue: Vec::new(),
                last: None,
            }),
            kind,
            session: Some(id.to_string()),
            grant: Some(state.grant.clone()),
        };
        if self.accept.send(connection).await.is_err() {
            self.registry.remove(&id);
            return Err(OpenError::ShuttingDown);
        }
        self.observer.session_opened(kind);
        tracing::info!(session = %id, transport = kind_name(kind), "session opened");
        Ok(state)
    }

    /// The open session with this id, marked used, when `grant` may use it: a session
    /// opened under a grant belongs to that grant's owner, and to nobody else (another
    /// caller gets the same answer as for an unknown id).
    pub(crate) fn session(&self, id: &str, grant: Option<&Grant>) -> Option<Arc<SessionState>> {
        let id = SessionId::parse(id)?;
        let state = self
            .registry
            .get(&id, Instant::now())
            .and_then(|slot| slot.get().cloned())?;
        match state.owner.as_deref() {
            Some(owner) if grant.map(Grant::owner) != Some(owner) => {
                tracing::info!(session = %id, "refused a request for a session another caller owns");
                None
            }
            _ => {
                state.grant.set(grant);
                Some(state)
            }
        }
    }
}

fn kind_name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::LegacySse => "legacy-sse",
        TransportKind::StreamableHttp => "streamable-http",
        TransportKind::Stdio => "stdio",
    }
}

/// Why a session could not start.
pub(crate) enum OpenError {
    /// Too many sessions.
    Full(String),
    /// The proxy no longer accepts connections.
    ShuttingDown,
}

/// The incoming side: one [`Connection`] per client session.
pub struct HttpIncoming {
    rx: mpsc::Receiver<Connection>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpIncoming")
            .field("sessions", &self.shared.registry.len())
            .finish_non_exhaustive()
    }
}

impl HttpIncoming {
    /// The incoming side and the handler an HTTP server calls for each request.
    pub fn new(config: HttpIncomingConfig, observer: Arc<dyn HttpObserver>) -> (Self, HttpHandler) {
        Self::with_admission(config, observer, None)
    }

    /// As [`new`](Self::new), with every posted message first put to `admission` (the
    /// gateway's policy and rate limits), and sessions bound to the [`Grant`] found in
    /// the extensions of the request that opened them.
    pub fn with_admission(
        config: HttpIncomingConfig,
        observer: Arc<dyn HttpObserver>,
        admission: Option<Arc<dyn MessageAdmission>>,
    ) -> (Self, HttpHandler) {
        let (accept, rx) = mpsc::channel(64);
        let registry = Registry::new(config.limits.clone());
        let shared = Arc::new(Shared {
            config,
            registry,
            accept,
            observer,
            admission,
        });
        (
            Self {
                rx,
                shared: shared.clone(),
            },
            HttpHandler::new(shared),
        )
    }

    /// Ends sessions idle past the timeout and cancels requests whose clients did not come
    /// back to a resumable stream; call it about once a second.
    pub fn sweep(&self) {
        let now = Instant::now();
        // A session with an open stream or a request in flight is in use, not idle.
        for info in self.shared.registry.list() {
            let busy = self
                .shared
                .registry
                .peek(&info.id)
                .and_then(|slot| slot.get().cloned())
                .is_some_and(|state| state.is_busy());
            if busy {
                self.shared.registry.get(&info.id, now);
            }
        }
        for (id, slot) in self.shared.registry.expire(now) {
            tracing::info!(session = %id, "session idle past the timeout: closed");
            self.shared.observer.session_closed(SessionEnd::Idle);
            if let Some(state) = slot.get() {
                state.close(SessionEnd::Idle);
            }
        }
        for info in self.shared.registry.list() {
            if let Some(state) = self
                .shared
                .registry
                .peek(&info.id)
                .and_then(|s| s.get().cloned())
            {
                state.sweep(now, self.shared.config.resume_window);
            }
        }
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        self.shared.registry.len()
    }

    /// Ends every session (at shutdown): each pipeline sees its client's input end.
    pub fn close_all(&self) {
        for info in self.shared.registry.list() {
            if let Some(state) = self
                .shared
                .registry
                .peek(&info.id)
                .and_then(|s| s.get().cloned())
            {
                state.close(SessionEnd::Proxy);
            }
        }
    }
}

#[async_trait]
impl Incoming for HttpIncoming {
    async fn accept(&mut self) -> Result<Option<Connection>> {
        Ok(self.rx.recv().await)
    }
}

/// Frames from one session's client, in arrival order.
struct HttpReader {
    rx: mpsc::Receiver<Frame>,
}

#[async_trait]
impl FrameReader for HttpReader {
    async fn recv(&mut self) -> Result<Option<Received>> {
        Ok(self.rx.recv().await.map(Ok))
    }

    fn next_buffered(&mut self) -> Option<Received> {
        self.rx.try_recv().ok().map(Ok)
    }

    fn has_buffered(&self) -> bool {
        !self.rx.is_empty()
    }
}

/// Messages for one session's client, routed to its streams on flush.
struct HttpWriter {
    session: Arc<SessionState>,
    queue: Vec<session::Delivery>,
    /// How the message last given goes out (see [`FrameWriter::last_delivery`]).
    last: Option<Delivered>,
}

impl HttpWriter {
    /// Queues a routed message (`None`: dropped, or waiting for a stream to go on).
    fn queue(&mut self, delivery: Option<session::Delivery>) {
        self.last = delivery.as_ref().map(session::Delivery::delivered);
        self.queue.extend(delivery);
    }
}

#[async_trait]
impl FrameWriter for HttpWriter {
    fn enqueue(&mut self, message: &[u8]) {
        match Message::parse(bytes::Bytes::copy_from_slice(message)) {
            Ok(msg) => self.enqueue_message(&msg, None, None),
            Err(e) => {
                self.last = None;
                tracing::warn!(session = %self.session.id, "dropped an unparsable message for the client: {e}")
            }
        }
    }

    fn enqueue_message(
        &mut self,
        message: &Message,
        related: Option<&shadowcat_mcp::RequestId>,
        _headers: Option<&http::HeaderMap>,
    ) {
        let delivery = self.session.route(message, related);
        self.queue(delivery);
    }

    fn enqueue_corrupt(
        &mut self,
        bytes: &[u8],
        instead_of: &Message,
        related: Option<&shadowcat_mcp::RequestId>,
    ) {
        let delivery = self.session.route(instead_of, related);
        self.queue(delivery.map(|d| d.corrupted(bytes::Bytes::copy_from_slice(bytes))));
    }

    fn fault(
        &mut self,
        fault: StreamFault,
        message: &Message,
        related: Option<&shadowcat_mcp::RequestId>,
    ) -> bool {
        match fault {
            StreamFault::Cut => {
                let delivery = self.session.route(message, related);
                self.queue(delivery.map(session::Delivery::cut));
            }
            StreamFault::ExpireSession => {
                // A request expires the session on its own POST: the answer it waits for
                // becomes the 404.
                let delivery = match message.id() {
                    Some(id) if message.is_request() && self.session.awaits_answer(id) => {
                        let stand_in = Message::error_response(
                            Some(id),
                            shadowcat_mcp::ErrorCode::REQUEST_TIMEOUT,
                            "session expired",
                            None,
                        );
                        self.session.route(&stand_in, None)
                    }
                    _ => self.session.route(message, related),
                };
                self.queue(delivery.map(session::Delivery::expired));
                tracing::info!(session = %self.session.id, "session expired on purpose (fault injection)");
                self.session.close(SessionEnd::Proxy);
            }
        }
        true
    }

    fn last_delivery(&self) -> Option<Delivered> {
        self.last.clone()
    }

    fn buffered(&self) -> usize {
        self.queue.len()
    }

    async fn send(&mut self, message: &[u8]) -> Result<()> {
        self.enqueue(message);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<()> {
        for delivery in self.queue.drain(..) {
            self.session.deliver(delivery).await;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        self.flush().await?;
        self.session.end_from_proxy();
        Ok(())
    }
}

impl Drop for HttpWriter {
    fn drop(&mut self) {
        // However the pipeline ended, the session is over for the client.
        self.session.end_from_proxy();
    }
}
