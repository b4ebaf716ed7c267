//! Gateway rate limits in real time: a burst, then refusal with a `retry_after` that is
//! honest; keys independent of each other; sweeping and `max_keys` keep memory bounded.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use shadowcat_auth::{RATE_LIMITED, RateLimitConfig, RateLimitScope, RateLimiter};
use shadowcat_mcp::RequestId;

fn limiter(yaml: &str) -> RateLimiter {
    let config: RateLimitConfig = serde_yaml::from_str(yaml).unwrap();
    RateLimiter::new(config).unwrap()
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

#[test]
fn a_burst_then_refusal_until_retry_after_has_passed() {
    let l = limiter("- {scope: client_ip, rate: 10/s, burst: 3}");
    for _ in 0..3 {
        l.check_request(ip(1), None).unwrap();
    }
    let refused = l.check_request(ip(1), None).unwrap_err();
    assert_eq!(refused.scope, RateLimitScope::ClientIp);
    assert_eq!(refused.limit, "client_ip");
    assert!(
        refused.retry_after > Duration::from_millis(50)
            && refused.retry_after <= Duration::from_millis(100),
        "{refused:?}"
    );
    assert_eq!(refused.retry_after_secs(), 1);
    // Waiting what it says is enough for one more, and only one.
    std::thread::sleep(refused.retry_after);
    l.check_request(ip(1), None).unwrap();
    assert!(l.check_request(ip(1), None).is_err());

    // The JSON-RPC body of the 429.
    let body = refused.error_response(Some(&RequestId::number(4)));
    let v: Value = serde_json::from_slice(body.as_bytes()).unwrap();
    assert_eq!(v["id"], 4);
    assert_eq!(v["error"]["code"], RATE_LIMITED.get());
    assert_eq!(v["error"]["data"]["retry_after"], 1);
}

#[test]
fn keys_are_counted_independently() {
    let l = limiter(
        "
- {scope: client_ip, rate: 1/min, burst: 1}
- {scope: subject, rate: 1/min, burst: 2}
",
    );
    l.check_request(ip(1), Some("alice")).unwrap();
    assert_eq!(
        l.check_request(ip(1), Some("bob")).unwrap_err().scope,
        RateLimitScope::ClientIp
    );
    l.check_request(ip(2), Some("alice")).unwrap();
    let refused = l.check_request(ip(3), Some("alice")).unwrap_err();
    assert_eq!(refused.scope, RateLimitScope::Subject);
    assert!(refused.retry_after > Duration::from_secs(59), "{refused:?}");
    // No subject: the subject limit does not apply.
    l.check_request(ip(4), None).unwrap();
    l.check_request(ip(5), Some("bob")).unwrap();
}

#[test]
fn message_limits_by_session_method_and_tool() {
    let l = limiter(
        "
- {scope: session, rate: 1/min, burst: 3}
- {name: per-tool, scope: tool, rate: 1/min, burst: 1, tools: ['render_*']}
- {name: lists, scope: global, rate: 1/min, burst: 1, methods: ['*/list']}
- {name: alice-calls, scope: subject, rate: 1/min, burst: 1, methods: [tools/call]}
",
    );
    let m = |s: &str, method: &str, tool: Option<&str>, who: Option<&str>| {
        l.check_message(who, Some(s), method, tool)
    };
    m("s1", "tools/call", Some("render_pdf"), None).unwrap();
    let refused = m("s2", "tools/call", Some("render_pdf"), None).unwrap_err();
    assert_eq!(
        (refused.scope, refused.limit.as_str()),
        (RateLimitScope::Tool, "per-tool")
    );
    m("s2", "tools/call", Some("render_png"), None).unwrap();
    m("s2", "tools/call", Some("search"), None).unwrap();
    m("s2", "tools/list", None, None).unwrap();
    assert_eq!(
        m("s3", "prompts/list", None, None).unwrap_err().limit,
        "lists"
    );
    // s2 has used its burst of 3 (the refused call was given back).
    assert_eq!(
        m("s2", "ping", None, None).unwrap_err().scope,
        RateLimitScope::Session
    );
    m("s4", "tools/call", Some("a"), Some("alice")).unwrap();
    assert_eq!(
        m("s5", "tools/call", Some("b"), Some("alice"))
            .unwrap_err()
            .limit,
        "alice-calls"
    );
    m("s5", "ping", None, Some("alice")).unwrap();
    m("s6", "tools/call", Some("b"), Some("bob")).unwrap();
    // The method scope keeps one counter per method name.
    let per_method = limiter("- {scope: method, rate: 1/min, burst: 1}");
    per_method.check_message(None, None, "ping", None).unwrap();
    per_method
        .check_message(None, None, "tools/list", None)
        .unwrap();
    assert!(per_method.check_message(None, None, "ping", None).is_err());
}

#[test]
fn sweeping_and_max_keys_keep_memory_bounded() {
    let l = limiter("- {scope: session, rate: 100/s, burst: 1}");
    for i in 0..20_000 {
        l.check_message(None, Some(&format!("session-{i}")), "ping", None)
            .unwrap();
    }
    assert_eq!(l.key_count(), 20_000);
    l.sweep();
    assert!(
        l.key_count() > 0,
        "a key is busy for 10 ms after its message"
    );
    std::thread::sleep(Duration::from_millis(20));
    l.sweep();
    assert_eq!(l.key_count(), 0);

    // Without sweeping, a keyed limit holds about max_keys keys (rounded up per shard).
    let capped = limiter("- {scope: client_ip, rate: 1/min, burst: 1, max_keys: 1000}");
    for i in 0..50_000u32 {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        capped.check_request(addr, None).unwrap();
    }
    assert!(capped.key_count() <= 1008, "{}", capped.key_count());
    // The newest keys are still limited.
    let newest = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 49_999));
    assert!(capped.check_request(newest, None).is_err());
}

#[test]
fn concurrent_requests_never_get_more_than_the_limit() {
    let l = Arc::new(limiter("- {scope: global, rate: 100/s, burst: 50}"));
    let admitted = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let l = Arc::clone(&l);
            let admitted = Arc::clone(&admitted);
            std::thread::spawn(move || {
                while start.elapsed() < Duration::from_millis(300) {
                    if l.check_request(ip(t), None).is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let got = admitted.load(Ordering::Relaxed);
    let most = 50.0 + 100.0 * secs + 1.0;
    assert!(
        got >= 50 && (got as f64) <= most,
        "{got} admitted in {secs:.3} s"
    );
}

#[test]
fn no_limits_admit_everything() {
    let l = RateLimiter::new(RateLimitConfig::default()).unwrap();
    assert!(l.is_empty());
    for _ in 0..1000 {
        l.check_request(ip(1), Some("a")).unwrap();
        l.check_message(Some("a"), Some("s"), "tools/call", Some("t"))
            .unwrap();
    }
}

#[test]
fn configuration_errors_name_the_field() {
    for (yaml, prefix) in [
        ("- {scope: global, rate: lots}", "rate_limits[0].rate: "),
        (
            "- {scope: global, rate: 1/s}\n- {scope: subject, rate: 1/s, burst: 0}",
            "rate_limits[1].burst: ",
        ),
        (
            "- {scope: client_ip, rate: 1/s, tools: [x]}",
            "rate_limits[0].tools: ",
        ),
    ] {
        let config: RateLimitConfig = serde_yaml::from_str(yaml).unwrap();
        let e = RateLimiter::new(config).unwrap_err().to_string();
        assert!(e.starts_with(prefix), "{yaml}\n{e}");
    }
    assert!(serde_yaml::from_str::<RateLimitConfig>("- {scope: planet, rate: 1/s}").is_err());
    assert!(serde_yaml::from_str::<RateLimitConfig>("- {scope: global, rat: 1/s}").is_err());
}
