//! The gateway as an OAuth 2.1 resource server, end to end: `shadowcat reverse` with keys
//! served over HTTPS by the test, a real Python MCP client sending bearer tokens, and a real
//! upstream that reports every `Authorization` header it received. Bad tokens are refused
//! with the right status and challenge, keys rotate mid-traffic, the policy denies and
//! filters, rate limits answer 429, and every decision is in the audit log, never a token.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use shadowcat_test_support::{
    DocumentReply, DocumentServer, HttpServer, RawResponse, SigningKey, TestCa, auth_client_mcp1,
    free_port, headers_upstream, hmac_token, http_request, jwks, run_with_timeout, temp_dir,
    unsigned_token,
};

const T: Duration = Duration::from_secs(30);
const ISSUER: &str = "https://idp.test";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs() as i64
}

/// The claims of a good token for `sub` with `scope`, for the gateway at `resource`.
fn claims(resource: &str, sub: &str, scope: &str) -> Value {
    json!({"iss": ISSUER, "aud": resource, "sub": sub, "scope": scope,
           "iat": now(), "exp": now() + 600})
}

/// An authorization server's keys and token endpoint, over HTTPS, in a runtime of its own.
struct Idp {
    /// Serves `docs`; dropped last.
    _runtime: tokio::runtime::Runtime,
    docs: DocumentServer,
    ca: TestCa,
}

impl Idp {
    fn start(keys: &[&SigningKey]) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the authorization server");
        let ca = TestCa::new();
        let docs = runtime.block_on(DocumentServer::https(&ca));
        docs.set_json("/jwks.json", jwks(keys));
        docs.set_reply(
            "/token",
            DocumentReply::json(json!({"access_token": "gateway-own-token",
                "token_type": "Bearer", "expires_in": 3600})),
        );
        Self {
            _runtime: runtime,
            docs,
            ca,
        }
    }
}

/// `shadowcat reverse --listen 127.0.0.1:PORT --config FILE --upstream URL`.
fn gateway(port: u16, config: &Path, upstream: &str) -> HttpServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shadowcat"));
    command
        .args(["reverse", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(config)
        .args(["--upstream", upstream])
        .env("SHADOWCAT_LOG", "info");
    HttpServer::start(&mut command).expect("the gateway starts")
}

fn initialize(token: Option<&str>, addr: &str, path: &str) -> RawResponse {
    let body = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "reverse-auth-test", "version": "1"}}})
    .to_string();
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
    ];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    http_request(addr, "POST", path, &headers, body.as_bytes(), T)
}

fn client(url: &str, token: &str, calls: &[&str]) -> Value {
    let out = run_with_timeout(&mut auth_client_mcp1(url, token, calls), T);
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn tokens_are_checked_the_upstream_never_sees_them_and_keys_rotate() {
    let k1 = SigningKey::rsa("k1");
    let idp = Idp::start(&[&k1]);
    let dir = temp_dir("reverse-auth");
    let ca_file = idp.ca.write_certificate(dir.path());
    let audit = dir.path().join("audit.jsonl");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let resource = format!("http://{addr}/mcp");
    let config = dir.path().join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "auth:\n  resource: {resource}\n  issuer: {ISSUER}\n  jwks_url: {jwks}\n  ca_file: {ca}\n  scopes_supported: [mcp:tools, mcp:admin]\n  jwks_refresh_min_interval_secs: 1\n\
             policy:\n  default: allow\n  rules:\n    - name: admins-only\n      effect: allow\n      scopes: [mcp:admin]\n      match: {{tool: delete_everything}}\n    - name: no-deletes\n      effect: deny\n      match: {{tool: delete_everything}}\n    - name: no-secrets\n      effect: deny\n      match: {{tool: echo, json: {{path: \"$.params.arguments.message\", regex: secret}}}}\n      message: no secrets through this gateway\n\
             audit:\n  path: {audit}\n\
             upstream:\n  type: client_credentials\n  token_url: {token}\n  client_id: gateway\n  client_secret: gateway-secret\n",
            jwks = idp.docs.url("/jwks.json"),
            ca = ca_file.display(),
            audit = audit.display(),
            token = idp.docs.url("/token"),
        ),
    )
    .unwrap();
    let upstream = headers_upstream();
    let gw = gateway(port, &config, upstream.url());

    // No token: 401 pointing at the metadata, which is served.
    let r = initialize(None, &addr, "/mcp");
    assert_eq!(r.status, 401, "{}", r.text());
    let challenge = r.header("www-authenticate").unwrap_or_default().to_owned();
    let metadata_url = format!("http://{addr}/.well-known/oauth-protected-resource/mcp");
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    let doc = http_request(
        &addr,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        b"",
        T,
    );
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["resource"], resource.as_str());
    assert_eq!(doc["authorization_servers"][0], ISSUER);

    // Every bad token is refused with 401 invalid_token (or 400 for one in the query).
    let good = claims(&resource, "alice", "mcp:tools");
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // A flipped character inside the signature (the last one may only carry padding bits).
    let mut tampered = k1.sign(&good).into_bytes();
    let at = tampered.len() - 20;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let bad = [
        ("expired", k1.sign(&with(json!({"exp": now() - 3600})))),
        (
            "not yet valid",
            k1.sign(&with(json!({"nbf": now() + 3600}))),
        ),
        (
            "wrong issuer",
            k1.sign(&with(json!({"iss": "https://evil.test"}))),
        ),
        (
            "wrong audience",
            k1.sign(&with(json!({"aud": "https://other.test/mcp"}))),
        ),
        ("unknown kid", SigningKey::rsa("k-unknown").sign(&good)),
        (
            "alg none",
            unsigned_token(&json!({"alg": "none", "kid": "k1"}), &good),
        ),
        (
            "HS256 with the public key",
            hmac_token(k1.public_key_bytes(), Some("k1"), &good),
        ),
        ("tampered signature", tampered),
        ("oversized", "a".repeat(20_000)),
    ];
    for (what, token) in &bad {
        let r = initialize(Some(token), &addr, "/mcp");
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        let h = r.header("www-authenticate").unwrap_or_default();
        assert!(h.contains("error=\"invalid_token\""), "{what}: {h}");
    }
    let token = k1.sign(&good);
    let r = initialize(None, &addr, &format!("/mcp?access_token={token}"));
    assert_eq!(r.status, 400, "{}", r.text());

    // A good token: the real client works, the policy denies and filters, and the upstream
    // only ever saw the gateway's own token.
    let report = client(
        &resource,
        &token,
        &["echo:hi", "echo:a secret", "seen_authorization"],
    );
    assert_eq!(report["ok"], true, "{report}");
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"echo"), "{report}");
    assert!(!tools.contains(&"delete_everything"), "filtered: {report}");
    assert_eq!(report["calls"][0]["text"], "Echo: hi", "{report}");
    assert_eq!(
        report["calls"][1]["error"]["message"], "no secrets through this gateway",
        "{report}"
    );
    let seen: Vec<Value> =
        serde_json::from_str(report["calls"][2]["text"].as_str().unwrap()).unwrap();
    assert!(!seen.is_empty());
    for header in &seen {
        assert_eq!(header, "Bearer gateway-own-token", "{seen:?}");
    }

    // An admin may call it, and sees it listed.
    let admin = k1.sign(&claims(&resource, "root", "mcp:tools mcp:admin"));
    let report = client(&resource, &admin, &["delete_everything"]);
    assert_eq!(report["calls"][0]["text"], "deleted", "{report}");
    assert!(
        report["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("delete_everything")),
        "{report}"
    );

    // A session belongs to whoever opened it; a call that needs more scopes asks for them.
    let opened = initialize(Some(&token), &addr, "/mcp");
    assert_eq!(opened.status, 200, "{}", opened.text());
    let session = opened.header("mcp-session-id").unwrap().to_owned();
    let in_session = |token: &str, body: &[u8]| {
        let bearer = format!("Bearer {token}");
        http_request(
            &addr,
            "POST",
            "/mcp",
            &[
                ("Accept", "application/json, text/event-stream"),
                ("Content-Type", "application/json"),
                ("Mcp-Session-Id", &session),
                ("MCP-Protocol-Version", "2025-11-25"),
                ("Authorization", &bearer),
            ],
            body,
            T,
        )
    };
    let ping = br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let r = in_session(&admin, ping);
    assert_eq!(r.status, 404, "another caller's session: {}", r.text());
    let delete = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_everything","arguments":{}}}"#;
    let r = in_session(&token, delete);
    assert_eq!(r.status, 403, "{}", r.text());
    let h = r.header("www-authenticate").unwrap_or_default();
    assert!(
        h.contains("error=\"insufficient_scope\"") && h.contains("mcp:admin"),
        "{h}"
    );

    // Key rotation: a token signed with a key published after start-up is accepted.
    let k2 = SigningKey::ec_p256("k2");
    idp.docs.set_json("/jwks.json", jwks(&[&k1, &k2]));
    let rotated = k2.sign(&claims(&resource, "bob", "mcp:tools"));
    // Unknown key ids refetch the keys at most once a second (the bad tokens above used
    // that up): within a few seconds the new key is known.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = initialize(Some(&rotated), &addr, "/mcp");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(
            std::time::Instant::now() < deadline,
            "the new key was never fetched"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let report = client(&resource, &rotated, &["echo:rotated"]);
    assert_eq!(report["calls"][0]["text"], "Echo: rotated", "{report}");
    // ... and the old key still works.
    let report = client(&resource, &token, &["echo:old"]);
    assert_eq!(report["calls"][0]["text"], "Echo: old", "{report}");

    drop(gw);
    // The audit log: every refusal and the denial, never a token.
    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refusals = lines
        .iter()
        .filter(|l| l["kind"] == "authentication" && l["outcome"] == "deny")
        .count();
    assert!(refusals > bad.len(), "{log}");
    assert!(
        lines.iter().any(|l| l["kind"] == "policy_denial"
            && l["rule"] == "no-secrets"
            && l["subject"] == "alice"),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| l["kind"] == "authentication"
            && l["outcome"] == "allow"
            && l["subject"] == "bob"),
        "{log}"
    );
    for secret in [&token, &admin, &rotated] {
        assert!(!log.contains(secret.as_str()), "a token in the audit log");
    }
    drop(idp);
}

#[test]
fn rate_limits_answer_429_and_scopes_ask_for_step_up() {
    let k1 = SigningKey::ec_p256("k1");
    let idp = Idp::start(&[&k1]);
    let dir = temp_dir("reverse-auth-limits");
    let ca_file = idp.ca.write_certificate(dir.path());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let resource = format!("http://{addr}/mcp");
    let config = dir.path().join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "auth:\n  resource: {resource}\n  issuer: {ISSUER}\n  jwks_url: {jwks}\n  ca_file: {ca}\n\
             policy:\n  default: deny\n  rules:\n    - name: tool-users\n      effect: allow\n      scopes: [mcp:tools]\n\
             rate_limits:\n  - {{scope: subject, rate: 2/min, burst: 2}}\n",
            jwks = idp.docs.url("/jwks.json"),
            ca = ca_file.display(),
        ),
    )
    .unwrap();
    let upstream = headers_upstream();
    let _gw = gateway(port, &config, upstream.url());

    // A token without the scope the only allow rule needs: 403 insufficient_scope.
    let weak = k1.sign(&claims(&resource, "carol", "profile"));
    let r = initialize(Some(&weak), &addr, "/mcp");
    assert_eq!(r.status, 403, "{}", r.text());
    let h = r.header("www-authenticate").unwrap_or_default();
    assert!(
        h.contains("error=\"insufficient_scope\"") && h.contains("scope=\"mcp:tools\""),
        "{h}"
    );

    // Two requests a minute for dave: the third is refused with 429 and Retry-After.
    let token = k1.sign(&claims(&resource, "dave", "mcp:tools"));
    assert_eq!(initialize(Some(&token), &addr, "/mcp").status, 200);
    assert_eq!(initialize(Some(&token), &addr, "/mcp").status, 200);
    let r = initialize(Some(&token), &addr, "/mcp");
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(body["error"]["code"].as_i64().is_some(), "{body}");
    // Another subject is not affected.
    let other = k1.sign(&claims(&resource, "erin", "mcp:tools"));
    assert_eq!(initialize(Some(&other), &addr, "/mcp").status, 200);

    // The metrics count the outcomes.
    let metrics = http_request(&addr, "GET", "/metrics", &[], b"", T).text();
    assert!(
        metrics.contains("shadowcat_auth_decisions_total{outcome=\"rate_limited\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shadowcat_auth_decisions_total{outcome=\"insufficient_scope\"} 1"),
        "{metrics}"
    );
    drop(idp);
}

#[test]
fn the_gateway_serves_https() {
    let k1 = SigningKey::ec_p256("k1");
    let idp = Idp::start(&[&k1]);
    let dir = temp_dir("reverse-auth-tls");
    let ca_file = idp.ca.write_certificate(dir.path());
    let (cert, key) = idp.ca.write_server_files(dir.path());
    let port = free_port();
    let resource = format!("https://127.0.0.1:{port}/mcp");
    let upstream = headers_upstream();
    let mut command = Command::new(env!("CARGO_BIN_EXE_shadowcat"));
    command
        .args(["reverse", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--auth-issuer", ISSUER, "--auth-audience", &resource])
        .args(["--auth-jwks-url", &idp.docs.url("/jwks.json")])
        .arg("--auth-ca-file")
        .arg(&ca_file)
        .args(["--upstream", upstream.url()]);
    let _gw = HttpServer::start_at(&mut command, resource.clone(), |line| {
        line.contains(&format!("listening on https://127.0.0.1:{port}/mcp"))
    })
    .expect("the gateway starts");

    let token = k1.sign(&claims(&resource, "alice", "mcp:tools"));
    let mut client = auth_client_mcp1(&resource, &token, &["echo:over tls"]);
    client.env("SSL_CERT_FILE", &ca_file);
    let out = run_with_timeout(&mut client, T);
    let report: Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["calls"][0]["text"], "Echo: over tls", "{report}");
    // Without a token the client is refused.
    let mut client = auth_client_mcp1(&resource, "", &["echo:x"]);
    client.env("SSL_CERT_FILE", &ca_file);
    let out = run_with_timeout(&mut client, T);
    assert!(!out.success(), "{out}");
    assert!(out.stdout.contains("401"), "{out}");
    drop(idp);
}
