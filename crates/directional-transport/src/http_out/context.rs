//! What every task of one upstream HTTP session shares: the client, the URL, the session
//! id and negotiated revision, and the channel to the reader; request building and the
//! JSON-RPC errors the transport answers with when the upstream fails.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use shadowcat_mcp::{ErrorCode, Message, RequestId};
use shadowcat_raw_transport::{HttpClient, HttpRequestBody};
use tokio::sync::{Notify, mpsc, oneshot};

use super::HttpOutgoingConfig;
use super::authorize::{
    ChallengeAction, MAX_CHALLENGE_ROUNDS, UpstreamChallenge, challenges, is_challenge,
    set_authorization,
};
use crate::{Frame, Received};

/// `Mcp-Session-Id`.
pub(super) const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`.
pub(super) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Last-Event-ID`.
pub(super) const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Headers a message's pass-through headers never set: this transport's own, hop-by-hop
/// ones, and the client's credentials and origin, which belong to the client's hop only.
const NOT_PASSED: [&str; 19] = [
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "accept",
    "accept-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "mcp-session-id",
    "last-event-id",
    "authorization",
    "cookie",
    "origin",
];

/// How much of an error answer's body is read to explain it.
const ERROR_BODY_LIMIT: usize = 4096;

/// The upstream session's state, learnt from its answers.
#[derive(Debug, Default)]
struct SessionState {
    session_id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
}

/// Shared by the dispatcher and every request task of one upstream session.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) client: HttpClient,
    pub(super) url: Uri,
    pub(super) config: HttpOutgoingConfig,
    state: Mutex<SessionState>,
    frames: mpsc::Sender<Received>,
    /// Notified once when the upstream session is over (expired, or the legacy stream
    /// ended): the dispatcher then stops and the reader ends.
    pub(super) ended: Notify,
    /// How many requests are waiting for the authorizer (which may wait for a user).
    authorizing: AtomicUsize,
}

/// Counts a request as waiting for the authorizer while it lives.
struct Authorizing<'a>(&'a AtomicUsize);

impl<'a> Authorizing<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Authorizing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// No response at all: connection refused, reset, timed out.
    Unreachable(String),
    /// An HTTP error status, with what the body said.
    Status(StatusCode, String),
    /// The upstream needs authorization that could not be obtained, with why.
    Unauthorized(String),
}

impl Context {
    pub(super) fn new(
        client: HttpClient,
        url: Uri,
        config: HttpOutgoingConfig,
        frames: mpsc::Sender<Received>,
    ) -> Self {
        Self {
            client,
            url,
            config,
            state: Mutex::new(SessionState::default()),
            frames,
            ended: Notify::new(),
            authorizing: AtomicUsize::new(0),
        }
    }

    /// Waits for a handshake's outcome (the head of `initialize`'s answer, the legacy
    /// endpoint) up to the handshake timeout, which does not run while a request waits for
    /// the authorizer (a user approving in a browser takes longer); `None` when it ran out.
    pub(super) async fn handshake<T>(
        &self,
        outcome: &mut oneshot::Receiver<T>,
    ) -> Option<Result<T, oneshot::error::RecvError>> {
        loop {
            match tokio::time::timeout(self.config.handshake_timeout, &mut *outcome).await {
                Ok(result) => return Some(result),
                Err(_) if self.authorizing.load(Ordering::SeqCst) > 0 => {}
                Err(_) => return None,
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session id the upstream issued, once known.
    pub(super) fn session_id(&self) -> Option<HeaderValue> {
        self.state().session_id.clone()
    }

    pub(super) fn set_session_id(&self, id: HeaderValue) {
        self.state().session_id = Some(id);
    }

    pub(super) fn set_protocol_version(&self, version: HeaderValue) {
        self.state().protocol_version = Some(version);
    }

    /// Marks the upstream session as over.
    pub(super) fn end(&self) {
        self.ended.notify_one();
    }

    /// Hands a frame to the reader; false when the reader is gone.
    pub(super) async fn emit(&self, item: Received) -> bool {
        self.frames.send(item).await.is_ok()
    }

    /// Answers each of `ids` with a JSON-RPC error response, naming `status`, the status the
    /// upstream answered with (the frames carry it); false when the reader is gone.
    pub(super) async fn fail(
        &self,
        ids: &[RequestId],
        code: ErrorCode,
        text: &str,
        status: Option<StatusCode>,
    ) -> bool {
        self.answer_with_error(ids, code, text, status, status)
            .await
    }

    /// Answers each of `ids` with a JSON-RPC error response whose data names `named`; the
    /// frames carry `answered`, the status of the upstream's response, when there was one.
    async fn answer_with_error(
        &self,
        ids: &[RequestId],
        code: ErrorCode,
        text: &str,
        named: Option<StatusCode>,
        answered: Option<StatusCode>,
    ) -> bool {
        let data = named.map(|s| serde_json::json!({ "httpStatus": s.as_u16() }));
        for id in ids {
            let answer = Message::error_response(Some(id), code, text, data.as_ref());
            let mut frame = Frame::new(answer.into_bytes());
            frame.status = answered.map(|s| s.as_u16());
            if !self.emit(Ok(frame)).await {
                return false;
            }
        }
        true
    }

    /// Answers `ids` for a request that got `failure`, naming the upstream.
    pub(super) async fn fail_with(&self, ids: &[RequestId], failure: &Failure) -> bool {
        match failure {
            Failure::Unreachable(reason) => {
                let text = format!("upstream {} is unreachable: {reason}", self.url);
                self.fail(ids, ErrorCode::UPSTREAM_UNAVAILABLE, &text, None)
                    .await
            }
            Failure::Status(status, detail) => {
                let text = format!("upstream {} answered HTTP {status}{detail}", self.url);
                self.fail(ids, ErrorCode::INTERNAL_ERROR, &text, Some(*status))
                    .await
            }
            Failure::Unauthorized(reason) => {
                let text = format!("upstream {} needs authorization: {reason}", self.url);
                // The credentials may have failed before any response: no status to carry.
                self.answer_with_error(
                    ids,
                    ErrorCode::INTERNAL_ERROR,
                    &text,
                    Some(StatusCode::UNAUTHORIZED),
                    None,
                )
                .await
            }
        }
    }

    /// Answers `ids` after the upstream forgot the session (404 for a known session id).
    pub(super) async fn fail_expired(&self, ids: &[RequestId], detail: &str) -> bool {
        let text = format!(
            "the upstream session at {} has expired (HTTP 404 Not Found{detail})",
            self.url
        );
        self.fail(
            ids,
            ErrorCode::UPSTREAM_UNAVAILABLE,
            &text,
            Some(StatusCode::NOT_FOUND),
        )
        .await
    }

    /// A request to `uri` with the configured static headers, the session id and the
    /// negotiated revision.
    fn request(&self, method: Method, uri: &Uri, session: bool) -> http::request::Builder {
        let mut builder = Request::builder().method(method).uri(uri.clone());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(self.config.headers.clone());
            if session {
                let state = self.state();
                if let Some(id) = &state.session_id {
                    headers.insert(SESSION_ID, id.clone());
                }
                if let Some(version) = &state.protocol_version {
                    headers.insert(PROTOCOL_VERSION, version.clone());
                }
            }
        }
        builder
    }

    /// A POST of one message (or batch) to `uri`, with its pass-through headers.
    pub(super) fn post(
        &self,
        uri: &Uri,
        message: &Message,
        passed: Option<&HeaderMap>,
        session: bool,
    ) -> Request<HttpRequestBody> {
        let mut builder = self
            .request(Method::POST, uri, session)
            .header(ACCEPT, ACCEPT_BOTH)
            .header(CONTENT_TYPE, JSON);
        if let Some(headers) = builder.headers_mut() {
            for (name, value) in passed.into_iter().flatten() {
                let own = NOT_PASSED.contains(&name.as_str())
                    || (name == PROTOCOL_VERSION && headers.contains_key(PROTOCOL_VERSION));
                if !own {
                    headers.append(name, value.clone());
                }
            }
            if session && !headers.contains_key(PROTOCOL_VERSION) {
                // A stateless (2026-07-28) request names its revision in `_meta`.
                if let Some(version) = shadowcat_mcp::detect_era(message)
                    .filter(|s| s.era == shadowcat_mcp::Era::Stateless)
                    .and_then(|s| HeaderValue::from_str(&s.version).ok())
                {
                    headers.insert(PROTOCOL_VERSION, version);
                }
            }
        }
        builder
            .body(HttpRequestBody::new(message.as_bytes().clone()))
            .expect("a request built from a valid URI and header values")
    }

    /// A GET of an event stream (the standalone stream, or a resumption after
    /// `last_event_id`).
    pub(super) fn get_stream(
        &self,
        session: bool,
        last_event_id: Option<&str>,
    ) -> Request<HttpRequestBody> {
        let mut builder = self
            .request(Method::GET, &self.url, session)
            .header(ACCEPT, EVENT_STREAM);
        if let Some(value) = last_event_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            builder = builder.header(LAST_EVENT_ID, value);
        }
        builder
            .body(HttpRequestBody::default())
            .expect("a request built from a valid URI and header values")
    }

    /// The DELETE that ends the session.
    pub(super) fn delete(&self) -> Request<HttpRequestBody> {
        self.request(Method::DELETE, &self.url, true)
            .body(HttpRequestBody::default())
            .expect("a request built from a valid URI and header values")
    }

    /// Sends `request`, waiting at most `limit` for the response head. With an
    /// [`UpstreamAuthorizer`](super::UpstreamAuthorizer), the request carries its
    /// `Authorization` header, and a 401 or 403 goes to the authorizer, which may have the
    /// request sent again (a bounded number of times).
    pub(super) async fn send(
        &self,
        request: Request<HttpRequestBody>,
        limit: Option<Duration>,
    ) -> Result<Response<Incoming>, Failure> {
        let Some(authorizer) = self.config.authorizer.clone() else {
            return self.send_once(request, limit).await;
        };
        let (parts, body) = request.into_parts();
        let mut round = 0;
        // From the first challenge on, the request counts as waiting for the authorizer
        // until it is answered.
        let mut challenged: Option<Authorizing<'_>> = None;
        loop {
            let credentials = {
                let _waiting = Authorizing::new(&self.authorizing);
                authorizer.authorization().await
            }
            .map_err(Failure::Unauthorized)?;
            let mut request = Request::from_parts(parts.clone(), body.clone());
            set_authorization(request.headers_mut(), credentials.as_ref());
            let response = self.send_once(request, limit).await?;
            if !is_challenge(response.status()) || round >= MAX_CHALLENGE_ROUNDS {
                return Ok(response);
            }
            round += 1;
            let challenge = UpstreamChallenge {
                status: response.status(),
                www_authenticate: challenges(response.headers()),
                authorization: credentials.as_ref(),
                method: &parts.method,
                url: &parts.uri,
            };
            if challenged.is_none() {
                challenged = Some(Authorizing::new(&self.authorizing));
            }
            let action = authorizer.on_challenge(&challenge).await;
            match action {
                ChallengeAction::Retry => {
                    tracing::debug!(upstream = %self.url, status = %response.status(), "sending the request again with new credentials");
                    // Reading the refusal lets its connection be reused.
                    let mut body = response.into_body();
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        read_body(&mut body, ERROR_BODY_LIMIT),
                    )
                    .await;
                }
                ChallengeAction::Refuse(reason) => return Err(Failure::Unauthorized(reason)),
                _ => return Ok(response),
            }
        }
    }

    /// Sends `request` as it is, waiting at most `limit` for the response head.
    async fn send_once(
        &self,
        request: Request<HttpRequestBody>,
        limit: Option<Duration>,
    ) -> Result<Response<Incoming>, Failure> {
        let sent = self.client.send(request);
        let result = match limit {
            Some(limit) => tokio::time::timeout(limit, sent).await.map_err(|_| {
                Failure::Unreachable(format!("no answer within {} ms", limit.as_millis()))
            })?,
            None => sent.await,
        };
        result.map_err(|e| Failure::Unreachable(e.to_string()))
    }
}

/// Whether a response's content type is `kind` (`application/json`, `text/event-stream`).
pub(super) fn has_content_type<B>(response: &Response<B>, kind: &str) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(kind))
}

/// Reads a whole body of at most `limit` bytes.
pub(super) async fn read_body(body: &mut Incoming, limit: usize) -> Result<Bytes, String> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the answer failed: {e}"))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total > limit {
                return Err(format!(
                    "the answer exceeds the limit of {limit} bytes for one message"
                ));
            }
            chunks.push(data);
        }
    }
    Ok(match chunks.len() {
        1 => chunks.swap_remove(0),
        _ => chunks.concat().into(),
    })
}

/// What an error answer's body says, as `: text` for a message (empty when it says
/// nothing): the `error.message` of a JSON-RPC error, or the start of the text.
pub(super) async fn error_detail(response: Response<Incoming>) -> String {
    error_body(response).await.1
}

/// An error answer's body: the JSON-RPC message it holds, if any, and what it says (see
/// [`error_detail`]).
pub(super) async fn error_body(response: Response<Incoming>) -> (Option<Message>, String) {
    let mut body = response.into_body();
    let read = tokio::time::timeout(
        Duration::from_secs(2),
        read_body(&mut body, ERROR_BODY_LIMIT),
    );
    let Ok(Ok(bytes)) = read.await else {
        return (None, String::new());
    };
    let message = Message::parse(bytes.clone()).ok();
    let text = match message.as_ref().and_then(Message::error) {
        Some(error) => error.message,
        None => String::from_utf8_lossy(&bytes).trim().to_owned(),
    };
    let mut text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if !text.is_empty() {
        text.insert_str(0, ": ");
    }
    (message, text)
}

/// The ids of the requests in `message` (itself or the elements of a batch).
pub(super) fn request_ids(message: &Message) -> Vec<RequestId> {
    message
        .messages()
        .iter()
        .filter(|m| m.is_request())
        .filter_map(|m| m.id().cloned())
        .collect()
}

/// Whether `message` is (or a batch holds) an `initialize` request.
pub(super) fn is_initialize(message: &Message) -> bool {
    message
        .messages()
        .iter()
        .any(|m| m.is_request() && m.method() == Some("initialize"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shadowcat_raw_transport::HttpClientConfig;

    fn context(config: HttpOutgoingConfig) -> (Context, mpsc::Receiver<Received>) {
        let client = HttpClient::new(&HttpClientConfig::default()).expect("client");
        let (tx, rx) = mpsc::channel(8);
        let url: Uri = "http://127.0.0.1:1/mcp".parse().expect("url");
        (Context::new(client, url, config, tx), rx)
    }

    fn header<'a>(request: &'a Request<HttpRequestBody>, name: &str) -> Option<&'a str> {
        request.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn a_post_carries_the_session_and_passes_only_the_messages_own_headers() {
        let config = HttpOutgoingConfig::default().with_header(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer configured"),
        );
        let (ctx, _rx) = context(config);
        ctx.set_session_id(HeaderValue::from_static("s-1"));
        ctx.set_protocol_version(HeaderValue::from_static("2025-11-25"));
        let mut passed = HeaderMap::new();
        for (name, value) in [
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
            ("authorization", "Bearer client"),
            ("mcp-session-id", "client-session"),
            ("mcp-protocol-version", "2025-06-18"),
            ("origin", "http://evil.example"),
        ] {
            passed.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let message =
            Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#).expect("message");
        let request = ctx.post(&ctx.url, &message, Some(&passed), true);
        assert_eq!(request.method(), Method::POST);
        assert_eq!(header(&request, "mcp-session-id"), Some("s-1"));
        assert_eq!(header(&request, "mcp-protocol-version"), Some("2025-11-25"));
        assert_eq!(header(&request, "authorization"), Some("Bearer configured"));
        assert_eq!(header(&request, "mcp-method"), Some("tools/call"));
        assert_eq!(header(&request, "mcp-name"), Some("echo"));
        assert_eq!(header(&request, "origin"), None);
        assert_eq!(request.headers().get_all("authorization").iter().count(), 1);
        assert_eq!(
            header(&request, "accept"),
            Some("application/json, text/event-stream")
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
    }

    #[tokio::test]
    async fn a_stateless_request_names_its_revision_from_meta() {
        let (ctx, _rx) = context(HttpOutgoingConfig::default());
        let message = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        )
        .expect("message");
        let request = ctx.post(&ctx.url, &message, None, true);
        assert_eq!(header(&request, "mcp-session-id"), None);
        assert_eq!(header(&request, "mcp-protocol-version"), Some("2026-07-28"));
        let resume = ctx.get_stream(true, Some("ev-7"));
        assert_eq!(header(&resume, "last-event-id"), Some("ev-7"));
        assert_eq!(header(&resume, "accept"), Some("text/event-stream"));
    }

    #[tokio::test]
    async fn failures_answer_each_request_naming_the_upstream() {
        let (ctx, mut rx) = context(HttpOutgoingConfig::default());
        let ids = [RequestId::number(1), RequestId::string("b")];
        let failure = Failure::Status(StatusCode::BAD_GATEWAY, ": down".into());
        assert!(ctx.fail_with(&ids, &failure).await);
        for id in &ids {
            let frame = rx.recv().await.expect("a frame").expect("valid");
            let answer = Message::parse(frame.bytes).expect("JSON-RPC");
            assert_eq!(answer.id(), Some(id));
            let error = answer.error().expect("an error");
            assert_eq!(error.code, ErrorCode::INTERNAL_ERROR);
            assert!(
                error.message.contains("http://127.0.0.1:1/mcp"),
                "{}",
                error.message
            );
            assert!(error.message.contains("502"), "{}", error.message);
            assert_eq!(frame.status, Some(502), "the refusal's status");
            assert_eq!(frame.event_id, None);
        }
    }
}
