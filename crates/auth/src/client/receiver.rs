//! The loopback redirect receiver (RFC 8252 §7.3): an HTTP listener on 127.0.0.1 that takes
//! the authorization server's redirect with the code, checking `state`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use shadowcat_raw_transport::{HttpBody, HttpServer, HttpServerConfig, full_body};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::encoding::parse_query;
use crate::{Error, Result};

/// The path the redirect URI names.
const CALLBACK_PATH: &str = "/callback";

/// What the redirect carried, once its `state` matched.
#[derive(Debug)]
enum Outcome {
    Code(String),
    Denied(String),
}

/// A listener on 127.0.0.1 waiting for one redirect; it stops when dropped.
#[derive(Debug)]
pub(super) struct RedirectReceiver {
    redirect_uri: String,
    outcomes: mpsc::Receiver<Outcome>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Drop for RedirectReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

impl RedirectReceiver {
    /// Listens on 127.0.0.1:`port` (0: a free port) for the redirect of the authorization
    /// request with `state`.
    pub(super) async fn bind(port: u16, state: String) -> Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let config = HttpServerConfig::default();
        let server = HttpServer::bind(addr, config)
            .await
            .map_err(|e| Error::Authorization(format!("cannot receive the redirect: {e}")))?;
        let redirect_uri = format!("http://{}{CALLBACK_PATH}", server.local_addr());
        let (tx, outcomes) = mpsc::channel(4);
        let (stop, stopped) = oneshot::channel::<()>();
        let handler = move |request: http::Request<_>, _peer: SocketAddr| {
            let answer = receive(request.uri(), &state, &tx);
            async move { answer }
        };
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = server.serve(handler, shutdown).await {
                tracing::warn!("the redirect receiver failed: {e}");
            }
        });
        Ok(Self {
            redirect_uri,
            outcomes,
            stop: Some(stop),
            task,
        })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub(super) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The code of the redirect, waiting at most `limit`.
    pub(super) async fn code(&mut self, limit: Duration) -> Result<String> {
        match tokio::time::timeout(limit, self.outcomes.recv()).await {
            Ok(Some(Outcome::Code(code))) => Ok(code),
            Ok(Some(Outcome::Denied(reason))) => Err(Error::Authorization(format!(
                "the authorization server refused: {reason}"
            ))),
            Ok(None) => Err(Error::Authorization("the redirect receiver stopped".into())),
            Err(_) => Err(Error::Authorization(format!(
                "no authorization arrived within {} s",
                limit.as_secs()
            ))),
        }
    }
}

/// Answers one request to the receiver, handing a redirect whose `state` matches on.
fn receive(uri: &http::Uri, state: &str, outcomes: &mpsc::Sender<Outcome>) -> Response<HttpBody> {
    if uri.path() != CALLBACK_PATH {
        return page(StatusCode::NOT_FOUND, "Not found.");
    }
    let params = parse_query(uri.query().unwrap_or_default());
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if get("state") != Some(state) {
        tracing::warn!("ignoring a redirect whose state does not match the authorization request");
        return page(
            StatusCode::BAD_REQUEST,
            "This redirect does not belong to the authorization in progress (state mismatch).",
        );
    }
    let (outcome, status, text) = match (get("code"), get("error")) {
        (_, Some(error)) => {
            let mut reason = error.to_owned();
            if let Some(description) = get("error_description") {
                reason.push_str(&format!(": {description}"));
            }
            let text = "Authorization was refused. You can close this window.";
            (Outcome::Denied(reason), StatusCode::OK, text)
        }
        (Some(code), None) if !code.is_empty() => {
            let text = "Authorization received. You can close this window.";
            (Outcome::Code(code.to_owned()), StatusCode::OK, text)
        }
        _ => {
            let reason = "the redirect carried neither a code nor an error".to_owned();
            let text = "The redirect carried no authorization code.";
            (Outcome::Denied(reason), StatusCode::BAD_REQUEST, text)
        }
    };
    if outcomes.try_send(outcome).is_err() {
        return page(
            StatusCode::CONFLICT,
            "This authorization was already received.",
        );
    }
    page(status, text)
}

fn page(status: StatusCode, text: &str) -> Response<HttpBody> {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Shadowcat</title></head><body><p>{text}</p></body></html>"
    );
    let mut response = Response::new(full_body(html));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
