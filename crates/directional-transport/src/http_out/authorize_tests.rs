//! The upstream authorizer against a real HTTP server on loopback that wants `Bearer good`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::{HeaderValue, StatusCode};
use serde_json::Value;
use shadowcat_mcp::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{ChallengeAction, HttpOutgoing, HttpOutgoingConfig, UpstreamAuthorizer};
use crate::{Outgoing, Upstream};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// A server that answers 200 to `Authorization: Bearer good` and 401 (with a challenge) to
/// anything else; it records the `Authorization` of every request.
struct Protected {
    url: String,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    task: JoinHandle<()>,
}

impl Drop for Protected {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn protected() -> Protected {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                })
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            let _ = stream.read_exact(&mut body).await;
            let authorization = header("authorization");
            if head.trim().is_empty() {
                // A connection closed without a request.
                continue;
            }
            log.lock().unwrap().push(authorization.clone());
            let notification = String::from_utf8_lossy(&body).contains("\"notifications/");
            let answer = if authorization.as_deref() == Some("Bearer good") && notification {
                "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
            } else if authorization.as_deref() == Some("Bearer good") {
                let json = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}"#;
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                    json.len()
                )
            } else {
                let json = r#"{"error":"invalid_token"}"#;
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer error=\"invalid_token\", scope=\"a b\"\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                    json.len()
                )
            };
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    Protected { url, seen, task }
}

/// A challenge as the authorizer saw it: status, `WWW-Authenticate`, `Authorization` sent.
type Seen = (StatusCode, Vec<String>, Option<String>);

/// An authorizer that starts with `first` and answers every challenge with `action`,
/// switching to `Bearer good` when it retries.
#[derive(Debug)]
struct Scripted {
    token: Mutex<Option<String>>,
    action: ChallengeAction,
    challenges: Mutex<Vec<Seen>>,
    sticky: bool,
    /// How long answering a challenge takes (a user approving).
    delay: std::time::Duration,
}

impl Scripted {
    fn new(first: Option<&str>, action: ChallengeAction) -> Arc<Self> {
        Arc::new(Self {
            token: Mutex::new(first.map(str::to_owned)),
            action,
            challenges: Mutex::new(Vec::new()),
            sticky: false,
            delay: std::time::Duration::ZERO,
        })
    }
}

#[async_trait]
impl UpstreamAuthorizer for Scripted {
    async fn authorization(&self) -> Result<Option<HeaderValue>, String> {
        Ok(self
            .token
            .lock()
            .unwrap()
            .as_deref()
            .map(|t| HeaderValue::from_str(t).unwrap()))
    }

    async fn on_challenge(&self, challenge: &super::UpstreamChallenge<'_>) -> ChallengeAction {
        let headers = challenge
            .www_authenticate
            .iter()
            .map(|h| h.to_str().unwrap().to_owned())
            .collect();
        let sent = challenge
            .authorization
            .map(|h| h.to_str().unwrap().to_owned());
        self.challenges
            .lock()
            .unwrap()
            .push((challenge.status, headers, sent));
        tokio::time::sleep(self.delay).await;
        if self.action == ChallengeAction::Retry && !self.sticky {
            *self.token.lock().unwrap() = Some("Bearer good".into());
        }
        self.action.clone()
    }
}

async fn initialize(url: &str, authorizer: Arc<Scripted>) -> Message {
    initialize_with(url, authorizer, HttpOutgoingConfig::default(), &[])
        .await
        .0
}

/// Sends `initialize` and then `more`, and reads the first answer; the upstream session
/// stays open while the returned `Upstream` lives.
async fn initialize_with(
    url: &str,
    authorizer: Arc<Scripted>,
    config: HttpOutgoingConfig,
    more: &[&str],
) -> (Message, Upstream) {
    let config = config
        .with_standalone_stream(false)
        .with_shared_authorizer(authorizer);
    let mut outgoing = HttpOutgoing::new(url.parse().unwrap(), config);
    let mut upstream: Upstream = outgoing.connect().await.unwrap();
    upstream.writer.send(INITIALIZE.as_bytes()).await.unwrap();
    upstream.writer.flush().await.unwrap();
    for message in more {
        upstream.writer.send(message.as_bytes()).await.unwrap();
        upstream.writer.flush().await.unwrap();
    }
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), upstream.reader.recv())
        .await
        .expect("an answer within 10 s")
        .unwrap()
        .expect("the upstream is there")
        .expect("a valid frame");
    (Message::parse(frame.bytes).unwrap(), upstream)
}

#[tokio::test]
async fn a_401_goes_to_the_authorizer_and_the_request_is_sent_again() {
    let server = protected().await;
    let authorizer = Scripted::new(None, ChallengeAction::Retry);
    let answer = initialize(&server.url, authorizer.clone()).await;
    assert!(answer.result().is_some(), "{:?}", answer.as_bytes());
    let challenges = authorizer.challenges.lock().unwrap().clone();
    assert_eq!(challenges.len(), 1);
    let (status, headers, sent) = &challenges[0];
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers, &[r#"Bearer error="invalid_token", scope="a b""#]);
    assert_eq!(sent, &None);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen, [None, Some("Bearer good".to_owned())]);
}

#[tokio::test]
async fn giving_up_passes_the_refusal_on_and_refusing_names_the_reason() {
    let server = protected().await;
    let authorizer = Scripted::new(Some("Bearer bad"), ChallengeAction::GiveUp);
    let answer = initialize(&server.url, authorizer.clone()).await;
    let error = answer.error().expect("an error response");
    assert!(error.message.contains("401"), "{}", error.message);
    let data: Value = serde_json::from_slice(answer.as_bytes()).unwrap();
    assert_eq!(data["error"]["data"]["httpStatus"], 401);
    assert_eq!(
        authorizer.challenges.lock().unwrap()[0].2.as_deref(),
        Some("Bearer bad")
    );

    let authorizer = Scripted::new(None, ChallengeAction::Refuse("no browser".into()));
    let answer = initialize(&server.url, authorizer).await;
    let error = answer.error().expect("an error response");
    assert!(
        error.message.contains("needs authorization: no browser"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = protected().await;
    let authorizer = Arc::new(Scripted {
        sticky: true,
        ..Arc::into_inner(Scripted::new(Some("Bearer bad"), ChallengeAction::Retry)).unwrap()
    });
    let answer = initialize(&server.url, authorizer.clone()).await;
    assert!(answer.error().is_some());
    let rounds = super::authorize::MAX_CHALLENGE_ROUNDS;
    assert_eq!(authorizer.challenges.lock().unwrap().len(), rounds);
    assert_eq!(server.seen.lock().unwrap().len(), rounds + 1);
}

#[tokio::test]
async fn the_handshake_waits_for_an_authorization_that_takes_long() {
    let server = protected().await;
    let authorizer = Arc::new(Scripted {
        delay: std::time::Duration::from_millis(700),
        ..Arc::into_inner(Scripted::new(None, ChallengeAction::Retry)).unwrap()
    });
    let config =
        HttpOutgoingConfig::default().with_handshake_timeout(std::time::Duration::from_millis(200));
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (answer, _upstream) =
        initialize_with(&server.url, authorizer, config, &[initialized]).await;
    assert!(answer.result().is_some(), "{:?}", answer.as_bytes());
    for _ in 0..100 {
        if server.seen.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The notification waited for `initialize` and its authorization: it went once, with
    // the token.
    let seen = server.seen.lock().unwrap().clone();
    let good = Some("Bearer good".to_owned());
    assert_eq!(seen, [None, good.clone(), good]);
}
