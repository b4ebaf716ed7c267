//! The gateway policy on real MCP messages: rules over scopes, claims, methods, tools and
//! arguments; step-up; `tools/list` filtering; configuration errors that name the field.

#![allow(clippy::unwrap_used)] // tests may unwrap

use serde_json::{Value, json};
use shadowcat_auth::{Policy, PolicyConfig, PolicyDecision, Principal};
use shadowcat_interceptor::{Direction, InterceptContext};
use shadowcat_mcp::{Message, RequestId};

const POLICY: &str = r#"
default: deny
rules:
  - name: no-secrets
    effect: deny
    match:
      tool: {glob: "fs_*"}
      json: {path: "$.params.arguments.path", regex: "^/etc/"}
    message: "files under /etc are off limits"
  - name: admins-delete
    effect: allow
    scopes: [mcp:admin]
    match: {tool: delete_repo}
  - name: no-delete
    effect: deny
    match: {tool: delete_repo}
  - name: big-jobs-need-paid-plan
    effect: deny
    claims:
      "$.plan": {equals: free}
    match:
      tool: render
      json: {path: "$.params.arguments.pages", gt: 10}
  - name: acme-users
    effect: allow
    scopes: [mcp:use]
    claims:
      "$.org": {equals: acme}
    match:
      any:
        - method: [initialize, ping, tools/list, notifications/initialized]
        - tool: {glob: "*"}
"#;

fn policy() -> Policy {
    let config: PolicyConfig = serde_yaml::from_str(POLICY).unwrap();
    Policy::new(config).unwrap()
}

fn user(scopes: &[&str], claims: Value) -> Principal {
    Principal::new("alice")
        .with_token("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl")
        .with_scopes(scopes.iter().copied())
        .with_claims(claims)
}

fn acme() -> Principal {
    user(&["mcp:use"], json!({"org": "acme", "plan": "free"}))
}

fn parse(text: &str) -> Message {
    Message::parse(text.as_bytes().to_vec()).unwrap()
}

fn call(tool: &str, args: Value) -> Message {
    parse(
        &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": tool, "arguments": args}})
        .to_string(),
    )
}

fn decide(policy: &Policy, who: &Principal, msg: &Message) -> PolicyDecision {
    let ctx = InterceptContext::new("s1", Direction::ClientToServer, "streamable-http", msg);
    policy.decide(who, &ctx)
}

#[test]
fn the_first_rule_that_applies_decides() {
    let p = policy();
    let alice = acme();
    let init = parse(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
    );
    assert_eq!(decide(&p, &alice, &init), PolicyDecision::Allow);
    assert_eq!(
        decide(&p, &alice, &call("fs_read", json!({"path": "/tmp/x"}))),
        PolicyDecision::Allow
    );
    // An argument condition: the same tool with another path is denied by the first rule.
    assert_eq!(
        decide(&p, &alice, &call("fs_read", json!({"path": "/etc/shadow"}))),
        PolicyDecision::Deny {
            rule: Some("no-secrets".into()),
            message: "files under /etc are off limits".into()
        }
    );
    // A numeric argument condition together with a claim condition.
    assert_eq!(
        decide(&p, &alice, &call("render", json!({"pages": 11}))).rule(),
        Some("big-jobs-need-paid-plan")
    );
    assert!(decide(&p, &alice, &call("render", json!({"pages": 10}))).is_allow());
    let paid = user(&["mcp:use"], json!({"org": "acme", "plan": "pro"}));
    assert!(decide(&p, &paid, &call("render", json!({"pages": 500}))).is_allow());
}

#[test]
fn the_default_decides_when_no_rule_applies_and_names_the_method_or_tool() {
    let p = policy();
    let stranger = user(&["mcp:use"], json!({"org": "umbrella"}));
    let d = decide(&p, &stranger, &call("fs_read", json!({"path": "/tmp/x"})));
    assert_eq!(
        d,
        PolicyDecision::Deny {
            rule: None,
            message: "tool \"fs_read\" is not allowed".into()
        }
    );
    let list = parse(r#"{"jsonrpc":"2.0","id":"l","method":"resources/list"}"#);
    let d = decide(&p, &acme(), &list);
    assert_eq!(
        d,
        PolicyDecision::Deny {
            rule: None,
            message: "method \"resources/list\" is not allowed".into()
        }
    );
    // The JSON-RPC error for the client answers the request's id.
    let reply = d.error_response(Some(&RequestId::string("l"))).unwrap();
    let v: Value = serde_json::from_slice(reply.as_bytes()).unwrap();
    assert_eq!(v["id"], "l");
    assert_eq!(v["error"]["code"], shadowcat_auth::POLICY_DENIED.get());
    assert_eq!(
        v["error"]["message"],
        "method \"resources/list\" is not allowed"
    );
    assert!(PolicyDecision::Allow.error_response(None).is_none());
}

#[test]
fn an_allow_rule_missing_only_scopes_asks_for_step_up() {
    let p = policy();
    let alice = acme();
    // admins-delete would allow with mcp:admin; no-delete then denies: step up.
    let d = decide(&p, &alice, &call("delete_repo", json!({"repo": "x"})));
    assert_eq!(
        d,
        PolicyDecision::StepUp {
            scopes: vec!["mcp:admin".into()],
            rule: Some("admins-delete".into())
        }
    );
    let admin = user(&["mcp:use", "mcp:admin"], json!({"org": "acme"}));
    assert!(decide(&p, &admin, &call("delete_repo", json!({}))).is_allow());
    // Without mcp:use an acme user is asked for it rather than plainly refused.
    let bare = user(&[], json!({"org": "acme"}));
    let d = decide(&p, &bare, &call("fs_read", json!({"path": "/tmp"})));
    assert_eq!(
        d,
        PolicyDecision::StepUp {
            scopes: vec!["mcp:use".into()],
            rule: Some("acme-users".into())
        }
    );
}

#[test]
fn a_batch_is_denied_when_any_message_is() {
    let p = policy();
    let batch = parse(
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},
            {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fs_read","arguments":{"path":"/etc/passwd"}}}]"#,
    );
    assert_eq!(decide(&p, &acme(), &batch).rule(), Some("no-secrets"));
    let fine = parse(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
    assert!(decide(&p, &acme(), &fine).is_allow());
}

#[test]
fn tools_list_is_filtered_to_what_the_caller_may_call() {
    let p = policy();
    let tools = |names: &[&str]| {
        json!({"jsonrpc": "2.0", "id": 3, "result": {
            "tools": names.iter().map(|n| json!({"name": n, "inputSchema": {"type": "object"}}))
                .collect::<Vec<_>>(),
            "nextCursor": "c2"}})
    };
    let all = ["fs_read", "delete_repo", "render", "search"];
    // fs_read stays: it is denied only for some arguments. render stays for the free plan:
    // only big jobs are denied. delete_repo needs mcp:admin.
    let mut response = tools(&all);
    assert_eq!(p.filter_tools_list(&acme(), &mut response), 1);
    let names: Vec<&str> = response["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fs_read", "render", "search"]);
    assert_eq!(response["result"]["nextCursor"], "c2");

    let admin = user(&["mcp:use", "mcp:admin"], json!({"org": "acme"}));
    let mut result = tools(&all)["result"].clone();
    assert_eq!(p.filter_tools_list(&admin, &mut result), 0);

    let stranger = user(&["mcp:use"], json!({"org": "umbrella"}));
    let mut result = tools(&all)["result"].clone();
    assert_eq!(p.filter_tools_list(&stranger, &mut result), 4);
    assert_eq!(result["tools"], json!([]));

    // A tool without a name cannot be called, so it is not listed.
    let mut odd = json!({"tools": [{"title": "nameless"}, {"name": "search"}]});
    assert_eq!(p.filter_tools_list(&acme(), &mut odd), 1);
    // Anything that is not a tools/list result is left alone.
    let mut other = json!({"resources": []});
    assert_eq!(p.filter_tools_list(&acme(), &mut other), 0);
}

#[test]
fn may_call_tool_passes_over_deny_rules_that_depend_on_arguments_only() {
    let config: PolicyConfig = serde_yaml::from_str(
        r#"
default: allow
rules:
  - name: never-run
    effect: deny
    match: {tool: run}
  - name: small-only
    effect: deny
    match: {tool: resize, json: {path: "$.params.arguments.size", gt: 100}}
  - name: session-bound
    effect: deny
    match: {tool: pinned, session: {glob: "other-*"}}
"#,
    )
    .unwrap();
    let p = Policy::new(config).unwrap();
    let anyone = Principal::new("bob");
    assert!(!p.may_call_tool(&anyone, "run"));
    assert!(p.may_call_tool(&anyone, "resize"));
    assert!(p.may_call_tool(&anyone, "pinned"));
    assert!(p.may_call_tool(&anyone, "other"));
    assert!(
        decide(&p, &anyone, &call("resize", json!({"size": 101}))).rule() == Some("small-only")
    );
    assert!(Policy::allow_all().may_call_tool(&anyone, "run"));
    assert!(
        Policy::new(PolicyConfig::allow_all())
            .unwrap()
            .is_allow_all()
    );
}

#[test]
fn configuration_errors_name_the_field() {
    let cases = [
        (
            "rules: [{name: a, effect: allow, match: {tool: {glob: x, regex: y}}}]",
            "policy.rules[0].match.tool: ",
            "exactly one",
        ),
        (
            "rules: [{name: a, effect: allow, match: {tol: x}}]",
            "policy.rules[0].match.tol: ",
            "unknown field",
        ),
        (
            "rules: [{name: a, effect: allow, claims: {\"$[\": {}}}]",
            "policy.rules[0].claims[\"$[\"]: ",
            "JSONPath",
        ),
        (
            "rules: [{name: a, effect: allow, claims: {\"$.x\": {gt: high}}}]",
            "policy.rules[0].claims[\"$.x\"].gt: ",
            "",
        ),
        (
            "rules: [{name: a, effect: allow, scopes: [\"a b\"]}]",
            "policy.rules[0].scopes[0]: ",
            "not a scope",
        ),
        (
            "rules: [{name: a, effect: allow, scopes: [x]}, {name: a, effect: deny}]",
            "policy.rules[1].name: ",
            "duplicate",
        ),
        (
            "rules: [{name: '', effect: allow}]",
            "policy.rules[0].name: ",
            "empty",
        ),
        (
            "rules: [{name: all, effect: allow}, {name: b, effect: deny, scopes: [x]}]",
            "policy.rules[1]: ",
            "never apply",
        ),
        (
            "rules: [{name: a, effect: deny, match: {tool: x}, message: ' '}]",
            "policy.rules[0].message: ",
            "empty",
        ),
    ];
    for (yaml, prefix, needle) in cases {
        let config: PolicyConfig = serde_yaml::from_str(yaml).unwrap();
        let e = Policy::new(config).unwrap_err().to_string();
        assert!(e.starts_with(prefix), "{yaml}\n{e}");
        assert!(e.contains(needle), "{yaml}\n{e}");
    }
    // Unknown fields and effects are refused while reading.
    assert!(serde_yaml::from_str::<PolicyConfig>("rules: [{name: a, effect: maybe}]").is_err());
    assert!(serde_yaml::from_str::<PolicyConfig>("defaults: allow").is_err());
}
