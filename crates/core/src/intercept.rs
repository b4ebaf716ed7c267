//! Interception in the pipeline: runs the interceptor chain on each forwarded message and
//! carries out its [`Outcome`].
//!
//! Each direction of a connection has its own [`Hooks`]. Outcomes that take time (a delay,
//! a message held for a person) never block the direction: a task owned by the hooks waits
//! and hands the message back through a bounded channel, and the direction's loop carries
//! out what was decided. When the source closes, what is still waiting is carried out
//! before the direction ends (each wait is bounded by its delay or pause timeout).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shadowcat_interceptor::{
    Decision, Direction, HeldInfo, HeldMessages, InterceptContext, InterceptorChain, Outcome,
    TransportFault, called_tool,
};
use shadowcat_mcp::{Message, Peer, RequestId};
use shadowcat_transport::{FrameWriter, StreamFault};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::forward::{Parsed, Shared, queue};

/// How long a message held by a `reorder` fault waits for the next one at most.
const REORDER_WAIT: Duration = Duration::from_secs(1);

/// Interception for a proxy: the chain, and where paused messages are held.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Interception {
    /// The interceptors, in priority order.
    pub chain: Arc<InterceptorChain>,
    /// Where `pause` outcomes hold messages for a person (the control API); without it a
    /// paused message waits its timeout and then gets its timeout outcome.
    pub held: Option<HeldMessages>,
}

impl Interception {
    /// Interception by `chain`, without manual pause.
    pub fn new(chain: Arc<InterceptorChain>) -> Self {
        Self { chain, held: None }
    }

    /// The same, holding paused messages in `held`.
    pub fn with_held(mut self, held: HeldMessages) -> Self {
        self.held = Some(held);
        self
    }
}

/// What a waiting task hands back.
pub(crate) enum Deferred {
    /// Carry out this outcome for this message.
    Run(Box<Parsed>, Outcome),
    /// The message held by `reorder` (this generation) goes now.
    ReleaseStash(u64),
}

/// Tool names of `tools/call` requests in flight, by request id, so an interceptor sees
/// which tool a response answers. Shared by both directions of a connection; ids are
/// hashed with a fast seeded hash (two lookups per tool call).
pub(crate) type ToolNames = Arc<Mutex<HashMap<RequestId, String, foldhash::fast::RandomState>>>;

/// One direction's interception state.
pub(crate) struct Hooks {
    interception: Interception,
    direction: Direction,
    from: Peer,
    session: Arc<str>,
    transport: &'static str,
    tools: ToolNames,
    tx: mpsc::Sender<Deferred>,
    pub(crate) rx: mpsc::Receiver<Deferred>,
    tasks: JoinSet<()>,
    stash: Option<(u64, Box<Parsed>)>,
    generation: u64,
    /// For the client's direction: where a request that must expire the client's session
    /// goes (the other direction's task owns the client's writer).
    expire_client: Option<mpsc::Sender<Message>>,
}

/// What carrying out an outcome asks of the direction's loop.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Go on.
    Continue,
    /// End the connection (a session expiry on a transport without sessions).
    Close,
}

impl Hooks {
    pub(crate) fn new(
        interception: Interception,
        from: Peer,
        session: Arc<str>,
        transport: &'static str,
        tools: ToolNames,
    ) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let direction = match from {
            Peer::Client => Direction::ClientToServer,
            Peer::Server => Direction::ServerToClient,
        };
        Self {
            interception,
            direction,
            from,
            session,
            transport,
            tools,
            tx,
            rx,
            tasks: JoinSet::new(),
            stash: None,
            generation: 0,
            expire_client: None,
        }
    }

    /// Requests that expire the client's session are handed to `to` (the task that writes
    /// to the client).
    pub(crate) fn expiring_through(mut self, to: mpsc::Sender<Message>) -> Self {
        self.expire_client = Some(to);
        self
    }

    /// Whether messages are still waiting (delays, pauses, a reordered message).
    pub(crate) fn waiting(&self) -> bool {
        !self.tasks.is_empty() || self.stash.is_some()
    }

    /// Reaps finished waiting tasks.
    pub(crate) fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Runs the chain on `parsed` and carries out the outcome.
    pub(crate) async fn intercept(
        &mut self,
        parsed: Parsed,
        writer: &mut dyn FrameWriter,
        reply: &mpsc::Sender<Bytes>,
        shared: &Shared,
    ) -> Next {
        let msg = &parsed.message;
        // Read once, for the chain and for the answer to come.
        let called = match self.from {
            Peer::Client => called_tool(msg),
            Peer::Server => None,
        };
        let answered = match (self.from, msg.id()) {
            (Peer::Client, Some(id)) => {
                if let Some(name) = &called {
                    self.tools
                        .lock()
                        .expect("never poisoned")
                        .insert(id.clone(), name.to_string());
                }
                None
            }
            (Peer::Server, Some(id)) if msg.is_response() => {
                self.tools.lock().expect("never poisoned").remove(id)
            }
            _ => None,
        };
        let tool = called.as_deref();
        let ctx = InterceptContext::new(&self.session, self.direction, self.transport, msg)
            .with_era(parsed.era)
            .with_request(
                parsed.request_method.as_deref(),
                answered.as_deref().or(tool),
            )
            .with_tool(tool);
        let outcome = self.interception.chain.run(&ctx).await;
        let next = self.carry_out(parsed, outcome, writer, reply, shared);
        self.release_stash_after_one(writer);
        next
    }

    /// Carries out a handed-back decision.
    pub(crate) fn resume(
        &mut self,
        deferred: Deferred,
        writer: &mut dyn FrameWriter,
        reply: &mpsc::Sender<Bytes>,
        shared: &Shared,
    ) -> Next {
        match deferred {
            Deferred::Run(parsed, outcome) => {
                self.carry_out(*parsed, outcome, writer, reply, shared)
            }
            Deferred::ReleaseStash(generation) => {
                if self.stash.as_ref().is_some_and(|(g, _)| *g == generation)
                    && let Some((_, parsed)) = self.stash.take()
                {
                    forward(writer, &parsed, &parsed.message);
                }
                Next::Continue
            }
        }
    }

    /// A message held by `reorder` goes right after the next message of this direction.
    fn release_stash_after_one(&mut self, writer: &mut dyn FrameWriter) {
        if let Some((generation, _)) = &self.stash
            && *generation < self.generation
            && let Some((_, parsed)) = self.stash.take()
        {
            forward(writer, &parsed, &parsed.message);
        }
    }

    fn defer(&mut self, wait: Duration, parsed: Parsed, then: Outcome) {
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = tx.send(Deferred::Run(Box::new(parsed), then)).await;
        });
    }

    fn carry_out(
        &mut self,
        parsed: Parsed,
        outcome: Outcome,
        writer: &mut dyn FrameWriter,
        reply: &mpsc::Sender<Bytes>,
        shared: &Shared,
    ) -> Next {
        self.generation += 1;
        match outcome {
            Outcome::Forward => forward(writer, &parsed, &parsed.message),
            Outcome::Replace(message) => forward(writer, &parsed, &message),
            Outcome::Reply(answer) => {
                if parsed.message.is_request() {
                    // The answer stands for the other side's: the session sees it as such,
                    // so the request is no longer pending.
                    let _ = shared.on_message(self.from.other(), &answer);
                    queue(reply, self.from, answer);
                }
            }
            Outcome::Drop => {
                tracing::debug!(from = self.from.as_str(), "message dropped by interception");
            }
            Outcome::Delay(wait, then) => self.defer(wait, parsed, *then),
            Outcome::Duplicate => {
                forward(writer, &parsed, &parsed.message);
                forward(writer, &parsed, &parsed.message);
            }
            Outcome::Reorder => {
                if let Some((_, earlier)) = self.stash.take() {
                    forward(writer, &earlier, &earlier.message);
                }
                let generation = self.generation;
                self.stash = Some((generation, Box::new(parsed)));
                let tx = self.tx.clone();
                self.tasks.spawn(async move {
                    tokio::time::sleep(REORDER_WAIT).await;
                    let _ = tx.send(Deferred::ReleaseStash(generation)).await;
                });
            }
            Outcome::Malformed(bytes) => {
                writer.enqueue_corrupt(&bytes, &parsed.message, parsed.related.as_ref());
            }
            Outcome::Transport(TransportFault::ExpireSession) if self.expire_client.is_some() => {
                // The session to expire is the client's, whose writer the other task owns.
                if let Some(to) = &self.expire_client
                    && to.try_send(parsed.message).is_err()
                {
                    tracing::warn!("could not expire the session: the client side is not reading");
                }
            }
            Outcome::Transport(fault) => {
                let fault = match fault {
                    TransportFault::ExpireSession => StreamFault::ExpireSession,
                    _ => StreamFault::Cut,
                };
                if !writer.fault(fault, &parsed.message, parsed.related.as_ref()) {
                    return Next::Close;
                }
            }
            Outcome::Pause {
                by,
                timeout,
                on_timeout,
            } => self.pause(parsed, by, timeout, *on_timeout),
            other => {
                tracing::warn!(
                    "an interceptor asked for {other:?}, which this proxy cannot do; forwarding"
                );
                forward(writer, &parsed, &parsed.message);
            }
        }
        Next::Continue
    }

    fn pause(&mut self, parsed: Parsed, by: String, timeout: Duration, on_timeout: Outcome) {
        let Some(held) = self.interception.held.clone() else {
            // No control API: nobody can act, so the message waits out its timeout.
            self.defer(timeout, parsed, on_timeout);
            return;
        };
        let info = HeldInfo::new(
            self.session.to_string(),
            self.direction,
            self.transport,
            by,
            &parsed.message,
        );
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let started = Instant::now();
            let outcome = match held.hold(info, timeout).await {
                Decision::Resume => Outcome::Forward,
                Decision::ResumeEdited(message) => Outcome::Replace(message),
                Decision::Drop => Outcome::Drop,
                _ => on_timeout,
            };
            tracing::debug!(waited = ?started.elapsed(), "held message released: {outcome:?}");
            let _ = tx.send(Deferred::Run(Box::new(parsed), outcome)).await;
        });
    }
}

fn forward(writer: &mut dyn FrameWriter, parsed: &Parsed, message: &Message) {
    writer.enqueue_message(message, parsed.related.as_ref(), parsed.headers.as_deref());
}
