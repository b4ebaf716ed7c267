//! Gateway admission: what the rate limiter, the policy and the audit log cost per request.
//!
//! - `rate_limit/check_request`: one request through a global, a client-IP and a subject limit
//!   that admit it (the per-request path of every gateway request); `…_refused`: the same
//!   with a subject limit that refuses (the two earlier admissions are given back).
//! - `rate_limit/check_message`: one `tools/call` through a session, a tool and a per-subject
//!   `tools/call` limit.
//! - `rate_limit/check_request_new_ip`: a client address never seen before each time (the
//!   table grows to its `max_keys` of 65,536 and then evicts).
//! - `policy/decide_*`: [`Policy::decide`] on the load benchmark's `tools/call` of `echo`
//!   with a five-rule policy whose first rule has an argument condition (JSONPath regex) and
//!   whose allowing rule is the last; `allow_all` is the policy of a gateway without one.
//! - `policy/filter_tools_list_20`: filtering a 20-tool `tools/list` result.
//! - `audit/record`: [`AuditLog::record`] of a policy denial into a file (the queue and the
//!   writer thread), `audit/build_event` the event alone; `audit/mutex_write_flush` is the
//!   other design measured for comparison: serialize and write the line under a mutex,
//!   flushing each one. The bench records faster than any gateway would, so the queue is
//!   often full and `record` then measures a dropped record.

use std::hint::black_box;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use shadowcat_auth::{
    AuditConfig, AuditEvent, AuditLog, Policy, PolicyConfig, Principal, RateLimitConfig,
    RateLimiter,
};
use shadowcat_benches::{echo_message, fixtures};
use shadowcat_interceptor::{Direction, InterceptContext};
use shadowcat_mcp::Message;

const POLICY: &str = r#"{
  "default": "deny",
  "rules": [
    {"name": "no-secrets", "effect": "deny",
     "match": {"tool": {"glob": "fs_*"}, "json": {"path": "$.params.arguments.path", "regex": "^/etc/"}}},
    {"name": "admins-delete", "effect": "allow", "scopes": ["mcp:admin"], "match": {"tool": "delete_repo"}},
    {"name": "no-delete", "effect": "deny", "match": {"tool": "delete_repo"}},
    {"name": "big-jobs", "effect": "deny", "claims": {"$.plan": {"equals": "free"}},
     "match": {"tool": "render", "json": {"path": "$.params.arguments.pages", "gt": 10}}},
    {"name": "acme-users", "effect": "allow", "scopes": ["mcp:use"], "claims": {"$.org": {"equals": "acme"}},
     "match": {"any": [{"method": ["initialize", "ping", "tools/list"]}, {"tool": {"glob": "*"}}]}}
  ]
}"#;

fn limiter(json: &str) -> RateLimiter {
    let config: RateLimitConfig = serde_json::from_str(json).expect("valid limits");
    RateLimiter::new(config).expect("valid limits")
}

fn rate_limits(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit");
    group.throughput(Throughput::Elements(1));
    let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let admit = limiter(
        r#"[{"scope": "global", "rate": "1000000000/s"},
            {"scope": "client_ip", "rate": "1000000000/s"},
            {"scope": "subject", "rate": "1000000000/s"}]"#,
    );
    group.bench_function("check_request", |b| {
        b.iter(|| admit.check_request(black_box(ip), black_box(Some("alice"))))
    });
    let refuse = limiter(
        r#"[{"scope": "global", "rate": "1000000000/s"},
            {"scope": "client_ip", "rate": "1000000000/s"},
            {"scope": "subject", "rate": "1/min", "burst": 1}]"#,
    );
    group.bench_function("check_request_refused", |b| {
        b.iter(|| refuse.check_request(black_box(ip), black_box(Some("alice"))))
    });
    let messages = limiter(
        r#"[{"scope": "session", "rate": "1000000000/s"},
            {"scope": "tool", "rate": "1000000000/s", "tools": ["ec*"]},
            {"scope": "subject", "rate": "1000000000/s", "methods": ["tools/call"]}]"#,
    );
    group.bench_function("check_message", |b| {
        b.iter(|| {
            messages.check_message(
                black_box(Some("alice")),
                black_box(Some("3f1c9a7e-5a7b-4c1e-9d55-0c7f3b1e2a44")),
                black_box("tools/call"),
                black_box(Some("echo")),
            )
        })
    });
    let fresh = limiter(r#"[{"scope": "client_ip", "rate": "10/s", "max_keys": 65536}]"#);
    let mut n: u32 = 0;
    group.bench_function("check_request_new_ip", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            fresh.check_request(IpAddr::V4(Ipv4Addr::from(n)), None)
        })
    });
    group.finish();
}

fn policy(c: &mut Criterion) {
    let config: PolicyConfig = serde_json::from_str(POLICY).expect("a valid policy");
    let policy = Policy::new(config).expect("a valid policy");
    let open = Policy::allow_all();
    let alice = Principal::new("alice")
        .with_scopes(["mcp:use"])
        .with_claims(serde_json::json!({"org": "acme", "plan": "free", "groups": ["eng"]}));
    let id = 123_456;
    let text = echo_message(id);
    let call = Message::parse(fixtures::echo_call(id, &text)).expect("the fixture is valid");
    let ctx = InterceptContext::new("s1", Direction::ClientToServer, "streamable-http", &call);
    assert!(policy.decide(&alice, &ctx).is_allow());
    let secret = Message::parse(
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"fs_read","arguments":{"path":"/etc/shadow"}}}"#,
    )
    .expect("valid");
    let denied = InterceptContext::new("s1", Direction::ClientToServer, "streamable-http", &secret);
    assert!(!policy.decide(&alice, &denied).is_allow());

    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decide_allow_all", |b| {
        b.iter(|| open.decide(black_box(&alice), black_box(&ctx)))
    });
    group.bench_function("decide_five_rules_allowed", |b| {
        b.iter(|| policy.decide(black_box(&alice), black_box(&ctx)))
    });
    group.bench_function("decide_five_rules_denied", |b| {
        b.iter(|| policy.decide(black_box(&alice), black_box(&denied)))
    });
    let tools: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            let name = match i % 4 {
                0 => format!("fs_tool_{i}"),
                1 => "delete_repo".to_owned(),
                2 => "render".to_owned(),
                _ => format!("search_{i}"),
            };
            serde_json::json!({"name": name, "inputSchema": {"type": "object"}})
        })
        .collect();
    let list = serde_json::json!({"tools": tools});
    group.bench_function("filter_tools_list_20", |b| {
        b.iter_batched(
            || list.clone(),
            |mut l| policy.filter_tools_list(&alice, &mut l),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn audit(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("shadowcat-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let path = dir.join("audit.jsonl");
    let config: AuditConfig = serde_json::from_value(serde_json::json!({
        "path": path.display().to_string(),
        "queue": 65536,
    }))
    .expect("a valid section");
    let log = AuditLog::open(&config).expect("the audit file opens");
    let alice = Principal::new("alice")
        .with_client_id("inspector")
        .with_issuer("https://idp.example.com");
    let event = || {
        AuditEvent::policy_denial(
            &alice,
            Some("3f1c9a7e-5a7b-4c1e-9d55-0c7f3b1e2a44"),
            Some("tools/call"),
            Some("delete_repo"),
            Some("no-delete"),
            "tool \"delete_repo\" is not allowed",
        )
    };
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_event", |b| b.iter(|| black_box(event())));
    group.bench_function("record", |b| b.iter(|| log.record(black_box(event()))));
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("mutex.jsonl"))
        .expect("the comparison file opens");
    let writer = Mutex::new(std::io::BufWriter::new(file));
    group.bench_function("mutex_write_flush", |b| {
        b.iter(|| {
            let e = black_box(event());
            let mut w = writer.lock().expect("not poisoned");
            serde_json::to_writer(&mut *w, &e).expect("serializes");
            w.write_all(b"\n").expect("writes");
            w.flush().expect("flushes");
        })
    });
    group.finish();
    eprintln!("audit records dropped (queue full): {}", log.dropped());
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    let mut criterion = config().configure_from_args();
    rate_limits(&mut criterion);
    policy(&mut criterion);
    audit(&mut criterion);
    criterion.final_summary();
}
