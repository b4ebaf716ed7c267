//! The per-connection session state machine: messages and time in, effects out.

use std::collections::HashMap;

use crate::id::SmallText;

/// Pending requests by id. Ids come from peers, so the hasher is seeded per process.
type Pending = HashMap<RequestId, PendingRequest, foldhash::fast::RandomState>;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{Era, ErrorCode, Message, MessageKind, ProtocolVersion, RequestId, detect_era};

/// One side of a proxied conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// The MCP client (the side the proxy accepts).
    Client,
    /// The MCP server (the side the proxy connects to).
    Server,
}

impl Peer {
    /// The other side.
    pub fn other(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }

    /// `"client"` or `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Effect {
    /// Pass the message on to the other side, unchanged.
    Forward,
    /// Do not pass the message on; answer its sender with this message instead.
    Reply(Message),
    /// Do not pass the message on, and answer nothing.
    Drop,
    /// Send a message the session made (an error for a request that will not be answered, a
    /// cancellation) to a peer.
    Send {
        /// Who gets it.
        to: Peer,
        /// What to send.
        message: Message,
    },
    /// End the session.
    Close {
        /// Why, for the log.
        reason: String,
    },
}

/// Limits of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Most requests pending in each direction; more are answered with an error.
    pub max_pending: usize,
    /// A request not answered within this time is answered with an error and cancelled.
    pub request_timeout: Option<Duration>,
    /// A session with no message for this long is closed.
    pub idle_timeout: Option<Duration>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_pending: 4096,
            request_timeout: None,
            idle_timeout: None,
        }
    }
}

impl SessionConfig {
    /// Sets [`max_pending`](Self::max_pending).
    pub fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = max;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

/// Where the `initialize` handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Nothing seen yet.
    New,
    /// The client sent `initialize`; no answer yet.
    Initializing,
    /// The server answered `initialize`.
    Initialized,
    /// The client sent `notifications/initialized`: normal operation.
    Ready,
    /// The session ended.
    Closed,
}

/// A request waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    method: SmallText,
    started: Instant,
}

impl PendingRequest {
    /// The request's method.
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// When the request passed through.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Messages from the client.
    pub from_client: u64,
    /// Messages from the server.
    pub from_server: u64,
    /// Answers whose id matched no pending request (forwarded all the same).
    pub unmatched_answers: u64,
    /// Requests the session answered itself with an error.
    pub rejected: u64,
    /// Requests that timed out.
    pub timed_out: u64,
}

#[derive(Deserialize)]
struct CancelParams {
    #[serde(rename = "requestId")]
    request_id: serde_json::Value,
}

#[derive(Deserialize)]
struct InitializeResult {
    #[serde(rename = "protocolVersion")]
    protocol_version: Option<String>,
    #[serde(rename = "serverInfo")]
    server_info: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct InitializeParams {
    #[serde(rename = "clientInfo")]
    client_info: Option<serde_json::Value>,
}

/// The state of one proxied MCP conversation, as a sans-IO state machine.
///
/// The driver hands it every message with the time ([`on_message`](Self::on_message)) and
/// does what the returned [`Effect`] says; it asks [`poll_timeout`](Self::poll_timeout) when
/// to call [`on_timeout`](Self::on_timeout), and tells it when a peer goes away
/// ([`on_peer_closed`](Self::on_peer_closed)). It tracks the requests pending in both
/// directions, the handshake, the era and the negotiated revision.
///
/// ```
/// use std::time::Instant;
/// use shadowcat_mcp::{Effect, Message, Peer, Session, SessionConfig};
///
/// let now = Instant::now();
/// let mut session = Session::new(SessionConfig::default(), now);
/// let ping = Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
/// assert_eq!(session.on_message(Peer::Client, &ping, now), Effect::Forward);
/// assert_eq!(session.pending(Peer::Client), 1);
/// let effects = session.on_peer_closed(Peer::Server, "server exited", now);
/// assert!(matches!(&effects[0], Effect::Send { to: Peer::Client, .. }));
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    phase: Phase,
    era: Option<Era>,
    requested_version: Option<String>,
    version: Option<String>,
    client_info: Option<serde_json::Value>,
    server_info: Option<serde_json::Value>,
    initialize_id: Option<RequestId>,
    /// Requests from the client, waiting for the server.
    from_client: Pending,
    /// Requests from the server, waiting for the client.
    from_server: Pending,
    last_activity: Instant,
    stats: SessionStats,
}

impl Session {
    /// A new session, created at `now`.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        Self {
            config,
            phase: Phase::New,
            era: None,
            requested_version: None,
            version: None,
            client_info: None,
            server_info: None,
            initialize_id: None,
            from_client: Pending::default(),
            from_server: Pending::default(),
            last_activity: now,
            stats: SessionStats::default(),
        }
    }

    /// Where the handshake stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The era, once a message showed it.
    pub fn era(&self) -> Option<Era> {
        self.era
    }

    /// The revision the server agreed to (or the stateless revision requests carry).
    pub fn protocol_version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The negotiated revision, when it is one this crate knows.
    pub fn known_version(&self) -> Option<ProtocolVersion> {
        self.version.as_deref().and_then(ProtocolVersion::parse)
    }

    /// The revision the client asked for in `initialize`.
    pub fn requested_version(&self) -> Option<&str> {
        self.requested_version.as_deref()
    }

    /// The client's `clientInfo`.
    pub fn client_info(&self) -> Option<&serde_json::Value> {
        self.client_info.as_ref()
    }

    /// The server's `serverInfo`.
    pub fn server_info(&self) -> Option<&serde_json::Value> {
        self.server_info.as_ref()
    }

    /// How many requests `from` sent that are still waiting for an answer.
    pub fn pending(&self, from: Peer) -> usize {
        self.table(from).len()
    }

    /// The pending request `id` that `from` sent.
    pub fn pending_request(&self, from: Peer, id: &RequestId) -> Option<&PendingRequest> {
        self.table(from).get(id)
    }

    /// The session's counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    fn table(&self, from: Peer) -> &Pending {
        match from {
            Peer::Client => &self.from_client,
            Peer::Server => &self.from_server,
        }
    }

    fn table_mut(&mut self, from: Peer) -> &mut Pending {
        match from {
            Peer::Client => &mut self.from_client,
            Peer::Server => &mut self.from_server,
        }
    }

    /// Takes a message that `from` sent at `now` and says what to do with it.
    pub fn on_message(&mut self, from: Peer, msg: &Message, now: Instant) -> Effect {
        if self.phase == Phase::Closed {
            return Effect::Drop;
        }
        self.last_activity = now;
        match from {
            Peer::Client => self.stats.from_client += 1,
            Peer::Server => self.stats.from_server += 1,
        }
        if msg.kind() == MessageKind::Batch {
            return self.on_batch(from, msg, now);
        }
        if msg.is_request()
            && let Some(error) = self.admit(from, msg)
        {
            self.stats.rejected += 1;
            return Effect::Reply(error);
        }
        self.observe(from, msg, now);
        Effect::Forward
    }

    fn on_batch(&mut self, from: Peer, msg: &Message, now: Instant) -> Effect {
        let requests = msg.batch().iter().filter(|m| m.is_request()).count();
        let mut ids = std::collections::HashSet::new();
        let mut problem = None;
        if self.table(from).len() + requests > self.config.max_pending {
            problem = Some((ErrorCode::TOO_MANY_PENDING, self.too_many()));
        }
        for m in msg.batch().iter().filter(|m| m.is_request()) {
            let id = m.id().expect("requests have ids");
            if self.table(from).contains_key(id) || !ids.insert(id) {
                problem = Some((ErrorCode::INVALID_REQUEST, duplicate(id)));
            }
        }
        if let Some((code, text)) = problem {
            let errors: Vec<Message> = msg
                .batch()
                .iter()
                .filter(|m| m.is_request())
                .map(|m| Message::error_response(m.id(), code, &text, None))
                .collect();
            self.stats.rejected += requests as u64;
            if errors.is_empty() {
                return Effect::Drop;
            }
            return Effect::Reply(Message::new_batch(&errors));
        }
        for m in msg.batch() {
            self.observe(from, m, now);
        }
        Effect::Forward
    }

    fn too_many(&self) -> String {
        format!(
            "too many pending requests (the limit is {})",
            self.config.max_pending
        )
    }

    /// An error answer when a request must not pass.
    fn admit(&self, from: Peer, msg: &Message) -> Option<Message> {
        let id = msg.id()?;
        let table = self.table(from);
        if table.contains_key(id) {
            return Some(Message::error_response(
                Some(id),
                ErrorCode::INVALID_REQUEST,
                &duplicate(id),
                None,
            ));
        }
        if table.len() >= self.config.max_pending {
            return Some(Message::error_response(
                Some(id),
                ErrorCode::TOO_MANY_PENDING,
                &self.too_many(),
                None,
            ));
        }
        None
    }

    /// Updates the state for a message that passes (never a batch).
    fn observe(&mut self, from: Peer, msg: &Message, now: Instant) {
        match msg.kind() {
            MessageKind::Request => {
                let id = msg.id().expect("requests have ids").clone();
                let method = msg.method().unwrap_or_default();
                if from == Peer::Client {
                    self.observe_client_request(&id, msg);
                }
                self.table_mut(from).insert(
                    id,
                    PendingRequest {
                        method: SmallText::new(method),
                        started: now,
                    },
                );
            }
            MessageKind::Response | MessageKind::Error => {
                let Some(id) = msg.id() else { return };
                // An answer from one side settles a request of the other.
                match self.table_mut(from.other()).remove(id) {
                    Some(_) => {
                        if from == Peer::Server && self.initialize_id.as_ref() == Some(id) {
                            self.observe_initialize_answer(msg);
                        }
                    }
                    None => self.stats.unmatched_answers += 1,
                }
            }
            MessageKind::Notification => match msg.method() {
                Some("notifications/initialized")
                    if from == Peer::Client && self.phase == Phase::Initialized =>
                {
                    self.phase = Phase::Ready;
                }
                Some("notifications/cancelled") => {
                    // The canceller's own request will not be answered: forget it.
                    let params = msg
                        .params()
                        .and_then(|p| serde_json::from_str::<CancelParams>(p).ok());
                    if let Some(id) = params.and_then(|p| id_of(&p.request_id)) {
                        self.table_mut(from).remove(&id);
                    }
                }
                _ => {}
            },
            MessageKind::Batch => {}
        }
    }

    fn observe_client_request(&mut self, id: &RequestId, msg: &Message) {
        if (self.era.is_none() || msg.method() == Some("initialize"))
            && let Some(signal) = detect_era(msg)
        {
            self.era = Some(signal.era);
            if signal.era == Era::Stateless {
                self.version = Some(signal.version);
            } else {
                self.requested_version = Some(signal.version);
            }
        }
        if msg.method() == Some("initialize") {
            self.initialize_id = Some(id.clone());
            self.phase = Phase::Initializing;
            self.client_info = msg
                .params()
                .and_then(|p| serde_json::from_str::<InitializeParams>(p).ok())
                .and_then(|p| p.client_info);
        }
    }

    fn observe_initialize_answer(&mut self, msg: &Message) {
        self.initialize_id = None;
        match msg.result() {
            Some(result) => {
                if let Ok(init) = serde_json::from_str::<InitializeResult>(result) {
                    self.version = init.protocol_version;
                    self.server_info = init.server_info;
                }
                self.phase = Phase::Initialized;
            }
            None => self.phase = Phase::New,
        }
    }

    /// When [`on_timeout`](Self::on_timeout) should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let idle = self.config.idle_timeout.map(|t| self.last_activity + t);
        let request = self.config.request_timeout.and_then(|t| {
            self.from_client
                .values()
                .chain(self.from_server.values())
                .map(|p| p.started + t)
                .min()
        });
        match (idle, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles the passing of time: requests past their timeout are answered with an error
    /// (to their sender) and cancelled (at their receiver); an idle session is closed.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.phase == Phase::Closed {
            return effects;
        }
        if let Some(timeout) = self.config.request_timeout {
            for from in [Peer::Client, Peer::Server] {
                let mut expired: Vec<(RequestId, PendingRequest)> = Vec::new();
                self.table_mut(from).retain(|id, p| {
                    let keep = p.started + timeout > now;
                    if !keep {
                        expired.push((id.clone(), p.clone()));
                    }
                    keep
                });
                expired.sort_by_key(|(_, p)| p.started);
                for (id, p) in expired {
                    self.stats.timed_out += 1;
                    let text = format!(
                        "{} request {} timed out after {} ms",
                        p.method,
                        id,
                        timeout.as_millis()
                    );
                    effects.push(Effect::Send {
                        to: from,
                        message: Message::error_response(
                            Some(&id),
                            ErrorCode::REQUEST_TIMEOUT,
                            &text,
                            None,
                        ),
                    });
                    effects.push(Effect::Send {
                        to: from.other(),
                        message: cancellation(&id, &text),
                    });
                }
            }
        }
        if let Some(idle) = self.config.idle_timeout
            && self.last_activity + idle <= now
        {
            self.phase = Phase::Closed;
            effects.push(Effect::Close {
                reason: format!("idle for {} ms", idle.as_millis()),
            });
        }
        effects
    }

    /// `peer` went away (`reason` says how, e.g. "server exited with status 1"). Every
    /// request it was to answer gets an error sent to its sender, every request it sent is
    /// cancelled at the other side, and the session is closed.
    pub fn on_peer_closed(&mut self, peer: Peer, reason: &str, _now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.phase == Phase::Closed {
            return effects;
        }
        self.phase = Phase::Closed;
        let other = peer.other();
        let code = match peer {
            Peer::Server => ErrorCode::UPSTREAM_UNAVAILABLE,
            Peer::Client => ErrorCode::CONNECTION_CLOSED,
        };
        let mut unanswered: Vec<_> = self.table_mut(other).drain().collect();
        unanswered.sort_by_key(|(_, p)| p.started);
        for (id, p) in unanswered {
            let text = format!(
                "{} closed before answering {}: {reason}",
                peer.as_str(),
                p.method
            );
            effects.push(Effect::Send {
                to: other,
                message: Message::error_response(Some(&id), code, &text, None),
            });
        }
        let mut orphaned: Vec<_> = self.table_mut(peer).drain().collect();
        orphaned.sort_by_key(|(_, p)| p.started);
        for (id, _) in orphaned {
            effects.push(Effect::Send {
                to: other,
                message: cancellation(&id, &format!("{} closed: {reason}", peer.as_str())),
            });
        }
        effects.push(Effect::Close {
            reason: format!("{} closed: {reason}", peer.as_str()),
        });
        effects
    }
}

fn duplicate(id: &RequestId) -> String {
    format!("request id {id} is already used by a pending request")
}

fn id_of(value: &serde_json::Value) -> Option<RequestId> {
    RequestId::from_json(&value.to_string())
}

fn cancellation(id: &RequestId, reason: &str) -> Message {
    let id_value: serde_json::Value =
        serde_json::from_str(&id.to_json()).expect("an id is valid JSON");
    Message::notification(
        "notifications/cancelled",
        Some(&serde_json::json!({ "requestId": id_value, "reason": reason })),
    )
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
