//! The HTTP request handler: Streamable HTTP POST, GET and DELETE, dispatch to the legacy
//! endpoints, and every status code the MCP transport spec names.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming as Body;
use shadowcat_mcp::{ErrorCode, Message, MessageKind, ProtocolVersion, RequestId, detect_era};
use shadowcat_raw_transport::{HttpBody, empty_body, full_body};

use super::admission::{AdmissionContext, Admitted, AnswerFilter, Grant};
use super::checks::{
    SESSION_HEADER, accepts, check_host_and_origin, error_response, is_json, protocol_version,
    status_response,
};
use super::session::{RegisterError, SessionState};
use super::sse_body::{Outbound, SseBody, StreamGuard};
use super::{OpenError, SessionEnd, Shared, legacy};
use crate::{Frame, TransportKind};

/// Serves the MCP endpoints of an [`HttpIncoming`](super::HttpIncoming): cheap to clone,
/// call [`handle`](Self::handle) for every request.
#[derive(Clone)]
pub struct HttpHandler {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandler").finish_non_exhaustive()
    }
}

/// Headers a client sends that travel with its message to an HTTP upstream (2026-07-28).
fn pass_through(headers: &HeaderMap) -> Option<Box<HeaderMap>> {
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        if n == "mcp-method" || n == "mcp-name" || n.starts_with("mcp-param-") {
            kept.append(name.clone(), value.clone());
        }
    }
    (!kept.is_empty()).then(|| Box::new(kept))
}

fn sse_response(body: SseBody) -> Response<HttpBody> {
    let mut response = Response::new(http_body_util::BodyExt::boxed_unsync(body));
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn with_session(mut response: Response<HttpBody>, id: &str) -> Response<HttpBody> {
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert(SESSION_HEADER, v);
    }
    response
}

impl HttpHandler {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Whether `path` is one of this transport's endpoints.
    pub fn serves(&self, path: &str) -> bool {
        let c = &self.shared.config;
        path == c.path || path == c.sse_path || path == c.message_path
    }

    /// Answers one HTTP request.
    pub async fn handle(&self, request: Request<Body>) -> Response<HttpBody> {
        let response = self.dispatch(request).await;
        self.shared
            .observer
            .http_response(response.status().as_u16());
        response
    }

    async fn dispatch(&self, request: Request<Body>) -> Response<HttpBody> {
        let config = &self.shared.config;
        if let Err((status, text)) = check_host_and_origin(
            request.headers(),
            request.uri().authority().map(http::uri::Authority::as_str),
            config.allowed_hosts.as_deref(),
            &config.allowed_origins,
        ) {
            tracing::info!("refused a request: {text}");
            return error_response(status, ErrorCode::INVALID_REQUEST, &text, None);
        }
        let path = request.uri().path();
        if path == config.path {
            match *request.method() {
                Method::POST => self.post(request).await,
                Method::GET => self.get(request),
                Method::DELETE => self.delete(request),
                _ => {
                    let mut r = status_response(StatusCode::METHOD_NOT_ALLOWED, "");
                    r.headers_mut().insert(
                        http::header::ALLOW,
                        HeaderValue::from_static("GET, POST, DELETE"),
                    );
                    r
                }
            }
        } else if path == config.sse_path && request.method() == Method::GET {
            legacy::open_stream(&self.shared, &request).await
        } else if path == config.message_path && request.method() == Method::POST {
            let query = request.uri().query().map(str::to_owned);
            let (parts, body) = request.into_parts();
            let body = match self.read_body(&parts.headers, body).await {
                Ok(body) => body,
                Err(response) => return *response,
            };
            legacy::post(&self.shared, query, body, parts.extensions.get::<Grant>()).await
        } else if path == config.sse_path || path == config.message_path {
            status_response(StatusCode::METHOD_NOT_ALLOWED, "")
        } else {
            status_response(StatusCode::NOT_FOUND, "not found")
        }
    }

    /// Reads a JSON body within the size limit; the query string comes along for legacy.
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Bytes, Box<Response<HttpBody>>> {
        let max = self.shared.config.max_body;
        if !is_json(headers) {
            return Err(Box::new(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::INVALID_REQUEST,
                "Content-Type must be application/json",
                None,
            )));
        }
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || {
            Box::new(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::MESSAGE_TOO_LARGE,
                &format!("request body over the {max}-byte limit"),
                None,
            ))
        };
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        match Limited::new(body, max).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => Err(Box::new(error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                &format!("reading the request body failed: {e}"),
                None,
            ))),
        }
    }

    async fn post(&self, request: Request<Body>) -> Response<HttpBody> {
        let (parts, body) = request.into_parts();
        let headers = parts.headers;
        if !(accepts(&headers, "application/json") && accepts(&headers, "text/event-stream")) {
            return error_response(
                StatusCode::NOT_ACCEPTABLE,
                ErrorCode::INVALID_REQUEST,
                "Accept must list both application/json and text/event-stream",
                None,
            );
        }
        let header_version = match protocol_version(&headers) {
            Ok(v) => v,
            Err(text) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::INVALID_REQUEST,
                    &text,
                    None,
                );
            }
        };
        let body = match self.read_body(&headers, body).await {
            Ok(body) => body,
            Err(response) => return *response,
        };
        let message = match Message::parse(body) {
            Ok(m) => m,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    e.code(),
                    &format!("{e}"),
                    e.request_id(),
                );
            }
        };
        let grant = parts.extensions.get::<Grant>();
        let session_header = headers
            .get(SESSION_HEADER)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let existing = match session_header {
            Some(id) => match self.shared.session(id, grant) {
                Some(s) => Some(s),
                None => return unknown_session(),
            },
            None => None,
        };
        // Admission comes before a session is opened: a refused request opens nothing.
        let filters = match admit(
            &self.shared,
            grant,
            existing.as_ref().map_or("", |s| s.id.as_str()),
            TransportKind::StreamableHttp,
            &message,
        ) {
            Ok(filters) => filters,
            Err(response) => return *response,
        };
        let (session, created) = match existing {
            Some(s) => (s, false),
            None if is_initialize(&message) => {
                match self.shared.open(TransportKind::StreamableHttp, grant).await {
                    Ok(s) => (s, true),
                    Err(e) => return open_failed(e),
                }
            }
            None if detect_era(&message)
                .is_some_and(|s| s.era == shadowcat_mcp::Era::Stateless) =>
            {
                // A 2026-07-28 request carries its whole context: it gets a session of its
                // own that ends with its answer.
                match self.shared.open(TransportKind::StreamableHttp, grant).await {
                    Ok(s) => (s, true),
                    Err(e) => return open_failed(e),
                }
            }
            None => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::INVALID_REQUEST,
                    "Mcp-Session-Id header is required (send initialize first)",
                    None,
                );
            }
        };
        if !filters.is_empty() {
            session.filter_answers(filters);
        }
        let stateless = created && !is_initialize(&message);
        if is_initialize(&message) {
            self.shared.registry.update(&session.id, |info| {
                info.record_initialize(&message);
            });
        }
        let response = self
            .post_to(&session, message, &headers, header_version)
            .await;
        if stateless {
            session.close(SessionEnd::Deleted);
        } else if created && !response.status().is_success() {
            session.close(SessionEnd::Proxy);
        }
        if created && !stateless {
            with_session(response, session.id.as_str())
        } else {
            response
        }
    }

    async fn post_to(
        &self,
        session: &Arc<SessionState>,
        message: Message,
        headers: &HeaderMap,
        header_version: Option<ProtocolVersion>,
    ) -> Response<HttpBody> {
        let requests: Vec<&Message> = message
            .messages()
            .iter()
            .filter(|m| m.is_request())
            .collect();
        if requests.is_empty() {
            // Notifications and responses: accepted, nothing comes back on this POST.
            let frame = Frame {
                headers: pass_through(headers),
                ..Frame::parsed(message)
            };
            if !session.push(frame).await {
                return unknown_session();
            }
            return status_response(StatusCode::ACCEPTED, "");
        }
        let version = header_version
            .or_else(|| *session.version.lock().expect("never poisoned"))
            .or_else(|| initialize_version(&message));
        let prime = version.is_some_and(|v| v >= ProtocolVersion::V2025_11_25);
        let method = requests[0].method().unwrap_or("").to_owned();
        let first_id = requests[0].id().cloned();
        let (route, mut rx) = match session.register_post(&requests, &method, prime) {
            Ok(pair) => pair,
            Err(RegisterError::Closed) => return unknown_session(),
            Err(RegisterError::DuplicateId(id)) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::INVALID_REQUEST,
                    &format!(
                        "request id {id} is already in use by a pending request of this session"
                    ),
                    Some(&id),
                );
            }
        };
        // Parsed once here, the message goes to the pipeline as it is.
        let frame = Frame {
            headers: pass_through(headers),
            ..Frame::parsed(message)
        };
        let mut guard = StreamGuard {
            session: session.clone(),
            route,
            done: false,
        };
        if !session.push(frame).await {
            guard.done = true;
            return unknown_session();
        }
        // The first thing for this POST decides between one JSON answer and an SSE stream.
        let Some(first) = rx.recv().await else {
            guard.done = true;
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::CONNECTION_CLOSED,
                "the session ended before the server answered",
                first_id.as_ref(),
            );
        };
        match first {
            Outbound::Expire => {
                guard.done = true;
                unknown_session()
            }
            Outbound::Message {
                event_id: None,
                bytes,
            } => {
                guard.done = true;
                let mut response = Response::new(full_body(bytes));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            first => sse_response(SseBody::new(
                vec![first],
                rx,
                self.shared.config.keepalive,
                false,
                Some(guard),
            )),
        }
    }

    fn get(&self, request: Request<Body>) -> Response<HttpBody> {
        let headers = request.headers();
        if !accepts(headers, "text/event-stream") {
            return error_response(
                StatusCode::NOT_ACCEPTABLE,
                ErrorCode::INVALID_REQUEST,
                "Accept must list text/event-stream",
                None,
            );
        }
        if let Err(text) = protocol_version(headers) {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                &text,
                None,
            );
        }
        let Some(id) = headers.get(SESSION_HEADER) else {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                "Mcp-Session-Id header is required",
                None,
            );
        };
        let grant = request.extensions().get::<Grant>();
        let Some(session) = self.shared.session(id.to_str().unwrap_or("\u{0}"), grant) else {
            return unknown_session();
        };
        let keepalive = self.shared.config.keepalive;
        if let Some(last) = headers.get("last-event-id") {
            let last = last.to_str().unwrap_or_default();
            return match session.resume(last) {
                Ok((route, rx, first)) => {
                    let guard = route.map(|route| StreamGuard {
                        session: session.clone(),
                        route,
                        done: false,
                    });
                    // A finished stream: replay what is left, then end.
                    let rx = rx.unwrap_or_else(|| tokio::sync::mpsc::channel(1).1);
                    sse_response(SseBody::new(first, rx, keepalive, false, guard))
                }
                Err(text) => error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::INVALID_REQUEST,
                    &text,
                    None,
                ),
            };
        }
        let version = *session.version.lock().expect("never poisoned");
        let prime = version
            .filter(|v| *v >= ProtocolVersion::V2025_11_25)
            .map(|_| self.shared.config.retry.as_millis() as u64);
        match session.open_standalone(prime) {
            Some((route, rx, first)) => {
                let guard = StreamGuard {
                    session: session.clone(),
                    route,
                    done: false,
                };
                sse_response(SseBody::new(first, rx, keepalive, false, Some(guard)))
            }
            None => error_response(
                StatusCode::CONFLICT,
                ErrorCode::INVALID_REQUEST,
                "this session already has an open GET stream",
                None,
            ),
        }
    }

    fn delete(&self, request: Request<Body>) -> Response<HttpBody> {
        let Some(id) = request.headers().get(SESSION_HEADER) else {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                "Mcp-Session-Id header is required",
                None,
            );
        };
        let grant = request.extensions().get::<Grant>();
        match self.shared.session(id.to_str().unwrap_or("\u{0}"), grant) {
            Some(session) => {
                session.close(SessionEnd::Deleted);
                let mut r = Response::new(empty_body());
                *r.status_mut() = StatusCode::OK;
                r
            }
            None => unknown_session(),
        }
    }
}

/// A request whose answer the gateway filters, and its filter.
pub(super) type Filtered = (RequestId, Arc<dyn AnswerFilter>);

/// Puts every message of a POST to the gateway's admission; the answer filters it asks
/// for, or the response that refuses the POST (the first refusal in a batch refuses all).
pub(super) fn admit(
    shared: &Shared,
    grant: Option<&Grant>,
    session: &str,
    transport: TransportKind,
    message: &Message,
) -> Result<Vec<Filtered>, Box<Response<HttpBody>>> {
    let Some(admission) = shared.admission.as_deref() else {
        return Ok(Vec::new());
    };
    let context = AdmissionContext {
        grant,
        session,
        transport,
    };
    let mut filters = Vec::new();
    for m in message.messages() {
        match admission.admit(&context, m) {
            Admitted::Yes => {}
            Admitted::Filtered(filter) => {
                if let Some(id) = m.id() {
                    filters.push((id.clone(), filter));
                }
            }
            Admitted::No(response) => return Err(Box::new(response)),
        }
    }
    Ok(filters)
}

fn is_initialize(message: &Message) -> bool {
    message.kind() == MessageKind::Request && message.method() == Some("initialize")
}

/// The revision an `initialize` request asks for.
fn initialize_version(message: &Message) -> Option<ProtocolVersion> {
    if !is_initialize(message) {
        return None;
    }
    let params: serde_json::Value = serde_json::from_str(message.params()?).ok()?;
    ProtocolVersion::parse(params.get("protocolVersion")?.as_str()?)
}

pub(crate) fn unknown_session() -> Response<HttpBody> {
    error_response(
        StatusCode::NOT_FOUND,
        ErrorCode::REQUEST_TIMEOUT,
        "Session not found",
        None,
    )
}

fn open_failed(e: OpenError) -> Response<HttpBody> {
    match e {
        OpenError::Full(text) => {
            let mut r = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::INTERNAL_ERROR,
                &text,
                None,
            );
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        OpenError::ShuttingDown => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::INTERNAL_ERROR,
            "the gateway is shutting down",
            None,
        ),
    }
}
