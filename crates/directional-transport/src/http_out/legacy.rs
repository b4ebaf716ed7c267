//! The legacy HTTP+SSE transport (2024-11-05): one GET event stream that first names the
//! endpoint to POST to, then carries every server message.

use std::sync::Arc;

use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, StatusCode};
use shadowcat_mcp::{Message, SseDecoder};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::context::{Context, Failure, error_detail, has_content_type, read_body, request_ids};
use super::stream::{Next, Pumped, next_event, pump};

/// Opens the event stream, reports the endpoint it names through `endpoint`, then hands
/// every message to the reader until the stream ends, which ends the upstream session.
pub(super) async fn stream(ctx: Arc<Context>, endpoint: oneshot::Sender<Result<Uri, String>>) {
    let request = ctx.get_stream(false, None);
    let response = match ctx.send(request, Some(ctx.config.handshake_timeout)).await {
        Ok(response) => response,
        Err(
            Failure::Unreachable(reason)
            | Failure::Status(_, reason)
            | Failure::Unauthorized(reason),
        ) => {
            let _ = endpoint.send(Err(reason));
            return;
        }
    };
    let status = response.status();
    if !status.is_success() || !has_content_type(&response, "text/event-stream") {
        let detail = error_detail(response).await;
        let _ = endpoint.send(Err(format!(
            "GET {} answered HTTP {status}{detail} without an event stream",
            ctx.url
        )));
        return;
    }
    let mut body = response.into_body();
    let mut decoder = SseDecoder::new(ctx.config.max_message_size);
    loop {
        match next_event(&mut body, &mut decoder).await {
            Next::Event(event) if event.event_type() == "endpoint" => {
                let _ = endpoint.send(resolve_endpoint(&ctx.url, &event.data));
                break;
            }
            Next::Event(_) | Next::TooLarge(_) => {}
            Next::End(reason) => {
                let _ = endpoint.send(Err(format!("{reason} before naming its endpoint")));
                return;
            }
        }
    }
    let mut messages = 0;
    if let Pumped::Closed(reason) = pump(
        &ctx,
        &mut body,
        status,
        &mut decoder,
        None,
        None,
        &mut messages,
    )
    .await
    {
        tracing::info!(upstream = %ctx.url, "the legacy SSE stream is over: {reason}");
    }
    ctx.end();
}

/// POSTs one message to the legacy endpoint; the answer comes on the event stream, so only
/// a refusal is reported (as error responses to the requests in the message).
pub(super) async fn post(
    ctx: Arc<Context>,
    endpoint: Uri,
    message: Message,
    headers: Option<HeaderMap>,
    permit: Option<OwnedSemaphorePermit>,
) {
    let ids = request_ids(&message);
    let request = ctx.post(&endpoint, &message, headers.as_ref(), false);
    let response = match ctx.send(request, ctx.config.request_timeout).await {
        Ok(response) => response,
        Err(failure) => {
            ctx.fail_with(&ids, &failure).await;
            return;
        }
    };
    drop(permit);
    let status = response.status();
    if status.is_success() {
        let mut body = response.into_body();
        let _ = tokio::time::timeout(
            ctx.config.handshake_timeout,
            read_body(&mut body, ctx.config.max_message_size),
        )
        .await;
        return;
    }
    let detail = error_detail(response).await;
    if status == StatusCode::NOT_FOUND {
        ctx.fail_expired(&ids, &detail).await;
        ctx.end();
    } else if ids.is_empty() {
        tracing::warn!(upstream = %ctx.url, "the upstream refused a message with HTTP {status}{detail}");
    } else {
        ctx.fail_with(&ids, &Failure::Status(status, detail)).await;
    }
}

/// The endpoint named by an `endpoint` event, resolved against the stream's URL; it must
/// be on the same origin (scheme, host and port), so credentials go nowhere else.
pub(super) fn resolve_endpoint(base: &Uri, endpoint: &str) -> Result<Uri, String> {
    let endpoint = endpoint.trim();
    let bad = |why: &str| format!("the endpoint {endpoint:?} is not usable: {why}");
    if endpoint.contains("://") {
        let parsed: Uri = endpoint.parse().map_err(|e| bad(&format!("{e}")))?;
        let same = parsed.scheme() == base.scheme()
            && parsed.authority().map(|a| a.as_str().to_ascii_lowercase())
                == base.authority().map(|a| a.as_str().to_ascii_lowercase());
        return if same {
            Ok(parsed)
        } else {
            Err(bad(&format!("it is not on the origin of {base}")))
        };
    }
    let path_and_query = if endpoint.starts_with('/') {
        endpoint.to_owned()
    } else {
        let path = base.path();
        let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
        format!("{dir}{endpoint}")
    };
    let path_and_query: PathAndQuery = path_and_query.parse().map_err(|e| bad(&format!("{e}")))?;
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts).map_err(|e| bad(&format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(base: &str, endpoint: &str) -> Result<String, String> {
        let base: Uri = base.parse().expect("base");
        resolve_endpoint(&base, endpoint).map(|u| u.to_string())
    }

    #[test]
    fn resolves_endpoints_against_the_stream_url() {
        assert_eq!(
            resolve("http://127.0.0.1:9/sse", "/message?sessionId=a-1").as_deref(),
            Ok("http://127.0.0.1:9/message?sessionId=a-1")
        );
        assert_eq!(
            resolve("http://h:9/api/sse", "messages?s=1").as_deref(),
            Ok("http://h:9/api/messages?s=1")
        );
        assert_eq!(
            resolve("https://h/sse", "https://H/post").as_deref(),
            Ok("https://H/post")
        );
    }

    #[test]
    fn refuses_an_endpoint_on_another_origin() {
        let err = resolve("http://h:9/sse", "http://evil.example/post").expect_err("other host");
        assert!(err.contains("origin"), "{err}");
        assert!(resolve("http://h:9/sse", "https://h:9/post").is_err());
        assert!(resolve("http://h:9/sse", "/bad path").is_err());
    }
}
