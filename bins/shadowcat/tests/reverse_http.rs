//! The gateway's HTTP behaviour on the wire: status codes, sessions, SSE streams,
//! resumption, legacy SSE, bad input and disconnects, against real upstreams (the embedded
//! demo server as a child per session, and the conformance fixture over HTTP).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shadowcat_test_support::{
    HttpServer, HttpStream, RawResponse, conformance_fixture, http_request,
};

const T: Duration = Duration::from_secs(20);
const ACCEPT_BOTH: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn shadowcat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shadowcat"))
}

/// `shadowcat reverse` on a free port with `args`; its `host:port`.
fn gateway(args: &[&str]) -> (HttpServer, String) {
    let mut command = shadowcat();
    command
        .args(["reverse", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("SHADOWCAT_LOG", "info");
    let server = HttpServer::start(&mut command).expect("the gateway starts");
    let addr = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    (server, addr)
}

fn initialize(version: &str) -> Vec<u8> {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "reverse-http-test", "version": "1"}}})
    .to_string()
    .into_bytes()
}

fn post(addr: &str, session: Option<&str>, version: Option<&str>, body: &[u8]) -> RawResponse {
    let mut headers = vec![ACCEPT_BOTH, JSON];
    if let Some(s) = session {
        headers.push(("Mcp-Session-Id", s));
    }
    if let Some(v) = version {
        headers.push(("MCP-Protocol-Version", v));
    }
    http_request(addr, "POST", "/mcp", &headers, body, T)
}

/// Initializes a session (and sends `initialized`); its id.
fn open_session(addr: &str, version: &str) -> String {
    let init = post(addr, None, None, &initialize(version));
    assert_eq!(init.status, 200, "initialize: {}", init.text());
    let id = init
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    assert!(
        id.len() >= 32,
        "session id too short to hold 128 random bits: {id}"
    );
    let answer = &init.messages()[0];
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["protocolVersion"], version);
    let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(
        post(addr, Some(&id), Some(version), initialized).status,
        202
    );
    id
}

fn echo(id: Value, message: &str) -> Vec<u8> {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
        "params":{"name":"echo","arguments":{"message":message}}})
    .to_string()
    .into_bytes()
}

#[test]
fn sessions_status_codes_and_health() {
    let (_gw, addr) = gateway(&[]);
    let sid = open_session(&addr, "2025-06-18");

    // A string id stays a string; the answer is a JSON body.
    let r = post(
        &addr,
        Some(&sid),
        Some("2025-06-18"),
        &echo(json!("s-1"), "hello"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let answer = r.json();
    assert_eq!(answer["id"], json!("s-1"));
    assert_eq!(answer["result"]["content"][0]["text"], "hello");

    // Missing session 400, unknown session 404, bad version 400, wrong Accept 406,
    // wrong content type 415, malformed JSON 400 with -32700, huge body 413.
    let r = post(
        &addr,
        None,
        None,
        br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(
        &addr,
        Some("0123456789abcdef0123456789abcdef"),
        None,
        br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], -32001);
    let r = post(
        &addr,
        Some(&sid),
        Some("1999-01-01"),
        br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("1999-01-01"), "{}", r.text());
    let r = http_request(
        &addr,
        "POST",
        "/mcp",
        &[
            ("Accept", "application/json"),
            JSON,
            ("Mcp-Session-Id", &sid),
        ],
        br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        T,
    );
    assert_eq!(r.status, 406);
    let r = http_request(
        &addr,
        "POST",
        "/mcp",
        &[
            ACCEPT_BOTH,
            ("Content-Type", "text/plain"),
            ("Mcp-Session-Id", &sid),
        ],
        b"ping",
        T,
    );
    assert_eq!(r.status, 415);
    let r = post(&addr, Some(&sid), None, b"{\"jsonrpc\":\"2.0\",\"id\":");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"ping","params":{{"x":"{}"}}}}"#,
        "a".repeat(5 << 20)
    );
    let r = post(&addr, Some(&sid), None, huge.as_bytes());
    assert_eq!(r.status, 413);

    // DNS rebinding: a foreign Host or Origin is refused with 403.
    let r = http_request(
        &addr,
        "POST",
        "/mcp",
        &[ACCEPT_BOTH, JSON, ("Host", "evil.example.com")],
        &initialize("2025-06-18"),
        T,
    );
    assert_eq!(r.status, 403);
    let r = http_request(
        &addr,
        "POST",
        "/mcp",
        &[ACCEPT_BOTH, JSON, ("Origin", "http://evil.example.com")],
        &initialize("2025-06-18"),
        T,
    );
    assert_eq!(r.status, 403);

    // The session still works after all that bad input.
    let r = post(&addr, Some(&sid), None, &echo(json!(4), "still here"));
    assert_eq!(r.json()["result"]["content"][0]["text"], "still here");

    // Health, readiness and metrics.
    assert_eq!(
        http_request(&addr, "GET", "/healthz", &[], b"", T).status,
        200
    );
    assert_eq!(
        http_request(&addr, "GET", "/readyz", &[], b"", T).status,
        200
    );
    let metrics = http_request(&addr, "GET", "/metrics", &[], b"", T).text();
    assert!(
        metrics.contains(r#"shadowcat_requests_total{method="tools/call",outcome="ok"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("shadowcat_sessions_active 1"), "{metrics}");

    // DELETE ends the session; it is then unknown (404), and so is a second DELETE.
    let r = http_request(&addr, "DELETE", "/mcp", &[("Mcp-Session-Id", &sid)], b"", T);
    assert_eq!(r.status, 200);
    let r = post(&addr, Some(&sid), None, &echo(json!(5), "gone"));
    assert_eq!(r.status, 404);
    let r = http_request(&addr, "DELETE", "/mcp", &[("Mcp-Session-Id", &sid)], b"", T);
    assert_eq!(r.status, 404);
}

#[test]
fn sessions_are_isolated_and_concurrent_delete_and_post_are_safe() {
    let (_gw, addr) = gateway(&[]);
    std::thread::scope(|scope| {
        for client in 0..6 {
            let addr = addr.clone();
            scope.spawn(move || {
                let sid = open_session(&addr, "2025-11-25");
                for n in 0..20 {
                    let text = format!("client {client} message {n}");
                    let r = post(&addr, Some(&sid), None, &echo(json!(n), &text));
                    let answer = &r.messages()[0];
                    assert_eq!(answer["id"], n);
                    assert_eq!(answer["result"]["content"][0]["text"], text);
                }
            });
        }
    });
    // DELETE racing POSTs: every POST gets an answer or a 404, never a hang or a 5xx.
    let sid = open_session(&addr, "2025-11-25");
    std::thread::scope(|scope| {
        for n in 0..8 {
            let (addr, sid) = (addr.clone(), sid.clone());
            scope.spawn(move || {
                let r = post(&addr, Some(&sid), None, &echo(json!(n), "race"));
                assert!(
                    matches!(r.status, 200 | 404),
                    "status {}: {}",
                    r.status,
                    r.text()
                );
            });
        }
        let (addr, sid) = (addr.clone(), sid.clone());
        scope.spawn(move || {
            let r = http_request(&addr, "DELETE", "/mcp", &[("Mcp-Session-Id", &sid)], b"", T);
            assert_eq!(r.status, 200);
        });
    });
}

fn progress_call(id: u64) -> Vec<u8> {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
        "name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"tok"}}})
    .to_string()
    .into_bytes()
}

#[test]
fn sse_answers_resume_with_last_event_id() {
    let fixture = conformance_fixture(&[]);
    let (_gw, addr) = gateway(&["--upstream", fixture.url()]);
    let sid = open_session(&addr, "2025-11-25");
    let headers = [
        ACCEPT_BOTH,
        JSON,
        ("Mcp-Session-Id", &sid),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let mut stream = HttpStream::open(&addr, "POST", "/mcp", &headers, &progress_call(7), T);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    // A priming event (id, retry, empty data) comes first, then the first progress.
    let priming = stream.next_event().expect("a priming event");
    assert!(
        priming.data.is_empty() && priming.id.is_some() && priming.retry.is_some(),
        "{priming:?}"
    );
    let first = stream.next_event().expect("a progress notification");
    let progress: Value = serde_json::from_str(&first.data).expect("JSON");
    assert_eq!(progress["method"], "notifications/progress");
    let last_seen = first.id.clone().expect("events carry ids");
    stream.disconnect();

    // Resuming replays what followed on that stream only, up to the result.
    let resumed = http_request(
        &addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("Last-Event-ID", &last_seen),
        ],
        b"",
        T,
    );
    assert_eq!(resumed.status, 200);
    let messages = resumed.messages();
    let result = messages.last().expect("the result");
    assert_eq!(result["id"], 7, "{messages:?}");
    assert!(result["result"]["content"].is_array(), "{result}");
    for m in &messages[..messages.len() - 1] {
        assert_eq!(m["method"], "notifications/progress", "{messages:?}");
    }
    assert!(
        messages.len() >= 2,
        "the later progress notifications are replayed: {messages:?}"
    );
    let unknown = http_request(
        &addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("Last-Event-ID", "999-999"),
        ],
        b"",
        T,
    );
    assert_eq!(unknown.status, 400);
}

#[test]
fn a_client_leaving_an_sse_answer_cancels_the_upstream_request() {
    let fixture = conformance_fixture(&[("FIXTURE_LOG", "1")]);
    let (gw, addr) = gateway(&["--upstream", fixture.url()]);
    // 2025-06-18: no priming, so the stream is not resumable and leaving it cancels.
    let sid = open_session(&addr, "2025-06-18");
    let headers = [
        ACCEPT_BOTH,
        JSON,
        ("Mcp-Session-Id", &sid),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    let mut stream = HttpStream::open(&addr, "POST", "/mcp", &headers, &progress_call(9), T);
    let first = stream.next_event().expect("a progress notification");
    assert!(first.data.contains("notifications/progress"), "{first:?}");
    stream.disconnect();
    let deadline = Instant::now() + T;
    let mut fixture = fixture;
    loop {
        let log = fixture.service().stderr();
        if log.contains("notifications/cancelled") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream never saw a cancellation:\n{log}\ngateway:\n{}",
            gw.stderr_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing is left behind: the session serves the next call.
    let r = post(&addr, Some(&sid), Some("2025-06-18"), &progress_call(10));
    assert_eq!(r.messages().last().expect("a result")["id"], 10);
}

#[test]
fn legacy_sse_clients_are_served() {
    let (_gw, addr) = gateway(&[]);
    let mut stream = HttpStream::open(
        &addr,
        "GET",
        "/sse",
        &[("Accept", "text/event-stream")],
        b"",
        T,
    );
    assert_eq!(stream.status, 200);
    let endpoint = stream.next_event().expect("the endpoint event");
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
    assert!(
        endpoint.data.starts_with("/message?sessionId="),
        "{endpoint:?}"
    );
    let r = http_request(
        &addr,
        "POST",
        &endpoint.data,
        &[JSON],
        &initialize("2024-11-05"),
        T,
    );
    assert_eq!(r.status, 202);
    let init = stream.next_event().expect("the initialize answer");
    assert_eq!(init.event.as_deref(), Some("message"));
    let answer: Value = serde_json::from_str(&init.data).expect("JSON");
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");
    let r = http_request(
        &addr,
        "POST",
        &endpoint.data,
        &[JSON],
        &echo(json!(2), "legacy"),
        T,
    );
    assert_eq!(r.status, 202);
    let call: Value =
        serde_json::from_str(&stream.next_event().expect("an answer").data).expect("JSON");
    assert_eq!(call["result"]["content"][0]["text"], "legacy");
    let r = http_request(
        &addr,
        "POST",
        "/message?sessionId=nope",
        &[JSON],
        &echo(json!(3), "x"),
        T,
    );
    assert_eq!(r.status, 404);
}

/// Waits (bounded) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn child_processes_follow_their_sessions_and_sessions_are_capped() {
    let (mut gw, addr) = gateway(&["--max-sessions", "2", "--idle-timeout", "2"]);
    let first = open_session(&addr, "2025-06-18");
    let second = open_session(&addr, "2025-06-18");
    eventually("each session has its own server process", || {
        gw.service().descendants().len() == 2
    });
    // A third session is refused while two are open and active.
    let r = post(&addr, None, None, &initialize("2025-06-18"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));

    // DELETE ends the session and its process.
    let r = http_request(
        &addr,
        "DELETE",
        "/mcp",
        &[("Mcp-Session-Id", &first)],
        b"",
        T,
    );
    assert_eq!(r.status, 200);
    eventually("the deleted session's process is gone", || {
        gw.service().descendants().len() == 1
    });
    // The other one idles out after 2 s: its process is reaped, its id is unknown.
    eventually("the idle session's process is gone", || {
        gw.service().descendants().is_empty()
    });
    let r = post(&addr, Some(&second), None, &echo(json!(1), "late"));
    assert_eq!(r.status, 404);
    let metrics = http_request(&addr, "GET", "/metrics", &[], b"", T).text();
    for line in [
        r#"shadowcat_sessions_closed_total{reason="deleted"} 1"#,
        r#"shadowcat_sessions_closed_total{reason="idle"} 1"#,
        "shadowcat_sessions_rejected_total 1",
        "shadowcat_sessions_active 0",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }
}

#[test]
fn http2_clients_are_served() {
    let (_gw, addr) = gateway(&[]);
    let out = Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "-D", "-", "-X", "POST"])
        .args(["-H", "Accept: application/json, text/event-stream"])
        .args(["-H", "Content-Type: application/json"])
        .arg("--data-binary")
        .arg(String::from_utf8(initialize("2025-11-25")).expect("UTF-8"))
        .arg(format!("http://{addr}/mcp"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("mcp-session-id: "), "{text}");
    assert!(text.contains(r#""protocolVersion":"2025-11-25""#), "{text}");
}

#[test]
fn metrics_count_each_rules_matches_and_actions() {
    let dir = shadowcat_test_support::temp_dir("reverse-rule-metrics");
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - id: no-add\n    match: {tool: add}\n    action: {type: block, code: -32042, message: no}\n  - id: watch-echo\n    match: {tool: echo}\n    action: {type: continue}\n",
    )
    .expect("write the rules");
    let (_gw, addr) = gateway(&["--rules", rules.to_str().expect("UTF-8 path")]);
    let sid = open_session(&addr, "2025-06-18");
    let add = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}});
    let r = post(&addr, Some(&sid), None, add.to_string().as_bytes());
    assert_eq!(r.json()["error"]["code"], -32042, "{}", r.text());
    let r = post(&addr, Some(&sid), None, &echo(json!(3), "seen"));
    assert_eq!(r.json()["result"]["content"][0]["text"], "seen");
    let metrics = http_request(&addr, "GET", "/metrics", &[], b"", T).text();
    for line in [
        r#"shadowcat_rule_matches_total{rule="no-add"} 1"#,
        r#"shadowcat_rule_actions_total{rule="no-add"} 1"#,
        // `tool` matches the call and, by the request it answers, its result.
        r#"shadowcat_rule_matches_total{rule="watch-echo"} 2"#,
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }
    assert!(
        metrics.contains(r#"shadowcat_rule_seconds_total{rule="no-add"} "#),
        "{metrics}"
    );
}
