//! Reading event streams: the SSE answer of a POST (resumed with `Last-Event-ID` when it
//! ends before the answer), and the standalone GET stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use shadowcat_mcp::{ErrorCode, Message, MessageKind, RequestId, SseDecoder, SseEvent, SseItem};
use tokio::sync::oneshot;

use super::context::{Context, Failure, error_detail, has_content_type};
use crate::{Frame, Received};

/// A standalone stream that stayed open this long counts as healthy: its reconnection
/// starts a fresh budget.
const HEALTHY_STREAM: Duration = Duration::from_secs(5);

/// What reading an event stream produced next.
pub(super) enum Next {
    /// A dispatched event.
    Event(SseEvent),
    /// An event over the size limit (skipped).
    TooLarge(shadowcat_mcp::Error),
    /// The stream ended or broke, with why.
    End(String),
}

/// The next event of `body`. At the end the decoder is reset for a reconnection (keeping
/// the last event id and retry time).
pub(super) async fn next_event(body: &mut Incoming, decoder: &mut SseDecoder) -> Next {
    loop {
        match decoder.next_item() {
            Some(Ok(SseItem::Event(event))) => return Next::Event(event),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Next::TooLarge(e),
            None => {}
        }
        match body.frame().await {
            None => {
                decoder.finish();
                return Next::End("the stream ended".into());
            }
            Some(Err(e)) => {
                decoder.finish();
                return Next::End(format!("the stream broke: {e}"));
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    decoder.push(&data);
                }
            }
        }
    }
}

/// The requests of one POST still waiting for their responses.
#[derive(Debug)]
pub(super) struct Awaited {
    pub(super) ids: Vec<RequestId>,
    /// The id of an `initialize` among them: its result names the negotiated revision.
    initialize: Option<RequestId>,
}

impl Awaited {
    pub(super) fn new(message: &Message) -> Self {
        let mut ids = Vec::new();
        let mut initialize = None;
        for m in message.messages().iter().filter(|m| m.is_request()) {
            if let Some(id) = m.id() {
                if m.method() == Some("initialize") {
                    initialize = Some(id.clone());
                }
                ids.push(id.clone());
            }
        }
        Self { ids, initialize }
    }

    /// The one request id, when the POST carried exactly one request: messages on its
    /// stream are related to it.
    pub(super) fn related(&self) -> Option<RequestId> {
        match self.ids.as_slice() {
            [id] => Some(id.clone()),
            _ => None,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.ids.is_empty()
    }

    /// Crosses off the requests that `message` answers.
    pub(super) fn observe(&mut self, ctx: &Context, message: &Message) {
        for m in message.messages().iter().filter(|m| m.is_response()) {
            let Some(id) = m.id() else { continue };
            if self.initialize.as_ref() == Some(id)
                && m.kind() == MessageKind::Response
                && let Some(version) = negotiated_version(m)
            {
                ctx.set_protocol_version(version);
            }
            self.ids.retain(|pending| pending != id);
        }
    }
}

/// `result.protocolVersion` of an `initialize` response.
fn negotiated_version(response: &Message) -> Option<HeaderValue> {
    let result: serde_json::Value = serde_json::from_str(response.result()?).ok()?;
    HeaderValue::from_str(result.get("protocolVersion")?.as_str()?).ok()
}

/// How reading a stream stopped.
pub(super) enum Pumped {
    /// Every awaited request was answered.
    Answered,
    /// The stream ended or broke, with why.
    Closed(String),
    /// The reader is gone: nobody wants more.
    ReaderGone,
}

/// Hands every message event of `body` (the body of a response with `status`) to the
/// reader, `related` to the POSTed request, until `awaited` is all answered or the stream
/// ends. Counts the messages in `messages`.
pub(super) async fn pump(
    ctx: &Context,
    body: &mut Incoming,
    status: StatusCode,
    decoder: &mut SseDecoder,
    related: Option<&RequestId>,
    mut awaited: Option<&mut Awaited>,
    messages: &mut usize,
) -> Pumped {
    loop {
        let received: Received = match next_event(body, decoder).await {
            Next::End(reason) => return Pumped::Closed(reason),
            Next::TooLarge(e) => Err(e),
            // Priming events (empty data) and other event types carry no message.
            Next::Event(event) if event.data.is_empty() || event.event_type() != "message" => {
                continue;
            }
            Next::Event(event) => {
                *messages += 1;
                let event_id = event
                    .id
                    .filter(|id| !id.is_empty())
                    .map(String::into_boxed_str);
                let bytes = Bytes::from(event.data);
                match Message::parse(bytes.clone()) {
                    Ok(message) => {
                        if let Some(awaited) = awaited.as_deref_mut() {
                            awaited.observe(ctx, &message);
                        }
                        let mut frame = Frame::new(bytes);
                        frame.related = related.cloned();
                        frame.status = Some(status.as_u16());
                        frame.event_id = event_id;
                        Ok(frame)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if !ctx.emit(received).await {
            return Pumped::ReaderGone;
        }
        if awaited.as_deref().is_some_and(Awaited::is_done) {
            return Pumped::Answered;
        }
    }
}

/// What asking for an event stream with GET gave.
pub(super) enum Opened {
    /// An event stream: the response's body and status.
    Stream(Incoming, StatusCode),
    /// 405: the server offers no GET stream.
    NoStream,
    /// 404 for a known session id, with what the body said.
    Expired(String),
    Failed(String),
}

/// GETs the event stream of the session, after `last_event_id` when given.
pub(super) async fn open_stream(ctx: &Context, last_event_id: Option<&str>) -> Opened {
    let request = ctx.get_stream(true, last_event_id);
    let response = match ctx.send(request, Some(ctx.config.handshake_timeout)).await {
        Ok(response) => response,
        Err(
            Failure::Unreachable(reason)
            | Failure::Status(_, reason)
            | Failure::Unauthorized(reason),
        ) => {
            return Opened::Failed(reason);
        }
    };
    let status = response.status();
    if status.is_success() && has_content_type(&response, "text/event-stream") {
        return Opened::Stream(response.into_body(), status);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return Opened::NoStream;
    }
    let detail = error_detail(response).await;
    if status == StatusCode::NOT_FOUND && ctx.session_id().is_some() {
        return Opened::Expired(detail);
    }
    Opened::Failed(format!("GET answered HTTP {status}{detail}"))
}

/// How long to wait before reconnection number `attempt` (1-based): the stream's `retry`
/// (or the default), doubled per earlier failed attempt, capped.
fn delay(ctx: &Context, decoder: &SseDecoder, attempt: u32) -> Duration {
    let config = &ctx.config;
    let base = decoder
        .retry()
        .map_or(config.default_retry, Duration::from_millis);
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(config.max_retry)
}

/// Reads the SSE answer of a POST until every awaited request is answered, resuming the
/// stream with `Last-Event-ID` when it ends early; requests left unanswered get errors.
pub(super) async fn read_post_stream(
    ctx: &Context,
    mut body: Incoming,
    mut status: StatusCode,
    mut awaited: Awaited,
) {
    let related = awaited.related();
    let mut decoder = SseDecoder::new(ctx.config.max_message_size);
    let mut failures = 0u32;
    loop {
        let mut messages = 0;
        let mut reason = match pump(
            ctx,
            &mut body,
            status,
            &mut decoder,
            related.as_ref(),
            Some(&mut awaited),
            &mut messages,
        )
        .await
        {
            Pumped::Answered | Pumped::ReaderGone => return,
            Pumped::Closed(reason) => reason,
        };
        if messages > 0 {
            failures = 0;
        }
        let Some(last_id) = decoder.last_event_id().map(str::to_owned) else {
            let text = format!(
                "upstream {} ended the answer before answering ({reason}) and gave no event id to resume from",
                ctx.url
            );
            ctx.fail(&awaited.ids, ErrorCode::UPSTREAM_UNAVAILABLE, &text, None)
                .await;
            return;
        };
        loop {
            failures += 1;
            if failures > ctx.config.reconnect_attempts {
                let text = format!(
                    "upstream {} ended the answer before answering, and resuming it failed {} times: {reason}",
                    ctx.url, ctx.config.reconnect_attempts
                );
                ctx.fail(&awaited.ids, ErrorCode::UPSTREAM_UNAVAILABLE, &text, None)
                    .await;
                return;
            }
            tokio::time::sleep(delay(ctx, &decoder, failures)).await;
            tracing::debug!(upstream = %ctx.url, last_event_id = %last_id, "resuming an answer stream");
            match open_stream(ctx, Some(&last_id)).await {
                Opened::Stream(resumed, resumed_status) => {
                    body = resumed;
                    status = resumed_status;
                    break;
                }
                Opened::NoStream => {
                    let text = format!(
                        "upstream {} ended the answer before answering ({reason}) and offers no GET stream to resume it",
                        ctx.url
                    );
                    ctx.fail(&awaited.ids, ErrorCode::UPSTREAM_UNAVAILABLE, &text, None)
                        .await;
                    return;
                }
                Opened::Expired(detail) => {
                    ctx.fail_expired(&awaited.ids, &detail).await;
                    ctx.end();
                    return;
                }
                Opened::Failed(why) => reason = why,
            }
        }
    }
}

/// The standalone GET stream, opened once `initialized` reports that the client's
/// `notifications/initialized` went through; `settled` is told when the first attempt to
/// open it is over (either way). Reconnected with `Last-Event-ID` and back-off when it
/// breaks, until the reconnection budget is spent.
pub(super) async fn standalone(
    ctx: Arc<Context>,
    initialized: oneshot::Receiver<()>,
    settled: oneshot::Sender<()>,
) {
    if initialized.await.is_err() {
        return;
    }
    let mut settled = Some(settled);
    let mut decoder = SseDecoder::new(ctx.config.max_message_size);
    let mut failures = 0u32;
    loop {
        let last_id = decoder.last_event_id().map(str::to_owned);
        let opened = open_stream(&ctx, last_id.as_deref()).await;
        if let Some(settled) = settled.take() {
            let _ = settled.send(());
        }
        let why = match opened {
            Opened::Stream(mut body, status) => {
                let opened = Instant::now();
                let mut messages = 0;
                let end = pump(
                    &ctx,
                    &mut body,
                    status,
                    &mut decoder,
                    None,
                    None,
                    &mut messages,
                )
                .await;
                if messages > 0 || opened.elapsed() >= HEALTHY_STREAM {
                    failures = 0;
                }
                match end {
                    Pumped::Closed(reason) => reason,
                    Pumped::Answered | Pumped::ReaderGone => return,
                }
            }
            Opened::NoStream => {
                tracing::debug!(upstream = %ctx.url, "the upstream offers no standalone stream (405)");
                return;
            }
            Opened::Expired(_) => {
                tracing::info!(upstream = %ctx.url, "the upstream session has expired");
                ctx.end();
                return;
            }
            Opened::Failed(reason) => reason,
        };
        failures += 1;
        if failures > ctx.config.reconnect_attempts {
            tracing::warn!(upstream = %ctx.url, "giving up the standalone stream: {why}");
            return;
        }
        let wait = delay(&ctx, &decoder, failures);
        tracing::debug!(upstream = %ctx.url, "standalone stream: {why}; reconnecting in {wait:?}");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Message {
        Message::parse(text.to_owned()).expect("message")
    }

    #[tokio::test]
    async fn the_initialize_answer_sets_the_negotiated_revision() {
        let client = shadowcat_raw_transport::HttpClient::new(&Default::default()).expect("client");
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let url = "http://127.0.0.1:1/mcp".parse().expect("url");
        let ctx = Context::new(client, url, Default::default(), tx);
        let init = message(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
        let mut awaited = Awaited::new(&init);
        assert_eq!(awaited.related(), Some(RequestId::number(1)));
        awaited.observe(
            &ctx,
            &message(r#"{"jsonrpc":"2.0","method":"notifications/message"}"#),
        );
        assert!(!awaited.is_done());
        awaited.observe(
            &ctx,
            &message(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}"#),
        );
        assert!(awaited.is_done());
        let request = ctx.get_stream(true, None);
        assert_eq!(
            request
                .headers()
                .get("mcp-protocol-version")
                .and_then(|v| v.to_str().ok()),
            Some("2025-06-18")
        );
    }

    #[test]
    fn a_batch_has_no_single_related_request() {
        let batch = message(
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
        );
        let awaited = Awaited::new(&batch);
        assert_eq!(awaited.ids.len(), 2);
        assert_eq!(awaited.related(), None);
    }
}
