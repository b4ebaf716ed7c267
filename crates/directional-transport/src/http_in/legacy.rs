//! The legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a session whose first event
//! (`endpoint`) names the URL to POST messages to; every answer travels on that one stream.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming as Body;
use shadowcat_mcp::{ErrorCode, Message};
use shadowcat_raw_transport::HttpBody;

use super::admission::Grant;
use super::checks::{error_response, status_response};
use super::handler::{admit, unknown_session};
use super::sse_body::{Outbound, SseBody, StreamGuard};
use super::{OpenError, Shared};
use crate::{Frame, TransportKind};

/// `GET /sse`: a new session and its event stream.
pub(super) async fn open_stream(
    shared: &Arc<Shared>,
    request: &Request<Body>,
) -> Response<HttpBody> {
    let accept = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    if !(accept.contains("text/event-stream") || accept.contains("*/*")) {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            ErrorCode::INVALID_REQUEST,
            "Accept must list text/event-stream",
            None,
        );
    }
    let grant = request.extensions().get::<Grant>();
    let session = match shared.open(TransportKind::LegacySse, grant).await {
        Ok(s) => s,
        Err(OpenError::Full(text)) => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::INTERNAL_ERROR,
                &text,
                None,
            );
        }
        Err(OpenError::ShuttingDown) => {
            return status_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
    };
    let Some((route, rx, mut first)) = session.open_standalone(None) else {
        return status_response(StatusCode::SERVICE_UNAVAILABLE, "the session ended");
    };
    let endpoint = format!("{}?sessionId={}", shared.config.message_path, session.id);
    first.insert(0, Outbound::Endpoint(endpoint));
    let guard = StreamGuard {
        session: session.clone(),
        route,
        done: false,
    };
    let body = SseBody::new(first, rx, shared.config.keepalive, true, Some(guard));
    let mut response = Response::new(http_body_util::BodyExt::boxed_unsync(body));
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The `sessionId` query parameter.
fn session_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("sessionId="))
}

/// `POST /message?sessionId=…`: one message (or batch) for the session; 202, and the
/// answer goes out on the session's stream.
pub(super) async fn post(
    shared: &Arc<Shared>,
    query: Option<String>,
    body: Bytes,
    grant: Option<&Grant>,
) -> Response<HttpBody> {
    let Some(id) = session_param(query.as_deref()) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "the sessionId query parameter is required",
            None,
        );
    };
    let Some(session) = shared.session(id, grant) else {
        return unknown_session();
    };
    if session.kind != TransportKind::LegacySse {
        return unknown_session();
    }
    let message = match Message::parse(body) {
        Ok(m) => m,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                e.code(),
                &e.to_string(),
                e.request_id(),
            );
        }
    };
    let filters = match admit(
        shared,
        grant,
        session.id.as_str(),
        TransportKind::LegacySse,
        &message,
    ) {
        Ok(filters) => filters,
        Err(response) => return *response,
    };
    if !filters.is_empty() {
        session.filter_answers(filters);
    }
    if !session.push(Frame::parsed(message)).await {
        return unknown_session();
    }
    status_response(StatusCode::ACCEPTED, "Accepted")
}

#[cfg(test)]
mod tests {
    use super::session_param;

    #[test]
    fn session_query_parameter() {
        assert_eq!(session_param(Some("sessionId=abc")), Some("abc"));
        assert_eq!(session_param(Some("x=1&sessionId=abc")), Some("abc"));
        assert_eq!(session_param(Some("x=1")), None);
        assert_eq!(session_param(None), None);
    }
}
