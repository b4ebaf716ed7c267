//! The two draft examples (`delay-tool-calls`, `mock-weather`) load as written, in YAML
//! and in JSON, and do what they say.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::Duration;

use serde_json::json;
use shadowcat_interceptor::{Direction, InterceptContext, Outcome, RuleSet};
use shadowcat_mcp::Message;

/// Verbatim, including the trailing spaces on the blank line.
const DRAFT_YAML: &str = "rules:
  - id: \"delay-tool-calls\"
    description: \"Add 500ms delay to all tool calls\"
    matcher:
      method: \"tools/call\"
    action:
      type: \"fault\"
      fault:
        delay_ms: 500
        
  - id: \"mock-weather\"
    description: \"Return mock weather data\"
    matcher:
      method: \"tools/call\"
      params:
        name: \"get_weather\"
    action:
      type: \"mock\"
      response:
        content:
          - type: \"text\"
            text: \"Sunny, 72°F\"
";

const DRAFT_JSON: &str = r#"{
  "rules": [
    {
      "id": "delay-tool-calls",
      "description": "Add 500ms delay to all tool calls",
      "matcher": {"method": "tools/call"},
      "action": {"type": "fault", "fault": {"delay_ms": 500}}
    },
    {
      "id": "mock-weather",
      "description": "Return mock weather data",
      "matcher": {"method": "tools/call", "params": {"name": "get_weather"}},
      "action": {
        "type": "mock",
        "response": {"content": [{"type": "text", "text": "Sunny, 72°F"}]}
      }
    }
  ]
}"#;

fn outcome(rules: &RuleSet, direction: Direction, text: &str) -> Outcome {
    let msg = Message::parse(text.to_owned()).unwrap();
    rules.evaluate(&InterceptContext::new("s1", direction, "stdio", &msg))
}

fn check(rules: &RuleSet) {
    let ids: Vec<String> = rules.rules().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["delay-tool-calls", "mock-weather"]);
    let half_second = Duration::from_millis(500);

    // Another tool: delayed 500 ms, then forwarded unchanged.
    let other = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}"#;
    assert_eq!(
        outcome(rules, Direction::ClientToServer, other),
        Outcome::Delay(half_second, Box::new(Outcome::Forward))
    );

    // get_weather: delayed like every tool call, then answered with the mock as `result`,
    // keeping the request's id exactly.
    let weather = r#"{"jsonrpc":"2.0","id":"w-1","method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Paris"}}}"#;
    let Outcome::Delay(d, inner) = outcome(rules, Direction::ClientToServer, weather) else {
        panic!("expected a delay")
    };
    assert_eq!(d, half_second);
    let Outcome::Reply(answer) = *inner else {
        panic!("expected a reply, got {inner:?}")
    };
    let answer: serde_json::Value = serde_json::from_slice(answer.as_bytes()).unwrap();
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": "w-1",
               "result": {"content": [{"type": "text", "text": "Sunny, 72°F"}]}})
    );

    // Anything else passes untouched.
    for text in [
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
    ] {
        assert_eq!(
            outcome(rules, Direction::ClientToServer, text),
            Outcome::Forward
        );
        assert_eq!(
            outcome(rules, Direction::ServerToClient, text),
            Outcome::Forward
        );
    }
}

#[test]
fn draft_examples_load_as_yaml_and_mean_what_they_say() {
    check(&RuleSet::from_yaml_str(DRAFT_YAML).unwrap());
}

#[test]
fn the_same_examples_as_json() {
    check(&RuleSet::from_json_str(DRAFT_JSON).unwrap());
}
