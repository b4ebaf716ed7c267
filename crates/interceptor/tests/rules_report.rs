//! `rules test`: what rules would do on a recorded conversation.

#![allow(clippy::unwrap_used)] // tests may unwrap

use serde_json::json;
use shadowcat_interceptor::{Direction, RuleSet, test_rules};
use shadowcat_mcp::Message;

const RULES: &str = r#"
seed: 7
rules:
  - id: slow-tools
    match: {method: tools/call}
    action: {type: delay, fixed_ms: 500}
  - id: weather
    match: {tool: get_weather, kind: request}
    action: {type: mock, result: {content: [{type: text, text: "Sunny"}]}}
  - id: flaky-results
    match: {request_method: tools/call, tool: add}
    action: {type: fault, fault: tool_error}
  - id: counted
    match: {kind: notification}
    action: {type: continue}
"#;

fn frames() -> Vec<(Direction, &'static str, &'static str, Message)> {
    let m = |t: &str| Message::parse(t.to_owned()).unwrap();
    vec![
        (
            Direction::ClientToServer,
            "s1",
            "stdio",
            m(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
        ),
        (
            Direction::ServerToClient,
            "s1",
            "stdio",
            m(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
        ),
        (
            Direction::ClientToServer,
            "s1",
            "stdio",
            m(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        ),
        (
            Direction::ClientToServer,
            "s1",
            "stdio",
            m(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_weather"}}"#),
        ),
        (
            Direction::ClientToServer,
            "s1",
            "stdio",
            m(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add"}}"#),
        ),
        (
            Direction::ServerToClient,
            "s1",
            "stdio",
            m(r#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#),
        ),
    ]
}

#[test]
fn report_says_which_rules_fire_and_what_they_do() {
    let rules = RuleSet::from_yaml_str(RULES).unwrap();
    let report = test_rules(&rules, frames());
    assert_eq!(report.seed, 7);
    assert_eq!(report.frames.len(), 6);
    let f = &report.frames;
    assert!(f[0].matched.is_empty() && f[0].outcome == "forward");
    assert_eq!(f[2].matched, ["counted"]);
    assert_eq!(f[2].decided_by, None);
    assert_eq!(f[3].matched, ["slow-tools", "weather"]);
    assert_eq!(f[3].decided_by.as_deref(), Some("weather"));
    assert!(
        f[3].outcome
            .starts_with("delay 500ms, then reply: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\""),
        "{}",
        f[3].outcome
    );
    assert_eq!(f[4].outcome, "delay 500ms, then forward");
    // The response is paired with its request: method and tool are known.
    assert_eq!(f[5].method.as_deref(), Some("tools/call"));
    assert_eq!(f[5].decided_by.as_deref(), Some("flaky-results"));
    assert!(
        f[5].outcome.contains("\"isError\":true"),
        "{}",
        f[5].outcome
    );

    let counts: Vec<(String, u64, u64, u64)> = report
        .rules
        .iter()
        .map(|c| (c.id.clone(), c.matched, c.fired, c.decided))
        .collect();
    assert_eq!(
        counts,
        [
            ("slow-tools".into(), 2, 2, 0),
            ("weather".into(), 1, 1, 1),
            ("flaky-results".into(), 1, 1, 1),
            ("counted".into(), 1, 1, 0),
        ]
    );

    let as_json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        as_json["frames"][3]["fired"][0],
        json!({"rule": "slow-tools", "actions": ["delay"]})
    );
    assert_eq!(as_json["rules"][1]["decided"], json!(1));

    let text = report.to_string();
    assert!(
        text.starts_with("6 messages, 4 acted on (seed 7)\n"),
        "{text}"
    );
    assert!(text.contains("#3    → request tools/call id=2 (s1): slow-tools [delay]; weather [mock]: delay 500ms, then reply:"), "{text}");
    assert!(
        text.contains("  weather                  matched     1  fired     1  decided     1"),
        "{text}"
    );
}

#[test]
fn reports_repeat_with_the_seed() {
    let rules = RuleSet::from_yaml_str(
        "seed: 99\nrules:\n  - id: coin\n    action: {type: fault, fault: drop, probability: 0.5}\n",
    )
    .unwrap();
    let a = test_rules(&rules, frames());
    let b = test_rules(&rules, frames());
    assert_eq!(a, b);
    let dropped = a.frames.iter().filter(|f| f.outcome == "drop").count();
    assert!(dropped > 0 && dropped < 6, "{a}");
}
