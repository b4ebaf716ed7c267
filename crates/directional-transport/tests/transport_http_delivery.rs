//! The HTTP facts of messages: the status of the response that carried a message and the
//! SSE event id it came with. The outgoing side reads them from a scripted upstream on
//! loopback; the incoming side says how it sent each message, checked against what a real
//! HTTP client received.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use shadowcat_mcp::{Message, RequestId, SseDecoder, SseItem};
use shadowcat_raw_transport::{
    ChannelBody, HttpBody, HttpClient, HttpClientConfig, HttpServer, HttpServerConfig, empty_body,
    full_body,
};
use shadowcat_transport::{
    Frame, FrameReader, HttpIncoming, HttpIncomingConfig, HttpOutgoing, HttpOutgoingConfig,
    NoObserver, Outgoing,
};
// The trait's name is taken by hyper's body type here.
use shadowcat_transport::Incoming as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(20);

/// An HTTP server on loopback, stopped when dropped.
struct Served {
    url: String,
    _stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<H, F>(handler: H) -> Served
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<HttpBody>> + Send + 'static,
{
    let server = HttpServer::bind("127.0.0.1:0".parse().unwrap(), HttpServerConfig::default())
        .await
        .unwrap();
    let url = format!("http://{}/mcp", server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server
            .serve(move |request, _| handler(request), async {
                let _ = stopped.await;
            })
            .await;
    });
    Served {
        url,
        _stop: stop,
        task,
    }
}

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<HttpBody> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap(),
    );
    response
}

fn answer(id: i64, result: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

/// A Streamable HTTP server with a fixed script: `initialize` gets JSON (with a session
/// id); request 2 an SSE answer with event ids `e-1` (a progress notification) and `e-2`
/// (the response); request 3 a JSON-RPC error on HTTP 400; request 4 JSON; request 5 a
/// plain-text 502. The GET stream sends one notification in event `g-1` and stays open.
async fn scripted_upstream() -> Served {
    let streams: Arc<Mutex<Vec<mpsc::Sender<Bytes>>>> = Arc::default();
    serve(move |request: Request<Incoming>| {
        let streams = streams.clone();
        async move {
            match *request.method() {
                Method::GET => {
                    let mut open = streams.lock().unwrap();
                    if !open.is_empty() {
                        return response(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "");
                    }
                    let (tx, body) = ChannelBody::new(4);
                    let event = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"standalone"}}"#;
                    tx.try_send(Bytes::from(format!("id: g-1\ndata: {event}\n\n")))
                        .unwrap();
                    open.push(tx);
                    let mut response = Response::new(body.boxed());
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/event-stream"),
                    );
                    return response;
                }
                Method::DELETE => return Response::new(empty_body()),
                _ => {}
            }
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let message = Message::parse(body).unwrap();
            if message.method() == Some("initialize") {
                let result = json!({"protocolVersion": "2025-11-25", "capabilities": {},
                                    "serverInfo": {"name": "scripted", "version": "1"}});
                let mut r = response(StatusCode::OK, "application/json", answer(1, &result));
                r.headers_mut()
                    .insert("mcp-session-id", HeaderValue::from_static("s-1"));
                return r;
            }
            let Some(id) = message.id().filter(|_| message.is_request()) else {
                return response(StatusCode::ACCEPTED, "text/plain", "");
            };
            match id.to_json().as_str() {
                "2" => {
                    let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                                          "params": {"progressToken": "t", "progress": 1}});
                    let events = format!(
                        ": a comment\n\nid: e-1\ndata: {progress}\n\nid: e-2\ndata: {}\n\n",
                        answer(2, &json!({"content": []}))
                    );
                    response(StatusCode::OK, "text/event-stream", events)
                }
                "3" => {
                    let error = json!({"jsonrpc": "2.0", "id": 3,
                                       "error": {"code": -32001, "message": "header mismatch"}});
                    response(StatusCode::BAD_REQUEST, "application/json", error.to_string())
                }
                "4" => response(StatusCode::OK, "application/json", answer(4, &json!({}))),
                _ => response(StatusCode::BAD_GATEWAY, "text/plain", "down"),
            }
        }
    })
    .await
}

async fn next_frame(reader: &mut dyn FrameReader) -> (Frame, Message) {
    let frame = tokio::time::timeout(WAIT, reader.recv())
        .await
        .expect("a frame within 20 s")
        .unwrap()
        .expect("the upstream is still there")
        .expect("a valid frame");
    let message = Message::parse(frame.bytes.clone()).unwrap();
    (frame, message)
}

/// The frame of the response to `id`, from `frames` or read on until it comes.
async fn response_to(
    reader: &mut dyn FrameReader,
    frames: &mut Vec<(Frame, Message)>,
    id: i64,
) -> Frame {
    let id = RequestId::number(id);
    loop {
        if let Some(i) = frames
            .iter()
            .position(|(_, m)| m.is_response() && m.id() == Some(&id))
        {
            return frames.remove(i).0;
        }
        frames.push(next_frame(reader).await);
    }
}

/// The frame of the first notification `method`, from `frames` or read on until it comes.
async fn notification(
    reader: &mut dyn FrameReader,
    frames: &mut Vec<(Frame, Message)>,
    method: &str,
) -> Frame {
    loop {
        if let Some(i) = frames.iter().position(|(_, m)| m.method() == Some(method)) {
            return frames.remove(i).0;
        }
        frames.push(next_frame(reader).await);
    }
}

fn request(id: i64, method: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {}}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_frames_carry_the_status_and_event_id_they_came_with() {
    let server = scripted_upstream().await;
    let config = HttpOutgoingConfig::default().with_handshake_timeout(Duration::from_secs(10));
    let mut upstream = HttpOutgoing::new(server.url.parse().unwrap(), config)
        .connect()
        .await
        .unwrap();
    let writer = &mut upstream.writer;
    let reader = &mut *upstream.reader;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    writer.enqueue(initialize.to_string().as_bytes());
    writer.flush().await.unwrap();
    let mut frames = Vec::new();
    let json_answer = response_to(reader, &mut frames, 1).await;
    assert_eq!(json_answer.status, Some(200), "a JSON answer");
    assert_eq!(json_answer.event_id, None, "a JSON answer is no event");

    writer.enqueue(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    for id in 2..=5 {
        writer.enqueue(request(id, "tools/call").as_bytes());
    }
    writer.flush().await.unwrap();

    let progress = notification(reader, &mut frames, "notifications/progress").await;
    assert_eq!(progress.status, Some(200));
    assert_eq!(progress.event_id.as_deref(), Some("e-1"));
    assert_eq!(progress.related, Some(RequestId::number(2)));
    let streamed = response_to(reader, &mut frames, 2).await;
    assert_eq!(streamed.status, Some(200));
    assert_eq!(streamed.event_id.as_deref(), Some("e-2"));

    let standalone = notification(reader, &mut frames, "notifications/message").await;
    assert_eq!(standalone.status, Some(200), "the GET stream's status");
    assert_eq!(standalone.event_id.as_deref(), Some("g-1"));
    assert_eq!(standalone.related, None);

    let refused = response_to(reader, &mut frames, 3).await;
    let refusal = Message::parse(refused.bytes.clone()).unwrap();
    assert_eq!(
        refusal.error().unwrap().message,
        "header mismatch",
        "passed on"
    );
    assert_eq!(refused.status, Some(400), "the status it came with");
    assert_eq!(refused.event_id, None);

    let json_again = response_to(reader, &mut frames, 4).await;
    assert_eq!((json_again.status, json_again.event_id), (Some(200), None));

    // The transport's own answer to a request the upstream failed carries the failure's
    // status.
    let failed = response_to(reader, &mut frames, 5).await;
    let error = Message::parse(failed.bytes.clone()).unwrap();
    assert!(error.error().unwrap().message.contains("502"), "{error:?}");
    assert_eq!((failed.status, failed.event_id), (Some(502), None));
    upstream.writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_gives_answers_without_a_status() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let config = HttpOutgoingConfig::default().with_handshake_timeout(Duration::from_secs(5));
    let mut upstream = HttpOutgoing::new(url.parse().unwrap(), config)
        .connect()
        .await
        .unwrap();
    upstream.writer.enqueue(request(1, "initialize").as_bytes());
    upstream.writer.flush().await.unwrap();
    let (frame, answer) = next_frame(&mut *upstream.reader).await;
    assert!(answer.error().is_some(), "{answer:?}");
    assert_eq!((frame.status, frame.event_id), (None, None));
}

/// The client side of the incoming transport's test: an HTTP client that POSTs to `url`.
struct Client {
    http: HttpClient,
    url: String,
}

impl Client {
    fn post(&self, body: String, session: Option<&str>) -> JoinHandle<Response<Incoming>> {
        let mut builder = Request::post(&self.url)
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(session) = session {
            builder = builder
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        let request = builder.body(Full::new(Bytes::from(body))).unwrap();
        let http = self.http.clone();
        tokio::spawn(async move { http.send(request).await.unwrap() })
    }
}

async fn received(response: JoinHandle<Response<Incoming>>) -> Response<Incoming> {
    tokio::time::timeout(WAIT, response).await.unwrap().unwrap()
}

/// The SSE events of a whole body: (id, data) of those with data.
async fn events(response: Response<Incoming>) -> Vec<(Option<String>, String)> {
    let body = tokio::time::timeout(WAIT, response.into_body().collect())
        .await
        .expect("the stream ends after the last answer")
        .unwrap()
        .to_bytes();
    let mut decoder = SseDecoder::new(1 << 20);
    decoder.push(&body);
    let mut events = Vec::new();
    while let Some(item) = decoder.next_item() {
        if let Ok(SseItem::Event(event)) = item
            && !event.data.is_empty()
        {
            events.push((event.id, event.data));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incoming_writer_tells_the_status_and_event_id_the_client_gets() {
    let (mut incoming, handler) =
        HttpIncoming::new(HttpIncomingConfig::default(), Arc::new(NoObserver));
    let server = serve(move |request| {
        let handler = handler.clone();
        async move { handler.handle(request).await }
    })
    .await;
    let client = Client {
        http: HttpClient::new(&HttpClientConfig::default()).unwrap(),
        url: server.url.clone(),
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let pending = client.post(initialize.to_string(), None);
    let mut connection = tokio::time::timeout(WAIT, incoming.accept())
        .await
        .unwrap()
        .unwrap()
        .expect("a session");
    let session = connection.session.clone().expect("a session id");
    let (frame, _) = next_frame(&mut *connection.reader).await;
    assert_eq!(
        (frame.status, frame.event_id),
        (None, None),
        "a request has no response yet"
    );
    let writer = &mut connection.writer;
    let result = json!({"protocolVersion": "2025-11-25", "capabilities": {},
                        "serverInfo": {"name": "s", "version": "1"}});
    let answer1 = Message::parse(answer(1, &result)).unwrap();
    writer.enqueue_message(&answer1, None, None);
    let delivered = writer.last_delivery().expect("routed to its POST");
    assert_eq!((delivered.status, delivered.event_id), (Some(200), None));
    writer.flush().await.unwrap();
    let json_response = received(pending).await;
    assert_eq!(json_response.status(), StatusCode::OK);
    assert_eq!(
        json_response.headers()[header::CONTENT_TYPE],
        "application/json"
    );

    // A call answered on an SSE stream: a progress notification, then the response.
    let pending = client.post(request(2, "tools/call"), Some(&session));
    let (frame, _) = next_frame(&mut *connection.reader).await;
    assert_eq!(frame.status, None);
    let writer = &mut connection.writer;
    let progress = Message::parse(
        json!({"jsonrpc": "2.0", "method": "notifications/progress",
               "params": {"progressToken": "t", "progress": 1}})
        .to_string(),
    )
    .unwrap();
    writer.enqueue_message(&progress, Some(&RequestId::number(2)), None);
    let first = writer.last_delivery().expect("routed to the call's stream");
    let answer2 = Message::parse(answer(2, &json!({"content": []}))).unwrap();
    writer.enqueue_message(&answer2, None, None);
    let second = writer.last_delivery().expect("routed to the call's stream");
    writer.flush().await.unwrap();
    assert_eq!((first.status, second.status), (Some(200), Some(200)));
    let (first_id, second_id) = (first.event_id.unwrap(), second.event_id.unwrap());
    assert!(!first_id.is_empty() && first_id != second_id);
    let sse_response = received(pending).await;
    assert_eq!(sse_response.status(), StatusCode::OK);
    assert_eq!(
        sse_response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let got = events(sse_response).await;
    let expected = vec![
        (
            Some(first_id.to_string()),
            String::from_utf8(progress.as_bytes().to_vec()).unwrap(),
        ),
        (
            Some(second_id.to_string()),
            String::from_utf8(answer2.as_bytes().to_vec()).unwrap(),
        ),
    ];
    assert_eq!(got, expected, "the ids the client got");

    // No stream open: the message waits for one, and how it goes out is not known yet.
    let writer = &mut connection.writer;
    writer.enqueue(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#);
    assert_eq!(writer.last_delivery(), None);
    writer.enqueue(b"not json");
    assert_eq!(writer.last_delivery(), None, "dropped");
}
