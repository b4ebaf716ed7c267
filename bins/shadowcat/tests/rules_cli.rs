//! `shadowcat rules validate` and `shadowcat rules test`: the real binary on rule files and
//! on a JSONL tape written with the tape crate.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use shadowcat_tape::{Direction, Edge, JsonlWriter, TapeFrame, TapeHeader};
use shadowcat_test_support::{ProcessOutput, run_with_timeout, temp_dir};

/// The two rules of the draft rule format (Appendix B of the design notes), verbatim.
const APPENDIX_B: &str = r#"rules:
  - id: "delay-tool-calls"
    description: "Add 500ms delay to all tool calls"
    matcher:
      method: "tools/call"
    action:
      type: "fault"
      fault:
        delay_ms: 500
        
  - id: "mock-weather"
    description: "Return mock weather data"
    matcher:
      method: "tools/call"
      params:
        name: "get_weather"
    action:
      type: "mock"
      response:
        content:
          - type: "text"
            text: "Sunny, 72°F"
"#;

fn rules(args: &[&str]) -> ProcessOutput {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shadowcat"));
    command.arg("rules").args(args).env("SHADOWCAT_LOG", "warn");
    run_with_timeout(&mut command, Duration::from_secs(20))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn validate_lists_the_rules_of_a_good_file() {
    let dir = temp_dir("rules-good");
    let file = write(
        dir.path(),
        "good.yaml",
        r#"
seed: 42
rules:
  - id: block-env
    description: no environment dumps
    match: {method: tools/call, tool: get-env}
    action: {type: block, code: -32042, message: "not here"}
  - id: slow-then-mock
    match:
      any:
        - {tool: {glob: "get-*"}}
        - {json: {path: "$.params.arguments.a", gt: 10}}
    actions:
      - {type: delay, uniform_ms: [10, 20]}
      - {type: mock, result: {content: [{type: text, text: "{{request.params.name}}"}]}}
  - id: off
    enabled: false
    match: {direction: server_to_client, kind: notification}
    action: {type: fault, fault: drop, probability: 0.5}
"#,
    );
    let out = rules(&["validate", path_str(&file)]);
    assert!(out.success(), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("{}: 3 rules, seed 42", file.display()),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[1].trim().starts_with("block-env") && lines[1].contains("no environment dumps"),
        "{out}"
    );
    assert!(lines[2].trim().starts_with("slow-then-mock"), "{out}");
    assert!(lines[3].trim().starts_with("off (disabled)"), "{out}");

    let out = rules(&["validate", "--json", path_str(&file)]);
    assert!(out.success(), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["seed"], 42);
    let ids: Vec<&str> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["block-env", "slow-then-mock", "off"]);
    assert_eq!(report["rules"][1]["actions"], json!(["delay", "mock"]));
    assert_eq!(report["rules"][2]["enabled"], false);
}

#[test]
fn the_appendix_b_examples_are_valid_as_written() {
    let dir = temp_dir("rules-appendix-b");
    let file = write(dir.path(), "appendix-b.yaml", APPENDIX_B);
    let out = rules(&["validate", "--json", path_str(&file)]);
    assert!(out.success(), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["rules"][0]["id"], "delay-tool-calls", "{out}");
    assert_eq!(
        report["rules"][0]["description"],
        "Add 500ms delay to all tool calls"
    );
    assert_eq!(report["rules"][1]["id"], "mock-weather", "{out}");
    assert_eq!(report["rules"][1]["actions"], json!(["mock"]), "{out}");
}

/// Each bad file, the line its error is on, and what the message must name.
const BAD: &[(&str, &str, usize, &[&str])] = &[
    (
        "unknown-field.yaml",
        "rules:\n  - id: fine\n    match: {method: ping}\n    action: {type: continue}\n  - id: typo\n    match: {method: tools/call}\n    action: {type: block, cod: -32001}\n",
        7,
        &["rule \"typo\"", "action", "`cod`"],
    ),
    (
        "bad-regex.yaml",
        "rules:\n  - id: bad-regex\n    match:\n      tool: {regex: \"(unclosed\"}\n    action: {type: block}\n",
        4,
        &["rule \"bad-regex\"", "match.tool.regex", "unclosed group"],
    ),
    (
        "bad-probability.yaml",
        "rules:\n  - id: coin\n    match: {method: ping}\n    action: {type: fault, fault: drop, probability: 1.5}\n",
        4,
        &["rule \"coin\"", "action.probability", "1.5"],
    ),
    (
        "two-delays.yaml",
        "rules:\n  - id: slow\n    match: {method: ping}\n    action:\n      {type: delay, fixed_ms: 100, uniform_ms: [1, 2]}\n",
        5,
        &["rule \"slow\"", "action", "exactly one of"],
    ),
    (
        "unknown-action.json",
        "{\"rules\": [\n  {\"id\": \"x\", \"match\": {\"method\": \"ping\"},\n   \"action\": {\"type\": \"explode\"}}\n]}\n",
        3,
        &["rule \"x\"", "action.type", "explode"],
    ),
    (
        "duplicate-id.yaml",
        "rules:\n  - id: a\n    action: {type: continue}\n  - id: a\n    action: {type: continue}\n",
        4,
        &["rule \"a\"", "id", "duplicate"],
    ),
    (
        "not-yaml.yaml",
        "rules:\n  - id: a\n    action: {type: continue}\n   - id: b\n",
        4,
        &["did not find expected"],
    ),
];

#[test]
fn validate_names_the_file_line_and_field_of_each_error() {
    let dir = temp_dir("rules-bad");
    for (name, text, line, needles) in BAD {
        let file = write(dir.path(), name, text);
        let out = rules(&["validate", path_str(&file)]);
        assert_eq!(out.status.code(), Some(1), "{name}: {out}");
        assert!(out.stdout.is_empty(), "{name}: {out}");
        let err = out.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "{name}: one line: {out}");
        let at = format!("shadowcat: {}:{line}:", file.display());
        assert!(err.starts_with(&at), "{name}: wanted {at:?}: {out}");
        for needle in *needles {
            assert!(err.contains(needle), "{name}: wanted {needle:?}: {out}");
        }
    }
    let out = rules(&["validate", path_str(&dir.path().join("missing.yaml"))]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("missing.yaml"), "{out}");
}

#[test]
fn validate_json_reports_an_invalid_file_as_json() {
    let dir = temp_dir("rules-bad-json");
    for (name, text, line, needles) in BAD {
        let file = write(dir.path(), name, text);
        let out = rules(&["validate", "--json", path_str(&file)]);
        assert_eq!(out.status.code(), Some(1), "{name}: {out}");
        let report: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
            panic!("{name}: --json prints JSON for an invalid file too ({e}): {out}")
        });
        assert_eq!(report["valid"], false, "{name}: {out}");
        let text = report.to_string();
        assert!(
            text.contains(path_str(&file)),
            "{name}: names the file: {out}"
        );
        assert!(
            text.contains(&format!(":{line}:")) || text.contains(&format!("\"line\":{line}")),
            "{name}: names line {line}: {out}"
        );
        for needle in *needles {
            // `rule "x"` may be a member of its own (`"rule":"x"`).
            let needle = needle
                .strip_prefix("rule ")
                .unwrap_or(needle)
                .trim_matches('"');
            assert!(text.contains(needle), "{name}: wanted {needle:?}: {out}");
        }
    }
}

/// A tape of one stdio session, each message on both edges as a proxy records it.
fn write_tape(path: &Path) {
    let messages: &[(Direction, Value)] = &[
        (
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
        ),
        (
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}),
        ),
        (
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        ),
        (
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}),
        ),
        (
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"Echo: hi"}]}}),
        ),
        (
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo"}}}),
        ),
        (
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"Rain"}]}}),
        ),
        (
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":4,"method":"ping"}),
        ),
        (
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":4,"result":{}}),
        ),
    ];
    let mut writer = JsonlWriter::create(path).unwrap();
    writer
        .write_header(&TapeHeader::from_unix_ns(
            "rules-test-tape",
            1_700_000_000_000_000_000,
        ))
        .unwrap();
    let mut offset = 0;
    for (direction, message) in messages {
        let (first, second) = match direction {
            Direction::ClientToServer => (Edge::Client, Edge::Server),
            _ => (Edge::Server, Edge::Client),
        };
        for edge in [first, second] {
            offset += 1_000_000;
            let bytes = message.to_string().into_bytes();
            writer
                .write_frame(&TapeFrame::new(offset, *direction, edge, bytes))
                .unwrap();
        }
    }
    writer.flush().unwrap();
}

const TEST_RULES: &str = r#"
seed: 7
rules:
  - id: block-echo
    match: {method: tools/call, tool: echo}
    action: {type: block, code: -32042}
  - id: garble-weather-answer
    match: {direction: server_to_client, tool: get_weather}
    action: {type: fault, fault: malformed}
  - id: never
    match: {method: resources/list}
    action: {type: block}
"#;

#[test]
fn rules_test_reports_which_rules_fire_on_a_tape() {
    let dir = temp_dir("rules-test");
    let tape = dir.path().join("session.jsonl");
    write_tape(&tape);
    let file = write(dir.path(), "rules.yaml", TEST_RULES);

    let out = rules(&["test", path_str(&file), "--tape", path_str(&tape), "--json"]);
    assert!(out.success(), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["seed"], 7);
    let frames = report["frames"].as_array().unwrap();
    assert_eq!(
        frames.len(),
        9,
        "each message once, from its source edge: {out}"
    );
    let fired: Vec<(u64, Vec<&str>)> = frames
        .iter()
        .filter(|f| !f["fired"].as_array().unwrap().is_empty())
        .map(|f| {
            (
                f["index"].as_u64().unwrap(),
                f["fired"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["rule"].as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        fired,
        [(3, vec!["block-echo"]), (6, vec!["garble-weather-answer"])],
        "{out}"
    );
    let echo = &frames[3];
    assert_eq!(echo["decided_by"], "block-echo");
    assert_eq!(echo["fired"][0]["actions"], json!(["block"]));
    let outcome = echo["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("reply: ") && outcome.contains("-32042"),
        "{out}"
    );
    let weather = &frames[6];
    assert_eq!(weather["direction"], "server_to_client");
    assert_eq!(weather["kind"], "response");
    assert_eq!(weather["method"], "tools/call", "paired with its request");
    assert!(
        weather["outcome"]
            .as_str()
            .unwrap()
            .starts_with("send malformed JSON"),
        "{out}"
    );
    assert_eq!(frames[7]["outcome"], "forward");
    let counts: Vec<(&str, u64, u64, u64)> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["matched"].as_u64().unwrap(),
                r["fired"].as_u64().unwrap(),
                r["decided"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("block-echo", 1, 1, 1),
            ("garble-weather-answer", 1, 1, 1),
            ("never", 0, 0, 0)
        ],
        "{out}"
    );

    let out = rules(&["test", path_str(&file), "--tape", path_str(&tape)]);
    assert!(out.success(), "{out}");
    let text = &out.stdout;
    assert!(
        text.starts_with("9 messages, 2 acted on (seed 7)\n"),
        "{out}"
    );
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}: {out}"))
    };
    let echo = line("block-echo [block]");
    assert!(
        echo.starts_with("#3") && echo.contains("tools/call id=2"),
        "{out}"
    );
    let weather = line("garble-weather-answer [malformed]");
    assert!(
        weather.starts_with("#6") && weather.contains("id=3"),
        "{out}"
    );
    let count = line("  never ");
    assert!(
        count.split_whitespace().collect::<Vec<_>>()
            == ["never", "matched", "0", "fired", "0", "decided", "0"],
        "{out}"
    );
}

#[test]
fn rules_test_runs_the_appendix_b_rules_on_a_tape() {
    let dir = temp_dir("rules-test-b");
    let tape = dir.path().join("session.jsonl");
    write_tape(&tape);
    let file = write(dir.path(), "appendix-b.yaml", APPENDIX_B);
    let out = rules(&["test", path_str(&file), "--tape", path_str(&tape), "--json"]);
    assert!(out.success(), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let frames = report["frames"].as_array().unwrap();
    // The echo call: delayed only.
    let echo = &frames[3];
    assert_eq!(echo["matched"], json!(["delay-tool-calls"]), "{out}");
    assert!(
        echo["outcome"]
            .as_str()
            .unwrap()
            .starts_with("delay 500ms, then forward"),
        "{out}"
    );
    // The weather call: delayed, then answered by the mock.
    let weather = &frames[5];
    assert_eq!(
        weather["matched"],
        json!(["delay-tool-calls", "mock-weather"]),
        "{out}"
    );
    let outcome = weather["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("delay 500ms, then reply: ") && outcome.contains("Sunny, 72°F"),
        "{out}"
    );
    assert_eq!(weather["decided_by"], "mock-weather", "{out}");
}

#[test]
fn rules_test_fails_on_a_missing_tape_or_bad_rules() {
    let dir = temp_dir("rules-test-bad");
    let file = write(dir.path(), "rules.yaml", TEST_RULES);
    let missing = dir.path().join("none.jsonl");
    let out = rules(&["test", path_str(&file), "--tape", path_str(&missing)]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("none.jsonl"), "{out}");

    let tape = dir.path().join("session.jsonl");
    write_tape(&tape);
    let bad = write(dir.path(), "bad.yaml", BAD[0].1);
    let out = rules(&["test", path_str(&bad), "--tape", path_str(&tape)]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .starts_with(&format!("shadowcat: {}:7:", bad.display())),
        "{out}"
    );
}
