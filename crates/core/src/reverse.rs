//! The reverse proxy (gateway): HTTP clients in front, one upstream connection per client
//! session behind (a child process of its own, or an upstream HTTP session).
//!
//! The HTTP incoming transport hands out one [`Connection`] per client session; each runs
//! through the same [`ForwardProxy`] pipeline as stdio, against an upstream made for it by
//! the [`UpstreamFactory`]. `/healthz`, `/readyz` and `/metrics` are answered here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming as Body;
use shadowcat_mcp::{ErrorCode, Message};
use shadowcat_raw_transport::{HttpBody, HttpServer, HttpServerConfig, full_body};
use shadowcat_transport::{
    Connection, HttpHandler, HttpIncoming, HttpIncomingConfig, HttpObserver, Incoming, Outgoing,
    SessionEnd, TransportKind,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admission::{Admission, AdmissionConfig};
use crate::metrics::{CloseReason, Metrics, Outcome};
use crate::{Error, ForwardConfig, ForwardProxy, Result};

/// Makes a fresh upstream connector for each client session, given the session's client
/// connection (its id, its transport, and who its requests come from).
pub type UpstreamFactory = Arc<dyn Fn(&Connection) -> Box<dyn Outgoing> + Send + Sync>;

/// How the reverse proxy behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReverseConfig {
    /// Where to listen (127.0.0.1 unless told otherwise).
    pub listen: SocketAddr,
    /// The HTTP transport: paths, limits, Host and Origin checks, SSE tuning.
    pub incoming: HttpIncomingConfig,
    /// The per-session pipeline: pending limits, shutdown graces of child processes.
    pub forward: ForwardConfig,
    /// The HTTP server: drain time at shutdown.
    pub server: HttpServerConfig,
    /// Authentication, policy, rate limits and audit (`None`: every request is admitted).
    pub admission: Option<AdmissionConfig>,
}

impl Default for ReverseConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            incoming: HttpIncomingConfig::default(),
            forward: ForwardConfig::default(),
            server: HttpServerConfig::default(),
            admission: None,
        }
    }
}

impl ReverseConfig {
    /// Sets the listening address.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Sets the HTTP transport's configuration.
    pub fn with_incoming(mut self, incoming: HttpIncomingConfig) -> Self {
        self.incoming = incoming;
        self
    }

    /// Sets the admission step: authentication, policy, rate limits, audit.
    pub fn with_admission(mut self, admission: Option<AdmissionConfig>) -> Self {
        self.admission = admission;
        self
    }

    /// Sets the per-session pipeline's configuration.
    pub fn with_forward(mut self, forward: ForwardConfig) -> Self {
        self.forward = forward;
        self
    }

    /// Sets the HTTP server's configuration (TLS, drain time).
    pub fn with_server(mut self, server: HttpServerConfig) -> Self {
        self.server = server;
        self
    }
}

/// Turns transport events into metrics.
struct Observer(Arc<Metrics>);

impl HttpObserver for Observer {
    fn request_done(&self, method: &str, ok: bool, latency: Duration) {
        let outcome = if ok { Outcome::Ok } else { Outcome::Error };
        self.0.observe_request(method, outcome, latency);
    }
    fn http_response(&self, status: u16) {
        self.0.http_response(status);
    }
    fn session_opened(&self, kind: TransportKind) {
        let name = match kind {
            TransportKind::LegacySse => "legacy-sse",
            TransportKind::StreamableHttp => "streamable-http",
            _ => "stdio",
        };
        self.0.session_opened(name);
    }
    fn session_closed(&self, why: SessionEnd) {
        let reason = match why {
            SessionEnd::Deleted => CloseReason::Deleted,
            SessionEnd::Idle => CloseReason::Idle,
            _ => CloseReason::UpstreamGone,
        };
        self.0.session_closed(reason);
    }
    fn session_rejected(&self) {
        self.0.session_rejected();
    }
}

/// A reverse proxy bound to its address, ready to [`run`](Self::run).
pub struct ReverseProxy {
    server: HttpServer,
    incoming: HttpIncoming,
    handler: HttpHandler,
    upstream: UpstreamFactory,
    forward: ForwardConfig,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    admission: Option<Arc<Admission>>,
}

impl std::fmt::Debug for ReverseProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseProxy")
            .field("addr", &self.server.local_addr())
            .finish_non_exhaustive()
    }
}

impl ReverseProxy {
    /// Binds the listening address.
    pub async fn bind(config: ReverseConfig, upstream: UpstreamFactory) -> Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let observer: Arc<dyn HttpObserver> = Arc::new(Observer(metrics.clone()));
        let admission = config
            .admission
            .map(|c| Admission::new(c, metrics.clone()).map(Arc::new))
            .transpose()?;
        if let Some(a) = &admission {
            a.prefetch().await;
        }
        let gate = admission
            .clone()
            .map(|a| a as Arc<dyn shadowcat_transport::MessageAdmission>);
        let (incoming, handler) = HttpIncoming::with_admission(config.incoming, observer, gate);
        let server = HttpServer::bind(config.listen, config.server)
            .await
            .map_err(|e| Error::from_transport(e.into()))?;
        Ok(Self {
            server,
            incoming,
            handler,
            upstream,
            forward: config.forward,
            metrics,
            ready: Arc::new(AtomicBool::new(true)),
            admission,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The metrics it keeps.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` completes; then stops accepting, ends every session (their
    /// upstreams are shut down as in the forward proxy) and drains open HTTP connections.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Self {
            server,
            mut incoming,
            handler,
            upstream,
            forward,
            metrics,
            ready,
            admission,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let serve = {
            let metrics = metrics.clone();
            let ready = ready.clone();
            let mut stop = stop_rx.clone();
            server.serve(
                {
                    let admission = admission.clone();
                    move |request, peer| {
                        let handler = handler.clone();
                        let metrics = metrics.clone();
                        let ready = ready.clone();
                        let admission = admission.clone();
                        async move {
                            route(
                                request,
                                peer,
                                &handler,
                                &metrics,
                                &ready,
                                admission.as_deref(),
                            )
                            .await
                        }
                    }
                },
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )
        };
        let proxy = ForwardProxy::new(forward);
        let mut sessions = JoinSet::new();
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        tokio::pin!(shutdown);
        tokio::pin!(serve);
        let served = loop {
            tokio::select! {
                () = &mut shutdown => break None,
                result = &mut serve => break Some(result),
                _ = sweep.tick() => {
                    incoming.sweep();
                    ticks += 1;
                    // Idle rate-limit state goes once a minute.
                    if ticks.is_multiple_of(60) && let Some(a) = &admission {
                        a.sweep();
                    }
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                accepted = incoming.accept() => match accepted {
                    Ok(Some(connection)) => {
                        let outgoing = upstream(&connection);
                        let proxy = proxy.clone();
                        let mut stop = stop_rx.clone();
                        let metrics = metrics.clone();
                        sessions.spawn(async move {
                            let stopped = async move {
                                let _ = stop.wait_for(|s| *s).await;
                            };
                            run_session(&proxy, connection, outgoing, stopped, &metrics).await;
                        });
                    }
                    Ok(None) | Err(_) => break None,
                },
            }
        };
        ready.store(false, Ordering::Relaxed);
        tracing::info!(sessions = incoming.sessions(), "shutting down");
        let _ = stop_tx.send(true);
        incoming.close_all();
        // Sessions stop their upstreams (with the forward proxy's graces) while the HTTP
        // server drains; both are bounded.
        let bound = forward_bound(&proxy);
        let drain_sessions = async {
            let _ = tokio::time::timeout(bound, async {
                while sessions.join_next().await.is_some() {}
            })
            .await;
            sessions.shutdown().await;
        };
        let (served, ()) = match served {
            Some(result) => (result, drain_sessions.await),
            None => tokio::join!(serve, drain_sessions),
        };
        if let Some(a) = &admission {
            a.flush().await;
        }
        served.map_err(|e| Error::from_transport(e.into()))
    }
}

fn forward_bound(proxy: &ForwardProxy) -> Duration {
    let c = proxy.config();
    c.shutdown_grace + c.kill_grace + Duration::from_secs(2)
}

/// One client session: connect its upstream, run the pipeline, log how it ended.
async fn run_session(
    proxy: &ForwardProxy,
    mut connection: Connection,
    mut outgoing: Box<dyn Outgoing>,
    stopped: impl Future<Output = ()>,
    metrics: &Metrics,
) {
    let upstream = match outgoing.connect().await {
        Ok(u) => u,
        Err(e) => {
            metrics.upstream_failure();
            tracing::warn!("cannot reach the upstream for a new session: {e}");
            refuse(&mut connection, &e.to_string()).await;
            return;
        }
    };
    match proxy.run(connection, upstream, stopped).await {
        Ok(report) => {
            if report.is_failure() {
                metrics.upstream_failure();
                tracing::warn!("session ended: {}", report.reason());
            } else {
                tracing::debug!("session ended: {}", report.reason());
            }
        }
        Err(e) => tracing::warn!("session failed: {e}"),
    }
}

/// Answers what the client already sent with an error, then ends the session.
async fn refuse(connection: &mut Connection, why: &str) {
    let text = format!("the upstream is unavailable: {why}");
    // The request that opened the session may still be on its way.
    let first = tokio::time::timeout(Duration::from_secs(2), connection.reader.recv())
        .await
        .ok()
        .and_then(|r| r.ok().flatten());
    let rest = std::iter::from_fn(|| connection.reader.next_buffered());
    let items: Vec<_> = first.into_iter().chain(rest).collect();
    for item in items {
        if let Ok(frame) = item
            && let Ok(msg) = Message::parse(frame.bytes)
        {
            for m in msg.messages().iter().filter(|m| m.is_request()) {
                let error =
                    Message::error_response(m.id(), ErrorCode::UPSTREAM_UNAVAILABLE, &text, None);
                connection.writer.enqueue(error.as_bytes());
            }
        }
    }
    let _ = connection.writer.close().await;
}

async fn route(
    mut request: Request<Body>,
    peer: SocketAddr,
    handler: &HttpHandler,
    metrics: &Metrics,
    ready: &AtomicBool,
    admission: Option<&Admission>,
) -> Response<HttpBody> {
    let text = |status: StatusCode, body: String, kind: &'static str| {
        let mut r = Response::new(full_body(body));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        r
    };
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into(), "text/plain"),
        "/readyz" if ready.load(Ordering::Relaxed) => {
            text(StatusCode::OK, "ready\n".into(), "text/plain")
        }
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".into(),
            "text/plain",
        ),
        "/metrics" => text(
            StatusCode::OK,
            metrics.render(),
            "text/plain; version=0.0.4",
        ),
        path => {
            if let Some(admission) = admission {
                if let Some(document) = admission.metadata(path) {
                    return document;
                }
                if handler.serves(path)
                    && let Err(refused) = admission.admit_request(&mut request, peer).await
                {
                    metrics.http_response(refused.status().as_u16());
                    return refused;
                }
            }
            handler.handle(request).await
        }
    }
}
