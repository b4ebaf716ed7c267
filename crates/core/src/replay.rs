//! Replay: a tape played back as an MCP server.
//!
//! [`ReplayOutgoing`] is an [`Outgoing`] like a child process or an HTTP upstream: its
//! [`Upstream`]'s writer takes the client's messages and its reader yields the recorded
//! answers. So the forward proxy with a `ReplayOutgoing` is a stdio mock server, and the
//! reverse proxy with one per session is a Streamable HTTP mock, with interception and
//! sessions as usual. Matching is [`shadowcat_tape::Matcher`]'s; this module adds the
//! pacing ([`Timing`], [`ReplayControl`]), the error answers to unmatched requests and
//! the live fallback server (spy mode). [`verify`] plays a tape's client side against a
//! live server instead.

mod fallback;
mod verify;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{Value, json};
use shadowcat_mcp::{ErrorCode, Message, RequestId};
use shadowcat_tape::{Emit, Matcher, Reaction, ReplayScript, Timing};
use shadowcat_transport::{
    Frame, FrameReader, FrameWriter, Outgoing, Received, TransportKind, Upstream,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use verify::{CallOutcome, CallReport, VerifyConfig, VerifyReport, verify};

use fallback::Fallback;

/// The JSON-RPC error code of the answer to a request that matches nothing on the tape
/// (without a fallback server) although the tape has requests of its method; a method the
/// tape has no request of gets -32601 (method not found). Either way the message names the
/// closest recorded request and how the live one differs; `data` holds the same as JSON
/// (`closest`: the recorded request, `differences`: `[{"path", "recorded", "got"}]`).
pub const REPLAY_NO_MATCH: ErrorCode = ErrorCode(-32060);

/// Makes a connection to the live server that unmatched requests go to (spy mode).
pub type FallbackFactory = Arc<dyn Fn() -> Box<dyn Outgoing> + Send + Sync>;

/// How a replay behaves.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ReplayConfig {
    /// How fast recorded gaps are replayed (by default as fast as possible).
    pub timing: Timing,
    /// Where unmatched requests go; without one they get a [`REPLAY_NO_MATCH`] error.
    pub fallback: Option<FallbackFactory>,
}

impl std::fmt::Debug for ReplayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayConfig")
            .field("timing", &self.timing)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl ReplayConfig {
    /// Sets the pacing.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Sends unmatched requests to a live server made by `fallback`, one connection per
    /// replayed session, opened at the first unmatched request.
    pub fn with_fallback(mut self, fallback: Option<FallbackFactory>) -> Self {
        self.fallback = fallback;
        self
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct ControlState {
    paused: bool,
    steps: u64,
}

/// Pauses, resumes and steps a replay: every connection of the [`ReplayOutgoing`] it came
/// from (and of its clones) obeys it.
///
/// While paused, nothing is sent; [`step`](Self::step) lets the next answer out.
#[derive(Debug, Clone)]
pub struct ReplayControl(Arc<watch::Sender<ControlState>>);

impl Default for ReplayControl {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(ControlState::default())))
    }
}

impl ReplayControl {
    /// Holds every message back until [`resume`](Self::resume) or [`step`](Self::step).
    pub fn pause(&self) {
        self.0.send_modify(|s| s.paused = true);
    }

    /// Lets messages flow again.
    pub fn resume(&self) {
        self.0.send_modify(|s| {
            s.paused = false;
            s.steps = 0;
        });
    }

    /// While paused, lets the next answer out (the next one due, in any connection),
    /// with the messages due before it (notifications, server requests).
    pub fn step(&self) {
        self.0.send_modify(|s| s.steps += 1);
    }

    /// Whether it is paused.
    pub fn is_paused(&self) -> bool {
        self.0.borrow().paused
    }

    /// Whether a message may go out now; when paused, an answer uses up a step (the
    /// messages before it in a step go out with it).
    fn take(&self, answer: bool) -> bool {
        let mut allowed = false;
        self.0.send_if_modified(|s| {
            if !s.paused {
                allowed = true;
                false
            } else if s.steps > 0 {
                allowed = true;
                if answer {
                    s.steps -= 1;
                }
                answer
            } else {
                false
            }
        });
        allowed
    }

    fn may_send(&self) -> bool {
        let s = *self.0.borrow();
        !s.paused || s.steps > 0
    }
}

/// A tape played back as a server: each [`connect`](Outgoing::connect) starts one replayed
/// conversation. Clones share the tape, the [`ReplayControl`] and the session counter: the
/// n-th connection (counting from 0, over all clones) starts in the tape's n-th recorded
/// session (wrapping around) and walks on from there.
#[derive(Clone)]
pub struct ReplayOutgoing {
    script: Arc<ReplayScript>,
    config: ReplayConfig,
    control: ReplayControl,
    connections: Arc<AtomicUsize>,
    description: Arc<str>,
}

impl std::fmt::Debug for ReplayOutgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayOutgoing")
            .field("description", &self.description)
            .field("sessions", &self.script.sessions.len())
            .finish_non_exhaustive()
    }
}

impl ReplayOutgoing {
    /// Replays `script`; `description` names it in messages (usually the tape's path).
    pub fn new(script: Arc<ReplayScript>, config: ReplayConfig, description: &str) -> Self {
        Self {
            script,
            config,
            control: ReplayControl::default(),
            connections: Arc::new(AtomicUsize::new(0)),
            description: format!("replay of {description}").into(),
        }
    }

    /// The handle that pauses, resumes and steps every connection.
    pub fn control(&self) -> ReplayControl {
        self.control.clone()
    }
}

#[async_trait]
impl Outgoing for ReplayOutgoing {
    async fn connect(&mut self) -> shadowcat_transport::Result<Upstream> {
        let n = self.connections.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(256);
        let matcher = Matcher::new(self.script.clone(), n);
        let now = Instant::now();
        let mut reader = ReplayReader {
            rx: Some(rx),
            matcher,
            timing: self.config.timing,
            control: self.control.clone(),
            changes: self.control.0.subscribe(),
            queue: VecDeque::new(),
            fallback: self.config.fallback.clone().map(Fallback::new),
            initialize: None,
        };
        let startup = reader.matcher.startup();
        reader.schedule(now, startup);
        tracing::debug!(
            session = reader.matcher.current_session() + 1,
            "replay connection {n} opened"
        );
        Ok(Upstream {
            reader: Box::new(reader),
            writer: Box::new(ReplayWriter {
                tx: Some(tx),
                buffer: Vec::new(),
                size: 0,
            }),
            process: None,
            kind: TransportKind::Stdio,
            description: self.description.to_string(),
        })
    }
}

/// Takes the client's messages.
struct ReplayWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    buffer: Vec<Bytes>,
    size: usize,
}

#[async_trait]
impl FrameWriter for ReplayWriter {
    fn enqueue(&mut self, message: &[u8]) {
        self.size += message.len();
        self.buffer.push(Bytes::copy_from_slice(message));
    }

    fn buffered(&self) -> usize {
        self.size
    }

    async fn send(&mut self, message: &[u8]) -> shadowcat_transport::Result<()> {
        self.enqueue(message);
        self.flush().await
    }

    async fn flush(&mut self) -> shadowcat_transport::Result<()> {
        self.size = 0;
        let Some(tx) = &self.tx else {
            self.buffer.clear();
            return Ok(());
        };
        for message in self.buffer.drain(..) {
            if tx.send(message).await.is_err() {
                // The replay side is gone; what the client sends now has nowhere to go.
                break;
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> shadowcat_transport::Result<()> {
        self.flush().await?;
        self.tx = None;
        Ok(())
    }
}

/// What woke the reader up.
enum Event {
    Client(Option<Bytes>),
    Live(Option<Frame>),
    Tick,
}

/// A message waiting for its time.
struct Due {
    at: Instant,
    frame: Frame,
    /// Whether it answers a client request.
    answer: bool,
}

/// Yields the recorded answers, at their time.
struct ReplayReader {
    rx: Option<mpsc::Receiver<Bytes>>,
    matcher: Matcher,
    timing: Timing,
    control: ReplayControl,
    changes: watch::Receiver<ControlState>,
    queue: VecDeque<Due>,
    fallback: Option<Fallback>,
    /// The live client's `initialize` request, which opens a fallback connection.
    initialize: Option<Bytes>,
}

fn frame_of(message: &Value, related: Option<&Value>) -> Frame {
    let mut frame = Frame::new(Bytes::from(message.to_string()));
    frame.related = related.and_then(|id| RequestId::from_json(&id.to_string()));
    frame
}

impl ReplayReader {
    /// Queues `emits` after a client message that arrived at `arrived`, each after its
    /// recorded gap (scaled), in due-time order.
    fn schedule(&mut self, arrived: Instant, emits: Vec<Emit>) {
        let mut at = arrived;
        for emit in emits {
            at += self.timing.delay(emit.gap_ns);
            self.push(at, frame_of(&emit.message, emit.related.as_ref()));
        }
    }

    fn push(&mut self, at: Instant, frame: Frame) {
        let answer = serde_json::from_slice::<Value>(&frame.bytes)
            .is_ok_and(|v| v.get("method").is_none() && v.get("id").is_some());
        let index = self.queue.partition_point(|d| d.at <= at);
        self.queue.insert(index, Due { at, frame, answer });
    }

    fn on_client(&mut self, bytes: &Bytes) {
        let now = Instant::now();
        let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        let items = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        for item in items {
            match item.get("method").and_then(Value::as_str) {
                Some("initialize") => self.initialize = Some(Bytes::from(item.to_string())),
                // A cancelled request's messages that have not gone out yet never will.
                Some("notifications/cancelled") => {
                    if let Some(id) = item
                        .pointer("/params/requestId")
                        .and_then(|i| RequestId::from_json(&i.to_string()))
                    {
                        self.queue.retain(|d| d.frame.related.as_ref() != Some(&id));
                    }
                }
                _ => {}
            }
            if let Some(fallback) = &mut self.fallback
                && fallback.owns_answer(&item)
            {
                fallback.send(&item);
                continue;
            }
            match self.matcher.on_client(&item) {
                Reaction::Emit(emits) => self.schedule(now, emits),
                Reaction::Unmatched(miss) => {
                    let id = item.get("id").cloned();
                    match &mut self.fallback {
                        Some(fallback) => {
                            tracing::info!("{miss}; passed to the live server");
                            if let Some(frame) = fallback.request(&item, self.initialize.as_ref()) {
                                self.push(now, frame);
                            }
                        }
                        None => {
                            tracing::warn!("{miss}");
                            let data = miss.closest.as_ref().map(|c| {
                                json!({
                                    "closest": c.request,
                                    "differences": c.differences.iter().map(|d| json!({
                                        "path": d.path, "recorded": d.recorded, "got": d.live,
                                    })).collect::<Vec<_>>(),
                                })
                            });
                            let rid = id
                                .as_ref()
                                .and_then(|i| RequestId::from_json(&i.to_string()));
                            // A method the tape never saw is "not found", as a real server
                            // says it (clients probe optional methods and fall back on it).
                            let known = miss
                                .closest
                                .as_ref()
                                .is_some_and(|c| c.key.method() == miss.key.method());
                            let code = if known {
                                REPLAY_NO_MATCH
                            } else {
                                ErrorCode::METHOD_NOT_FOUND
                            };
                            let answer = Message::error_response(
                                rid.as_ref(),
                                code,
                                &miss.to_string(),
                                data.as_ref(),
                            );
                            let mut frame = Frame::new(answer.into_bytes());
                            frame.related = rid;
                            self.push(now, frame);
                        }
                    }
                }
                _ => {
                    if let Some(fallback) = &mut self.fallback {
                        fallback.notify(&item);
                    }
                }
            }
        }
    }

    fn ready(&mut self) -> Option<Frame> {
        let head = self.queue.front()?;
        if head.at > Instant::now() || !self.control.may_send() || !self.control.take(head.answer) {
            return None;
        }
        self.queue.pop_front().map(|d| d.frame)
    }

    fn finished(&self) -> bool {
        self.rx.is_none()
            && self.queue.is_empty()
            && self.fallback.as_ref().is_none_or(Fallback::idle)
    }
}

#[async_trait]
impl FrameReader for ReplayReader {
    async fn recv(&mut self) -> shadowcat_transport::Result<Option<Received>> {
        loop {
            if let Some(frame) = self.ready() {
                return Ok(Some(Ok(frame)));
            }
            if self.finished() {
                return Ok(None);
            }
            let due = self
                .queue
                .front()
                .filter(|_| self.control.may_send())
                .map(|d| d.at);
            let Self {
                rx,
                fallback,
                changes,
                ..
            } = self;
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let client = async {
                match rx.as_mut() {
                    Some(rx) => Some(rx.recv().await),
                    None => std::future::pending().await,
                }
            };
            let live = async {
                match fallback.as_mut() {
                    Some(f) => f.recv().await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                message = client => Event::Client(message.flatten()),
                frame = live => Event::Live(frame),
                () = sleep => Event::Tick,
                _ = changes.changed() => Event::Tick,
            };
            match event {
                Event::Client(Some(bytes)) => self.on_client(&bytes),
                Event::Client(None) => self.rx = None,
                Event::Live(Some(frame)) => return Ok(Some(Ok(frame))),
                Event::Live(None) => {
                    let errors = self
                        .fallback
                        .as_mut()
                        .map(Fallback::closed)
                        .unwrap_or_default();
                    let now = Instant::now();
                    for frame in errors {
                        self.push(now, frame);
                    }
                }
                Event::Tick => {}
            }
        }
    }

    fn next_buffered(&mut self) -> Option<Received> {
        self.ready().map(Ok)
    }

    fn has_buffered(&self) -> bool {
        self.queue
            .front()
            .is_some_and(|d| d.at <= Instant::now() && self.control.may_send())
    }
}
