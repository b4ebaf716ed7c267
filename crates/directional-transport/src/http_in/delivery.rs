//! Where a message for the client goes: a [`Delivery`] (a stream's sender and the item for
//! it) and the reshaping injected faults need, and the progress tokens that tie
//! notifications to requests.

use bytes::Bytes;
use shadowcat_mcp::Message;
use tokio::sync::mpsc;

use super::session::RouteId;
use super::sse_body::Outbound;
use crate::Delivered;

/// Where one message goes.
pub(crate) struct Delivery {
    pub(super) tx: mpsc::Sender<Outbound>,
    pub(super) item: Outbound,
    pub(super) standalone: Option<RouteId>,
}

impl Delivery {
    /// How the message goes out: every client stream (a POST's JSON answer or event
    /// stream, a GET stream, the legacy stream) is a 200 response, except a session
    /// expired on purpose (404); in an SSE event with the id the session gave it, if any.
    pub(crate) fn delivered(&self) -> Delivered {
        match &self.item {
            Outbound::Message { event_id, .. } | Outbound::Cut { event_id, .. } => {
                Delivered::new(Some(200), event_id.clone())
            }
            Outbound::Expire => Delivered::new(Some(404), None),
            Outbound::Priming { .. } | Outbound::Endpoint(_) => Delivered::new(Some(200), None),
        }
    }

    /// The same delivery carrying `bytes` instead of the message (a corrupted message).
    pub(crate) fn corrupted(mut self, bytes: Bytes) -> Self {
        if let Outbound::Message { bytes: b, .. } = &mut self.item {
            *b = bytes;
        }
        self
    }

    /// The same delivery cut: only the first half of the message's event goes out, then
    /// its stream ends.
    pub(crate) fn cut(mut self) -> Self {
        if let Outbound::Message { event_id, bytes } = &self.item {
            self.item = Outbound::Cut {
                event_id: event_id.clone(),
                bytes: bytes.slice(..bytes.len() / 2),
            };
        }
        self
    }

    /// The same delivery turned into a session expiry (the waiting request gets 404).
    pub(crate) fn expired(mut self) -> Self {
        if self.standalone.is_none() {
            self.item = Outbound::Expire;
        }
        self
    }
}

/// The progress token of a request's `params._meta`, as JSON text.
pub(super) fn progress_token(msg: &Message) -> Option<String> {
    let params = msg.params()?;
    if !params.contains("progressToken") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(params).ok()?;
    value
        .get("_meta")?
        .get("progressToken")
        .map(ToString::to_string)
}

/// The progress token a `notifications/progress` names, as JSON text.
pub(super) fn notified_token(msg: &Message) -> Option<String> {
    if msg.method() != Some("notifications/progress") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(msg.params()?).ok()?;
    value.get("progressToken").map(ToString::to_string)
}
