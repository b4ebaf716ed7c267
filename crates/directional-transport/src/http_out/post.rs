//! One POST of a message to a Streamable HTTP upstream, and the reading of its answer.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use shadowcat_mcp::{ErrorCode, Message};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::context::{
    Context, Failure, SESSION_ID, error_body, error_detail, has_content_type, read_body,
    request_ids,
};
use super::stream::{Awaited, pump, read_post_stream};
use crate::Frame;

/// What the POST of `initialize` told the dispatcher once its answer's head arrived.
#[derive(Debug)]
pub(super) enum Handshake {
    /// A Streamable HTTP server took it (its session id, if any, is recorded).
    Accepted,
    /// 400, 404 or 405: perhaps a legacy HTTP+SSE server; the status and what it said.
    Refused(StatusCode, String),
}

/// One message to POST, and who waits on its progress.
#[derive(Debug)]
pub(super) struct Post {
    pub(super) message: Message,
    pub(super) headers: Option<HeaderMap>,
    /// Held until the answer's head arrives: bounds the POSTs in flight.
    pub(super) permit: Option<OwnedSemaphorePermit>,
    /// For `initialize`: told when the answer's head arrives.
    pub(super) handshake: Option<oneshot::Sender<Handshake>>,
    /// Told when the upstream accepted the message (2xx).
    pub(super) accepted: Option<oneshot::Sender<()>>,
}

impl Post {
    /// POSTs the message to the session URL and hands its answer to the reader.
    pub(super) async fn run(mut self, ctx: Arc<Context>) {
        let ids = request_ids(&self.message);
        let with_session = ctx.session_id().is_some();
        let request = ctx.post(&ctx.url, &self.message, self.headers.as_ref(), true);
        let response = match ctx.send(request, ctx.config.request_timeout).await {
            Ok(response) => response,
            Err(failure) => {
                ctx.fail_with(&ids, &failure).await;
                return;
            }
        };
        drop(self.permit.take());
        let status = response.status();
        if let Some(handshake) = self.handshake.take() {
            if matches!(status.as_u16(), 400 | 404 | 405) {
                let detail = error_detail(response).await;
                // Nobody waits any more (the handshake timed out): answer the request.
                if let Err(Handshake::Refused(status, detail)) =
                    handshake.send(Handshake::Refused(status, detail))
                {
                    ctx.fail_with(&ids, &Failure::Status(status, detail)).await;
                }
                return;
            }
            if status.is_success() {
                if let Some(id) = response.headers().get(SESSION_ID) {
                    ctx.set_session_id(id.clone());
                }
                let _ = handshake.send(Handshake::Accepted);
            }
        }
        if !status.is_success() {
            let (answer, detail) = error_body(response).await;
            if status == StatusCode::NOT_FOUND && with_session {
                ctx.fail_expired(&ids, &detail).await;
                ctx.end();
                return;
            }
            let mut awaited = Awaited::new(&self.message);
            // A JSON-RPC error response to the request itself (a 2026-07-28 header
            // mismatch, say) is the answer: pass it on unchanged.
            if let Some(answer) = answer.filter(|a| a.is_response() && a.id().is_some()) {
                let before = awaited.ids.len();
                awaited.observe(&ctx, &answer);
                if awaited.ids.len() < before {
                    let mut frame = Frame::new(answer.into_bytes());
                    frame.related = Awaited::new(&self.message).related();
                    frame.status = Some(status.as_u16());
                    if !ctx.emit(Ok(frame)).await {
                        return;
                    }
                }
            }
            if ids.is_empty() {
                tracing::warn!(
                    upstream = %ctx.url,
                    method = self.message.method(),
                    "the upstream refused a message with HTTP {status}{detail}"
                );
            } else if !awaited.is_done() {
                let failure = Failure::Status(status, detail);
                ctx.fail_with(&awaited.ids, &failure).await;
            }
            return;
        }
        if let Some(accepted) = self.accepted.take() {
            let _ = accepted.send(());
        }
        let awaited = Awaited::new(&self.message);
        if has_content_type(&response, "text/event-stream") {
            if awaited.is_done() {
                // Not expected for notifications and responses, but carry what comes.
                let mut decoder = shadowcat_mcp::SseDecoder::new(ctx.config.max_message_size);
                let mut body = response.into_body();
                let mut count = 0;
                let _ = pump(
                    &ctx,
                    &mut body,
                    status,
                    &mut decoder,
                    None,
                    None,
                    &mut count,
                )
                .await;
            } else {
                read_post_stream(&ctx, response.into_body(), status, awaited).await;
            }
        } else if has_content_type(&response, "application/json") {
            read_json(&ctx, response.into_body(), status, awaited).await;
        } else if !awaited.is_done() {
            let kind = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            let text = format!(
                "upstream {} answered HTTP {status} with content type {kind}, not JSON or an event stream",
                ctx.url
            );
            ctx.fail(&awaited.ids, ErrorCode::INTERNAL_ERROR, &text, Some(status))
                .await;
        } else {
            let mut body = response.into_body();
            // 202: nothing to read; draining lets the connection be reused.
            let _ = tokio::time::timeout(
                ctx.config.handshake_timeout,
                read_body(&mut body, ctx.config.max_message_size),
            )
            .await;
        }
    }
}

/// A JSON answer (a response with `status`): one message or a batch, handed on as one
/// frame with its bytes unchanged. An answer that is not JSON-RPC, or lacks a response,
/// gets error responses for the requests it should have answered.
async fn read_json(ctx: &Context, mut body: Incoming, status: StatusCode, mut awaited: Awaited) {
    let related = awaited.related();
    let bytes = match read_body(&mut body, ctx.config.max_message_size).await {
        Ok(bytes) => bytes,
        Err(reason) => {
            let text = format!("upstream {}: {reason}", ctx.url);
            ctx.fail(&awaited.ids, ErrorCode::UPSTREAM_UNAVAILABLE, &text, None)
                .await;
            return;
        }
    };
    if bytes.is_empty() && awaited.is_done() {
        return;
    }
    match Message::parse(bytes.clone()) {
        Ok(message) => {
            awaited.observe(ctx, &message);
            let mut frame = Frame::new(bytes);
            frame.related = related;
            frame.status = Some(status.as_u16());
            if !ctx.emit(Ok(frame)).await {
                return;
            }
            if !awaited.is_done() {
                let text = format!(
                    "upstream {} answered without a response to this request",
                    ctx.url
                );
                ctx.fail(&awaited.ids, ErrorCode::INTERNAL_ERROR, &text, None)
                    .await;
            }
        }
        Err(e) => {
            let text = format!("upstream {} answered with an invalid message: {e}", ctx.url);
            ctx.fail(&awaited.ids, ErrorCode::INTERNAL_ERROR, &text, None)
                .await;
        }
    }
}
