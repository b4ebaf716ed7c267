//! The echo MCP server over Streamable HTTP: the direct HTTP baseline.
//!
//! Every POST carries one message (or batch) and is answered with `application/json`, the
//! answer the stdio echo server would give; a POST of notifications only gets 202. The answer
//! to `initialize` carries a fresh `Mcp-Session-Id`; later requests must send one back (400
//! otherwise), like a stateful MCP server. DELETE ends nothing (200); GET is 405 (no
//! standalone stream).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::echo::answer_line;

/// The session id header.
const SESSION: &str = "mcp-session-id";

/// Serves the echo MCP server over HTTP on `listener` at every path, until the task is
/// dropped. Each connection runs in a task owned by this future.
pub async fn serve_http(listener: TcpListener) -> std::io::Result<()> {
    let sessions = Arc::new(AtomicU64::new(0));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stream.set_nodelay(true)?;
                let sessions = sessions.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(req, sessions.clone()));
                    // A client that goes away mid-request is not the server's problem.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn handle(
    req: Request<Incoming>,
    sessions: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match *req.method() {
        Method::POST => {}
        Method::DELETE => return Ok(plain(StatusCode::OK, "")),
        _ => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            return Ok(response);
        }
    }
    let has_session = req.headers().contains_key(SESSION);
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    let is_initialize = memchr::memmem::find(&body, br#""method":"initialize""#).is_some();
    if !has_session && !is_initialize {
        return Ok(plain(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id"));
    }
    let mut out = Vec::with_capacity(128);
    answer_line(body, &mut out);
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    if out.is_empty() {
        return Ok(plain(StatusCode::ACCEPTED, ""));
    }
    let mut response = Response::new(Full::new(Bytes::from(out)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if is_initialize {
        let id = sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let value = HeaderValue::from_str(&format!("bench-session-{id}"))
            .expect("a session id is a valid header value");
        headers.insert(SESSION, value);
    }
    Ok(response)
}
