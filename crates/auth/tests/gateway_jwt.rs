//! JWT access tokens against a real JWKS served over HTTPS by the test (its own CA, its own
//! RSA and P-256 keys): what is admitted, and every way a token is refused, with the status
//! and `WWW-Authenticate` challenge the gateway answers with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use shadowcat_auth::{AuthFailureKind, ResourceServer, ResourceServerConfig};
use shadowcat_test_support::{
    DocumentServer, SigningKey, TestCa, hmac_token, jwks, unsigned_token,
};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";
const METADATA: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// A JWKS over HTTPS publishing `keys`, and a resource server trusting the test CA.
struct Fixture {
    server: DocumentServer,
    gateway: ResourceServer,
    _ca: TestCa,
    _dir: tempfile::TempDir,
}

async fn fixture(keys: &[&SigningKey], tweak: impl FnOnce(&mut ResourceServerConfig)) -> Fixture {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = DocumentServer::https(&ca).await;
    server.set_json("/jwks.json", jwks(keys));
    let mut config = ResourceServerConfig::new(RESOURCE, ISSUER);
    config.jwks_url = Some(server.url("/jwks.json"));
    config.ca_file = Some(ca.write_certificate(dir.path()));
    config.scopes_supported = vec!["mcp:read".to_owned(), "mcp:tools".to_owned()];
    tweak(&mut config);
    let gateway = ResourceServer::new(config).expect("a valid configuration");
    Fixture {
        server,
        gateway,
        _ca: ca,
        _dir: dir,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "alice",
        "client_id": "client-1",
        "scope": "mcp:read mcp:tools",
        "iat": now(),
        "exp": now() + 300,
    })
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().expect("an object") {
        if value.is_null() {
            claims.as_object_mut().expect("an object").remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value"),
    );
    headers
}

fn mcp() -> Uri {
    Uri::from_static("/mcp")
}

/// Expects `headers` refused with `kind`; returns the challenge's status and header.
async fn refused(
    gateway: &ResourceServer,
    headers: &HeaderMap,
    kind: AuthFailureKind,
) -> (StatusCode, String) {
    let failure = gateway
        .authenticate(headers, &mcp())
        .await
        .expect_err("the request is refused");
    assert_eq!(failure.kind(), kind, "{failure}");
    let challenge = gateway.challenge(&failure);
    assert_eq!(challenge.status, kind.status());
    let header = challenge
        .www_authenticate
        .to_str()
        .expect("an ASCII header")
        .to_owned();
    assert!(
        header.contains(&format!("resource_metadata=\"{METADATA}\"")),
        "{header}"
    );
    (challenge.status, header)
}

/// Expects a 401 `invalid_token` refusal of `token` with `kind`; never echoes the token.
async fn invalid(gateway: &ResourceServer, token: &str, kind: AuthFailureKind) {
    let (status, header) = refused(gateway, &bearer(token), kind).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        header.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{header}"
    );
    assert!(
        !header.contains(token),
        "the challenge never carries the token"
    );
}

#[tokio::test]
async fn a_valid_es256_token_is_admitted_with_its_claims() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |_| {}).await;
    let token = key.sign(&claims());
    let principal = f
        .gateway
        .authenticate(&bearer(&token), &mcp())
        .await
        .expect("admitted");
    assert_eq!(principal.subject, "alice");
    assert_eq!(principal.client_id.as_deref(), Some("client-1"));
    assert_eq!(principal.issuer.as_deref(), Some(ISSUER));
    assert_eq!(principal.scopes, ["mcp:read", "mcp:tools"]);
    assert_eq!(principal.claims["aud"], RESOURCE);
    assert_eq!(principal.token(), token);
    let expires = principal
        .expires_at
        .expect("exp")
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    assert!(expires.as_secs() > now() + 200);
    assert!(
        !format!("{principal:?}").contains(&token),
        "Debug hides the token"
    );
    // Admitted again from the cache; the JWKS was fetched once.
    f.gateway
        .authenticate(&bearer(&token), &mcp())
        .await
        .expect("admitted again");
    assert_eq!(f.server.hits("/jwks.json"), 1);
}

#[tokio::test]
async fn rs256_and_ps256_tokens_are_admitted() {
    let rsa = SigningKey::rsa("rsa-1");
    // The same RSA key, published without an `alg`, signs with PS256 too.
    let mut jwk_without_alg = rsa.jwk();
    jwk_without_alg
        .as_object_mut()
        .expect("an object")
        .remove("alg");
    let f = fixture(&[], |_| {}).await;
    f.server
        .set_json("/jwks.json", json!({"keys": [jwk_without_alg]}));
    let rs256 = rsa.sign(&claims());
    let ps256 = rsa
        .with_algorithm(Algorithm::PS256)
        .sign(&with(claims(), json!({"sub": "bob"})));
    let alice = f
        .gateway
        .authenticate(&bearer(&rs256), &mcp())
        .await
        .expect("RS256 admitted");
    assert_eq!(alice.subject, "alice");
    let bob = f
        .gateway
        .authenticate(&bearer(&ps256), &mcp())
        .await
        .expect("PS256 admitted");
    assert_eq!(bob.subject, "bob");
}

#[tokio::test]
async fn a_request_without_a_token_gets_the_plain_challenge() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |_| {}).await;
    let (status, header) = refused(&f.gateway, &HeaderMap::new(), AuthFailureKind::Missing).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        header,
        format!("Bearer resource_metadata=\"{METADATA}\", scope=\"mcp:read mcp:tools\"")
    );
    // Another scheme is no bearer token either.
    let mut basic = HeaderMap::new();
    basic.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static("Basic YTpi"),
    );
    refused(&f.gateway, &basic, AuthFailureKind::Missing).await;
    assert_eq!(
        f.server.hits("/jwks.json"),
        0,
        "nothing to check, nothing fetched"
    );
}

#[tokio::test]
async fn a_token_in_the_query_string_is_an_invalid_request() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |_| {}).await;
    let token = key.sign(&claims());
    for (headers, uri) in [
        (HeaderMap::new(), format!("/mcp?access_token={token}")),
        // Even with a valid header, the query string must not carry one.
        (bearer(&token), format!("/mcp?x=1&access_token={token}")),
    ] {
        let uri: Uri = uri.parse().expect("a URI");
        let failure = f
            .gateway
            .authenticate(&headers, &uri)
            .await
            .expect_err("refused");
        assert_eq!(failure.kind(), AuthFailureKind::TokenInQuery);
        let challenge = f.gateway.challenge(&failure);
        assert_eq!(challenge.status, StatusCode::BAD_REQUEST);
        let header = challenge.www_authenticate.to_str().expect("ASCII");
        assert!(
            header.starts_with("Bearer error=\"invalid_request\""),
            "{header}"
        );
    }
}

#[tokio::test]
async fn malformed_authorization_headers_are_invalid_requests() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |_| {}).await;
    for value in ["Bearer", "Bearer a b", "Bearer a,b"] {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_static(value));
        let (status, header) = refused(&f.gateway, &headers, AuthFailureKind::Malformed).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
        assert!(header.contains("error=\"invalid_request\""), "{header}");
    }
    invalid(&f.gateway, "not-a-jwt", AuthFailureKind::MalformedToken).await;
    invalid(
        &f.gateway,
        "eyJub3QganNvbg.eyJ9.c2ln",
        AuthFailureKind::MalformedToken,
    )
    .await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |_| {}).await;
    // Past the 30 s leeway, and within it.
    let expired = key.sign(&with(claims(), json!({"exp": now() - 120})));
    invalid(&f.gateway, &expired, AuthFailureKind::Expired).await;
    let just_expired = key.sign(&with(claims(), json!({"exp": now() - 5})));
    f.gateway
        .authenticate(&bearer(&just_expired), &mcp())
        .await
        .expect("within the leeway");
    let early = key.sign(&with(claims(), json!({"nbf": now() + 600})));
    invalid(&f.gateway, &early, AuthFailureKind::NotYetValid).await;
    let no_exp = key.sign(&with(claims(), json!({"exp": null})));
    invalid(&f.gateway, &no_exp, AuthFailureKind::MalformedToken).await;
}

#[tokio::test]
async fn tokens_for_another_issuer_or_audience_are_refused() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |_| {}).await;
    let issuer = key.sign(&with(claims(), json!({"iss": "https://evil.example.com"})));
    invalid(&f.gateway, &issuer, AuthFailureKind::WrongIssuer).await;
    let no_issuer = key.sign(&with(claims(), json!({"iss": null})));
    invalid(&f.gateway, &no_issuer, AuthFailureKind::WrongIssuer).await;
    let audience = key.sign(&with(
        claims(),
        json!({"aud": "https://other.example.com/mcp"}),
    ));
    invalid(&f.gateway, &audience, AuthFailureKind::WrongAudience).await;
    let no_audience = key.sign(&with(claims(), json!({"aud": null})));
    invalid(&f.gateway, &no_audience, AuthFailureKind::WrongAudience).await;
    let one_of_many = key.sign(&with(
        claims(),
        json!({"aud": ["https://x.example.com", RESOURCE]}),
    ));
    f.gateway
        .authenticate(&bearer(&one_of_many), &mcp())
        .await
        .expect("one audience is ours");
}

#[tokio::test]
async fn unknown_keys_none_and_algorithm_confusion_are_refused() {
    let rsa = SigningKey::rsa("rsa-1");
    let ec = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&rsa, &ec], |_| {}).await;

    let stranger = SigningKey::ec_p256("stranger");
    invalid(
        &f.gateway,
        &stranger.sign(&claims()),
        AuthFailureKind::UnknownKey,
    )
    .await;
    // A known key id, but signed by another key.
    let impostor = SigningKey::ec_p256("ec-1");
    invalid(
        &f.gateway,
        &impostor.sign(&claims()),
        AuthFailureKind::BadSignature,
    )
    .await;

    for alg in ["none", "None", "NONE"] {
        let unsigned = unsigned_token(&json!({"alg": alg, "kid": "rsa-1"}), &claims());
        invalid(&f.gateway, &unsigned, AuthFailureKind::DisallowedAlgorithm).await;
    }
    // HS256 with the RSA public key (PEM) as the HMAC secret: the classic confusion.
    let confused = hmac_token(rsa.public_key_bytes(), Some("rsa-1"), &claims());
    invalid(&f.gateway, &confused, AuthFailureKind::DisallowedAlgorithm).await;
    let confused_ec = hmac_token(ec.public_key_bytes(), Some("ec-1"), &claims());
    invalid(
        &f.gateway,
        &confused_ec,
        AuthFailureKind::DisallowedAlgorithm,
    )
    .await;
    // An allowed algorithm that the named key cannot verify.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rsa-1".to_owned());
    let mismatched = ec.sign_with_header(&header, &claims());
    invalid(
        &f.gateway,
        &mismatched,
        AuthFailureKind::DisallowedAlgorithm,
    )
    .await;
    // An algorithm off the allow-list.
    let f384 = fixture(&[&rsa], |config| {
        config.algorithms = vec!["ES256".to_owned()]
    })
    .await;
    invalid(
        &f384.gateway,
        &rsa.sign(&claims()),
        AuthFailureKind::DisallowedAlgorithm,
    )
    .await;
}

#[tokio::test]
async fn tampered_tokens_fail_their_signature() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |_| {}).await;
    let token = key.sign(&claims());
    let (head, signature) = token.rsplit_once('.').expect("three parts");
    // Another signature of the right length.
    let mut forged = signature.as_bytes().to_vec();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{head}.{}", String::from_utf8(forged).expect("ASCII"));
    invalid(&f.gateway, &tampered, AuthFailureKind::BadSignature).await;
    // The claims of another user under the original signature.
    let other = key.sign(&with(claims(), json!({"sub": "mallory"})));
    let (other_head, _) = other.rsplit_once('.').expect("three parts");
    let swapped = format!("{other_head}.{signature}");
    invalid(&f.gateway, &swapped, AuthFailureKind::BadSignature).await;
    // The valid token still passes.
    f.gateway
        .authenticate(&bearer(&token), &mcp())
        .await
        .expect("admitted");
}

#[tokio::test]
async fn oversized_tokens_are_refused_before_anything_else() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |config| config.max_token_bytes = 1024).await;
    let big = key.sign(&with(claims(), json!({"padding": "x".repeat(2000)})));
    invalid(&f.gateway, &big, AuthFailureKind::Oversized).await;
    assert_eq!(f.server.hits("/jwks.json"), 0, "refused without a fetch");
}

#[tokio::test]
async fn missing_required_scopes_get_a_403_naming_them() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |config| {
        config.required_scopes = vec!["mcp:read".to_owned(), "mcp:admin".to_owned()];
    })
    .await;
    let token = key.sign(&claims());
    let (status, header) = refused(
        &f.gateway,
        &bearer(&token),
        AuthFailureKind::InsufficientScope,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        header.starts_with("Bearer error=\"insufficient_scope\""),
        "{header}"
    );
    assert!(header.contains("scope=\"mcp:read mcp:admin\""), "{header}");
    // The same token with the scopes (`scp` as an array) is admitted.
    let scoped = key.sign(&with(
        claims(),
        json!({"scope": null, "scp": ["mcp:admin", "mcp:read"]}),
    ));
    f.gateway
        .authenticate(&bearer(&scoped), &mcp())
        .await
        .expect("admitted");
    // The plain challenge names the required scopes.
    let (_, plain) = refused(&f.gateway, &HeaderMap::new(), AuthFailureKind::Missing).await;
    assert!(plain.ends_with("scope=\"mcp:read mcp:admin\""), "{plain}");
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let key = SigningKey::ec_p256("ec-1");
    let f = fixture(&[&key], |config| config.leeway_secs = 0).await;
    let token = key.sign(&with(claims(), json!({"exp": now() + 2})));
    f.gateway
        .authenticate(&bearer(&token), &mcp())
        .await
        .expect("admitted while valid");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    invalid(&f.gateway, &token, AuthFailureKind::Expired).await;
}

#[tokio::test]
async fn an_unreachable_or_untrusted_jwks_is_unavailable() {
    let key = SigningKey::ec_p256("ec-1");
    let token = key.sign(&claims());
    // Nothing listens there.
    let f = fixture(&[&key], |config| {
        config.jwks_url = Some("https://127.0.0.1:1/jwks.json".to_owned());
    })
    .await;
    let (status, header) = refused(&f.gateway, &bearer(&token), AuthFailureKind::Unavailable).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!header.contains("error="), "{header}");
    // A JWKS whose certificate the gateway does not trust is never used.
    let untrusted = fixture(&[&key], |config| config.ca_file = None).await;
    refused(
        &untrusted.gateway,
        &bearer(&token),
        AuthFailureKind::Unavailable,
    )
    .await;
    assert_eq!(
        untrusted.server.hits("/jwks.json"),
        0,
        "the TLS handshake failed first"
    );
    // A JWKS answering an error is no key set either.
    let broken = fixture(&[&key], |_| {}).await;
    broken
        .server
        .set_json("/jwks.json", json!({"error": "oops"}));
    refused(
        &broken.gateway,
        &bearer(&token),
        AuthFailureKind::Unavailable,
    )
    .await;
}
