//! Opaque access tokens checked by RFC 7662 introspection against a real introspection
//! endpoint served by the test over HTTPS: active and inactive tokens, the checks on the
//! answer, client authentication, caching, and an endpoint that fails.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::json;
use shadowcat_auth::{
    AuthFailureKind, IntrospectionConfig, Principal, ResourceServer, ResourceServerConfig,
};
use shadowcat_test_support::{DocumentReply, DocumentServer, SigningKey, TestCa, jwks};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";
const INTROSPECT: &str = "/introspect";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

struct Fixture {
    server: DocumentServer,
    gateway: ResourceServer,
    _ca: TestCa,
    _dir: tempfile::TempDir,
}

/// An introspection endpoint that knows a few tokens and insists on the gateway's
/// credentials; `tweak` adjusts the gateway's configuration.
async fn fixture(tweak: impl FnOnce(&mut ResourceServerConfig, &DocumentServer)) -> Fixture {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = DocumentServer::https(&ca).await;
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("gateway:s3cret")
    );
    server.set_handler(INTROSPECT, move |request| {
        let authorized = request
            .headers
            .get(http::header::AUTHORIZATION)
            .is_some_and(|value| value == expected_auth.as_str());
        if !authorized {
            return DocumentReply::status(401, json!({"error": "invalid_client"}));
        }
        let form = request.form();
        assert_eq!(
            form.get("token_type_hint").map(String::as_str),
            Some("access_token")
        );
        let exp = now() + 300;
        let answer = match form.get("token").map(String::as_str) {
            Some("opaque-alice") => json!({
                "active": true, "sub": "alice", "client_id": "client-1",
                "scope": "mcp:read mcp:tools", "iss": ISSUER, "aud": RESOURCE, "exp": exp,
            }),
            Some("opaque/with+odd=") => json!({"active": true, "sub": "odd", "exp": exp}),
            Some("opaque-service") => json!({"active": true, "client_id": "service-1", "exp": exp}),
            Some("opaque-other-audience") => json!({
                "active": true, "sub": "bob", "aud": ["https://other.example.com"], "exp": exp,
            }),
            Some("opaque-other-issuer") => json!({
                "active": true, "sub": "bob", "iss": "https://evil.example.com", "exp": exp,
            }),
            Some("opaque-expired") => json!({"active": true, "sub": "bob", "exp": now() - 600}),
            _ => json!({"active": false}),
        };
        DocumentReply::json(answer)
    });
    let mut config = ResourceServerConfig::new(RESOURCE, ISSUER);
    config.introspection = Some(
        IntrospectionConfig::new(server.url(INTROSPECT), "gateway").with_client_secret("s3cret"),
    );
    config.ca_file = Some(ca.write_certificate(dir.path()));
    tweak(&mut config, &server);
    let gateway = ResourceServer::new(config).expect("a valid configuration");
    Fixture {
        server,
        gateway,
        _ca: ca,
        _dir: dir,
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value"),
    );
    headers
}

async fn check(gateway: &ResourceServer, token: &str) -> Result<Principal, AuthFailureKind> {
    gateway
        .authenticate(&bearer(token), &Uri::from_static("/mcp"))
        .await
        .map_err(|failure| failure.kind())
}

#[tokio::test]
async fn an_active_token_is_admitted_and_the_answer_cached() {
    let f = fixture(|_, _| {}).await;
    let alice = check(&f.gateway, "opaque-alice").await.expect("active");
    assert_eq!(alice.subject, "alice");
    assert_eq!(alice.client_id.as_deref(), Some("client-1"));
    assert_eq!(alice.issuer.as_deref(), Some(ISSUER));
    assert_eq!(alice.scopes, ["mcp:read", "mcp:tools"]);
    assert_eq!(alice.token(), "opaque-alice");
    assert!(alice.expires_at.is_some());
    assert_eq!(f.server.hits(INTROSPECT), 1);
    check(&f.gateway, "opaque-alice")
        .await
        .expect("active, from the cache");
    assert_eq!(f.server.hits(INTROSPECT), 1);
    // Tokens with form-special characters reach the endpoint intact.
    assert_eq!(
        check(&f.gateway, "opaque/with+odd=")
            .await
            .expect("active")
            .subject,
        "odd"
    );
    // Without a subject, the client is the subject.
    let service = check(&f.gateway, "opaque-service").await.expect("active");
    assert_eq!(service.subject, "service-1");
}

#[tokio::test]
async fn an_inactive_token_is_refused_and_the_answer_cached() {
    let f = fixture(|_, _| {}).await;
    let failure = f
        .gateway
        .authenticate(&bearer("opaque-revoked"), &Uri::from_static("/mcp"))
        .await
        .expect_err("inactive");
    assert_eq!(failure.kind(), AuthFailureKind::Inactive);
    let challenge = f.gateway.challenge(&failure);
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge
            .www_authenticate
            .to_str()
            .expect("ASCII")
            .starts_with("Bearer error=\"invalid_token\""),
        "{:?}",
        challenge.www_authenticate
    );
    assert_eq!(
        check(&f.gateway, "opaque-revoked").await.err(),
        Some(AuthFailureKind::Inactive)
    );
    assert_eq!(f.server.hits(INTROSPECT), 1, "the refusal was remembered");
}

#[tokio::test]
async fn active_answers_are_still_checked_for_audience_issuer_and_expiry() {
    let f = fixture(|_, _| {}).await;
    for (token, kind) in [
        ("opaque-other-audience", AuthFailureKind::WrongAudience),
        ("opaque-other-issuer", AuthFailureKind::WrongIssuer),
        ("opaque-expired", AuthFailureKind::Expired),
    ] {
        assert_eq!(check(&f.gateway, token).await.err(), Some(kind), "{token}");
    }
}

#[tokio::test]
async fn answers_expire_from_the_cache() {
    let f = fixture(|config, _| {
        if let Some(introspection) = config.introspection.as_mut() {
            introspection.cache_ttl_secs = 1;
        }
    })
    .await;
    check(&f.gateway, "opaque-alice").await.expect("active");
    check(&f.gateway, "opaque-alice").await.expect("active");
    assert_eq!(f.server.hits(INTROSPECT), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    check(&f.gateway, "opaque-alice").await.expect("active");
    assert_eq!(
        f.server.hits(INTROSPECT),
        2,
        "asked again after the cache time"
    );
}

#[tokio::test]
async fn a_failing_endpoint_is_unavailable_and_not_cached() {
    // Wrong credentials: the endpoint answers 401.
    let f = fixture(|config, _| {
        config.introspection = config
            .introspection
            .take()
            .map(|i| i.with_client_secret("wrong"));
    })
    .await;
    assert_eq!(
        check(&f.gateway, "opaque-alice").await.err(),
        Some(AuthFailureKind::Unavailable)
    );
    assert_eq!(
        check(&f.gateway, "opaque-alice").await.err(),
        Some(AuthFailureKind::Unavailable)
    );
    assert_eq!(f.server.hits(INTROSPECT), 2, "failures are not remembered");
    // A server error.
    f.server.set_reply(
        INTROSPECT,
        DocumentReply::status(500, json!({"error": "boom"})),
    );
    let failure = f
        .gateway
        .authenticate(&bearer("opaque-alice"), &Uri::from_static("/mcp"))
        .await
        .expect_err("unavailable");
    assert_eq!(failure.kind(), AuthFailureKind::Unavailable);
    assert_eq!(
        f.gateway.challenge(&failure).status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn jwts_go_to_the_jwks_and_opaque_tokens_to_introspection() {
    let key = SigningKey::ec_p256("k");
    let f = fixture(|config, server| {
        server.set_json("/jwks.json", jwks(&[&key]));
        config.jwks_url = Some(server.url("/jwks.json"));
    })
    .await;
    let jwt = key.sign(&json!({"iss": ISSUER, "aud": RESOURCE, "sub": "jay", "exp": now() + 60}));
    assert_eq!(
        check(&f.gateway, &jwt).await.expect("a valid JWT").subject,
        "jay"
    );
    assert_eq!(
        check(&f.gateway, "opaque-alice")
            .await
            .expect("active")
            .subject,
        "alice"
    );
    assert_eq!(f.server.hits("/jwks.json"), 1);
    assert_eq!(f.server.hits(INTROSPECT), 1);
}

#[tokio::test]
async fn without_a_jwks_even_jwts_are_introspected() {
    let f = fixture(|_, _| {}).await;
    let key = SigningKey::ec_p256("k");
    let jwt = key.sign(&json!({"sub": "x", "exp": now() + 60}));
    assert_eq!(
        check(&f.gateway, &jwt).await.err(),
        Some(AuthFailureKind::Inactive)
    );
    assert_eq!(f.server.hits(INTROSPECT), 1);
}
