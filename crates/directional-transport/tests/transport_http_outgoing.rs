//! The HTTP outgoing transport against real MCP servers over loopback: the conformance
//! fixture (Streamable HTTP, TypeScript SDK), the reference server in legacy HTTP+SSE mode,
//! a Python `mcp` 2.x server speaking stateless 2026-07-28, and an upstream that is down.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use shadowcat_mcp::{Message, MessageKind, RequestId};
use shadowcat_raw_transport::{HttpClient, HttpClientConfig, HttpRequestBody};
use shadowcat_test_support::{
    EverythingTransport, HttpServer, conformance_fixture, free_port, python_mcp2,
    server_everything_http,
};
use shadowcat_transport::{
    Frame, FrameReader, HttpMode, HttpOutgoing, HttpOutgoingConfig, Outgoing, TransportKind,
    Upstream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const WAIT: Duration = Duration::from_secs(20);

fn config() -> HttpOutgoingConfig {
    HttpOutgoingConfig::default().with_handshake_timeout(Duration::from_secs(10))
}

async fn connect(url: &str, config: HttpOutgoingConfig) -> Upstream {
    let mut outgoing = HttpOutgoing::new(url.parse().unwrap(), config);
    outgoing.connect().await.unwrap()
}

/// The next frame, parsed; panics on an error, the end, or a wait over 20 s.
async fn next(reader: &mut dyn FrameReader) -> (Frame, Message) {
    let item = tokio::time::timeout(WAIT, reader.recv())
        .await
        .expect("a frame within 20 s")
        .expect("reading works")
        .expect("the upstream is still there");
    let frame = item.expect("a valid frame");
    let message = Message::parse(frame.bytes.clone()).expect("a JSON-RPC message");
    (frame, message)
}

/// Frames up to and including the response to `id`.
async fn until_response(reader: &mut dyn FrameReader, id: i64) -> Vec<(Frame, Message)> {
    let id = RequestId::number(id);
    let mut seen = Vec::new();
    loop {
        let (frame, message) = next(reader).await;
        let done = message.is_response() && message.id() == Some(&id);
        seen.push((frame, message));
        if done {
            return seen;
        }
    }
}

fn result(message: &Message) -> Value {
    let text = message
        .result()
        .unwrap_or_else(|| panic!("a result: {:?}", message.as_bytes()));
    serde_json::from_str(text).unwrap()
}

async fn send(upstream: &mut Upstream, message: &Value) {
    upstream.writer.enqueue(message.to_string().as_bytes());
    upstream.writer.flush().await.unwrap();
}

fn initialize(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"sampling": {}, "elicitation": {}},
        "clientInfo": {"name": "shadowcat-test", "version": "1"}}})
}

/// `initialize` and `notifications/initialized`; returns the initialize result.
async fn handshake(upstream: &mut Upstream) -> Value {
    send(upstream, &initialize(1)).await;
    let (frame, answer) = next(&mut *upstream.reader).await;
    assert_eq!(answer.id(), Some(&RequestId::number(1)));
    assert_eq!(frame.related, Some(RequestId::number(1)));
    assert!(frame.headers.is_none(), "upstream headers stay upstream");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    send(upstream, &initialized).await;
    result(&answer)
}

fn call(id: i64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

/// A TCP relay in front of an HTTP server that records everything sent to it, to see the
/// requests the transport makes.
struct Wiretap {
    url: String,
    sent: Arc<Mutex<Vec<u8>>>,
    _relay: JoinSet<()>,
}

impl Wiretap {
    async fn new(target: &str) -> Self {
        let target: http::Uri = target.parse().unwrap();
        let authority = target.authority().unwrap().to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{}", listener.local_addr().unwrap(), target.path());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        let mut relay = JoinSet::new();
        relay.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (authority, log) = (authority.clone(), log.clone());
                connections.spawn(async move {
                    let mut outbound = TcpStream::connect(authority).await.unwrap();
                    let (mut from_client, mut to_client) = inbound.split();
                    let (mut from_server, mut to_server) = outbound.split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = from_client.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                let _ = to_server.shutdown().await;
                                break;
                            }
                            log.lock().unwrap().extend_from_slice(&buf[..n]);
                            if to_server.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = tokio::io::copy(&mut from_server, &mut to_client);
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Self {
            url,
            sent,
            _relay: relay,
        }
    }

    fn requests(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).to_lowercase()
    }

    /// The session id the transport sent, from its requests' headers (waiting for the
    /// first request that carries one).
    async fn session_id(&self) -> String {
        for _ in 0..200 {
            let requests = String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned();
            let found = requests.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("mcp-session-id")
                    .then(|| value.trim().to_owned())
            });
            if let Some(id) = found {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no request carried a session id")
    }
}

/// POSTs `tools/list` with `session` straight to `url`; the status.
async fn post_with_session(url: &str, session: &str) -> http::StatusCode {
    let client = HttpClient::new(&HttpClientConfig::default()).unwrap();
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(HttpRequestBody::from(
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#,
        ))
        .unwrap();
    client.send(request).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamable_session_lists_tools_and_relates_progress_to_its_call() {
    let server = conformance_fixture(&[]);
    let tap = Wiretap::new(server.url()).await;
    let mut upstream = connect(&tap.url, config()).await;
    assert_eq!(upstream.kind, TransportKind::StreamableHttp);
    assert_eq!(upstream.description, tap.url);
    assert!(upstream.process.is_none());

    let init = handshake(&mut upstream).await;
    assert_eq!(init["protocolVersion"], "2025-11-25");
    assert_eq!(init["serverInfo"]["name"], "shadowcat-conformance-fixture");

    send(
        &mut upstream,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let (frame, list) = next(&mut *upstream.reader).await;
    assert_eq!(frame.related, Some(RequestId::number(2)));
    let tools = result(&list)["tools"].as_array().unwrap().len();
    assert!(tools >= 10, "{tools} tools");

    let mut progress = call(3, "test_tool_with_progress", json!({}));
    progress["params"]["_meta"] = json!({"progressToken": "p-3"});
    send(&mut upstream, &progress).await;
    let seen = until_response(&mut *upstream.reader, 3).await;
    let notes: Vec<_> = seen
        .iter()
        .filter(|(_, m)| m.method() == Some("notifications/progress"))
        .collect();
    assert!(notes.len() >= 3, "{} progress notifications", notes.len());
    for (frame, _) in &seen {
        assert_eq!(frame.related, Some(RequestId::number(3)), "{frame:?}");
        assert_eq!(frame.status, Some(200), "{frame:?}");
    }
    // The fixture keeps events for resumption: each has its own id.
    let mut ids: Vec<_> = seen.iter().map(|(f, _)| f.event_id.clone()).collect();
    assert!(
        ids.iter()
            .all(|id| id.as_deref().is_some_and(|id| !id.is_empty())),
        "{ids:?}"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), seen.len(), "distinct event ids");

    let requests = tap.requests();
    assert!(
        requests.contains("mcp-protocol-version: 2025-11-25"),
        "{requests}"
    );
    assert!(requests.contains("accept: application/json, text/event-stream"));
    assert!(
        requests.contains("get /mcp"),
        "the standalone stream was opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_deletes_the_upstream_session() {
    let server = conformance_fixture(&[]);
    let tap = Wiretap::new(server.url()).await;
    let mut upstream = connect(&tap.url, config()).await;
    handshake(&mut upstream).await;
    let session = tap.session_id().await;
    assert_eq!(post_with_session(server.url(), &session).await, 200);

    tokio::time::timeout(WAIT, upstream.writer.close())
        .await
        .expect("close is bounded")
        .unwrap();
    let end = tokio::time::timeout(WAIT, upstream.reader.recv()).await;
    assert!(matches!(end, Ok(Ok(None))), "the reader ends: {end:?}");
    assert!(tap.requests().contains("delete /mcp"));
    assert_eq!(post_with_session(server.url(), &session).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_upstream_forgot_fails_the_request_and_ends() {
    let server = conformance_fixture(&[]);
    let tap = Wiretap::new(server.url()).await;
    let mut upstream = connect(&tap.url, config().with_standalone_stream(false)).await;
    handshake(&mut upstream).await;
    let session = tap.session_id().await;
    // End the session behind the transport's back.
    let client = HttpClient::new(&HttpClientConfig::default()).unwrap();
    let delete = http::Request::delete(server.url())
        .header("mcp-session-id", &session)
        .body(HttpRequestBody::default())
        .unwrap();
    assert!(client.send(delete).await.unwrap().status().is_success());

    send(
        &mut upstream,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let (frame, answer) = next(&mut *upstream.reader).await;
    assert_eq!(answer.id(), Some(&RequestId::number(2)));
    let error = answer.error().expect("an error response");
    assert!(error.message.contains("expired"), "{}", error.message);
    assert!(error.message.contains(&tap.url), "{}", error.message);
    assert_eq!(frame.related, None);
    let end = tokio::time::timeout(WAIT, upstream.reader.recv()).await;
    assert!(matches!(end, Ok(Ok(None))), "the reader ends: {end:?}");
}

/// `test_sampling`: the server asks the client for a completion; the client's answer goes
/// back through the writer and the tool's result follows.
async fn sampling_round_trip(server: &HttpServer, expect_related: bool) {
    let mut upstream = connect(server.url(), config()).await;
    handshake(&mut upstream).await;
    send(
        &mut upstream,
        &call(5, "test_sampling", json!({"prompt": "hello"})),
    )
    .await;
    let (frame, ask) = next(&mut *upstream.reader).await;
    assert_eq!(ask.method(), Some("sampling/createMessage"));
    assert_eq!(ask.kind(), MessageKind::Request);
    let related = expect_related.then(|| RequestId::number(5));
    assert_eq!(frame.related, related);
    let reply = Message::response(
        ask.id().unwrap(),
        &json!({"role": "assistant", "model": "test-model",
                "content": {"type": "text", "text": "sampled reply"}}),
    );
    upstream.writer.enqueue_message(&reply, None, None);
    upstream.writer.flush().await.unwrap();
    let seen = until_response(&mut *upstream.reader, 5).await;
    let (frame, answer) = seen.last().unwrap();
    assert_eq!(frame.related, Some(RequestId::number(5)));
    let text = result(answer)["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(text, "LLM response: sampled reply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_request_on_the_call_stream_is_related_and_answered() {
    let server = conformance_fixture(&[]);
    sampling_round_trip(&server, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_request_on_the_standalone_stream_arrives_unrelated() {
    let server = conformance_fixture(&[("FIXTURE_SERVER_REQUESTS", "get")]);
    sampling_round_trip(&server, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_answer_stream_is_resumed_with_last_event_id() {
    let server = conformance_fixture(&[("FIXTURE_RETRY_MS", "100")]);
    let tap = Wiretap::new(server.url()).await;
    let mut upstream = connect(&tap.url, config()).await;
    handshake(&mut upstream).await;
    send(&mut upstream, &call(7, "test_reconnection", json!({}))).await;
    let seen = until_response(&mut *upstream.reader, 7).await;
    let (frame, answer) = seen.last().unwrap();
    assert_eq!(frame.related, Some(RequestId::number(7)));
    assert_eq!(frame.status, Some(200), "the resumed stream's status");
    assert!(
        frame.event_id.as_deref().is_some_and(|id| !id.is_empty()),
        "{frame:?}"
    );
    let text = result(answer)["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("closed and resumed"), "{text}");
    let requests = tap.requests();
    assert!(requests.contains("last-event-id: "), "{requests}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_requests_in_flight_are_each_answered_once() {
    let server = conformance_fixture(&[]);
    let mut upstream = connect(server.url(), config().with_max_concurrent_posts(16)).await;
    handshake(&mut upstream).await;
    for id in 100..150 {
        let ping = json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        upstream.writer.enqueue(ping.to_string().as_bytes());
    }
    tokio::time::timeout(WAIT, upstream.writer.flush())
        .await
        .expect("flush waits only for free slots")
        .unwrap();
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < 50 {
        let (frame, answer) = next(&mut *upstream.reader).await;
        let id = answer
            .id()
            .and_then(RequestId::as_i64)
            .expect("a numeric id");
        assert!(answer.result().is_some(), "{:?}", answer.as_bytes());
        assert_eq!(frame.related, Some(RequestId::number(id)));
        *answered.entry(id).or_insert(0) += 1;
    }
    assert_eq!(
        answered.keys().copied().collect::<Vec<_>>(),
        (100..150).collect::<Vec<_>>()
    );
    assert!(answered.values().all(|&n| n == 1), "{answered:?}");
    let extra = tokio::time::timeout(Duration::from_millis(300), upstream.reader.recv()).await;
    assert!(extra.is_err(), "nothing more arrives: {extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_error_answer_becomes_an_error_response() {
    let server = conformance_fixture(&[]);
    let mut upstream = connect(server.url(), config()).await;
    // No initialize first: the fixture refuses a request without a session (400).
    send(
        &mut upstream,
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
    )
    .await;
    let (_, answer) = next(&mut *upstream.reader).await;
    assert_eq!(answer.id(), Some(&RequestId::number(4)));
    let error = answer.error().expect("an error response");
    assert!(error.message.contains("400"), "{}", error.message);
    assert!(error.message.contains(server.url()), "{}", error.message);
    assert_eq!(error.data, Some(json!({"httpStatus": 400})));
}

async fn legacy_session(url: &str, mode: HttpMode) -> TransportKind {
    let mut upstream = connect(url, config().with_mode(mode)).await;
    let kind = upstream.kind;
    let mut init = initialize(1);
    init["params"]["protocolVersion"] = json!("2024-11-05");
    send(&mut upstream, &init).await;
    let (frame, answer) = next(&mut *upstream.reader).await;
    assert_eq!(answer.id(), Some(&RequestId::number(1)));
    assert_eq!(frame.related, None, "legacy answers come on the one stream");
    assert_eq!(frame.status, Some(200), "the status of the event stream");
    assert!(result(&answer)["serverInfo"]["name"].is_string());
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    send(&mut upstream, &initialized).await;
    send(
        &mut upstream,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let seen = until_response(&mut *upstream.reader, 2).await;
    let tools = result(&seen.last().unwrap().1)["tools"].clone();
    let names: Vec<_> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert!(names.contains(&json!("echo")), "{names:?}");
    send(
        &mut upstream,
        &call(3, "echo", json!({"message": "over sse"})),
    )
    .await;
    let seen = until_response(&mut *upstream.reader, 3).await;
    let text = result(&seen.last().unwrap().1)["content"][0]["text"].clone();
    assert_eq!(text, "Echo: over sse");
    upstream.writer.close().await.unwrap();
    kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_sse_server_is_reached_by_falling_back() {
    let server = server_everything_http(EverythingTransport::Sse);
    let kind = legacy_session(server.url(), HttpMode::Auto).await;
    assert_eq!(
        kind,
        TransportKind::StreamableHttp,
        "known only after connect"
    );
    let kind = legacy_session(server.url(), HttpMode::LegacySse).await;
    assert_eq!(kind, TransportKind::LegacySse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_answers_initialize_with_an_error() {
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut upstream = connect(&url, config()).await;
    send(&mut upstream, &initialize(1)).await;
    let (_, answer) = next(&mut *upstream.reader).await;
    assert_eq!(answer.id(), Some(&RequestId::number(1)));
    let error = answer.error().expect("an error response");
    assert_eq!(error.code, shadowcat_mcp::ErrorCode::UPSTREAM_UNAVAILABLE);
    assert!(error.message.contains("unreachable"), "{}", error.message);
    assert!(error.message.contains(&url), "{}", error.message);

    let mut legacy = HttpOutgoing::new(
        url.parse().unwrap(),
        config().with_mode(HttpMode::LegacySse),
    );
    let error = legacy
        .connect()
        .await
        .expect_err("no legacy stream to open");
    assert!(error.is_upstream(), "{error}");
}

/// A Python `mcp` 2.x server; stateless 2026-07-28 requests need `Mcp-Method` (and
/// `Mcp-Name`) headers that match the body.
const STATELESS_SERVER: &str = r#"
import sys
from mcp.server.mcpserver import MCPServer
app = MCPServer("stateless-test")
@app.tool()
def echo(message: str) -> str:
    return f"Echo: {message}"
app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
"#;

fn stateless_call(id: i64, message: &str) -> Message {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "shadowcat-test", "version": "1"}});
    let value = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"message": message}, "_meta": meta}});
    Message::parse(value.to_string()).unwrap()
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_requests_go_without_a_session_and_keep_their_headers() {
    let port = free_port();
    let mut command = Command::new(python_mcp2());
    command.args(["-c", STATELESS_SERVER, &port.to_string()]);
    let url = format!("http://127.0.0.1:{port}/mcp");
    let server = HttpServer::start_at(&mut command, url, |line| {
        line.contains("Uvicorn running on")
    })
    .unwrap();
    let tap = Wiretap::new(server.url()).await;
    let mut upstream = connect(&tap.url, config()).await;

    let passed = headers(&[
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
        ("authorization", "Bearer client-token"),
    ]);
    upstream
        .writer
        .enqueue_message(&stateless_call(1, "stateless"), None, Some(&passed));
    let mismatched = headers(&[("mcp-method", "tools/call"), ("mcp-name", "other")]);
    upstream
        .writer
        .enqueue_message(&stateless_call(2, "x"), None, Some(&mismatched));
    upstream.writer.flush().await.unwrap();

    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let (frame, answer) = next(&mut *upstream.reader).await;
        let id = answer.id().and_then(RequestId::as_i64).unwrap();
        assert_eq!(frame.related, Some(RequestId::number(id)));
        answers.insert(id, answer);
    }
    let text = result(&answers[&1])["content"][0]["text"].clone();
    assert_eq!(text, "Echo: stateless");
    // The server's own JSON-RPC error for a header mismatch is passed on unchanged.
    let error = answers[&2].error().expect("an error response");
    assert_eq!(
        error.code,
        shadowcat_mcp::ErrorCode::HEADER_MISMATCH,
        "{}",
        error.message
    );

    let requests = tap.requests();
    assert!(!requests.contains("mcp-session-id"), "{requests}");
    assert!(
        !requests.contains("client-token"),
        "client credentials stay with the client"
    );
    assert!(
        requests.contains("mcp-protocol-version: 2026-07-28"),
        "{requests}"
    );
    assert!(
        !requests.contains("\"method\":\"initialize\""),
        "{requests}"
    );
}
