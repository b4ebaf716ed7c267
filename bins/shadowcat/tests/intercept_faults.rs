//! Fault injection by interception rules, seen on the wire and by a real client: the real
//! binary in front of the reference "everything" server, driven through its stdio pipes or
//! over raw HTTP where the exact bytes are the point, and by the Python `mcp` 2.x client
//! where what a client makes of the fault is the point.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[path = "support/intercept.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shadowcat_test_support::{HttpStream, RawResponse, server_everything_stdio, temp_dir};
use support::{
    ACCEPT_BOTH, Gateway, JSON, StdioProxy, Target, VERSION, call_arg, echo, everything_logging_to,
    forward_command, initialize, ping, python_calls, text_of, tool_calls_received, write_rules,
};

/// A rule matching the answer to `echo` of `message`.
fn on_echo_answer(id: &str, message: &str, action: &str) -> String {
    format!(
        "  - id: {id}\n    match: {{direction: server_to_client, tool: echo, json: {{path: \"$.result.content[0].text\", equals: \"Echo: {message}\"}}}}\n    action: {action}\n"
    )
}

/// A rule matching the call of `echo` with `message`.
fn on_echo_call(id: &str, message: &str, action: &str) -> String {
    format!(
        "  - id: {id}\n    match: {{method: tools/call, tool: echo, json: {{path: \"$.params.arguments.message\", equals: \"{message}\"}}}}\n    action: {action}\n"
    )
}

fn rules_file(dir: &std::path::Path, rules: &[String]) -> String {
    let path = write_rules(dir, "rules.yaml", &format!("rules:\n{}", rules.concat()));
    path.to_str().unwrap().to_owned()
}

fn is_json(line: &[u8]) -> bool {
    serde_json::from_slice::<Value>(line).is_ok()
}

/// Asserts that nothing comes from the proxy for `wait`.
fn assert_silent(proxy: &StdioProxy, wait: Duration) {
    if let Some(line) = proxy.try_line(wait) {
        panic!(
            "unexpected output: {}\n{}",
            String::from_utf8_lossy(&line),
            proxy.stderr()
        );
    }
}

#[test]
fn drop_on_stdio_loses_the_call_and_later_messages_still_flow() {
    let dir = temp_dir("drop");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = rules_file(
        dir.path(),
        &[on_echo_call(
            "lose-it",
            "drop me",
            "{type: fault, fault: drop}",
        )],
    );
    let mut proxy = StdioProxy::start(&["--rules", &rules], &everything_logging_to(&log));
    proxy.initialize();
    proxy.settle();
    proxy.send(&echo(json!(10), "drop me"));
    proxy.send(&ping(json!(11)));
    let answer = proxy.recv();
    assert_eq!(answer["id"], 11, "the ping is answered: {answer}");
    assert_silent(&proxy, Duration::from_secs(1));
    assert!(
        tool_calls_received(&log).is_empty(),
        "the dropped call never reached the server"
    );
    let answer = proxy.call(&echo(json!(12), "keep me"));
    assert_eq!(text_of(&answer), "Echo: keep me");
}

#[test]
fn duplicate_on_stdio_sends_the_answer_twice_with_the_same_id() {
    let dir = temp_dir("duplicate");
    let rules = rules_file(
        dir.path(),
        &[on_echo_answer(
            "twice",
            "twice",
            "{type: fault, fault: duplicate}",
        )],
    );
    let mut proxy = StdioProxy::start(&["--rules", &rules], &server_everything_stdio());
    proxy.initialize();
    proxy.settle();
    proxy.send(&echo(json!(20), "twice"));
    let first = proxy.next_line(support::WAIT).unwrap();
    let second = proxy.next_line(support::WAIT).unwrap();
    assert_eq!(
        first,
        second,
        "the same bytes twice: {}",
        String::from_utf8_lossy(&second)
    );
    let answer: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(answer["id"], 20);
    assert_eq!(text_of(&answer), "Echo: twice");
    assert_silent(&proxy, Duration::from_millis(500));
    assert_eq!(proxy.call(&ping(json!(21)))["result"], json!({}));
}

#[test]
fn reorder_on_stdio_swaps_two_answers_and_releases_a_lone_one_within_a_second() {
    let dir = temp_dir("reorder");
    let rules = rules_file(
        dir.path(),
        &[on_echo_answer(
            "swap",
            "first",
            "{type: fault, fault: reorder}",
        )],
    );
    let mut proxy = StdioProxy::start(&["--rules", &rules], &server_everything_stdio());
    proxy.initialize();
    proxy.settle();
    proxy.send(&echo(json!(30), "first"));
    proxy.send(&echo(json!(31), "second"));
    let a = proxy.recv();
    let b = proxy.recv();
    assert_eq!(
        (a["id"].clone(), b["id"].clone()),
        (json!(31), json!(30)),
        "{a}\n{b}"
    );
    assert_eq!(text_of(&b), "Echo: first");

    // With nothing after it, the held answer goes after at most a second.
    let started = Instant::now();
    proxy.send(&echo(json!(32), "first"));
    let late = proxy.recv();
    let waited = started.elapsed();
    assert_eq!(late["id"], 32);
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(3),
        "released after {waited:?}"
    );
}

#[test]
fn malformed_and_cut_on_stdio_send_lines_that_are_not_json() {
    let dir = temp_dir("malformed-stdio");
    let rules = rules_file(
        dir.path(),
        &[
            on_echo_answer("garble", "garble", "{type: fault, fault: malformed}"),
            on_echo_answer("cut", "cut", "{type: fault, fault: cut_stream}"),
        ],
    );
    let mut proxy = StdioProxy::start(&["--rules", &rules], &server_everything_stdio());
    proxy.initialize();
    proxy.settle();

    proxy.send(&echo(json!(40), "garble"));
    let line = proxy.next_line(support::WAIT).unwrap();
    assert!(
        !is_json(&line) && line.starts_with(b"{"),
        "a broken message in place of the answer: {}",
        String::from_utf8_lossy(&line)
    );
    assert_eq!(proxy.call(&ping(json!(41)))["id"], 41, "the stream goes on");

    proxy.send(&echo(json!(42), "cut"));
    let line = proxy.next_line(support::WAIT).unwrap();
    assert!(
        !is_json(&line) && line.starts_with(b"{"),
        "half a line in place of the answer: {}",
        String::from_utf8_lossy(&line)
    );
    assert!(!line.contains(&b'\n'));
    assert_eq!(proxy.call(&ping(json!(43)))["id"], 43, "the stream goes on");
}

#[test]
fn slow_initialize_on_stdio_delays_the_handshake_only() {
    let dir = temp_dir("slow-init");
    // Matching every message: it delays `initialize` and its answer, and nothing else.
    let rules = rules_file(
        dir.path(),
        &["  - id: slow-start\n    action: {type: fault, fault: slow_initialize, delay_ms: 400}\n".to_owned()],
    );
    let mut proxy = StdioProxy::start(&["--rules", &rules], &server_everything_stdio());
    let started = Instant::now();
    let answer = proxy.call(&initialize(json!(1)));
    let took = started.elapsed();
    assert_eq!(
        answer["result"]["serverInfo"]["name"],
        "mcp-servers/everything"
    );
    assert!(
        took >= Duration::from_millis(800),
        "initialize and its answer are delayed 400 ms each; it took {took:?}"
    );
    proxy.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let started = Instant::now();
    proxy.call(&ping(json!(2)));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(400), "a ping took {took:?}");
}

#[test]
fn expire_session_on_stdio_ends_the_connection() {
    let dir = temp_dir("expire-stdio");
    let rules = rules_file(
        dir.path(),
        &[on_echo_call(
            "expire",
            "expire",
            "{type: fault, fault: expire_session}",
        )],
    );
    let mut proxy = StdioProxy::start(&["--rules", &rules], &server_everything_stdio());
    proxy.initialize();
    proxy.settle();
    proxy.send(&echo(json!(50), "expire"));
    // The connection ends: stdout closes (nothing answers the call) and shadowcat exits.
    let deadline = Instant::now() + support::WAIT;
    while let Some(line) = proxy.next_line(support::WAIT) {
        let value: Value = serde_json::from_slice(&line).unwrap_or_default();
        assert!(
            value.get("id").is_none() || value["id"] != 50 || value.get("error").is_some(),
            "the expired call was answered by the server: {value}"
        );
        assert!(Instant::now() < deadline, "stdout never closed");
    }
    let code = proxy.wait_exit(support::WAIT);
    assert!(code.is_some(), "shadowcat exited by itself");
}

#[test]
fn faults_as_a_real_stdio_client_sees_them() {
    let dir = temp_dir("faults-client");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = rules_file(
        dir.path(),
        &[
            on_echo_call("lose-it", "drop", "{type: fault, fault: drop}"),
            on_echo_answer("garble", "garble", "{type: fault, fault: malformed}"),
            on_echo_answer("twice", "twice", "{type: fault, fault: duplicate}"),
            on_echo_answer("swap", "swap", "{type: fault, fault: reorder}"),
            on_echo_call(
                "fail",
                "fail",
                "{type: fault, fault: error, code: -32099, message: \"injected\"}",
            ),
        ],
    );
    let proxy = forward_command(&["--rules", &rules], &everything_logging_to(&log));
    let calls: Vec<String> = ["drop", "garble", "twice", "swap", "fail", "fine"]
        .iter()
        .map(|m| call_arg("echo", &json!({"message": m})))
        .collect();
    let mut args = vec!["--call-timeout", "2"];
    for c in &calls {
        args.extend(["--call", c.as_str()]);
    }
    let (out, report) = python_calls(&args, &Target::Stdio(proxy));
    assert_eq!(report["connected"], true, "{out}");
    let call = |i: usize| report["calls"][i].clone();
    // drop: never answered; the client gives up on it.
    assert_eq!(call(0)["error"]["kind"], "timeout", "{out}");
    // malformed: the client cannot read the answer, so the call is never answered either.
    assert_eq!(call(1)["error"]["kind"], "timeout", "{out}");
    assert!(
        !report["transport_errors"].as_array().unwrap().is_empty(),
        "the client saw a line it could not parse: {out}"
    );
    // duplicate and reorder: the client still gets its answers.
    assert_eq!(call(2)["texts"], json!(["Echo: twice"]), "{out}");
    assert_eq!(call(3)["texts"], json!(["Echo: swap"]), "{out}");
    // a JSON-RPC error fault: the client sees the error.
    assert_eq!(
        call(4)["error"],
        json!({"kind": "jsonrpc", "code": -32099, "message": "injected"}),
        "{out}"
    );
    assert_eq!(call(5)["texts"], json!(["Echo: fine"]), "{out}");
}

// ---- over HTTP ----

fn post_stream(gateway: &Gateway, session: &str, body: &Value) -> HttpStream {
    HttpStream::open(
        &gateway.addr,
        "POST",
        "/mcp",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Mcp-Session-Id", session),
            ("MCP-Protocol-Version", VERSION),
        ],
        body.to_string().as_bytes(),
        support::WAIT,
    )
}

#[test]
fn malformed_over_http_sends_a_body_that_is_not_json() {
    let dir = temp_dir("malformed-http");
    let rules = rules_file(
        dir.path(),
        &[on_echo_answer(
            "garble",
            "garble",
            "{type: fault, fault: malformed}",
        )],
    );
    let gateway = Gateway::start(&["--rules", &rules], &server_everything_stdio());
    let session = gateway.open_session();
    let r = gateway.post(Some(&session), &echo(json!(60), "garble"));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = match r.header("content-type") {
        Some(t) if t.starts_with("text/event-stream") => {
            let events = r.events();
            assert_eq!(events.len(), 1, "{}", r.text());
            events[0].data.clone().into_bytes()
        }
        _ => r.body.clone(),
    };
    assert!(
        !is_json(&body) && body.starts_with(b"{"),
        "not JSON: {}",
        r.text()
    );
    let r = gateway.post(Some(&session), &echo(json!(61), "fine"));
    assert_eq!(
        text_of(&r.messages()[0]),
        "Echo: fine",
        "the session goes on"
    );
}

#[test]
fn cut_stream_over_http_ends_the_sse_answer_mid_event() {
    let dir = temp_dir("cut-http");
    let rules = rules_file(
        dir.path(),
        &[on_echo_answer(
            "cut",
            "cut",
            "{type: fault, fault: cut_stream}",
        )],
    );
    let gateway = Gateway::start(&["--rules", &rules], &server_everything_stdio());
    let session = gateway.open_session();
    let mut stream = post_stream(&gateway, &session, &echo(json!(70), "cut"));
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    let mut body = Vec::new();
    while let Some(chunk) = stream.read_chunk() {
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    assert!(text.starts_with("data: {"), "the event had begun: {text:?}");
    assert!(
        !text.contains("\n\n"),
        "no event was completed before the stream ended: {text:?}"
    );
    let data = text.trim_start_matches("data: ").trim_end();
    assert!(!is_json(data.as_bytes()), "{text:?}");
    let r = gateway.post(Some(&session), &echo(json!(71), "fine"));
    assert_eq!(
        text_of(&r.messages()[0]),
        "Echo: fine",
        "the session goes on"
    );
}

/// Asserts the 404 of an expired session.
fn assert_expired(r: &RawResponse, what: &str) {
    assert_eq!(r.status, 404, "{what}: {}", r.text());
}

#[test]
fn expire_session_on_the_request_over_http_gives_404_now_and_after() {
    let dir = temp_dir("expire-http-request");
    let rules = rules_file(
        dir.path(),
        &[on_echo_call(
            "expire",
            "expire",
            "{type: fault, fault: expire_session}",
        )],
    );
    let gateway = Gateway::start(&["--rules", &rules], &server_everything_stdio());
    let session = gateway.open_session();
    let r = gateway.post(Some(&session), &echo(json!(80), "expire"));
    assert_expired(&r, "the request that expired the session");
    let r = gateway.post(Some(&session), &ping(json!(81)));
    assert_expired(&r, "the next request");
}

#[test]
fn expire_session_on_the_answer_over_http_gives_404_and_a_real_client_fails_from_then_on() {
    let dir = temp_dir("expire-http-answer");
    let rules = rules_file(
        dir.path(),
        &[on_echo_answer(
            "expire",
            "expire",
            "{type: fault, fault: expire_session}",
        )],
    );
    let gateway = Gateway::start(&["--rules", &rules], &server_everything_stdio());
    let session = gateway.open_session();
    let r = gateway.post(Some(&session), &echo(json!(90), "expire"));
    assert_expired(&r, "the request whose answer expired the session");
    assert_eq!(r.json()["error"]["code"], -32001, "{}", r.text());
    let r = gateway.post(Some(&session), &ping(json!(91)));
    assert_expired(&r, "the next request");

    // A real client on a session of its own, expired the same way.
    let calls = [
        call_arg("echo", &json!({"message": "expire"})),
        call_arg("echo", &json!({"message": "after"})),
    ];
    let (out, report) = python_calls(
        &[
            "--call-timeout",
            "5",
            "--call",
            &calls[0],
            "--call",
            &calls[1],
        ],
        &Target::Url(gateway.url().to_owned()),
    );
    assert_eq!(report["connected"], true, "{out}");
    // The Python client does not start a new session: the call that expired it and every
    // later call fail with the 404's JSON-RPC error.
    let not_found = json!({"kind": "jsonrpc", "code": -32001, "message": "Session not found"});
    for call in report["calls"].as_array().unwrap() {
        assert_eq!(call["result"], Value::Null, "{out}");
        assert_eq!(call["error"], not_found, "{out}");
    }
    assert_eq!(report["calls"].as_array().unwrap().len(), 2, "{out}");
}
