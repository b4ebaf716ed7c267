//! The control API: HTTP on loopback to list, show, resume, edit and drop held messages.
//!
//! | Method and path            | Does                                                     |
//! |----------------------------|----------------------------------------------------------|
//! | `GET /held`                | the held messages, oldest first (a JSON array)           |
//! | `GET /held/{id}`           | one held message with its full JSON                      |
//! | `POST /held/{id}/resume`   | forward it; with a JSON body, forward that body instead  |
//! | `POST /held/{id}/drop`     | do not forward it                                        |
//!
//! Errors are JSON objects with an `error` field: 404 for an unknown id, 400 for an edit
//! that is not a JSON-RPC message (with `offset` for invalid JSON). The server listens on
//! loopback only, and refuses requests whose `Host` is not a loopback name or that carry an
//! `Origin` header (a web page's request), so a browser cannot be turned against it.

use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;
use shadowcat_interceptor::{HeldError, HeldMessages};
use shadowcat_raw_transport::{HttpBody, HttpServer, HttpServerConfig, full_body};

use crate::{Error, Result};

/// The largest edited message the control API accepts, in bytes.
const MAX_EDIT: usize = 16 << 20;

/// The control API's HTTP server, bound and ready to run.
///
/// ```no_run
/// # async fn demo() -> shadowcat_core::Result<()> {
/// use shadowcat_core::ControlServer;
/// use shadowcat_interceptor::HeldMessages;
///
/// let held = HeldMessages::default();
/// let control = ControlServer::bind("127.0.0.1:7777".parse().expect("an address"), held).await?;
/// eprintln!("control API on http://{}/held", control.local_addr());
/// control.run(std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ControlServer {
    server: HttpServer,
    held: HeldMessages,
}

impl ControlServer {
    /// Binds `addr`, which must be a loopback address (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, held: HeldMessages) -> Result<Self> {
        if !addr.ip().to_canonical().is_loopback() {
            return Err(Error::ControlNotLoopback { addr });
        }
        let server = HttpServer::bind(addr, HttpServerConfig::default())
            .await
            .map_err(Error::Control)?;
        Ok(Self { server, held })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let held = self.held;
        let handler = move |req: Request<Incoming>, _peer: SocketAddr| {
            let held = held.clone();
            async move { handle(&held, req).await }
        };
        self.server
            .serve(handler, shutdown)
            .await
            .map_err(Error::Control)
    }
}

/// One request, answered.
async fn handle(held: &HeldMessages, req: Request<Incoming>) -> Response<HttpBody> {
    if let Some(refused) = refused(&req) {
        return refused;
    }
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match (segments.as_slice(), req.method()) {
        (["held"], &Method::GET) => json_response(StatusCode::OK, serde_json::to_vec(&held.list())),
        (["held", id], &Method::GET) => match held.get(id) {
            Some(detail) => json_response(StatusCode::OK, serde_json::to_vec(&detail)),
            None => held_error(&HeldError::UnknownId {
                id: (*id).to_owned(),
            }),
        },
        (["held", id, "resume"], &Method::POST) => {
            let id = (*id).to_owned();
            let body = match read_body(req.into_body()).await {
                Ok(body) => body,
                Err((status, error)) => return error_response(status, json!({"error": error})),
            };
            let (done, decision) = if body.trim_ascii().is_empty() {
                (held.resume(&id), "resume")
            } else {
                (held.edit(&id, body), "resume_edited")
            };
            match done {
                Ok(()) => decided(&id, decision),
                Err(e) => held_error(&e),
            }
        }
        (["held", id, "drop"], &Method::POST) => match held.drop_message(id) {
            Ok(()) => decided(id, "drop"),
            Err(e) => held_error(&e),
        },
        (["held"] | ["held", _], _) => not_allowed("GET"),
        (["held", _, "resume" | "drop"], _) => not_allowed("POST"),
        _ => error_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no such endpoint: {path}")}),
        ),
    }
}

/// Refuses requests a web page could have made: a `Host` that is not a loopback name (DNS
/// rebinding) or any `Origin` header.
fn refused(req: &Request<Incoming>) -> Option<Response<HttpBody>> {
    if req.headers().contains_key(header::ORIGIN) {
        return Some(error_response(
            StatusCode::FORBIDDEN,
            json!({"error": "requests from web pages (with an Origin header) are refused"}),
        ));
    }
    let host = req.uri().host().map(str::to_owned).or_else(|| {
        let value = req.headers().get(header::HOST)?.to_str().ok()?;
        let authority: http::uri::Authority = value.parse().ok()?;
        Some(authority.host().to_owned())
    });
    match host.as_deref() {
        Some(h) if is_loopback_name(h) => None,
        _ => Some(error_response(
            StatusCode::FORBIDDEN,
            json!({"error": "the Host header must name a loopback address"}),
        )),
    }
}

fn is_loopback_name(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

async fn read_body(body: Incoming) -> Result<Bytes, (StatusCode, String)> {
    match Limited::new(body, MAX_EDIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the edited message is over {MAX_EDIT} bytes"),
        )),
        Err(e) => Err((
            StatusCode::BAD_REQUEST,
            format!("reading the request body failed: {e}"),
        )),
    }
}

fn decided(id: &str, decision: &str) -> Response<HttpBody> {
    json_response(
        StatusCode::OK,
        serde_json::to_vec(&json!({"id": id, "decision": decision})),
    )
}

fn held_error(error: &HeldError) -> Response<HttpBody> {
    match error {
        HeldError::InvalidEdit { offset, .. } => error_response(
            StatusCode::BAD_REQUEST,
            json!({"error": error.to_string(), "offset": offset}),
        ),
        _ => error_response(StatusCode::NOT_FOUND, json!({"error": error.to_string()})),
    }
}

fn not_allowed(allow: &'static str) -> Response<HttpBody> {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"error": format!("method not allowed; use {allow}")}),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, http::HeaderValue::from_static(allow));
    response
}

fn error_response(status: StatusCode, body: serde_json::Value) -> Response<HttpBody> {
    json_response(status, serde_json::to_vec(&body))
}

fn json_response(status: StatusCode, body: serde_json::Result<Vec<u8>>) -> Response<HttpBody> {
    let (status, bytes) = match body {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            (status, bytes)
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{{\"error\":{}}}\n", json!(e.to_string())).into_bytes(),
        ),
    };
    let mut response = Response::new(full_body(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for ok in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.1",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for bad in ["example.com", "10.0.0.1", "[::2]", "localhost.evil.com", ""] {
            assert!(!is_loopback_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn refuses_to_bind_a_non_loopback_address() {
        for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:7777"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let err = ControlServer::bind(addr, HeldMessages::default())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::ControlNotLoopback { .. }), "{err}");
            assert!(err.to_string().contains("loopback only"), "{err}");
        }
    }
}
