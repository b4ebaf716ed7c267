//! Invalid rule files are refused with the file, line, column, rule and field at fault.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shadowcat_interceptor::{Error, RuleError, RuleFormat, RuleSet};

fn yaml_err(text: &str) -> RuleError {
    RuleSet::parse(text, RuleFormat::Yaml, Some("rules.yaml".as_ref())).unwrap_err()
}

fn json_err(text: &str) -> RuleError {
    RuleSet::parse(text, RuleFormat::Json, Some("rules.json".as_ref())).unwrap_err()
}

#[test]
fn bad_regex_names_its_line_rule_and_field() {
    let e = yaml_err(
        "version: 1
rules:
  - id: ok
    match: {method: ping}
    action: {type: continue}
  - id: broken
    match:
      method:
        regex: \"^(tools\"
    action: {type: fault, fault: drop}
",
    );
    assert_eq!(e.line, Some(9), "{e}");
    assert_eq!(e.rule.as_deref(), Some("broken"));
    assert_eq!(e.field.as_deref(), Some("match.method.regex"));
    assert!(e.message.contains("invalid regex \"^(tools\""), "{e}");
    assert!(
        e.to_string()
            .starts_with("rules.yaml:9:9: rule \"broken\": match.method.regex: invalid regex"),
        "{e}"
    );
}

#[test]
fn unknown_field_is_named_with_the_expected_ones() {
    let e = yaml_err(
        "rules:
  - id: typo
    match:
      methd: tools/call
    action: {type: fault, fault: drop}
",
    );
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(e.rule.as_deref(), Some("typo"));
    assert!(e.message.contains("unknown field `methd`"), "{e}");
    assert!(e.message.contains("`method`"), "{e}");
}

#[test]
fn duplicate_id_points_at_the_second_one() {
    let e = yaml_err(
        "rules:
  - id: same
    action: {type: continue}
  - description: again
    id: \"same\"
    action: {type: fault, fault: drop}
",
    );
    assert_eq!((e.line, e.column), (Some(5), Some(5)), "{e}");
    assert_eq!(e.rule.as_deref(), Some("same"));
    assert_eq!(e.field.as_deref(), Some("id"));
    assert!(e.message.contains("duplicate"), "{e}");

    let e = json_err(
        r#"{"rules": [
  {"id": "a", "action": {"type": "continue"}},
  {"id": "a", "action": {"type": "fault", "fault": "drop"}}
]}"#,
    );
    assert_eq!((e.line, e.column), (Some(3), Some(4)), "{e}");
    assert!(
        e.to_string()
            .starts_with("rules.json:3:4: rule \"a\": id: duplicate"),
        "{e}"
    );
}

#[test]
fn action_errors_name_the_action_and_what_is_wrong() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "action: {type: delay, fixed_ms: 10, uniform_ms: [1, 2]}",
            "action",
            "exactly one of `fixed_ms`",
        ),
        (
            "action: {type: block, result: {}}",
            "action",
            "field `result` does not apply",
        ),
        (
            "action: {type: delay, fixed_ms: 5, probability: 1.5}",
            "action.probability",
            "between 0 and 1",
        ),
        (
            "action: {type: fault, fault: explode}",
            "action.fault",
            "unknown variant `explode`",
        ),
        (
            "action: {type: mock, result: {t: \"{{request.nope\"}}",
            "action.result",
            "without a closing",
        ),
        (
            "action: {type: mock, result: {t: \"{{reply.id}}\"}}",
            "action.result",
            "unknown placeholder",
        ),
        (
            "action: {type: modify, set: {\"$.params[\": 1}}",
            "action.set",
            "invalid JSONPath",
        ),
        (
            "action: {type: fault, fault: slow_initialize}",
            "action",
            "needs `delay_ms`",
        ),
        (
            "action: {type: teleport}",
            "action.type",
            "unknown variant `teleport`",
        ),
        (
            "actions: [{type: block}, {type: delay, fixed_ms: 1}]",
            "",
            "must be the last",
        ),
        (
            "actions: [{type: modify, remove: [\"$.x\"]}, {type: fault, fault: duplicate}]",
            "",
            "cannot follow `modify`",
        ),
        (
            "match: {json: {path: \"$.a\", exists: false, equals: 1}}\n    action: {type: fault, fault: drop}",
            "match.json",
            "cannot be combined",
        ),
        (
            "match: {direction: sideways}\n    action: {type: fault, fault: drop}",
            "match.direction",
            "unknown variant `sideways`",
        ),
        (
            "match: {tool: {glob: a, regex: b}}\n    action: {type: fault, fault: drop}",
            "match.tool",
            "exactly one of `glob` and `regex`",
        ),
    ];
    for (body, field, needle) in cases {
        let text = format!("rules:\n  - id: r1\n    {body}\n");
        let e = yaml_err(&text);
        assert_eq!(e.rule.as_deref(), Some("r1"), "{body}: {e}");
        let want = if field.is_empty() { None } else { Some(*field) };
        assert_eq!(e.field.as_deref(), want, "{body}: {e}");
        assert!(e.message.contains(needle), "{body}: {e}");
        assert!(e.line.is_some_and(|l| (2..=4).contains(&l)), "{body}: {e}");
    }
}

#[test]
fn file_level_errors() {
    let e = yaml_err("version: 2\nrules: []\n");
    assert_eq!(e.field.as_deref(), Some("version"));
    assert!(e.message.contains("unsupported rule file version 2"), "{e}");
    assert_eq!(e.line, Some(1));

    let e = yaml_err("rules:\n  - id: x\n    action: {type: drop\n");
    assert!(e.line.is_some(), "{e}");
    assert!(e.to_string().starts_with("rules.yaml:"), "{e}");

    let e = json_err("{\"rules\": []} trailing");
    assert_eq!(e.line, Some(1), "{e}");

    let e = json_err(
        "{\"rules\": [{\"id\": \"j\", \"action\": {\"type\": \"block\", \"code\": \"x\"}}]}",
    );
    assert_eq!(e.rule.as_deref(), Some("j"));
    assert_eq!(e.field.as_deref(), Some("action.code"), "{e}");
    assert!(e.message.contains("invalid type"), "{e}");
}

#[test]
fn load_reads_the_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faults.json");
    std::fs::write(
        &path,
        r#"{"rules":[{"id":"d","action":{"type":"delay","fixed_ms":-1}}]}"#,
    )
    .unwrap();
    let Err(Error::Rules(e)) = RuleSet::load(&path) else {
        panic!()
    };
    assert_eq!(e.file.as_deref(), Some(path.as_path()));
    assert_eq!(e.field.as_deref(), Some("action.fixed_ms"), "{e}");
    let Err(Error::Io { .. }) = RuleSet::load(dir.path().join("missing.yaml")) else {
        panic!()
    };
    std::fs::write(
        &path,
        r#"{"seed": 3, "rules":[{"id":"d","action":{"type":"fault","fault":"drop"}}]}"#,
    )
    .unwrap();
    let rules = RuleSet::load(&path).unwrap();
    assert_eq!((rules.len(), rules.seed()), (1, 3));
}
