//! Interception end to end, as a real client sees it: the real binary between the Python
//! `mcp` 2.x client and the reference "everything" server, with rule files that block, mock,
//! rewrite and delay tool calls, reloaded while traffic flows, and messages paused for a
//! person who edits and resumes them through `shadowcat intercept`.
//!
//! Faults on the wire (drop, duplicate, reorder, malformed, cut streams, session expiry)
//! are in `intercept_faults.rs`.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[path = "support/intercept.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shadowcat_test_support::{
    ProcessOutput, Service, run_with_timeout, server_everything_stdio, temp_dir,
};
use support::{
    Gateway, StdioProxy, Target, WAIT, call_arg, echo, everything_logging_to, forward_command,
    python_calls, python_calls_command, shadowcat, tool_calls_received, write_rules,
};

/// Runs the Python client through `shadowcat forward stdio --rules RULES` to
/// server-everything (whose input is logged to `log`) with `calls`; its report.
fn through_stdio_proxy(
    rules: &std::path::Path,
    log: &std::path::Path,
    options: &[&str],
    calls: &[(&str, Value)],
) -> (ProcessOutput, Value) {
    let proxy = forward_command(
        &["--rules", rules.to_str().unwrap()],
        &everything_logging_to(log),
    );
    let mut args: Vec<String> = options.iter().map(|s| (*s).to_owned()).collect();
    for (tool, arguments) in calls {
        args.push("--call".into());
        args.push(call_arg(tool, arguments));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python_calls(&args, &Target::Stdio(proxy))
}

fn assert_connected(out: &ProcessOutput, report: &Value) {
    assert_eq!(report["connected"], true, "{out}");
    assert_eq!(report["server_name"], "mcp-servers/everything", "{out}");
}

#[test]
fn block_answers_the_client_with_the_rules_error_and_the_server_never_sees_the_call() {
    let dir = temp_dir("block");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = write_rules(
        dir.path(),
        "rules.yaml",
        r#"
rules:
  - id: no-echo
    match: {method: tools/call, tool: echo}
    action: {type: block, code: -32042, message: "echo is refused: {{request.params.arguments.message}}"}
"#,
    );
    let (out, report) = through_stdio_proxy(
        &rules,
        &log,
        &[],
        &[
            ("echo", json!({"message": "secret"})),
            ("get-sum", json!({"a": 1, "b": 2})),
        ],
    );
    assert_connected(&out, &report);
    let calls = &report["calls"];
    assert_eq!(
        calls[0]["error"],
        json!({"kind": "jsonrpc", "code": -32042, "message": "echo is refused: secret"}),
        "{out}"
    );
    assert_eq!(calls[0]["result"], Value::Null, "{out}");
    // Other tools still reach the server.
    assert_eq!(
        calls[1]["texts"],
        json!(["The sum of 1 and 2 is 3."]),
        "{out}"
    );
    assert!(out.success(), "{out}");
    assert_eq!(
        tool_calls_received(&log),
        [("get-sum".to_owned(), json!({"a": 1, "b": 2}))],
        "the server saw only the call that was not blocked"
    );
}

#[test]
fn block_keeps_the_request_id_as_written_and_has_defaults() {
    let dir = temp_dir("block-id");
    let rules = write_rules(
        dir.path(),
        "rules.yaml",
        "rules:\n  - id: no-echo\n    match: {method: tools/call, tool: echo}\n    action: {type: block}\n",
    );
    let mut proxy = StdioProxy::start(
        &["--rules", rules.to_str().unwrap()],
        &server_everything_stdio(),
    );
    proxy.initialize();
    let blocked = json!({"code": -32600, "message": "blocked by rule no-echo"});
    let answer = proxy.call(&echo(json!("7"), "x"));
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": "7", "error": blocked}),
        "a string id stays a string"
    );
    let answer = proxy.call(&echo(json!(7), "x"));
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 7, "error": blocked}));
    assert_eq!(proxy.finish(), Some(0), "{}", proxy.stderr());
    // Answered by the rule, the calls were no longer waiting for the server.
    assert!(
        !proxy.stderr().contains("pending request"),
        "{}",
        proxy.stderr()
    );
}

#[test]
fn mock_answers_with_a_template_of_the_request_without_the_server() {
    let dir = temp_dir("mock");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = write_rules(
        dir.path(),
        "rules.yaml",
        r#"
rules:
  - id: mock-sum
    match: {method: tools/call, tool: get-sum}
    action:
      type: mock
      result:
        content:
          - type: text
            text: "mocked: {{request.params.arguments.a}} + {{request.params.arguments.b}} = 42 (id {{request.id}})"
"#,
    );
    let (out, report) = through_stdio_proxy(
        &rules,
        &log,
        &[],
        &[
            ("get-sum", json!({"a": 19, "b": 23})),
            ("echo", json!({"message": "real"})),
        ],
    );
    assert_connected(&out, &report);
    let calls = &report["calls"];
    assert_eq!(calls[0]["error"], Value::Null, "{out}");
    assert_eq!(calls[0]["is_error"], false, "{out}");
    let text = calls[0]["texts"][0].as_str().unwrap_or_default();
    assert!(
        text.starts_with("mocked: 19 + 23 = 42 (id ") && text.ends_with(')'),
        "{out}"
    );
    assert_eq!(calls[1]["texts"], json!(["Echo: real"]), "{out}");
    assert!(out.success(), "{out}");
    assert_eq!(
        tool_calls_received(&log),
        [("echo".to_owned(), json!({"message": "real"}))],
        "the mocked call never reached the server"
    );
}

#[test]
fn modify_rewrites_an_argument_before_the_server_sees_it() {
    let dir = temp_dir("rewrite");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = write_rules(
        dir.path(),
        "rules.yaml",
        r#"
rules:
  - id: rewrite-echo
    match:
      method: tools/call
      tool: echo
      json: {path: "$.params.arguments.message", regex: "^please "}
    action:
      type: modify
      set:
        "$.params.arguments.message": "rewritten ({{request.params.arguments.message}})"
"#,
    );
    let (out, report) = through_stdio_proxy(
        &rules,
        &log,
        &[],
        &[
            ("echo", json!({"message": "please shout"})),
            ("echo", json!({"message": "leave me"})),
        ],
    );
    assert_connected(&out, &report);
    let calls = &report["calls"];
    assert_eq!(
        calls[0]["texts"],
        json!(["Echo: rewritten (please shout)"]),
        "{out}"
    );
    assert_eq!(calls[1]["texts"], json!(["Echo: leave me"]), "{out}");
    assert!(out.success(), "{out}");
    assert_eq!(
        tool_calls_received(&log),
        [
            (
                "echo".to_owned(),
                json!({"message": "rewritten (please shout)"})
            ),
            ("echo".to_owned(), json!({"message": "leave me"})),
        ]
    );
}

#[test]
fn delay_holds_the_matching_call_and_not_the_one_beside_it() {
    let dir = temp_dir("delay");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = write_rules(
        dir.path(),
        "rules.yaml",
        r#"
rules:
  - id: slow-echo
    match: {method: tools/call, tool: echo, json: {path: "$.params.arguments.message", equals: slow}}
    action: {type: delay, fixed_ms: 300}
"#,
    );
    let (out, report) = through_stdio_proxy(
        &rules,
        &log,
        &["--parallel"],
        &[
            ("echo", json!({"message": "slow"})),
            ("echo", json!({"message": "fast"})),
        ],
    );
    assert_connected(&out, &report);
    assert!(out.success(), "{out}");
    let slow = &report["calls"][0];
    let fast = &report["calls"][1];
    assert_eq!(slow["texts"], json!(["Echo: slow"]), "{out}");
    assert_eq!(fast["texts"], json!(["Echo: fast"]), "{out}");
    let seconds = |c: &Value, f: &str| c[f].as_f64().unwrap();
    assert!(seconds(slow, "seconds") >= 0.3, "the delay held it: {out}");
    assert!(
        seconds(fast, "ended") < seconds(slow, "ended"),
        "the undelayed call was not held behind the delayed one: {out}"
    );
    assert!(
        seconds(fast, "seconds") < 0.3,
        "the undelayed call went at once: {out}"
    );
}

#[test]
fn through_the_gateway_an_http_client_sees_block_mock_rewrite_and_tool_error() {
    let dir = temp_dir("gateway-rules");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = write_rules(
        dir.path(),
        "rules.json",
        &json!({"rules": [
            {"id": "block-env", "match": {"method": "tools/call", "tool": "get-env"},
             "action": {"type": "block", "code": -32043, "message": "no env for {{transport}}"}},
            {"id": "mock-sum", "match": {"method": "tools/call", "tool": "get-sum"},
             "action": {"type": "mock", "result": {"content": [
                 {"type": "text", "text": "sum of {{request.params.arguments.a}} is mocked"}]}}},
            {"id": "rewrite", "match": {"method": "tools/call", "tool": "echo",
                 "json": {"path": "$.params.arguments.message", "equals": "before"}},
             "action": {"type": "modify", "set": {"$.params.arguments.message": "after"}}},
            {"id": "fail", "match": {"method": "tools/call", "tool": "echo",
                 "json": {"path": "$.params.arguments.message", "equals": "fail"}},
             "action": {"type": "fault", "fault": "tool_error", "text": "injected failure"}}
        ]})
        .to_string(),
    );
    let gateway = Gateway::start(
        &["--rules", rules.to_str().unwrap()],
        &everything_logging_to(&log),
    );
    let calls = [
        call_arg("get-env", &json!({})),
        call_arg("get-sum", &json!({"a": 5, "b": 6})),
        call_arg("echo", &json!({"message": "before"})),
        call_arg("echo", &json!({"message": "fail"})),
    ];
    let mut args = Vec::new();
    for c in &calls {
        args.extend(["--call", c.as_str()]);
    }
    let (out, report) = python_calls(&args, &Target::Url(gateway.url().to_owned()));
    let context = format!("{out}\n--- gateway ---\n{}", gateway.server.stderr_tail(30));
    assert_connected(&out, &report);
    let calls = &report["calls"];
    assert_eq!(
        calls[0]["error"],
        json!({"kind": "jsonrpc", "code": -32043, "message": "no env for streamable-http"}),
        "{context}"
    );
    assert_eq!(
        calls[1]["texts"],
        json!(["sum of 5 is mocked"]),
        "{context}"
    );
    assert_eq!(calls[2]["texts"], json!(["Echo: after"]), "{context}");
    assert_eq!(calls[3]["is_error"], true, "{context}");
    assert_eq!(calls[3]["texts"], json!(["injected failure"]), "{context}");
    assert_eq!(calls[3]["error"], Value::Null, "{context}");
    assert!(out.success(), "{context}");
    assert_eq!(
        tool_calls_received(&log),
        [("echo".to_owned(), json!({"message": "after"}))],
        "blocked, mocked and failed calls never reached the server: {context}"
    );
}

/// What a stdio call of `echo` came back as while the rules were being changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Blocked,
    Mocked,
    Other,
}

fn classify(answer: &Value, message: &str) -> Seen {
    if answer["error"]["message"] == "echo blocked (v1)" {
        Seen::Blocked
    } else if answer["result"]["content"][0]["text"] == format!("mocked (v2): {message}").as_str() {
        Seen::Mocked
    } else {
        Seen::Other
    }
}

#[test]
fn hot_reload_swaps_rules_under_traffic_and_keeps_them_on_an_invalid_file() {
    let dir = temp_dir("reload");
    let v1 = r#"
rules:
  - id: echo-rule
    match: {method: tools/call, tool: echo}
    action: {type: block, code: -32044, message: "echo blocked (v1)"}
"#;
    let v2 = r#"
rules:
  - id: echo-rule
    match: {method: tools/call, tool: echo}
    action: {type: mock, result: {content: [{type: text, text: "mocked (v2): {{request.params.arguments.message}}"}]}}
"#;
    // Line 5 is wrong: a delay takes one way of choosing its length.
    let v3 = "rules:\n  - id: echo-rule\n    match: {method: tools/call, tool: echo}\n    action:\n      {type: delay, fixed_ms: 100, uniform_ms: [1, 2]}\n";
    let path = write_rules(dir.path(), "rules.yaml", v1);
    let mut proxy = StdioProxy::start(
        &["--rules", path.to_str().unwrap()],
        &server_everything_stdio(),
    );
    proxy.initialize();
    let mut n = 0;
    let mut call = |proxy: &mut StdioProxy| {
        n += 1;
        let message = format!("call {n}");
        let answer = proxy.call(&echo(json!(n), &message));
        (classify(&answer, &message), answer)
    };
    let (seen, answer) = call(&mut proxy);
    assert_eq!(seen, Seen::Blocked, "{answer}");

    write_rules(dir.path(), "rules.yaml", v2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (seen, answer) = call(&mut proxy);
        match seen {
            Seen::Mocked => break,
            Seen::Blocked => {}
            Seen::Other => panic!("an answer from neither rule set: {answer}"),
        }
        assert!(
            Instant::now() < deadline,
            "the new rules never took effect\n{}",
            proxy.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let reloaded = format!("rules reloaded from {}: 1 rules", path.display());
    assert!(proxy.wait_for_stderr(&reloaded, WAIT), "{}", proxy.stderr());

    write_rules(dir.path(), "rules.yaml", v3);
    let error_at = format!("{}:5:", path.display());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.stderr().contains(&error_at) {
        let (seen, answer) = call(&mut proxy);
        assert_eq!(seen, Seen::Mocked, "{answer}");
        assert!(
            Instant::now() < deadline,
            "no error logged for the invalid file\n{}",
            proxy.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = proxy.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains(&error_at))
        .unwrap()
        .to_owned();
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("rule \"echo-rule\": action"), "{line}");
    assert!(line.contains("keeping the previous rules"), "{line}");
    for _ in 0..5 {
        let (seen, answer) = call(&mut proxy);
        assert_eq!(seen, Seen::Mocked, "the previous rules stay: {answer}");
    }
    assert_eq!(proxy.finish(), Some(0), "{}", proxy.stderr());
}

/// Runs `shadowcat intercept ARGS --control ADDR`.
fn intercept(control: &str, args: &[&str]) -> ProcessOutput {
    let mut command = shadowcat();
    command
        .arg("intercept")
        .args(args)
        .args(["--control", control])
        .env_remove("SHADOWCAT_CONTROL");
    run_with_timeout(&mut command, WAIT)
}

fn json_of(out: &ProcessOutput) -> Value {
    assert!(out.success(), "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Waits (bounded) until the client has ended; its report.
fn report_of(client: &mut Service) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    while client.exit_status().is_none() {
        assert!(
            Instant::now() < deadline,
            "the client did not finish: {client}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    serde_json::from_str(client.stdout().trim())
        .unwrap_or_else(|e| panic!("no report ({e}): {}\n{client}", client.stdout()))
}

#[test]
fn pause_then_edit_one_call_and_resume_another_through_the_cli() {
    let dir = temp_dir("pause");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = write_rules(
        dir.path(),
        "rules.yaml",
        r#"
rules:
  - id: hold-echo
    match: {method: tools/call, tool: echo}
    action: {type: pause, timeout_ms: 30000, on_timeout: drop}
"#,
    );
    let gateway = Gateway::start(
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--control",
            "127.0.0.1:0",
        ],
        &everything_logging_to(&log),
    );
    let control = gateway.control.clone().unwrap();
    let one = call_arg("echo", &json!({"message": "one"}));
    let two = call_arg("echo", &json!({"message": "two"}));
    let mut client = Service::start(&mut python_calls_command(
        &[
            "--parallel",
            "--call-timeout",
            "30",
            "--call",
            &one,
            "--call",
            &two,
        ],
        &Target::Url(gateway.url().to_owned()),
    ));

    // Both calls are held; the client waits.
    let deadline = Instant::now() + WAIT;
    let held = loop {
        let list = json_of(&intercept(&control, &["list", "--json"]));
        if list.as_array().unwrap().len() == 2 {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "the calls were never held: {list}\n{client}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(client.exit_status().is_none(), "the client is waiting");
    for summary in held.as_array().unwrap() {
        assert_eq!(summary["method"], "tools/call", "{held}");
        assert_eq!(summary["by"], "hold-echo", "{held}");
        assert_eq!(summary["direction"], "client_to_server", "{held}");
        assert_eq!(summary["transport"], "streamable-http", "{held}");
    }
    assert!(
        tool_calls_received(&log).is_empty(),
        "held calls have not reached the server"
    );

    let mut resumed = None;
    for summary in held.as_array().unwrap() {
        let id = summary["id"].as_str().unwrap();
        let shown = json_of(&intercept(&control, &["show", id, "--json"]));
        let mut message = shown["message"].clone();
        assert_eq!(message["id"], summary["request_id"], "{shown}");
        if message["params"]["arguments"]["message"] == "one" {
            message["params"]["arguments"]["message"] = json!("edited by a person");
            let edited = intercept(&control, &["edit", id, "--message", &message.to_string()]);
            assert!(edited.success(), "{edited}");
            assert_eq!(
                edited.stdout,
                format!("{id} resumed with the edited message\n")
            );
        } else {
            let out = intercept(&control, &["resume", id]);
            assert!(out.success(), "{out}");
            assert_eq!(out.stdout, format!("{id} resumed\n"));
            resumed = Some(id.to_owned());
        }
    }

    let report = report_of(&mut client);
    let context = format!(
        "{report}\n{client}\n--- gateway ---\n{}",
        gateway.server.stderr_tail(30)
    );
    assert_eq!(
        report["calls"][0]["texts"],
        json!(["Echo: edited by a person"]),
        "{context}"
    );
    assert_eq!(
        report["calls"][1]["texts"],
        json!(["Echo: two"]),
        "{context}"
    );
    assert_eq!(
        tool_calls_received(&log)
            .into_iter()
            .map(|(_, a)| a["message"].as_str().unwrap().to_owned())
            .collect::<std::collections::BTreeSet<_>>(),
        ["edited by a person".to_owned(), "two".to_owned()].into(),
        "the server got the edited call and the resumed one"
    );
    // Decided messages are no longer held.
    let again = intercept(&control, &["resume", &resumed.unwrap()]);
    assert!(!again.success(), "{again}");
    assert!(again.stderr.contains("no held message"), "{again}");
    assert_eq!(
        json_of(&intercept(&control, &["list", "--json"])),
        json!([])
    );
}

#[test]
fn a_pause_nobody_decides_times_out_to_its_on_timeout() {
    let dir = temp_dir("pause-timeout");
    let log = dir.path().join("server-stdin.jsonl");
    let rules = write_rules(
        dir.path(),
        "rules.yaml",
        r#"
rules:
  - id: hold-then-go
    match: {method: tools/call, tool: echo, json: {path: "$.params.arguments.message", equals: go}}
    action: {type: pause, timeout_ms: 600, on_timeout: continue}
  - id: hold-then-drop
    match: {method: tools/call, tool: echo, json: {path: "$.params.arguments.message", equals: lost}}
    action: {type: pause, timeout_ms: 600, on_timeout: drop}
"#,
    );
    let (out, report) = through_stdio_proxy(
        &rules,
        &log,
        &["--parallel", "--call-timeout", "3"],
        &[
            ("echo", json!({"message": "go"})),
            ("echo", json!({"message": "lost"})),
        ],
    );
    assert_connected(&out, &report);
    let go = &report["calls"][0];
    let lost = &report["calls"][1];
    assert_eq!(go["texts"], json!(["Echo: go"]), "{out}");
    assert!(go["seconds"].as_f64().unwrap() >= 0.6, "{out}");
    assert_eq!(lost["result"], Value::Null, "{out}");
    assert_eq!(
        lost["error"]["kind"], "timeout",
        "a dropped call is never answered: {out}"
    );
    assert_eq!(
        tool_calls_received(&log),
        [("echo".to_owned(), json!({"message": "go"}))]
    );
}
