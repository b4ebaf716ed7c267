//! The SSE response body: messages from a bounded channel, encoded as events, with
//! keep-alive comments while idle and a guard that tells the session when the client left.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

use super::session::{RouteId, SessionState};

/// One item for a client stream.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// A message; `event_id` is `None` when the message is a whole JSON answer (no SSE).
    Message {
        /// The SSE event id, when the stream is resumable.
        event_id: Option<Arc<str>>,
        /// The message bytes.
        bytes: Bytes,
    },
    /// A priming event: an id and an empty `data`, so the client can resume from the start.
    Priming {
        /// The event id.
        event_id: Arc<str>,
        /// The `retry:` the client should wait before reconnecting, in ms.
        retry_ms: u64,
    },
    /// The legacy transport's `endpoint` event.
    Endpoint(String),
    /// A fault: the first part of an event (no blank line after it), then the stream ends.
    Cut {
        /// The SSE event id the whole event would have had.
        event_id: Option<Arc<str>>,
        /// The part of the message that goes out.
        bytes: Bytes,
    },
    /// A fault: the session is gone as if it had expired; the request gets 404.
    Expire,
}

/// Appends one SSE event: `event` (when not the default), `id`, then `data` split at line
/// breaks (a pretty-printed JSON body may contain them), then the blank line.
pub(crate) fn encode_event(out: &mut BytesMut, event: Option<&str>, id: Option<&str>, data: &[u8]) {
    out.reserve(data.len() + 64);
    if let Some(event) = event {
        out.put_slice(b"event: ");
        out.put_slice(event.as_bytes());
        out.put_u8(b'\n');
    }
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(id.as_bytes());
        out.put_u8(b'\n');
    }
    if data.is_empty() {
        out.put_slice(b"data: \n");
    }
    for line in data.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && !data.is_empty() {
            continue;
        }
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
}

/// Encodes one outbound item; `legacy` streams name their message events `message`.
pub(crate) fn encode(item: &Outbound, legacy: bool) -> Bytes {
    let mut out = BytesMut::new();
    match item {
        Outbound::Message { event_id, bytes } => {
            let event = legacy.then_some("message");
            encode_event(&mut out, event, event_id.as_deref(), bytes);
        }
        Outbound::Priming { event_id, retry_ms } => {
            out.put_slice(format!("id: {event_id}\nretry: {retry_ms}\ndata: \n\n").as_bytes());
        }
        Outbound::Endpoint(url) => encode_event(&mut out, Some("endpoint"), None, url.as_bytes()),
        Outbound::Cut { event_id, bytes } => {
            if let Some(id) = event_id {
                out.put_slice(format!("id: {id}\n").as_bytes());
            }
            out.put_slice(b"data: ");
            out.put_slice(bytes);
        }
        Outbound::Expire => {}
    }
    out.freeze()
}

/// Tells the session when a client stream ends before its work is done.
pub(crate) struct StreamGuard {
    pub(crate) session: Arc<SessionState>,
    pub(crate) route: RouteId,
    pub(crate) done: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.done {
            self.session.client_left(self.route);
        }
    }
}

/// A streaming SSE answer.
pub(crate) struct SseBody {
    first: Vec<Outbound>,
    rx: mpsc::Receiver<Outbound>,
    keepalive: Option<tokio::time::Interval>,
    legacy: bool,
    guard: Option<StreamGuard>,
    /// Set after a cut: the stream ends at the next poll.
    ended: bool,
}

impl SseBody {
    /// A body that sends `first` (in order), then whatever arrives on `rx` until it closes.
    pub(crate) fn new(
        first: Vec<Outbound>,
        rx: mpsc::Receiver<Outbound>,
        keepalive: Option<Duration>,
        legacy: bool,
        guard: Option<StreamGuard>,
    ) -> Self {
        let keepalive = keepalive.filter(|d| !d.is_zero()).map(|period| {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let mut first = first;
        first.reverse();
        Self {
            first,
            rx,
            keepalive,
            legacy,
            guard,
            ended: false,
        }
    }

    /// The frame for `item`; a cut ends the stream after it.
    fn frame(&mut self, item: &Outbound) -> Frame<Bytes> {
        if matches!(item, Outbound::Cut { .. } | Outbound::Expire) {
            self.ended = true;
        }
        Frame::data(encode(item, self.legacy))
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(item) = this.first.pop() {
            return Poll::Ready(Some(Ok(this.frame(&item))));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => {
                if let Some(k) = this.keepalive.as_mut() {
                    k.reset();
                }
                Poll::Ready(Some(Ok(this.frame(&item))))
            }
            Poll::Ready(None) => {
                // Every sender is gone: the stream's work is over (or the session ended).
                if let Some(guard) = this.guard.as_mut() {
                    guard.done = true;
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                let tick = this
                    .keepalive
                    .as_mut()
                    .is_some_and(|k| k.poll_tick(cx).is_ready());
                if tick {
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                        b": keepalive\n\n",
                    )))))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_encoded_line_by_line() {
        let mut out = BytesMut::new();
        encode_event(&mut out, None, Some("1-2"), b"{\"a\":\n 1}\r\n");
        assert_eq!(&out[..], b"id: 1-2\ndata: {\"a\":\ndata:  1}\n\n");
        let mut out = BytesMut::new();
        encode_event(&mut out, Some("endpoint"), None, b"/message?sessionId=x");
        assert_eq!(&out[..], b"event: endpoint\ndata: /message?sessionId=x\n\n");
        let priming = encode(
            &Outbound::Priming {
                event_id: "0-0".into(),
                retry_ms: 500,
            },
            false,
        );
        assert_eq!(&priming[..], b"id: 0-0\nretry: 500\ndata: \n\n");
    }

    #[test]
    fn encoded_events_decode_back() {
        let mut decoder = shadowcat_mcp::SseDecoder::new(1 << 20);
        let msg = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        decoder.push(&encode(
            &Outbound::Message {
                event_id: Some("3-4".into()),
                bytes: Bytes::from_static(msg),
            },
            true,
        ));
        match decoder.next_item() {
            Some(Ok(shadowcat_mcp::SseItem::Event(e))) => {
                assert_eq!(e.data.as_bytes(), msg);
                assert_eq!(e.event_type(), "message");
                assert_eq!(e.id.as_deref(), Some("3-4"));
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }
}
