//! The interceptor trait, its per-message context, outcomes, and the chain.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use shadowcat_mcp::{Era, Message};

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// From the client to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Direction {
    /// `client_to_server` or `server_to_client`, as rules and tapes write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientToServer => "client_to_server",
            Self::ServerToClient => "server_to_client",
        }
    }
}

/// Everything an interceptor may look at for one message.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct InterceptContext<'a> {
    /// The session the message belongs to (the proxy's id; `stdio` for a stdio client).
    pub session: &'a str,
    /// Which way it travels.
    pub direction: Direction,
    /// The client-side transport: `stdio`, `streamable-http` or `legacy-sse`.
    pub transport: &'a str,
    /// The era of the conversation, when known.
    pub era: Option<Era>,
    /// The message, parsed once.
    pub message: &'a Message,
    /// For a response: the method of the request it answers, when known.
    pub request_method: Option<&'a str>,
    /// For a response to `tools/call`: the tool that was called, when known.
    pub request_tool: Option<&'a str>,
    /// For a `tools/call` request: the tool it calls, when the caller has read it already
    /// (with [`called_tool`](crate::called_tool)); rules read it themselves otherwise.
    pub tool: Option<&'a str>,
}

impl<'a> InterceptContext<'a> {
    /// A context for `message` travelling `direction` in `session` over `transport`.
    pub fn new(
        session: &'a str,
        direction: Direction,
        transport: &'a str,
        message: &'a Message,
    ) -> Self {
        Self {
            session,
            direction,
            transport,
            era: None,
            message,
            request_method: None,
            request_tool: None,
            tool: None,
        }
    }

    /// The same context with the era set.
    pub fn with_era(mut self, era: Option<Era>) -> Self {
        self.era = era;
        self
    }

    /// The same context with the answered request's method and tool set.
    pub fn with_request(mut self, method: Option<&'a str>, tool: Option<&'a str>) -> Self {
        self.request_method = method;
        self.request_tool = tool;
        self
    }

    /// The same context with the tool of a `tools/call` request set, as
    /// [`called_tool`](crate::called_tool) reads it from the message.
    pub fn with_tool(mut self, tool: Option<&'a str>) -> Self {
        self.tool = tool;
        self
    }
}

/// A fault only the transport can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFault {
    /// Cut the client's SSE stream in the middle of this message's event (HTTP); on stdio,
    /// the message is cut in the middle of its line.
    CutStream,
    /// End the session as if it had expired: this and later requests get HTTP 404 (HTTP);
    /// on stdio, the connection is closed.
    ExpireSession,
}

/// What the pipeline does with a message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// Forward the message unchanged (its original bytes).
    Forward,
    /// Forward this message instead.
    Replace(Message),
    /// Do not forward; send this message back to the sender (a block's error, a mock's
    /// answer). For a notification, nothing is sent back.
    Reply(Message),
    /// Drop the message silently.
    Drop,
    /// Wait, then carry out the inner outcome. Later messages do not wait behind it.
    Delay(Duration, Box<Outcome>),
    /// Forward the message twice.
    Duplicate,
    /// Hold the message and forward it right after the next message in the same direction.
    Reorder,
    /// Forward these bytes instead (deliberately broken JSON).
    Malformed(Bytes),
    /// Ask the transport for a fault.
    Transport(TransportFault),
    /// Hold the message for a person (the manual intercept API); when nobody acts within
    /// `timeout`, carry out `on_timeout`.
    Pause {
        /// The rule or interceptor that held it.
        by: String,
        /// How long to wait for a person.
        timeout: Duration,
        /// What happens when the time is up.
        on_timeout: Box<Outcome>,
    },
}

impl Outcome {
    /// Whether the message goes on unchanged.
    pub fn is_forward(&self) -> bool {
        matches!(self, Self::Forward)
    }
}

/// A hook on the message stream. Every method has a default: forward unchanged.
#[async_trait]
pub trait Interceptor: Send + Sync {
    /// Its name, for logs and metrics.
    fn name(&self) -> &str;

    /// Lower runs first.
    fn priority(&self) -> i32 {
        0
    }

    /// A decision that needs no waiting, in either direction. When it returns `Some`, the
    /// chain takes that outcome and does not call [`Interceptor::on_client_message`] or
    /// [`Interceptor::on_server_message`]; `None` (the default) hands the message to them.
    ///
    /// An interceptor that always decides at once (the rule set does) implements this to
    /// spare every message an allocated future.
    fn decide_now(&self, ctx: &InterceptContext<'_>) -> Option<Outcome> {
        let _ = ctx;
        None
    }

    /// A message from the client to the server.
    async fn on_client_message(&self, ctx: &InterceptContext<'_>) -> Outcome {
        let _ = ctx;
        Outcome::Forward
    }

    /// A message from the server to the client.
    async fn on_server_message(&self, ctx: &InterceptContext<'_>) -> Outcome {
        let _ = ctx;
        Outcome::Forward
    }
}

/// Counters of one interceptor in a chain.
#[derive(Debug, Default)]
pub struct InterceptorStats {
    /// Messages it saw.
    pub calls: AtomicU64,
    /// Messages for which it returned something other than [`Outcome::Forward`].
    pub actions: AtomicU64,
    /// Time spent in it, in nanoseconds: an estimate, from one call in
    /// [`InterceptorStats::TIMED_ONE_IN`] timed and counted that many times.
    pub nanos: AtomicU64,
}

impl InterceptorStats {
    /// One call in this many is timed (reading the clock on every message costs more than
    /// a cheap interceptor itself).
    pub const TIMED_ONE_IN: u64 = 64;
}

struct Entry {
    interceptor: Arc<dyn Interceptor>,
    stats: Arc<InterceptorStats>,
}

/// Interceptors in priority order (equal priorities keep the order they were added in).
///
/// Running the chain: each interceptor sees the message as the previous ones left it (a
/// [`Outcome::Replace`] feeds the replacement to the next); the first outcome that is
/// neither `Forward` nor `Replace` ends the run and is the chain's outcome.
#[derive(Default)]
pub struct InterceptorChain {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for InterceptorChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.interceptor.name()))
            .finish()
    }
}

impl InterceptorChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an interceptor in its priority's place.
    pub fn add(&mut self, interceptor: Arc<dyn Interceptor>) {
        let at = self
            .entries
            .iter()
            .position(|e| e.interceptor.priority() > interceptor.priority())
            .unwrap_or(self.entries.len());
        self.entries.insert(
            at,
            Entry {
                interceptor,
                stats: Arc::default(),
            },
        );
    }

    /// Whether it has no interceptors (the pipeline then skips it entirely).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Each interceptor's name and counters, in running order.
    pub fn stats(&self) -> Vec<(String, Arc<InterceptorStats>)> {
        self.entries
            .iter()
            .map(|e| (e.interceptor.name().to_owned(), e.stats.clone()))
            .collect()
    }

    /// Runs the chain on one message.
    pub async fn run(&self, ctx: &InterceptContext<'_>) -> Outcome {
        let mut replaced: Option<Message> = None;
        for entry in &self.entries {
            let here = match &replaced {
                // The tool read from the original message may not be the replacement's.
                Some(message) => InterceptContext {
                    message,
                    tool: None,
                    ..*ctx
                },
                None => *ctx,
            };
            let stats = &entry.stats;
            let nth = stats.calls.fetch_add(1, Relaxed);
            let started = (nth % InterceptorStats::TIMED_ONE_IN == 0).then(Instant::now);
            let outcome = match entry.interceptor.decide_now(&here) {
                Some(outcome) => outcome,
                None => match ctx.direction {
                    Direction::ClientToServer => entry.interceptor.on_client_message(&here).await,
                    Direction::ServerToClient => entry.interceptor.on_server_message(&here).await,
                },
            };
            if let Some(started) = started {
                let nanos = started.elapsed().as_nanos() as u64;
                stats.nanos.fetch_add(
                    nanos.saturating_mul(InterceptorStats::TIMED_ONE_IN),
                    Relaxed,
                );
            }
            match outcome {
                Outcome::Forward => {}
                Outcome::Replace(message) => {
                    stats.actions.fetch_add(1, Relaxed);
                    replaced = Some(message);
                }
                other => {
                    stats.actions.fetch_add(1, Relaxed);
                    return other;
                }
            }
        }
        replaced.map_or(Outcome::Forward, Outcome::Replace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, i32, Outcome);

    #[async_trait]
    impl Interceptor for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn priority(&self) -> i32 {
            self.1
        }
        async fn on_client_message(&self, _ctx: &InterceptContext<'_>) -> Outcome {
            self.2.clone()
        }
    }

    /// Decides at once with its first outcome; its hooks would give the second.
    struct Now(Option<Outcome>, Outcome);

    #[async_trait]
    impl Interceptor for Now {
        fn name(&self) -> &str {
            "now"
        }
        fn decide_now(&self, ctx: &InterceptContext<'_>) -> Option<Outcome> {
            // A replaced message comes without the tool read from the original.
            assert!(ctx.tool.is_none() || ctx.message.method() == Some("tools/call"));
            self.0.clone()
        }
        async fn on_client_message(&self, _ctx: &InterceptContext<'_>) -> Outcome {
            self.1.clone()
        }
        async fn on_server_message(&self, _ctx: &InterceptContext<'_>) -> Outcome {
            self.1.clone()
        }
    }

    #[tokio::test]
    async fn a_decision_made_at_once_is_taken_without_the_hooks() {
        let msg = ping();
        let ctx = InterceptContext::new("s", Direction::ClientToServer, "stdio", &msg);
        let mut chain = InterceptorChain::new();
        chain.add(Arc::new(Now(Some(Outcome::Drop), Outcome::Forward)));
        assert_eq!(chain.run(&ctx).await, Outcome::Drop);
        let mut chain = InterceptorChain::new();
        chain.add(Arc::new(Now(None, Outcome::Duplicate)));
        assert_eq!(chain.run(&ctx).await, Outcome::Duplicate);
        let back = InterceptContext::new("s", Direction::ServerToClient, "stdio", &msg);
        assert_eq!(chain.run(&back).await, Outcome::Duplicate);
        // One call in TIMED_ONE_IN is timed, the first among them.
        let stats = chain.stats();
        assert_eq!(stats[0].1.calls.load(Relaxed), 2);
    }

    #[tokio::test]
    async fn a_replaced_message_is_seen_without_the_original_tool() {
        let call = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}"#,
        )
        .unwrap();
        let mut chain = InterceptorChain::new();
        chain.add(Arc::new(Fixed("replace", 1, Outcome::Replace(ping()))));
        chain.add(Arc::new(Now(Some(Outcome::Forward), Outcome::Drop)));
        let ctx = InterceptContext::new("s", Direction::ClientToServer, "stdio", &call)
            .with_tool(Some("a"));
        assert_eq!(chain.run(&ctx).await, Outcome::Replace(ping()));
    }

    fn ping() -> Message {
        Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap()
    }

    #[tokio::test]
    async fn priority_order_and_first_decisive_outcome_wins() {
        let replaced = Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"pong"}"#).unwrap();
        let mut chain = InterceptorChain::new();
        chain.add(Arc::new(Fixed("drop", 5, Outcome::Drop)));
        chain.add(Arc::new(Fixed(
            "replace",
            1,
            Outcome::Replace(replaced.clone()),
        )));
        chain.add(Arc::new(Fixed("noop", 3, Outcome::Forward)));
        let names: Vec<String> = chain.stats().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["replace", "noop", "drop"]);
        let msg = ping();
        let ctx = InterceptContext::new("s", Direction::ClientToServer, "stdio", &msg);
        assert_eq!(chain.run(&ctx).await, Outcome::Drop);
        // Server-bound hooks default to forwarding.
        let back = InterceptContext::new("s", Direction::ServerToClient, "stdio", &msg);
        assert_eq!(chain.run(&back).await, Outcome::Forward);
        let stats = chain.stats();
        assert_eq!(stats[0].1.calls.load(Relaxed), 2);
        assert_eq!(stats[0].1.actions.load(Relaxed), 1);
    }
}
