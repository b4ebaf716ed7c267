//! The JWKS life cycle against a real HTTPS JWKS endpoint that the test changes while the
//! gateway runs: key rotation without downtime, refetching on an unknown key id at a bounded
//! rate, one fetch for many waiting requests, and background refresh of stale keys.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Uri};
use serde_json::{Value, json};
use shadowcat_auth::{AuthFailureKind, ResourceServer, ResourceServerConfig};
use shadowcat_test_support::{DocumentServer, SigningKey, TestCa, jwks};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";
const JWKS: &str = "/jwks.json";

struct Fixture {
    server: DocumentServer,
    gateway: ResourceServer,
    _ca: TestCa,
    _dir: tempfile::TempDir,
}

/// A JWKS over HTTPS with `keys`; refetch interval and cache lifetime in seconds.
async fn fixture(keys: &[&SigningKey], min_interval: u64, ttl: u64) -> Fixture {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = DocumentServer::https(&ca).await;
    server.set_json(JWKS, jwks(keys));
    let mut config = ResourceServerConfig::new(RESOURCE, ISSUER);
    config.jwks_url = Some(server.url(JWKS));
    config.ca_file = Some(ca.write_certificate(dir.path()));
    config.jwks_refresh_min_interval_secs = min_interval;
    config.jwks_cache_ttl_secs = ttl;
    let gateway = ResourceServer::new(config).expect("a valid configuration");
    Fixture {
        server,
        gateway,
        _ca: ca,
        _dir: dir,
    }
}

fn claims(sub: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    json!({"iss": ISSUER, "aud": RESOURCE, "sub": sub, "exp": now + 300})
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value"),
    );
    headers
}

async fn check(gateway: &ResourceServer, token: &str) -> Result<String, AuthFailureKind> {
    gateway
        .authenticate(&bearer(token), &Uri::from_static("/mcp"))
        .await
        .map(|principal| principal.subject)
        .map_err(|failure| failure.kind())
}

/// Waits past a refetch interval of `secs`.
async fn past_interval(secs: u64) {
    tokio::time::sleep(Duration::from_millis(secs * 1000 + 150)).await;
}

#[tokio::test]
async fn keys_rotate_without_downtime() {
    let old = SigningKey::ec_p256("2024-01");
    let new = SigningKey::ec_p256("2024-02");
    let f = fixture(&[&old], 1, 300).await;
    let old_token = old.sign(&claims("alice"));
    assert_eq!(check(&f.gateway, &old_token).await, Ok("alice".to_owned()));
    assert_eq!(f.server.hits(JWKS), 1);

    // The issuer publishes the next key next to the current one.
    f.server.set_json(JWKS, jwks(&[&old, &new]));
    past_interval(1).await;
    let new_token = new.sign(&claims("bob"));
    assert_eq!(check(&f.gateway, &new_token).await, Ok("bob".to_owned()));
    assert_eq!(
        f.server.hits(JWKS),
        2,
        "the first token with the new kid refetched once"
    );
    assert_eq!(
        check(&f.gateway, &new.sign(&claims("carol"))).await,
        Ok("carol".to_owned())
    );
    assert_eq!(
        check(&f.gateway, &old.sign(&claims("dave"))).await,
        Ok("dave".to_owned())
    );
    assert_eq!(f.server.hits(JWKS), 2, "both keys known now");

    // The old key is retired: tokens it signs stop working once the gateway refetches.
    f.server.set_json(JWKS, jwks(&[&new]));
    past_interval(1).await;
    let unknown = SigningKey::ec_p256("2024-03").sign(&claims("eve"));
    assert_eq!(
        check(&f.gateway, &unknown).await,
        Err(AuthFailureKind::UnknownKey)
    );
    assert_eq!(f.server.hits(JWKS), 3);
    assert_eq!(
        check(&f.gateway, &old.sign(&claims("frank"))).await,
        Err(AuthFailureKind::UnknownKey)
    );
    assert_eq!(
        check(&f.gateway, &new.sign(&claims("grace"))).await,
        Ok("grace".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_key_ids_fetches_at_most_once_per_interval() {
    let key = SigningKey::ec_p256("real");
    let f = Arc::new(fixture(&[&key], 1, 300).await);
    assert_eq!(
        check(&f.gateway, &key.sign(&claims("alice"))).await,
        Ok("alice".to_owned())
    );
    assert_eq!(f.server.hits(JWKS), 1);

    // One forger's key under 200 different key ids.
    let forger = SigningKey::ec_p256("forger");
    let forgeries: Vec<String> = (0..200)
        .map(|i| forger.sign_as(&format!("kid-{i}"), &claims("mallory")))
        .collect();
    let flood = |tokens: Vec<String>| {
        let f = Arc::clone(&f);
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for token in tokens {
                let f = Arc::clone(&f);
                tasks.spawn(async move { check(&f.gateway, &token).await });
            }
            let mut results = Vec::new();
            while let Some(result) = tasks.join_next().await {
                results.push(result.expect("a task"));
            }
            results
        }
    };

    // Within the interval of the first fetch: no fetch at all.
    let results = flood(forgeries[..50].to_vec()).await;
    assert!(
        results
            .iter()
            .all(|r| *r == Err(AuthFailureKind::UnknownKey)),
        "{results:?}"
    );
    assert_eq!(f.server.hits(JWKS), 1);

    // Past it: one fetch, however many unknown key ids arrive at once.
    past_interval(1).await;
    let results = flood(forgeries[50..150].to_vec()).await;
    assert!(
        results
            .iter()
            .all(|r| *r == Err(AuthFailureKind::UnknownKey)),
        "{results:?}"
    );
    assert_eq!(f.server.hits(JWKS), 2);
    let results = flood(forgeries[150..].to_vec()).await;
    assert!(
        results
            .iter()
            .all(|r| *r == Err(AuthFailureKind::UnknownKey))
    );
    assert_eq!(f.server.hits(JWKS), 2, "still within the interval");

    // Real tokens were never disturbed.
    assert_eq!(
        check(&f.gateway, &key.sign(&claims("bob"))).await,
        Ok("bob".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_wait_for_a_single_fetch() {
    let key = SigningKey::ec_p256("k");
    let f = Arc::new(fixture(&[&key], 1, 300).await);
    f.server.set_delay(JWKS, Duration::from_millis(300));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let token = key.sign(&claims(&format!("user-{i}")));
        let f = Arc::clone(&f);
        tasks.spawn(async move { check(&f.gateway, &token).await });
    }
    let mut admitted = 0;
    while let Some(result) = tasks.join_next().await {
        assert!(result.expect("a task").is_ok());
        admitted += 1;
    }
    assert_eq!(admitted, 20);
    assert_eq!(
        f.server.hits(JWKS),
        1,
        "one fetch served every waiting request"
    );
}

#[tokio::test]
async fn stale_keys_are_refreshed_in_the_background() {
    let key = SigningKey::ec_p256("k");
    let f = fixture(&[&key], 1, 1).await;
    assert_eq!(
        check(&f.gateway, &key.sign(&claims("a"))).await,
        Ok("a".to_owned())
    );
    assert_eq!(f.server.hits(JWKS), 1);
    past_interval(1).await;
    // The JWKS answers slowly now; a request with stale keys does not wait for it.
    f.server.set_delay(JWKS, Duration::from_secs(2));
    let started = Instant::now();
    assert_eq!(
        check(&f.gateway, &key.sign(&claims("b"))).await,
        Ok("b".to_owned())
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The background refresh reaches the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.server.hits(JWKS) < 2 {
        assert!(Instant::now() < deadline, "no background refresh");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_cached_keys_and_is_not_retried_within_the_interval() {
    let key = SigningKey::ec_p256("k");
    let f = fixture(&[&key], 1, 300).await;
    f.gateway.prefetch_keys().await.expect("prefetched");
    assert_eq!(f.server.hits(JWKS), 1);
    f.server.remove(JWKS);
    past_interval(1).await;
    let unknown = SigningKey::ec_p256("new").sign(&claims("x"));
    // The refetch fails: the new key may exist, so this is "unavailable", not "invalid".
    assert_eq!(
        check(&f.gateway, &unknown).await,
        Err(AuthFailureKind::Unavailable)
    );
    assert_eq!(
        check(&f.gateway, &unknown).await,
        Err(AuthFailureKind::Unavailable)
    );
    assert_eq!(f.server.hits(JWKS), 2, "no second try within the interval");
    // Known keys keep working throughout.
    assert_eq!(
        check(&f.gateway, &key.sign(&claims("y"))).await,
        Ok("y".to_owned())
    );
}
