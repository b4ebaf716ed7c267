//! Gateway admission: what checking a bearer token costs per request.
//!
//! The JWKS (an RSA and a P-256 key generated here) is served by a loopback HTTP server
//! and fetched once before measuring, so every case runs with cached keys and never waits
//! on the network; each `authenticate` future is polled once with a no-op waker.
//!
//! - `auth/rs256_full`: a fresh RS256 token, fully validated every time (the validated-token
//!   cache is off): header, key lookup, signature, claims, principal.
//! - `auth/es256_full`: the same with ES256.
//! - `auth/cache_hit`: an RS256 token already validated: the bounded cache of validated
//!   tokens answers, re-checking `exp` and `nbf` against the clock. This is what every request
//!   after a token's first pays.
//! - `auth/missing`: a request without a token, refused, with its challenge built.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput};
use http::{HeaderMap, HeaderValue, Uri};
use serde_json::json;
use shadowcat_auth::{AuthFailure, Principal, ResourceServer, ResourceServerConfig};
use shadowcat_test_support::{DocumentServer, SigningKey, jwks};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";

/// Runs `authenticate` to completion; it must not wait (the keys are cached).
fn admit(
    gateway: &ResourceServer,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Principal, AuthFailure> {
    let mut future = pin!(gateway.authenticate(headers, uri));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("authentication with cached keys never waits"),
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value"),
    );
    headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}

/// Claims of a typical access token (RFC 9068).
fn claims() -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    json!({
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "248289761001",
        "client_id": "s6BhdRkqt3",
        "scope": "mcp:read mcp:tools mcp:resources",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": "dbe39bf3a3ba4238a513f51d6e1691c4",
    })
}

fn auth(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let rsa = SigningKey::rsa("rsa-2025");
    let ec = SigningKey::ec_p256("ec-2025");
    let server = runtime.block_on(DocumentServer::http());
    server.set_json("/jwks.json", jwks(&[&rsa, &ec]));
    let gateway = |cache: usize| {
        let mut config = ResourceServerConfig::new(RESOURCE, ISSUER);
        config.jwks_url = Some(server.url("/jwks.json"));
        config.jwks_cache_ttl_secs = 86_400;
        config.token_cache_capacity = cache;
        config.required_scopes = vec!["mcp:tools".to_owned()];
        let gateway = ResourceServer::new(config).expect("a valid configuration");
        runtime
            .block_on(gateway.prefetch_keys())
            .expect("the JWKS is served");
        gateway
    };
    let uncached = gateway(0);
    let cached = gateway(10_000);
    let uri = Uri::from_static("/mcp");
    let rs256 = bearer(&rsa.sign(&claims()));
    let es256 = bearer(&ec.sign(&claims()));
    admit(&uncached, &rs256, &uri).expect("a valid RS256 token");
    admit(&uncached, &es256, &uri).expect("a valid ES256 token");
    admit(&cached, &rs256, &uri).expect("a valid RS256 token, now cached");
    let missing = HeaderMap::new();

    let mut group = c.benchmark_group("auth");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rs256_full", |b| {
        b.iter(|| admit(&uncached, black_box(&rs256), &uri));
    });
    group.bench_function("es256_full", |b| {
        b.iter(|| admit(&uncached, black_box(&es256), &uri));
    });
    group.bench_function("cache_hit", |b| {
        b.iter(|| admit(&cached, black_box(&rs256), &uri));
    });
    group.bench_function("missing", |b| {
        b.iter(|| {
            let failure = admit(&cached, black_box(&missing), &uri).expect_err("refused");
            cached.challenge(&failure)
        });
    });
    group.finish();
    drop(server);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    let mut criterion = config().configure_from_args();
    auth(&mut criterion);
    criterion.final_summary();
}
