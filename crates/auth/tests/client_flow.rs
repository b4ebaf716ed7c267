//! The OAuth client against a real authorization server and protected resource on loopback
//! (one small HTTP server playing both): authorization code with PKCE through the loopback
//! receiver, refresh before expiry and after a 401, the token store across processes' worth
//! of clients, step-up and its limits, and the refusals (state mismatch, no S256, a fresh
//! token refused again).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shadowcat_auth::{AuthorizeMode, OAuthClient, OAuthClientConfig, Pkce};
use shadowcat_raw_transport::{HttpBody, HttpServer, HttpServerConfig, full_body};
use shadowcat_transport::ChallengeAction;
use tokio::sync::oneshot;

/// How the test server behaves, and what it saw.
#[derive(Debug, Default)]
struct Server {
    origin: String,
    /// `code_challenge_methods_supported`.
    pkce_methods: Vec<String>,
    /// `expires_in` of issued tokens.
    expires_in: u64,
    issue_refresh_tokens: bool,
    /// Redirect with another `state` than the one asked with.
    tamper_state: bool,
    registrations: usize,
    authorizations: Vec<Value>,
    token_requests: Vec<Value>,
    challenge: Option<String>,
    issued: usize,
}

type Shared = Arc<Mutex<Server>>;

struct Running {
    shared: Shared,
    url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Running {
    fn with<T>(&self, f: impl FnOnce(&mut Server) -> T) -> T {
        f(&mut self.shared.lock().unwrap())
    }

    /// The `WWW-Authenticate` of the resource's 401.
    fn challenge(&self) -> HeaderValue {
        HeaderValue::from_str(&format!(
            r#"Bearer error="invalid_token", resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
            self.with(|s| s.origin.clone())
        ))
        .unwrap()
    }
}

async fn start(configure: impl FnOnce(&mut Server)) -> Running {
    let server = HttpServer::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        HttpServerConfig::default(),
    )
    .await
    .unwrap();
    let origin = format!("http://{}", server.local_addr());
    let mut state = Server {
        origin: origin.clone(),
        pkce_methods: vec!["S256".into()],
        expires_in: 3600,
        issue_refresh_tokens: true,
        ..Server::default()
    };
    configure(&mut state);
    let shared: Shared = Arc::new(Mutex::new(state));
    let handler_state = shared.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    // The handler is given to `serve` directly, which fixes the request body's type.
    tokio::spawn(server.serve(
        move |request: Request<_>, _peer: SocketAddr| {
            let shared = handler_state.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                answer(&shared, &parts, &body)
            }
        },
        async {
            let _ = stopped.await;
        },
    ));
    Running {
        shared,
        url: format!("{origin}/mcp"),
        stop: Some(stop),
    }
}

fn json_answer(status: StatusCode, value: &Value) -> Response<HttpBody> {
    let mut response = Response::new(full_body(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn query(text: &str) -> Value {
    let mut map = serde_json::Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            let mut out = Vec::new();
            let bytes = s.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        };
        map.insert(decode(name), Value::String(decode(value)));
    }
    Value::Object(map)
}

fn answer(shared: &Shared, parts: &http::request::Parts, body: &[u8]) -> Response<HttpBody> {
    let mut s = shared.lock().unwrap();
    let origin = s.origin.clone();
    match (parts.method.as_str(), parts.uri.path()) {
        ("GET", "/.well-known/oauth-protected-resource/mcp") => json_answer(
            StatusCode::OK,
            &json!({"resource": format!("{origin}/mcp"), "authorization_servers": [origin], "scopes_supported": ["read"]}),
        ),
        ("GET", "/.well-known/oauth-authorization-server") => json_answer(
            StatusCode::OK,
            &json!({
                "issuer": origin,
                "authorization_endpoint": format!("{origin}/authorize"),
                "token_endpoint": format!("{origin}/token"),
                "registration_endpoint": format!("{origin}/register"),
                "code_challenge_methods_supported": s.pkce_methods,
                "token_endpoint_auth_methods_supported": ["none"],
            }),
        ),
        ("POST", "/register") => {
            s.registrations += 1;
            json_answer(StatusCode::CREATED, &json!({"client_id": "client-1"}))
        }
        ("GET", "/authorize") => {
            let params = query(parts.uri.query().unwrap_or_default());
            s.challenge = params["code_challenge"].as_str().map(str::to_owned);
            s.authorizations.push(params.clone());
            let state = if s.tamper_state {
                "another-state"
            } else {
                params["state"].as_str().unwrap_or_default()
            };
            let location = format!(
                "{}?code=code-{}&state={state}",
                params["redirect_uri"].as_str().unwrap_or_default(),
                s.authorizations.len()
            );
            let mut response = Response::new(full_body(""));
            *response.status_mut() = StatusCode::FOUND;
            response
                .headers_mut()
                .insert(LOCATION, HeaderValue::from_str(&location).unwrap());
            response
        }
        ("POST", "/token") => {
            let form = query(std::str::from_utf8(body).unwrap());
            s.token_requests.push(form.clone());
            if form["grant_type"] == "authorization_code" {
                let verifier = form["code_verifier"].as_str().unwrap_or_default();
                if s.challenge.as_deref() != Some(&Pkce::challenge_of(verifier)) {
                    return json_answer(
                        StatusCode::BAD_REQUEST,
                        &json!({"error": "invalid_grant", "error_description": "PKCE mismatch"}),
                    );
                }
            }
            s.issued += 1;
            let mut tokens = json!({
                "access_token": format!("at-{}", s.issued),
                "token_type": "Bearer",
                "expires_in": s.expires_in,
            });
            if s.issue_refresh_tokens {
                tokens["refresh_token"] = format!("rt-{}", s.issued).into();
            }
            json_answer(StatusCode::OK, &tokens)
        }
        _ => json_answer(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

fn config(dir: &tempfile::TempDir) -> OAuthClientConfig {
    OAuthClientConfig::default()
        .with_authorize(AuthorizeMode::Fetch)
        .with_authorize_timeout(Duration::from_secs(2))
        .with_token_store(dir.path().join("tokens.json"))
}

fn client(server: &Running, config: OAuthClientConfig) -> OAuthClient {
    OAuthClient::new(server.url.parse().unwrap(), config).unwrap()
}

async fn header(client: &OAuthClient) -> Option<String> {
    client
        .authorization()
        .await
        .unwrap()
        .map(|v| v.to_str().unwrap().to_owned())
}

fn insufficient(scope: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        r#"Bearer error="insufficient_scope", scope="{scope}""#
    ))
    .unwrap()
}

/// The tests (named `client::…`, the module of the client side).
mod client {
    use super::*;

    #[tokio::test]
    async fn authorizes_with_pkce_then_refreshes_before_expiry_and_reuses_the_store() {
        let server = start(|s| s.expires_in = 1).await;
        let dir = tempfile::tempdir().unwrap();
        let oauth = client(&server, config(&dir));
        assert_eq!(header(&oauth).await, None);
        let action = oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&server.challenge()], None)
            .await;
        assert_eq!(action, ChallengeAction::Retry);
        assert_eq!(header(&oauth).await.as_deref(), Some("Bearer at-1"));
        server.with(|s| {
            assert_eq!(s.registrations, 1);
            let asked = &s.authorizations[0];
            assert_eq!(asked["code_challenge_method"], "S256");
            assert_eq!(asked["resource"], server.url.as_str());
            assert_eq!(asked["scope"], "read");
            assert!(
                asked["redirect_uri"]
                    .as_str()
                    .unwrap()
                    .starts_with("http://127.0.0.1:")
            );
            let token = &s.token_requests[0];
            assert_eq!(token["grant_type"], "authorization_code");
            assert_eq!(token["resource"], server.url.as_str());
            assert_eq!(token["client_id"], "client-1");
        });

        // A token that lives one second is refreshed once it has expired.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(header(&oauth).await.as_deref(), Some("Bearer at-2"));
        server.with(|s| {
            let refresh = s.token_requests.last().unwrap();
            assert_eq!(refresh["grant_type"], "refresh_token");
            assert_eq!(refresh["refresh_token"], "rt-1");
            assert_eq!(refresh["resource"], server.url.as_str());
        });
        drop(oauth);

        // Another client with the same store starts from the stored tokens: no new
        // registration or authorization.
        server.with(|s| s.expires_in = 3600);
        let again = client(&server, config(&dir));
        let current = header(&again).await.unwrap();
        assert!(
            current == "Bearer at-2" || current == "Bearer at-3",
            "{current}"
        );
        server.with(|s| {
            assert_eq!(s.registrations, 1);
            assert_eq!(s.authorizations.len(), 1);
        });
    }

    #[tokio::test]
    async fn a_401_for_the_current_token_refreshes_it_once_and_a_stale_401_just_retries() {
        let server = start(|_| {}).await;
        let dir = tempfile::tempdir().unwrap();
        let oauth = client(&server, config(&dir));
        let challenge = server.challenge();
        oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&challenge], None)
            .await;
        let first = oauth.authorization().await.unwrap().unwrap();

        // Refused with the current token: refreshed, not authorized again.
        let action = oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&challenge], Some(&first))
            .await;
        assert_eq!(action, ChallengeAction::Retry);
        assert_eq!(header(&oauth).await.as_deref(), Some("Bearer at-2"));
        server.with(|s| assert_eq!(s.authorizations.len(), 1));

        // Refused with a token that has been replaced since: just try again.
        let action = oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&challenge], Some(&first))
            .await;
        assert_eq!(action, ChallengeAction::Retry);
        server.with(|s| assert_eq!(s.token_requests.len(), 2));
    }

    #[tokio::test]
    async fn a_fresh_token_refused_again_is_not_authorized_again() {
        let server = start(|s| s.issue_refresh_tokens = false).await;
        let dir = tempfile::tempdir().unwrap();
        let oauth = client(&server, config(&dir));
        let challenge = server.challenge();
        oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&challenge], None)
            .await;
        let token = oauth.authorization().await.unwrap().unwrap();
        let action = oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&challenge], Some(&token))
            .await;
        assert!(matches!(action, ChallengeAction::Refuse(_)), "{action:?}");
        server.with(|s| assert_eq!(s.authorizations.len(), 1));
    }

    #[tokio::test]
    async fn step_up_asks_for_the_union_of_scopes_a_bounded_number_of_times() {
        let server = start(|_| {}).await;
        let dir = tempfile::tempdir().unwrap();
        let oauth = client(&server, config(&dir).with_max_step_ups(2));
        oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&server.challenge()], None)
            .await;
        let forbidden = |scope: &str| insufficient(scope);
        let current = || async { oauth.authorization().await.unwrap() };

        // Asking for what was already asked for: no new authorization.
        let sent = current().await;
        let action = oauth
            .challenge(StatusCode::FORBIDDEN, &[&forbidden("read")], sent.as_ref())
            .await;
        assert_eq!(action, ChallengeAction::GiveUp);

        for (scope, union) in [("write", "read write"), ("admin read", "read write admin")] {
            let sent = current().await;
            let action = oauth
                .challenge(StatusCode::FORBIDDEN, &[&forbidden(scope)], sent.as_ref())
                .await;
            assert_eq!(action, ChallengeAction::Retry);
            server.with(|s| assert_eq!(s.authorizations.last().unwrap()["scope"], union));
        }
        let sent = current().await;
        let action = oauth
            .challenge(StatusCode::FORBIDDEN, &[&forbidden("more")], sent.as_ref())
            .await;
        assert_eq!(action, ChallengeAction::GiveUp);
        server.with(|s| assert_eq!(s.authorizations.len(), 3));

        // A 403 that is not about scopes is passed on.
        let plain = HeaderValue::from_static(r#"Bearer error="invalid_request""#);
        let action = oauth
            .challenge(StatusCode::FORBIDDEN, &[&plain], current().await.as_ref())
            .await;
        assert_eq!(action, ChallengeAction::GiveUp);
    }

    #[tokio::test]
    async fn a_redirect_with_another_state_is_not_taken() {
        let server = start(|s| s.tamper_state = true).await;
        let dir = tempfile::tempdir().unwrap();
        let oauth = client(&server, config(&dir));
        let action = oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&server.challenge()], None)
            .await;
        let ChallengeAction::Refuse(reason) = action else {
            panic!("expected a refusal, got {action:?}");
        };
        assert!(reason.contains("state mismatch"), "{reason}");
        server.with(|s| assert!(s.token_requests.is_empty()));
        assert_eq!(header(&oauth).await, None);
    }

    #[tokio::test]
    async fn an_authorization_server_without_s256_is_refused() {
        let server = start(|s| s.pkce_methods = vec!["plain".into()]).await;
        let dir = tempfile::tempdir().unwrap();
        let oauth = client(&server, config(&dir));
        let action = oauth
            .challenge(StatusCode::UNAUTHORIZED, &[&server.challenge()], None)
            .await;
        let ChallengeAction::Refuse(reason) = action else {
            panic!("expected a refusal, got {action:?}");
        };
        assert!(reason.contains("S256"), "{reason}");
        server.with(|s| {
            assert!(s.authorizations.is_empty());
            assert_eq!(s.registrations, 0);
        });
    }
}
