//! One client session of the HTTP incoming transport: the frames going to the proxy, the
//! client streams answers go out on, and the routing between them.
//!
//! Routing of a message for the client, first match wins:
//! 1. a response goes to the POST stream of the request it answers;
//! 2. a message that arrived on an upstream request's stream (`related`) goes to that
//!    request's POST stream;
//! 3. a progress notification goes to the POST stream of the request that gave its token;
//! 4. anything else goes to the standalone GET stream when one is open, else to the oldest
//!    open POST stream, else waits (bounded) for the next GET stream.
//!
//! Legacy HTTP+SSE sessions have one stream; everything goes there.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shadowcat_mcp::{ErrorCode, Message, MessageKind, ProtocolVersion, RequestId};
use shadowcat_session::{EventStore, StreamId};
use tokio::sync::mpsc;

use super::admission::{AnswerFilter, SessionGrant};
use super::delivery::{notified_token, progress_token};
use super::sse_body::Outbound;

pub(crate) use super::delivery::Delivery;
use super::{SessionEnd, Shared};
use crate::{Frame, TransportKind};

/// Identifies one open client stream of a session.
pub(crate) type RouteId = u64;

/// How many messages with no stream to go on wait for the next GET stream.
const BACKLOG: usize = 1024;

/// What a POST stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing sent yet: the first message decides.
    Undecided,
    /// One JSON answer.
    Json,
    /// An SSE stream (with its id in the event store).
    Sse(StreamId),
}

struct PostRoute {
    tx: Option<mpsc::Sender<Outbound>>,
    /// Requests of this POST not answered yet.
    remaining: usize,
    mode: Mode,
    /// Whether the client's revision wants priming events (>= 2025-11-25).
    prime: bool,
    started: Instant,
    method: Box<str>,
    /// Set when the client left a resumable stream: it may come back with `Last-Event-ID`.
    detached_since: Option<Instant>,
    /// The requests of this POST (for cancellation) and their progress tokens.
    requests: Vec<RequestId>,
    tokens: Vec<String>,
}

#[derive(Default)]
struct Routes {
    requests: HashMap<RequestId, RouteId>,
    posts: HashMap<RouteId, PostRoute>,
    progress: HashMap<String, RouteId>,
    /// The standalone GET stream (or the legacy stream): its sender and event stream.
    standalone: Option<(RouteId, mpsc::Sender<Outbound>, Option<StreamId>)>,
    backlog: VecDeque<Bytes>,
    /// Answers the gateway wants rewritten, by the request they answer.
    filters: HashMap<RequestId, Arc<dyn AnswerFilter>>,
    next_route: RouteId,
    closed: bool,
}

/// One session.
pub(crate) struct SessionState {
    pub(crate) id: shadowcat_session::SessionId,
    pub(crate) kind: TransportKind,
    shared: Arc<Shared>,
    inbox: Mutex<Option<mpsc::Sender<Frame>>>,
    routes: Mutex<Routes>,
    events: Mutex<EventStore>,
    /// The negotiated revision, once the `initialize` answer went out.
    pub(crate) version: Mutex<Option<ProtocolVersion>>,
    /// The caller the session belongs to, when the gateway authenticated the request that
    /// opened it.
    pub(crate) owner: Option<Arc<str>>,
    /// The grant of the session's latest request.
    pub(crate) grant: SessionGrant,
}

/// A resumed stream: its route and live channel when it is still open, and the events the
/// client missed.
pub(crate) type Resumed = (
    Option<RouteId>,
    Option<mpsc::Receiver<Outbound>>,
    Vec<Outbound>,
);

/// Why a POST could not be registered.
pub(crate) enum RegisterError {
    /// A request id is already pending in this session.
    DuplicateId(RequestId),
    /// The session has ended.
    Closed,
}

/// `msg` as the gateway's filter rewrote it, when it answers a filtered request.
fn filtered(routes: &mut Routes, msg: &Message) -> Option<Message> {
    if routes.filters.is_empty() || !msg.is_response() {
        return None;
    }
    let filter = routes.filters.remove(msg.id()?)?;
    let bytes = filter.filter(msg)?;
    match Message::parse(bytes) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(
                "an answer filter produced an invalid message ({e}); the answer goes out as it came"
            );
            None
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("session locks are never poisoned")
}

impl SessionState {
    pub(crate) fn new(
        id: shadowcat_session::SessionId,
        kind: TransportKind,
        shared: Arc<Shared>,
        inbox: mpsc::Sender<Frame>,
        owner: Option<Arc<str>>,
        grant: SessionGrant,
    ) -> Self {
        let events = EventStore::new(
            shared.config.events_per_stream,
            shared.config.streams_per_session,
        );
        Self {
            id,
            kind,
            shared,
            inbox: Mutex::new(Some(inbox)),
            routes: Mutex::new(Routes::default()),
            events: Mutex::new(events),
            version: Mutex::new(None),
            owner,
            grant,
        }
    }

    /// Whether the client's request `id` is waiting for its answer on a POST.
    pub(crate) fn awaits_answer(&self, id: &RequestId) -> bool {
        lock(&self.routes).requests.contains_key(id)
    }

    /// Whether a client stream is open or a request is waiting for its answer.
    pub(crate) fn is_busy(&self) -> bool {
        let routes = lock(&self.routes);
        !routes.posts.is_empty()
            || routes
                .standalone
                .as_ref()
                .is_some_and(|(_, tx, _)| !tx.is_closed())
    }

    /// Hands a client frame to the proxy; `false` when the session has ended.
    pub(crate) async fn push(&self, frame: Frame) -> bool {
        let inbox = lock(&self.inbox).clone();
        match inbox {
            Some(tx) => tx.send(frame).await.is_ok(),
            None => false,
        }
    }

    /// Registers a POST carrying `requests`; its answers arrive on the returned channel.
    pub(crate) fn register_post(
        &self,
        requests: &[&Message],
        method: &str,
        prime: bool,
    ) -> Result<(RouteId, mpsc::Receiver<Outbound>), RegisterError> {
        let (tx, rx) = mpsc::channel(self.shared.config.stream_queue);
        let mut routes = lock(&self.routes);
        if routes.closed {
            return Err(RegisterError::Closed);
        }
        for r in requests {
            if let Some(id) = r.id()
                && routes.requests.contains_key(id)
            {
                return Err(RegisterError::DuplicateId(id.clone()));
            }
        }
        routes.next_route += 1;
        let route = routes.next_route;
        let mut ids = Vec::with_capacity(requests.len());
        let mut tokens = Vec::new();
        for r in requests {
            if let Some(id) = r.id() {
                routes.requests.insert(id.clone(), route);
                ids.push(id.clone());
            }
            if let Some(token) = progress_token(r) {
                routes.progress.insert(token.clone(), route);
                tokens.push(token);
            }
        }
        routes.posts.insert(
            route,
            PostRoute {
                tx: Some(tx),
                remaining: ids.len(),
                mode: Mode::Undecided,
                prime,
                started: Instant::now(),
                method: method.into(),
                detached_since: None,
                requests: ids,
                tokens,
            },
        );
        Ok((route, rx))
    }

    /// Opens the standalone stream (GET, or the legacy stream); `None` when one is open.
    pub(crate) fn open_standalone(
        &self,
        prime: Option<u64>,
    ) -> Option<(RouteId, mpsc::Receiver<Outbound>, Vec<Outbound>)> {
        let (tx, rx) = mpsc::channel(self.shared.config.stream_queue);
        let mut routes = lock(&self.routes);
        if routes.closed
            || routes
                .standalone
                .as_ref()
                .is_some_and(|(_, t, _)| !t.is_closed())
        {
            return None;
        }
        routes.next_route += 1;
        let route = routes.next_route;
        let legacy = self.kind == TransportKind::LegacySse;
        let stream = (!legacy).then(|| lock(&self.events).open_stream());
        let mut first = Vec::new();
        if let (Some(stream), Some(retry_ms)) = (stream, prime) {
            let event_id = lock(&self.events).push(stream, Bytes::new());
            first.push(Outbound::Priming {
                event_id: event_id.to_string().into(),
                retry_ms,
            });
        }
        for bytes in routes.backlog.drain(..) {
            let event_id =
                stream.map(|s| lock(&self.events).push(s, bytes.clone()).to_string().into());
            first.push(Outbound::Message { event_id, bytes });
        }
        routes.standalone = Some((route, tx, stream));
        Some((route, rx, first))
    }

    /// Resumes a stream after `last_event_id`: the events the client missed, and the live
    /// rest when the stream is still open. `Err` text for a 400.
    pub(crate) fn resume(&self, last_event_id: &str) -> Result<Resumed, String> {
        let mut routes = lock(&self.routes);
        let replay = lock(&self.events)
            .replay_after(last_event_id)
            .map_err(|e| format!("{e}: `{last_event_id}`"))?;
        let first: Vec<Outbound> = replay
            .events
            .into_iter()
            .filter(|(_, bytes)| !bytes.is_empty())
            .map(|(id, bytes)| Outbound::Message {
                event_id: Some(id.into()),
                bytes,
            })
            .collect();
        if replay.closed {
            return Ok((None, None, first));
        }
        let (tx, rx) = mpsc::channel(self.shared.config.stream_queue);
        if let Some((route, post)) = routes
            .posts
            .iter_mut()
            .find(|(_, p)| p.mode == Mode::Sse(replay.stream))
        {
            post.tx = Some(tx);
            post.detached_since = None;
            return Ok((Some(*route), Some(rx), first));
        }
        if let Some((route, old, stream)) = routes.standalone.as_mut()
            && *stream == Some(replay.stream)
        {
            *old = tx;
            return Ok((Some(*route), Some(rx), first));
        }
        // A stream that is neither open nor closed in the store: its work ended elsewhere.
        Ok((None, None, first))
    }

    /// Routes one message for the client (see the module doc); `None` when it is dropped.
    /// Passes the answers to these requests through their filters.
    pub(crate) fn filter_answers(&self, filters: Vec<super::handler::Filtered>) {
        lock(&self.routes).filters.extend(filters);
    }

    pub(crate) fn route(&self, msg: &Message, related: Option<&RequestId>) -> Option<Delivery> {
        let mut routes = lock(&self.routes);
        let rewritten;
        let msg = match filtered(&mut routes, msg) {
            Some(m) => {
                rewritten = m;
                &rewritten
            }
            None => msg,
        };
        if self.kind == TransportKind::LegacySse {
            let (route, tx, _) = routes.standalone.as_ref()?;
            return Some(Delivery {
                tx: tx.clone(),
                item: Outbound::Message {
                    event_id: None,
                    bytes: msg.as_bytes().clone(),
                },
                standalone: Some(*route),
            });
        }
        let answered: Vec<&Message> = match msg.kind() {
            MessageKind::Response | MessageKind::Error => vec![msg],
            MessageKind::Batch => msg.batch().iter().filter(|m| m.is_response()).collect(),
            _ => Vec::new(),
        };
        let target = answered
            .iter()
            .find_map(|m| m.id().and_then(|id| routes.requests.get(id)).copied())
            .or_else(|| related.and_then(|id| routes.requests.get(id)).copied())
            .or_else(|| notified_token(msg).and_then(|t| routes.progress.get(&t).copied()));
        if let Some(route) = target {
            return self.deliver_post(&mut routes, route, msg, &answered);
        }
        if !answered.is_empty() {
            tracing::debug!(session = %self.id, "dropped an answer to a request no client waits for");
            return None;
        }
        if let Some((route, tx, stream)) = routes.standalone.as_ref()
            && !tx.is_closed()
        {
            let event_id = stream.map(|s| {
                lock(&self.events)
                    .push(s, msg.as_bytes().clone())
                    .to_string()
                    .into()
            });
            return Some(Delivery {
                tx: tx.clone(),
                item: Outbound::Message {
                    event_id,
                    bytes: msg.as_bytes().clone(),
                },
                standalone: Some(*route),
            });
        }
        let oldest = routes
            .posts
            .iter()
            .filter(|(_, p)| p.tx.as_ref().is_some_and(|t| !t.is_closed()))
            .min_by_key(|(route, _)| **route)
            .map(|(route, _)| *route);
        if let Some(route) = oldest {
            return self.deliver_post(&mut routes, route, msg, &[]);
        }
        if routes.backlog.len() >= BACKLOG {
            routes.backlog.pop_front();
            tracing::warn!(session = %self.id, "no client stream open: dropped the oldest waiting server message");
        }
        routes.backlog.push_back(msg.as_bytes().clone());
        None
    }

    fn deliver_post(
        &self,
        routes: &mut Routes,
        route: RouteId,
        msg: &Message,
        answered: &[&Message],
    ) -> Option<Delivery> {
        let mut done = Vec::new();
        for m in answered {
            if let Some(id) = m.id()
                && routes.requests.get(id) == Some(&route)
            {
                routes.requests.remove(id);
                done.push(*m);
            }
        }
        let post = routes.posts.get_mut(&route)?;
        post.remaining = post.remaining.saturating_sub(done.len());
        let last = post.remaining == 0;
        let mut first = Vec::new();
        if post.mode == Mode::Undecided {
            if last && msg.kind() != MessageKind::Batch {
                post.mode = Mode::Json;
            } else {
                let mut events = lock(&self.events);
                let stream = events.open_stream();
                post.mode = Mode::Sse(stream);
                if post.prime {
                    let event_id = events.push(stream, Bytes::new());
                    first.push(Outbound::Priming {
                        event_id: event_id.to_string().into(),
                        retry_ms: self.shared.config.retry.as_millis() as u64,
                    });
                }
            }
        }
        let event_id = match post.mode {
            Mode::Sse(stream) => {
                let mut events = lock(&self.events);
                let id = events.push(stream, msg.as_bytes().clone());
                if last {
                    events.close_stream(stream);
                }
                Some(id.to_string().into())
            }
            _ => None,
        };
        let tx = if last {
            post.tx.take()
        } else {
            post.tx.clone()
        };
        let latency = post.started.elapsed();
        let method = post.method.clone();
        if &*method == "initialize"
            && let Some(answer) = done.first()
        {
            self.record_initialize(answer);
        }
        if last {
            if let Some(post) = routes.posts.remove(&route) {
                for token in post.tokens {
                    routes.progress.remove(&token);
                }
            }
            let error = done.iter().any(|m| m.kind() == MessageKind::Error);
            self.shared.observer.request_done(&method, !error, latency);
        }
        let tx = tx?;
        let mut items = first;
        items.push(Outbound::Message {
            event_id,
            bytes: msg.as_bytes().clone(),
        });
        // Priming comes first, in the same delivery.
        let item = if items.len() == 2 {
            let message = items.pop().expect("two items");
            let priming = items.pop().expect("two items");
            let _ = tx.try_send(priming);
            message
        } else {
            items.pop().expect("one item")
        };
        Some(Delivery {
            tx,
            item,
            standalone: None,
        })
    }

    /// Remembers the revision and server the `initialize` answer names.
    fn record_initialize(&self, answer: &Message) {
        let version = answer
            .result()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .and_then(|r| ProtocolVersion::parse(r.get("protocolVersion")?.as_str()?));
        *lock(&self.version) = version;
        self.shared
            .registry
            .update(&self.id, |info| info.record_initialize_result(answer));
    }

    /// Sends a routed message; a client that left is noticed by its stream's guard.
    pub(crate) async fn deliver(&self, delivery: Delivery) {
        if delivery.tx.send(delivery.item).await.is_err()
            && let Some(route) = delivery.standalone
        {
            let mut routes = lock(&self.routes);
            if routes
                .standalone
                .as_ref()
                .is_some_and(|(r, _, _)| *r == route)
            {
                routes.standalone = None;
            }
        }
    }

    /// The client left the stream of `route` before its work was done.
    pub(crate) fn client_left(&self, route: RouteId) {
        let mut routes = lock(&self.routes);
        if self.kind == TransportKind::LegacySse {
            drop(routes);
            tracing::debug!(session = %self.id, "the legacy SSE stream closed");
            self.close(SessionEnd::Deleted);
            return;
        }
        if routes
            .standalone
            .as_ref()
            .is_some_and(|(r, _, _)| *r == route)
        {
            routes.standalone = None;
            return;
        }
        let Some(post) = routes.posts.get_mut(&route) else {
            return;
        };
        post.tx = None;
        if matches!(post.mode, Mode::Sse(_)) && post.prime {
            // Resumable: the client may come back with Last-Event-ID.
            post.detached_since = Some(Instant::now());
            return;
        }
        self.cancel(&mut routes, route, "the client disconnected");
    }

    /// Cancels the unanswered requests of `route` upstream.
    fn cancel(&self, routes: &mut Routes, route: RouteId, reason: &str) {
        let Some(post) = routes.posts.remove(&route) else {
            return;
        };
        for token in &post.tokens {
            routes.progress.remove(token);
        }
        let inbox = lock(&self.inbox).clone();
        for id in post.requests {
            if routes.requests.get(&id) != Some(&route) {
                continue;
            }
            routes.requests.remove(&id);
            tracing::info!(session = %self.id, request = %id, "{reason}: cancelling the request upstream");
            let request_id: serde_json::Value =
                serde_json::from_str(&id.to_json()).unwrap_or(serde_json::Value::Null);
            let params = serde_json::json!({ "requestId": request_id, "reason": reason });
            let cancel = Message::notification("notifications/cancelled", Some(&params));
            if let Some(tx) = &inbox
                && tx.try_send(Frame::new(cancel.into_bytes())).is_err()
            {
                tracing::warn!(session = %self.id, "could not pass the cancellation on: the proxy is not reading");
            }
            self.shared
                .observer
                .request_done(&post.method, false, post.started.elapsed());
        }
    }

    /// Cancels requests whose clients left a resumable stream longer than `window` ago.
    pub(crate) fn sweep(&self, now: Instant, window: Duration) {
        let mut routes = lock(&self.routes);
        let stale: Vec<RouteId> = routes
            .posts
            .iter()
            .filter(|(_, p)| {
                p.detached_since
                    .is_some_and(|t| now.duration_since(t) >= window)
            })
            .map(|(r, _)| *r)
            .collect();
        for route in stale {
            self.cancel(&mut routes, route, "the client did not resume its stream");
        }
    }

    /// Ends the session: the proxy sees end of input, client streams end, later requests
    /// get 404.
    pub(crate) fn close(&self, why: SessionEnd) {
        lock(&self.inbox).take();
        {
            let mut routes = lock(&self.routes);
            routes.closed = true;
            routes.standalone = None;
        }
        self.shared.forget(&self.id, why);
    }

    /// Ends the session from the proxy's side (its upstream is gone): open POSTs that are
    /// still waiting get an error.
    pub(crate) fn end_from_proxy(&self) {
        let waiting: Vec<(mpsc::Sender<Outbound>, Vec<RequestId>)> = {
            let mut routes = lock(&self.routes);
            routes.closed = true;
            routes.standalone = None;
            let posts: Vec<PostRoute> = routes.posts.drain().map(|(_, p)| p).collect();
            routes.requests.clear();
            posts
                .into_iter()
                .filter_map(|p| p.tx.map(|tx| (tx, p.requests)))
                .collect()
        };
        for (tx, ids) in waiting {
            for id in ids {
                let error = Message::error_response(
                    Some(&id),
                    ErrorCode::CONNECTION_CLOSED,
                    "the session ended before the server answered",
                    None,
                );
                let _ = tx.try_send(Outbound::Message {
                    event_id: None,
                    bytes: error.into_bytes(),
                });
            }
        }
        lock(&self.inbox).take();
        self.shared.forget(&self.id, SessionEnd::Proxy);
    }
}
