//! The forward proxy: one client, one server, full duplex.
//!
//! Two tasks, one per direction, each owning the reader of its source and the writer of its
//! destination, so neither direction ever waits on the other (a server blocked writing to
//! us while we are blocked writing to it cannot happen). Messages the proxy makes itself
//! (error answers to bad input) go to the other task's writer through a small side queue.
//! Every message is parsed once, handed to the [`Session`] state machine, and forwarded as
//! its original bytes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shadowcat_mcp::{Effect, Era, Message, Peer, RequestId, Session, SessionConfig, SessionStats};
use shadowcat_raw_transport::ChildExit;
use shadowcat_transport::{Connection, Frame, FrameWriter, Received, TransportKind, Upstream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::intercept::{Hooks, Interception, ToolNames};
use crate::record::{RecordHandle, tap_both_edges};
use crate::{Error, Result};

mod directions;

use directions::{client_to_server, server_to_client};

/// How the forward proxy behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ForwardConfig {
    /// Session limits (pending requests, timeouts).
    pub session: SessionConfig,
    /// How long the server gets to exit after its stdin is closed before SIGTERM.
    pub shutdown_grace: Duration,
    /// How long the server gets after SIGTERM before SIGKILL.
    pub kill_grace: Duration,
    /// How many proxy-made messages (error answers) may wait for a writer; more are dropped
    /// and logged, so a peer that floods bad input while not reading cannot stall the proxy.
    pub side_queue: usize,
    /// The interceptor chain run on every forwarded message, when there is one.
    pub interception: Option<Interception>,
    /// Where every message is recorded at both edges, when recording.
    pub recorder: Option<RecordHandle>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            // MCP clients commonly kill the proxy about 2 s after closing its input; the
            // server must be gone before that, or it would outlive the proxy.
            shutdown_grace: Duration::from_secs(1),
            kill_grace: Duration::from_millis(500),
            side_queue: 1024,
            interception: None,
            recorder: None,
        }
    }
}

impl ForwardConfig {
    /// Sets the session limits.
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Sets the time the server gets after its stdin is closed, before SIGTERM.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Runs `interception` on every forwarded message (an empty chain is skipped).
    pub fn with_interception(mut self, interception: Option<Interception>) -> Self {
        self.interception = interception.filter(|i| !i.chain.is_empty());
        self
    }

    /// Records every session's messages at both edges through `recorder`.
    pub fn with_recorder(mut self, recorder: Option<RecordHandle>) -> Self {
        self.recorder = recorder;
        self
    }

    /// Sets the time the server gets after SIGTERM, before SIGKILL.
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }
}

/// Which side ended the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndedBy {
    /// The client closed its input (or stopped reading); the server was shut down.
    Client,
    /// The server exited or closed its output while the client was still there.
    Server,
    /// Shutdown was requested (a signal); the server was shut down.
    Shutdown,
}

/// What happened during a forward proxy run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ForwardReport {
    /// Which side ended it.
    pub ended_by: EndedBy,
    /// How the server process ended, when the proxy started one.
    pub server_exit: Option<ChildExit>,
    /// Client requests the server never answered (each got a JSON-RPC error).
    pub unanswered: usize,
    /// The upstream, for messages.
    pub upstream: String,
    /// The session's counters.
    pub stats: SessionStats,
}

impl ForwardReport {
    /// Whether the run ended because the server went away (a failure for the client).
    pub fn is_failure(&self) -> bool {
        self.ended_by == EndedBy::Server
    }

    /// One line saying why the run ended.
    pub fn reason(&self) -> String {
        let exit = self
            .server_exit
            .map_or_else(|| "closed its output".to_owned(), |e| e.to_string());
        let unanswered = match self.unanswered {
            0 => String::new(),
            1 => "; 1 pending request was answered with an error".to_owned(),
            n => format!("; {n} pending requests were answered with errors"),
        };
        match self.ended_by {
            EndedBy::Server => format!("server {} {exit}{unanswered}", self.upstream),
            EndedBy::Client => {
                format!(
                    "client closed its input; server {} {exit}{unanswered}",
                    self.upstream
                )
            }
            EndedBy::Shutdown => {
                format!(
                    "shutdown requested; server {} {exit}{unanswered}",
                    self.upstream
                )
            }
        }
    }
}

/// The forward proxy: passes one client's conversation to one server.
#[derive(Debug, Clone, Default)]
pub struct ForwardProxy {
    config: ForwardConfig,
}

/// A spawned task that is aborted when dropped, so every task has an owner.
struct Owned<T>(JoinHandle<T>);

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Owned<T> {
    async fn join(&mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

/// How the client-to-server task ended.
enum ClientSideEnd {
    /// The client closed its input.
    Eof(Box<dyn FrameWriter>),
    /// Reading from the client failed.
    ReadFailed(Box<dyn FrameWriter>, shadowcat_transport::Error),
    /// Writing to the server failed: the server is going away.
    ServerGone,
    /// The session closed (idle timeout).
    Closed(Box<dyn FrameWriter>),
}

/// How the server-to-client task ended.
enum ServerSideEnd {
    /// The server closed its output (or reading it failed).
    Eof(Box<dyn FrameWriter>, mpsc::Receiver<Bytes>),
    /// Writing to the client failed: the client is gone.
    ClientGone,
}

pub(crate) struct Shared {
    session: Mutex<Session>,
    timers: bool,
}

impl Shared {
    /// Passes a message the proxy made on behalf of a side through the session.
    pub(crate) fn on_message(&self, from: Peer, msg: &Message) -> Effect {
        self.session
            .lock()
            .expect("session lock is never poisoned")
            .on_message(from, msg, Instant::now())
    }

    fn on_peer_closed(&self, peer: Peer, reason: &str) -> Vec<Effect> {
        self.session
            .lock()
            .expect("session lock is never poisoned")
            .on_peer_closed(peer, reason, Instant::now())
    }
}

pub(crate) fn queue(tx: &mpsc::Sender<Bytes>, to: Peer, message: Message) {
    if tx.try_send(message.into_bytes()).is_err() {
        tracing::warn!(
            to = to.as_str(),
            "dropped a proxy-made message: the {} is not reading",
            to.as_str()
        );
    }
}

/// A parsed message with the routing context its frame carried.
pub(crate) struct Parsed {
    pub(crate) message: Message,
    pub(crate) related: Option<RequestId>,
    pub(crate) headers: Option<Box<http::HeaderMap>>,
    /// Filled for interception only: the conversation's era, and for a response the method
    /// of the request it answers.
    pub(crate) era: Option<Era>,
    pub(crate) request_method: Option<String>,
}

/// Parses a received frame; bad input is answered through `reply` and yields `None`.
fn parse(from: Peer, item: Received, reply: &mpsc::Sender<Bytes>) -> Option<Parsed> {
    let (error, line) = match item {
        Ok(Frame {
            parsed: Some(message),
            related,
            headers,
            ..
        }) => {
            return Some(Parsed {
                message: *message,
                related,
                headers,
                era: None,
                request_method: None,
            });
        }
        Ok(frame) => match Message::parse(frame.bytes) {
            Ok(message) => {
                return Some(Parsed {
                    message,
                    related: frame.related,
                    headers: frame.headers,
                    era: None,
                    request_method: None,
                });
            }
            Err(e) => (e, frame.line),
        },
        Err(e) => (e, None),
    };
    let text = match line {
        Some(l) => format!("{error} (in line {l} of the {} stream)", from.as_str()),
        None => error.to_string(),
    };
    tracing::warn!(from = from.as_str(), "bad input: {text}");
    let answer = Message::error_response(error.request_id(), error.code(), &text, None);
    queue(reply, from, answer);
    None
}

impl ForwardProxy {
    /// A proxy with this configuration.
    pub fn new(config: ForwardConfig) -> Self {
        Self { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &ForwardConfig {
        &self.config
    }

    /// Runs until the client or the server goes away, or `shutdown` completes.
    ///
    /// When the client closes its input, the server's stdin is closed, its remaining answers
    /// are passed on, and it is given [`ForwardConfig::shutdown_grace`] to exit before
    /// SIGTERM, and [`ForwardConfig::kill_grace`] more before SIGKILL; `shutdown` completing
    /// meanwhile cuts both short. When the server goes away first, every request it had not
    /// answered gets a JSON-RPC error.
    pub async fn run(
        &self,
        client: Connection,
        upstream: Upstream,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<ForwardReport> {
        let (client, upstream) = match &self.config.recorder {
            Some(recorder) => tap_both_edges(recorder, client, upstream),
            None => (client, upstream),
        };
        let Upstream {
            reader: server_reader,
            writer: server_writer,
            mut process,
            description,
            ..
        } = upstream;
        let shared = Arc::new(Shared {
            session: Mutex::new(Session::new(self.config.session.clone(), Instant::now())),
            timers: self.config.session.request_timeout.is_some()
                || self.config.session.idle_timeout.is_some(),
        });
        let (to_client_tx, to_client_rx) = mpsc::channel(self.config.side_queue);
        let (to_server_tx, to_server_rx) = mpsc::channel(self.config.side_queue);
        let mut expire_rx = None;
        let (client_hooks, server_hooks) = match &self.config.interception {
            Some(interception) => {
                let session: Arc<str> = client.session.as_deref().unwrap_or("stdio").into();
                let transport = match client.kind {
                    TransportKind::StreamableHttp => "streamable-http",
                    TransportKind::LegacySse => "legacy-sse",
                    _ => "stdio",
                };
                let tools = ToolNames::default();
                let (expire_tx, rx) = mpsc::channel(16);
                expire_rx = Some(rx);
                let hooks = |from| {
                    Hooks::new(
                        interception.clone(),
                        from,
                        session.clone(),
                        transport,
                        tools.clone(),
                    )
                };
                (
                    Some(hooks(Peer::Client).expiring_through(expire_tx)),
                    Some(hooks(Peer::Server)),
                )
            }
            None => (None, None),
        };
        let mut client_side = Owned(tokio::spawn(client_to_server(
            client.reader,
            server_writer,
            to_server_rx,
            to_client_tx.clone(),
            shared.clone(),
            client_hooks,
        )));
        let mut server_side = Owned(tokio::spawn(server_to_client(
            server_reader,
            client.writer,
            to_client_rx,
            to_server_tx,
            shared.clone(),
            server_hooks,
            expire_rx,
        )));
        drop(to_client_tx);
        let (grace, kill_grace) = (self.config.shutdown_grace, self.config.kill_grace);

        tokio::pin!(shutdown);
        // `Some(end)`: the server side already finished; `None`: it is still draining.
        let (ended_by, finished) = tokio::select! {
            end = client_side.join() => match end {
                Some(ClientSideEnd::Eof(mut w) | ClientSideEnd::Closed(mut w)) => {
                    let _ = w.close().await;
                    (EndedBy::Client, None)
                }
                Some(ClientSideEnd::ReadFailed(mut w, e)) => {
                    tracing::warn!("{e}");
                    let _ = w.close().await;
                    (EndedBy::Client, None)
                }
                Some(ClientSideEnd::ServerGone) | None => (EndedBy::Server, None),
            },
            end = server_side.join() => {
                // Dropping the other task closes the server's stdin, which lets it exit.
                drop(client_side);
                match end {
                    Some(ServerSideEnd::ClientGone) => (EndedBy::Client, Some(None)),
                    end => (EndedBy::Server, Some(end)),
                }
            }
            () = &mut shutdown => {
                drop(client_side);
                (EndedBy::Shutdown, None)
            }
        };
        // Stop the server while its last answers are still passed on.
        let drain = async {
            match finished {
                Some(end) => end,
                None => {
                    let bound = grace + kill_grace + Duration::from_secs(1);
                    tokio::time::timeout(bound, server_side.join())
                        .await
                        .ok()
                        .flatten()
                }
            }
        };
        // A shutdown request that arrives while the server is being stopped cuts the grace
        // periods short (the proxy's own parent is about to kill it).
        let signalled = ended_by == EndedBy::Shutdown;
        let hurry = async {
            if signalled {
                std::future::pending::<()>().await;
            }
            (&mut shutdown).await;
            tracing::info!("shutdown requested while stopping the server");
        };
        let stop = async {
            match process.as_mut() {
                // Asked to stop: the server gets SIGTERM at once.
                Some(p) if signalled => p
                    .shutdown(Duration::ZERO, kill_grace, hurry)
                    .await
                    .map(Some),
                Some(p) => p.shutdown(grace, kill_grace, hurry).await.map(Some),
                None => Ok(None),
            }
        };
        let (server_end, server_exit) = tokio::join!(drain, stop);
        let server_exit = server_exit.map_err(|e| Error::from_transport(e.into()))?;
        let reason = server_exit.map_or_else(|| "closed its output".to_owned(), |e| e.to_string());
        let effects = shared.on_peer_closed(Peer::Server, &reason);
        let unanswered = effects
            .iter()
            .filter(|e| matches!(e, Effect::Send { message, .. } if message.is_response()))
            .count();
        if let Some(ServerSideEnd::Eof(mut writer, mut leftovers)) = server_end {
            // The client may have closed its input and still be reading: it gets the errors.
            while let Ok(bytes) = leftovers.try_recv() {
                let _ = writer.send(&bytes).await;
            }
            for effect in effects {
                if let Effect::Send {
                    to: Peer::Client,
                    message,
                } = effect
                {
                    let _ = writer.send(message.as_bytes()).await;
                }
            }
            let _ = writer.close().await;
        }
        let stats = shared
            .session
            .lock()
            .expect("session lock is never poisoned")
            .stats();
        Ok(ForwardReport {
            ended_by,
            server_exit,
            unanswered,
            upstream: description,
            stats,
        })
    }
}
