//! Spy mode: requests the tape cannot answer go to a live server, over one connection per
//! replayed session, opened at the first such request.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use shadowcat_mcp::{ErrorCode, Message, RequestId};
use shadowcat_transport::{Frame, Outgoing};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::FallbackFactory;

/// The id of the `initialize` request that opens a fallback connection for a client that
/// already initialized with the tape.
const INIT_ID: &str = "shadowcat-replay-fallback-init";

/// How long the live server gets to answer that `initialize`.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The live connection of one replayed session.
pub(super) struct Fallback {
    factory: FallbackFactory,
    to: Option<mpsc::Sender<Bytes>>,
    from: Option<mpsc::Receiver<Frame>>,
    task: Option<JoinHandle<()>>,
    /// Ids (as JSON) of client requests passed on and not yet answered.
    pending: HashSet<String>,
    /// Ids (as JSON) of the live server's requests to the client not yet answered.
    server_requests: HashSet<String>,
    dead: bool,
}

impl Drop for Fallback {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn id_of(item: &Value) -> Option<String> {
    item.get("id")
        .filter(|i| !i.is_null())
        .map(Value::to_string)
}

impl Fallback {
    pub(super) fn new(factory: FallbackFactory) -> Self {
        Self {
            factory,
            to: None,
            from: None,
            task: None,
            pending: HashSet::new(),
            server_requests: HashSet::new(),
            dead: false,
        }
    }

    /// Whether `item` answers a request the live server sent.
    pub(super) fn owns_answer(&self, item: &Value) -> bool {
        item.get("method").is_none()
            && id_of(item).is_some_and(|id| self.server_requests.contains(&id))
    }

    /// Passes a message on (when the connection is open).
    pub(super) fn send(&mut self, item: &Value) {
        if let Some(id) = id_of(item) {
            self.server_requests.remove(&id);
        }
        if let Some(to) = &self.to
            && to.try_send(Bytes::from(item.to_string())).is_err()
        {
            tracing::warn!("the live server is not reading; a message to it was dropped");
        }
    }

    /// Passes a client notification on, when the connection is open.
    pub(super) fn notify(&mut self, item: &Value) {
        if item.get("method").is_some() && self.to.is_some() {
            self.send(item);
        }
    }

    /// Passes an unmatched request on, opening the connection first (initialized with the
    /// live client's `initialize`, unless the request is that). Returns an error answer when
    /// the live server is gone.
    pub(super) fn request(&mut self, item: &Value, initialize: Option<&Bytes>) -> Option<Frame> {
        if self.dead {
            return Some(gone(item));
        }
        if self.task.is_none() {
            let is_init = item.get("method").and_then(Value::as_str) == Some("initialize");
            let init = if is_init { None } else { initialize.cloned() };
            let (to_tx, to_rx) = mpsc::channel(256);
            let (from_tx, from_rx) = mpsc::channel(256);
            self.task = Some(tokio::spawn(run((self.factory)(), init, to_rx, from_tx)));
            self.to = Some(to_tx);
            self.from = Some(from_rx);
        }
        if let Some(id) = id_of(item) {
            self.pending.insert(id);
        }
        self.send(item);
        None
    }

    /// The live server's next message; pending forever when there is no connection.
    pub(super) async fn recv(&mut self) -> Option<Frame> {
        let Some(from) = self.from.as_mut() else {
            return std::future::pending().await;
        };
        let frame = from.recv().await?;
        if let Ok(value) = serde_json::from_slice::<Value>(&frame.bytes)
            && let Some(id) = id_of(&value)
        {
            if value.get("method").is_some() {
                self.server_requests.insert(id);
            } else {
                self.pending.remove(&id);
            }
        }
        Some(frame)
    }

    /// The connection ended: error answers for what it left unanswered.
    pub(super) fn closed(&mut self) -> Vec<Frame> {
        self.dead = true;
        self.from = None;
        self.to = None;
        self.pending
            .drain()
            .filter_map(|id| serde_json::from_str::<Value>(&id).ok())
            .map(|id| gone(&serde_json::json!({ "id": id })))
            .collect()
    }

    /// Whether no passed-on request waits for an answer.
    pub(super) fn idle(&self) -> bool {
        self.pending.is_empty()
    }
}

fn gone(item: &Value) -> Frame {
    let id = item
        .get("id")
        .and_then(|i| RequestId::from_json(&i.to_string()));
    let answer = Message::error_response(
        id.as_ref(),
        ErrorCode::UPSTREAM_UNAVAILABLE,
        "replay: the request matches nothing on the tape and the fallback server is gone",
        None,
    );
    let mut frame = Frame::new(answer.into_bytes());
    frame.related = id;
    frame
}

/// Runs the live connection: opens it, initializes it when told, then passes messages both
/// ways until either side ends.
async fn run(
    mut outgoing: Box<dyn Outgoing>,
    init: Option<Bytes>,
    mut rx: mpsc::Receiver<Bytes>,
    tx: mpsc::Sender<Frame>,
) {
    let mut upstream = match outgoing.connect().await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("cannot reach the fallback server: {e}");
            return;
        }
    };
    tracing::info!(server = %upstream.description, "fallback server connected");
    if let Some(init) = init
        && !initialize(&mut upstream, &init).await
    {
        tracing::warn!("the fallback server did not answer initialize");
        return;
    }
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(bytes) => {
                    if upstream.writer.send(&bytes).await.is_err()
                        || upstream.writer.flush().await.is_err()
                    {
                        break;
                    }
                }
                None => break,
            },
            frame = upstream.reader.recv() => match frame {
                Ok(Some(Ok(frame))) => {
                    if tx.send(frame).await.is_err() {
                        break;
                    }
                }
                Ok(Some(Err(e))) => tracing::warn!("fallback server: {e}"),
                Ok(None) | Err(_) => break,
            },
        }
    }
    let _ = upstream.writer.close().await;
    if let Some(process) = upstream.process.as_mut() {
        let _ = process
            .shutdown(
                Duration::from_secs(1),
                Duration::from_millis(500),
                std::future::pending(),
            )
            .await;
    }
}

/// Sends the client's `initialize` (under an id of its own) and `notifications/initialized`;
/// whether the server answered.
async fn initialize(upstream: &mut shadowcat_transport::Upstream, init: &Bytes) -> bool {
    let Ok(mut request) = serde_json::from_slice::<Value>(init) else {
        return false;
    };
    if let Some(obj) = request.as_object_mut() {
        obj.insert("id".into(), Value::String(INIT_ID.into()));
    }
    if upstream
        .writer
        .send(request.to_string().as_bytes())
        .await
        .is_err()
        || upstream.writer.flush().await.is_err()
    {
        return false;
    }
    let answered = tokio::time::timeout(INIT_TIMEOUT, async {
        loop {
            match upstream.reader.recv().await {
                Ok(Some(Ok(frame))) => {
                    let value: Value = serde_json::from_slice(&frame.bytes).unwrap_or_default();
                    if value.get("id").and_then(Value::as_str) == Some(INIT_ID)
                        && value.get("method").is_none()
                    {
                        return value.get("result").is_some();
                    }
                }
                Ok(Some(Err(_))) => {}
                Ok(None) | Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    if !answered {
        return false;
    }
    let initialized = Message::notification("notifications/initialized", None);
    upstream.writer.send(initialized.as_bytes()).await.is_ok()
        && upstream.writer.flush().await.is_ok()
}
