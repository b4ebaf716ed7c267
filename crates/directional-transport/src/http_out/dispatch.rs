//! The task that turns queued messages into HTTP requests, in order: it holds back
//! everything behind `initialize` until the upstream's answer head (and session id) is in,
//! falls back to the legacy HTTP+SSE transport when the upstream refuses the POST, opens
//! the standalone GET stream after `notifications/initialized`, and owns every request
//! task, so dropping it stops them all.

use std::sync::Arc;

use http::uri::Uri;
use http::{HeaderMap, StatusCode};
use shadowcat_mcp::{ErrorCode, Message};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};

use super::HttpMode;
use super::context::{Context, is_initialize, request_ids};
use super::legacy;
use super::post::{Handshake, Post};
use super::stream::standalone;

/// One message (or batch) to POST, holding its slot among the POSTs in flight.
#[derive(Debug)]
pub(super) struct Outbound {
    pub(super) message: Message,
    pub(super) headers: Option<HeaderMap>,
    pub(super) permit: OwnedSemaphorePermit,
}

/// Which transport the session turned out to use.
#[derive(Debug)]
enum Mode {
    /// Nothing sent yet (or `initialize` failed).
    Fresh,
    /// Streamable HTTP: POST to the URL.
    Streamable,
    /// Legacy HTTP+SSE: POST to this endpoint.
    Legacy(Uri),
}

/// Dispatches the messages of one upstream session.
#[derive(Debug)]
pub(super) struct Dispatcher {
    ctx: Arc<Context>,
    mode: Mode,
    posts: JoinSet<()>,
    streams: JoinSet<()>,
    standalone_started: bool,
    /// Told when the standalone stream's first opening is over: the messages after
    /// `notifications/initialized` wait for it, so that server messages sent outside any
    /// request have a stream to travel on.
    standalone_settled: Option<oneshot::Receiver<()>>,
    permits: Arc<Semaphore>,
}

impl Dispatcher {
    pub(super) fn new(ctx: Arc<Context>, permits: Arc<Semaphore>) -> Self {
        Self {
            ctx,
            mode: Mode::Fresh,
            posts: JoinSet::new(),
            streams: JoinSet::new(),
            standalone_started: false,
            standalone_settled: None,
            permits,
        }
    }

    /// Opens the legacy event stream and waits for the endpoint it names.
    pub(super) async fn open_legacy(&mut self) -> Result<(), String> {
        let (tx, mut rx) = oneshot::channel();
        self.streams.spawn(legacy::stream(self.ctx.clone(), tx));
        let limit = self.ctx.config.handshake_timeout;
        let reason = match self.ctx.handshake(&mut rx).await {
            Some(Ok(Ok(endpoint))) => {
                tracing::debug!(upstream = %self.ctx.url, %endpoint, "legacy HTTP+SSE endpoint");
                self.mode = Mode::Legacy(endpoint);
                return Ok(());
            }
            Some(Ok(Err(reason))) => reason,
            Some(Err(_)) => "the event stream ended".to_owned(),
            None => format!("no endpoint event within {} ms", limit.as_millis()),
        };
        self.streams.abort_all();
        Err(reason)
    }

    /// Runs until the writer closes (then ends the session) or the upstream session ends.
    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Outbound>) {
        loop {
            tokio::select! {
                biased;
                () = self.ctx.ended.notified() => break,
                outbound = commands.recv() => match outbound {
                    Some(Outbound { message, headers, permit }) => {
                        self.dispatch(message, headers, permit).await;
                    }
                    // The writer closed: finish and end the session.
                    None => {
                        self.close().await;
                        break;
                    }
                },
                Some(joined) = self.posts.join_next(), if !self.posts.is_empty() => report(joined),
                Some(joined) = self.streams.join_next(), if !self.streams.is_empty() => report(joined),
            }
        }
        self.permits.close();
    }

    async fn dispatch(
        &mut self,
        message: Message,
        headers: Option<HeaderMap>,
        permit: OwnedSemaphorePermit,
    ) {
        if let Some(settled) = self.standalone_settled.take() {
            let _ = tokio::time::timeout(self.ctx.config.handshake_timeout, settled).await;
        }
        let ctx = self.ctx.clone();
        match &self.mode {
            Mode::Legacy(endpoint) => {
                let endpoint = endpoint.clone();
                self.posts
                    .spawn(legacy::post(ctx, endpoint, message, headers, Some(permit)));
            }
            Mode::Fresh if is_initialize(&message) => {
                self.initialize(message, headers, permit).await;
            }
            Mode::Fresh | Mode::Streamable => {
                // Without `initialize` first: a stateless (2026-07-28) exchange.
                self.mode = Mode::Streamable;
                let accepted = self.standalone_after(&message);
                let post = Post {
                    message,
                    headers,
                    permit: Some(permit),
                    handshake: None,
                    accepted,
                };
                self.posts.spawn(post.run(ctx));
            }
        }
    }

    /// For `notifications/initialized`: starts the standalone GET stream, which opens once
    /// the returned sender reports that the upstream accepted the notification.
    fn standalone_after(&mut self, message: &Message) -> Option<oneshot::Sender<()>> {
        let initialized = message.method() == Some("notifications/initialized");
        if !initialized || self.standalone_started || !self.ctx.config.standalone_stream {
            return None;
        }
        self.standalone_started = true;
        let (tx, rx) = oneshot::channel();
        let (settled_tx, settled_rx) = oneshot::channel();
        self.streams
            .spawn(standalone(self.ctx.clone(), rx, settled_tx));
        self.standalone_settled = Some(settled_rx);
        Some(tx)
    }

    /// POSTs `initialize` and waits for the head of its answer.
    async fn initialize(
        &mut self,
        message: Message,
        headers: Option<HeaderMap>,
        permit: OwnedSemaphorePermit,
    ) {
        let (tx, mut rx) = oneshot::channel();
        let post = Post {
            message: message.clone(),
            headers: headers.clone(),
            permit: Some(permit),
            handshake: Some(tx),
            accepted: None,
        };
        self.posts.spawn(post.run(self.ctx.clone()));
        let limit = self.ctx.config.handshake_timeout;
        match self.ctx.handshake(&mut rx).await {
            Some(Ok(Handshake::Accepted)) => self.mode = Mode::Streamable,
            Some(Ok(Handshake::Refused(status, detail))) => {
                self.fall_back(message, headers, status, detail).await;
            }
            // The POST failed; the request got its error answer. A new `initialize` may
            // try again.
            Some(Err(_)) => {}
            None => {
                tracing::warn!(upstream = %self.ctx.url, "no answer to initialize within {limit:?}; sending on");
                self.mode = Mode::Streamable;
            }
        }
    }

    /// After the upstream refused the `initialize` POST: the legacy HTTP+SSE transport,
    /// unless the configuration asks for Streamable HTTP only.
    async fn fall_back(
        &mut self,
        message: Message,
        headers: Option<HeaderMap>,
        status: StatusCode,
        detail: String,
    ) {
        let url = self.ctx.url.clone();
        let reason = if self.ctx.config.mode == HttpMode::StreamableHttp {
            None
        } else {
            tracing::info!(upstream = %url, "initialize answered HTTP {status}: trying the legacy HTTP+SSE transport");
            match self.open_legacy().await {
                Ok(()) => {
                    if let Mode::Legacy(endpoint) = &self.mode {
                        let task = legacy::post(
                            self.ctx.clone(),
                            endpoint.clone(),
                            message,
                            headers,
                            None,
                        );
                        self.posts.spawn(task);
                    }
                    return;
                }
                Err(reason) => Some(reason),
            }
        };
        let mut text =
            format!("upstream {url} answered the initialize POST with HTTP {status}{detail}");
        if let Some(reason) = reason {
            text.push_str(&format!(
                ", and the legacy HTTP+SSE transport failed too: {reason}"
            ));
        }
        self.ctx
            .fail(
                &request_ids(&message),
                ErrorCode::INTERNAL_ERROR,
                &text,
                Some(status),
            )
            .await;
    }

    /// Waits (bounded) for the requests in flight, stops the streams, and ends the
    /// upstream session with DELETE (a 405, no such thing, is fine).
    async fn close(&mut self) {
        let grace = self.ctx.config.close_grace;
        let posts = &mut self.posts;
        let drained = tokio::time::timeout(grace, async {
            while let Some(joined) = posts.join_next().await {
                report(joined);
            }
        })
        .await;
        if drained.is_err() {
            tracing::debug!(upstream = %self.ctx.url, "closing with {} requests still in flight", self.posts.len());
        }
        self.posts.abort_all();
        self.streams.abort_all();
        if !matches!(self.mode, Mode::Streamable) || self.ctx.session_id().is_none() {
            return;
        }
        let limit = Some(self.ctx.config.handshake_timeout);
        match self.ctx.send(self.ctx.delete(), limit).await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => {}
            Ok(response) => {
                tracing::debug!(upstream = %self.ctx.url, "DELETE of the session answered {}", response.status());
            }
            Err(failure) => {
                tracing::debug!(upstream = %self.ctx.url, "DELETE of the session failed: {failure:?}");
            }
        }
    }
}

fn report(joined: Result<(), JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        tracing::error!("an upstream HTTP request task panicked: {e}");
    }
}
