//! Upstream credentials against a real token endpoint served by the test: the form fields
//! of client credentials and RFC 8693 token exchange, client authentication, caching
//! (single-flight, per caller token, bounded), refresh before expiry, and failures.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use serde_json::json;
use shadowcat_auth::{Principal, UpstreamCredentials, UpstreamCredentialsConfig};
use shadowcat_test_support::{DocumentReply, DocumentRequest, DocumentServer, TestCa};

/// Every request the token endpoint got, in order.
type Seen = Arc<Mutex<Vec<DocumentRequest>>>;

/// A token endpoint at `/token` answering `access_token: "<prefix>-<n>"` (n counts from 1)
/// with `expires_in`.
fn serve_tokens(server: &DocumentServer, prefix: &'static str, expires_in: u64) -> Seen {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    server.set_handler("/token", move |request| {
        let mut log = log.lock().unwrap();
        log.push(request.clone());
        DocumentReply::json(json!({
            "access_token": format!("{prefix}-{}", log.len()),
            "token_type": "Bearer",
            "expires_in": expires_in,
        }))
    });
    seen
}

fn credentials(config: serde_json::Value, ca: Option<&TestCa>) -> UpstreamCredentials {
    let config: UpstreamCredentialsConfig = serde_json::from_value(config).unwrap();
    match ca {
        Some(ca) => UpstreamCredentials::with_http_client(config, ca.client()).unwrap(),
        None => UpstreamCredentials::new(config).unwrap(),
    }
}

async fn bearer(creds: &UpstreamCredentials, who: Option<&Principal>) -> String {
    let (name, value) = creds.header(who).await.unwrap().unwrap();
    assert_eq!(name, http::header::AUTHORIZATION);
    assert!(value.is_sensitive());
    value.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn client_credentials_are_fetched_once_cached_and_refreshed_before_expiry() {
    let ca = TestCa::new();
    let server = DocumentServer::https(&ca).await;
    let seen = serve_tokens(&server, "cc", 2);
    // Slow answers make the concurrent callers below overlap.
    server.set_delay("/token", Duration::from_millis(200));
    let creds = credentials(
        json!({
            "type": "client_credentials",
            "token_url": server.url("/token"),
            "client_id": "gateway one",
            "client_secret": "p@ss:word",
            "scope": "files:read files:write",
            "resource": "https://files.example.com/mcp",
        }),
        Some(&ca),
    );
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let creds = creds.clone();
            tokio::spawn(async move { bearer(&creds, None).await })
        })
        .collect();
    for c in callers {
        assert_eq!(c.await.unwrap(), "Bearer cc-1");
    }
    assert_eq!(
        server.hits("/token"),
        1,
        "one fetch for ten concurrent callers"
    );
    assert_eq!(bearer(&creds, None).await, "Bearer cc-1");
    assert_eq!(server.hits("/token"), 1);

    {
        let seen = seen.lock().unwrap();
        let request = &seen[0];
        assert_eq!(request.method, http::Method::POST);
        assert_eq!(
            request.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        // client_secret_basic: form-encoded id and secret, then base64 (RFC 6749 §2.3.1).
        assert_eq!(
            request.headers["authorization"],
            "Basic Z2F0ZXdheStvbmU6cCU0MHNzJTNBd29yZA=="
        );
        let form = request.form();
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["scope"], "files:read files:write");
        assert_eq!(form["resource"], "https://files.example.com/mcp");
        assert!(!form.contains_key("client_secret"), "{form:?}");
    }

    // The token lives 2 s from when it was asked for (200 ms ago) and is refreshed a
    // quarter of that before it expires.
    server.set_delay("/token", Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(bearer(&creds, None).await, "Bearer cc-1");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(bearer(&creds, None).await, "Bearer cc-2");
    assert_eq!(server.hits("/token"), 2);
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_form() {
    let server = DocumentServer::http().await;
    let seen = serve_tokens(&server, "post", 3600);
    let creds = credentials(
        json!({
            "type": "client_credentials",
            "token_url": server.url("/token"),
            "client_id": "gw",
            "client_secret": "s3cret",
            "auth_method": "post",
        }),
        None,
    );
    assert_eq!(bearer(&creds, None).await, "Bearer post-1");
    let seen = seen.lock().unwrap();
    let form = seen[0].form();
    assert_eq!(form["client_id"], "gw");
    assert_eq!(form["client_secret"], "s3cret");
    assert!(!form.contains_key("scope") && !form.contains_key("resource"));
    assert!(!seen[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn token_exchange_swaps_the_callers_token_and_caches_per_token() {
    let server = DocumentServer::http().await;
    let seen = serve_tokens(&server, "up", 3600);
    let creds = credentials(
        json!({
            "type": "token_exchange",
            "token_url": server.url("/token"),
            "client_id": "gw",
            "client_secret": "s",
            "audience": "files",
            "resource": "https://files.example.com/mcp",
            "scope": "files:read",
        }),
        None,
    );
    let alice = Principal::new("alice").with_token("alice-token-1");
    let bob = Principal::new("bob").with_token("bob-token-1");
    assert_eq!(bearer(&creds, Some(&alice)).await, "Bearer up-1");
    assert_eq!(bearer(&creds, Some(&alice)).await, "Bearer up-1");
    assert_eq!(bearer(&creds, Some(&bob)).await, "Bearer up-2");
    // Alice's next token is another subject token: exchanged again.
    let alice2 = Principal::new("alice").with_token("alice-token-2");
    assert_eq!(bearer(&creds, Some(&alice2)).await, "Bearer up-3");
    assert_eq!(bearer(&creds, Some(&bob)).await, "Bearer up-2");
    assert_eq!(server.hits("/token"), 3);
    assert_eq!(creds.cached_exchanges(), 3);
    {
        let seen = seen.lock().unwrap();
        let form = seen[0].form();
        assert_eq!(
            form["grant_type"],
            "urn:ietf:params:oauth:grant-type:token-exchange"
        );
        assert_eq!(form["subject_token"], "alice-token-1");
        assert_eq!(
            form["subject_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert_eq!(
            form["requested_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert_eq!(form["audience"], "files");
        assert_eq!(form["resource"], "https://files.example.com/mcp");
        assert_eq!(form["scope"], "files:read");
        assert_eq!(seen[1].form()["subject_token"], "bob-token-1");
    }
    // Without a caller there is nothing to exchange.
    let e = creds.header(None).await.unwrap_err().to_string();
    assert!(e.contains("caller's token"), "{e}");
}

#[tokio::test]
async fn an_exchanged_token_is_not_used_after_the_callers_token_expires() {
    let server = DocumentServer::http().await;
    serve_tokens(&server, "x", 3600);
    let creds = credentials(
        json!({"type": "token_exchange", "token_url": server.url("/token"),
               "client_id": "gw", "client_secret": "s", "max_cached": 2}),
        None,
    );
    let short = Principal::new("carol")
        .with_token("carol-token")
        .with_expires_at(SystemTime::now() + Duration::from_secs(2));
    assert_eq!(bearer(&creds, Some(&short)).await, "Bearer x-1");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(bearer(&creds, Some(&short)).await, "Bearer x-2");
    // The cache holds at most max_cached tokens.
    for who in ["dave", "erin", "frank"] {
        let p = Principal::new(who).with_token(format!("{who}-token"));
        bearer(&creds, Some(&p)).await;
    }
    assert_eq!(creds.cached_exchanges(), 2);
}

#[tokio::test]
async fn endpoint_errors_are_reported_and_a_valid_token_outlives_a_failed_refresh() {
    let server = DocumentServer::http().await;
    let url = server.url("/token");
    server.set_reply(
        "/token",
        DocumentReply::status(
            401,
            json!({"error": "invalid_client", "error_description": "bad secret"}),
        ),
    );
    let creds = credentials(
        json!({"type": "client_credentials", "token_url": url,
               "client_id": "gw", "client_secret": "wrong"}),
        None,
    );
    let e = creds.header(None).await.unwrap_err().to_string();
    assert!(
        e.contains("invalid_client: bad secret") && e.contains(&url),
        "{e}"
    );

    for (reply, needle) in [
        (
            json!({"access_token": "t", "token_type": "N_A"}),
            "token_type",
        ),
        (json!({"token_type": "Bearer"}), "not a token response"),
        (
            json!({"access_token": "t", "token_type": "bearer", "expires_in": "soon"}),
            "expires_in",
        ),
    ] {
        server.set_json("/token", reply);
        let e = creds.header(None).await.unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }

    serve_tokens(&server, "ok", 2);
    let before = server.hits("/token");
    assert_eq!(bearer(&creds, None).await, "Bearer ok-1");
    server.set_reply(
        "/token",
        DocumentReply::status(503, json!({"error": "temporarily_unavailable"})),
    );
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    // The refresh fails, the current token is still valid: keep using it, and do not ask
    // again at once.
    assert_eq!(bearer(&creds, None).await, "Bearer ok-1");
    assert_eq!(bearer(&creds, None).await, "Bearer ok-1");
    assert_eq!(server.hits("/token"), before + 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let e = creds.header(None).await.unwrap_err().to_string();
    assert!(e.contains("temporarily_unavailable"), "{e}");
}

#[tokio::test]
async fn the_clients_authorization_never_goes_upstream() {
    let creds = credentials(
        json!({"type": "static", "header": "X-Api-Key", "value": "upstream-key"}),
        None,
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer client-token"),
    );
    headers.insert(
        "proxy-authorization",
        HeaderValue::from_static("Basic eA=="),
    );
    headers.insert("mcp-session-id", HeaderValue::from_static("s1"));
    let alice = Principal::new("alice").with_token("client-token");
    creds.apply(Some(&alice), &mut headers).await.unwrap();
    assert!(!headers.contains_key("authorization"));
    assert!(!headers.contains_key("proxy-authorization"));
    assert_eq!(headers["x-api-key"], "upstream-key");
    assert_eq!(headers["mcp-session-id"], "s1");

    let server = DocumentServer::http().await;
    serve_tokens(&server, "gw", 3600);
    let creds = credentials(
        json!({"type": "client_credentials", "token_url": server.url("/token"),
               "client_id": "gw", "client_secret": "s"}),
        None,
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer client-token"),
    );
    creds.apply(Some(&alice), &mut headers).await.unwrap();
    assert_eq!(headers["authorization"], "Bearer gw-1");
    assert_eq!(headers.get_all("authorization").iter().count(), 1);
}

#[test]
fn configuration_errors_name_the_field() {
    let cases = [
        (
            "{type: static, header: 'bad header', value: x}",
            "upstream.header: ",
        ),
        (
            "{type: static, header: x-key, value: ''}",
            "upstream.value: ",
        ),
        (
            "{type: static, header: x-key, value: \"a\\nb\"}",
            "upstream.value: ",
        ),
        (
            "{type: client_credentials, token_url: 'http://idp.example.com/t', client_id: a, client_secret: b}",
            "upstream.token_url: ",
        ),
        (
            "{type: client_credentials, token_url: 'https://idp/t', client_id: '', client_secret: b}",
            "upstream.client_id: ",
        ),
        (
            "{type: token_exchange, token_url: 'https://idp/t', client_id: a, client_secret: ''}",
            "upstream.client_secret: ",
        ),
        (
            "{type: token_exchange, token_url: 'https://idp/t', client_id: a, client_secret: b, audience: ' '}",
            "upstream.audience: ",
        ),
        (
            "{type: token_exchange, token_url: 'https://idp/t', client_id: a, client_secret: b, max_cached: 0}",
            "upstream.max_cached: ",
        ),
    ];
    for (yaml, prefix) in cases {
        let config: UpstreamCredentialsConfig = serde_yaml::from_str(yaml).unwrap();
        let e = UpstreamCredentials::new(config).unwrap_err().to_string();
        assert!(e.starts_with(prefix), "{yaml}\n{e}");
    }
    for bad in [
        "{type: magic}",
        "{type: static, header: x}",
        "{type: static, header: x, value: y, extra: z}",
        "{type: client_credentials, token_url: 'https://x', client_id: a, client_secret: b, auth_method: jwt}",
    ] {
        assert!(
            serde_yaml::from_str::<UpstreamCredentialsConfig>(bad).is_err(),
            "{bad}"
        );
    }
}
