//! Properties of the rule engine over random messages and random rules:
//! the compiled matcher agrees with a direct reading of the rule text; rules that only
//! continue change nothing; the same seed gives the same outcomes.

#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use shadowcat_interceptor::{Direction, InterceptContext, Outcome, RuleSet, called_tool};
use shadowcat_mcp::Message;

/// A message and what the pipeline knows about it.
#[derive(Debug, Clone)]
struct Case {
    value: Value,
    direction: Direction,
    session: &'static str,
    transport: &'static str,
    request_method: Option<&'static str>,
    request_tool: Option<&'static str>,
}

const METHODS: &[&str] = &[
    "tools/call",
    "tools/list",
    "ping",
    "notifications/progress",
    "resources/read",
];
const TOOLS: &[&str] = &["get_weather", "add", "delete_file"];
const SESSIONS: &[&str] = &["s1", "s2", "abc"];
const TRANSPORTS: &[&str] = &["stdio", "streamable-http", "legacy-sse"];

fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..6).prop_map(Value::from),
        prop::sample::select(vec!["Oslo", "Rome", "x"]).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        (0i64..3).prop_map(|n| Value::from(n as f64 + 0.5)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        0usize..4,
        prop::sample::select(METHODS),
        prop::sample::select(TOOLS),
        prop::option::of(small_value()),
        prop::option::of(small_value()),
        prop_oneof![(0i64..4).prop_map(Value::from), Just(Value::from("id-1"))],
        any::<bool>(),
        (
            prop::sample::select(SESSIONS),
            prop::sample::select(TRANSPORTS),
            prop::option::of(prop::sample::select(METHODS)),
            prop::option::of(prop::sample::select(TOOLS)),
        ),
    )
        .prop_map(|(kind, method, tool, count, city, id, c2s, (session, transport, rm, rt))| {
            let mut args = Map::new();
            if let Some(c) = count {
                args.insert("count".into(), c);
            }
            if let Some(c) = city {
                args.insert("city".into(), c);
            }
            let params = json!({"name": tool, "arguments": args});
            let value = match kind {
                0 => json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
                1 => json!({"jsonrpc": "2.0", "method": method, "params": params}),
                2 => json!({"jsonrpc": "2.0", "id": id, "result": {"content": [], "n": count_or(&params)}}),
                _ => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": "m"}}),
            };
            Case {
                value,
                direction: if c2s { Direction::ClientToServer } else { Direction::ServerToClient },
                session,
                transport,
                request_method: rm,
                request_tool: rt,
            }
        })
}

fn count_or(params: &Value) -> Value {
    params["arguments"]
        .get("count")
        .cloned()
        .unwrap_or(Value::Null)
}

fn text_match(pool: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(pool).prop_map(Value::from),
        prop::sample::select(pool)
            .prop_map(|s| json!({"glob": format!("{}*", &s[..s.len().min(3)])})),
        prop::sample::select(pool).prop_map(|s| json!({"glob": format!("*{}", &s[s.len() - 2..])})),
        prop::sample::select(pool)
            .prop_map(|s| json!({"regex": format!("^{}", regex_escape(&s[..2]))})),
        prop::collection::vec(prop::sample::select(pool), 1..3).prop_map(|v| json!(v)),
    ]
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_alphanumeric() {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

const PATHS: &[&str] = &[
    "$.params.arguments.count",
    "$.params.arguments.city",
    "$.id",
    "$.params.name",
    "$.result.n",
];

fn condition() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(PATHS),
        prop_oneof![
            any::<bool>().prop_map(|b| json!({"exists": b})),
            small_value().prop_map(|v| json!({"equals": v})),
            prop::sample::select(vec!["^O", "^R", "^g", "^a"]).prop_map(|r| json!({"regex": r})),
            (
                prop::sample::select(vec!["gt", "gte", "lt", "lte"]),
                0i64..5
            )
                .prop_map(|(op, n)| json!({op: n})),
        ],
    )
        .prop_map(|(path, mut test)| {
            test["path"] = Value::from(path);
            test
        })
}

fn leaf_matcher() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(vec![
            "client_to_server",
            "server_to_client",
            "both",
        ])),
        prop::option::of(prop::sample::select(vec![
            "request",
            "notification",
            "response",
            "error",
        ])),
        prop::option::of(text_match(METHODS)),
        prop::option::of(text_match(TOOLS)),
        prop::option::of(text_match(SESSIONS)),
        prop::option::of(text_match(TRANSPORTS)),
        prop::option::of(text_match(METHODS)),
        prop::option::of(prop_oneof![
            prop::sample::select(TOOLS).prop_map(|t| json!({"name": t})),
            small_value().prop_map(|v| json!({"arguments": {"count": v}})),
        ]),
        prop::option::of(prop::collection::vec(condition(), 1..3)),
    )
        .prop_map(
            |(dir, kind, method, tool, session, transport, rm, params, conds)| {
                let mut m = Map::new();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                };
                put("direction", dir.map(Value::from));
                put("kind", kind.map(Value::from));
                put("method", method);
                put("tool", tool);
                put("session", session);
                put("transport", transport);
                put("request_method", rm);
                put("params", params);
                put("json", conds.map(Value::from));
                Value::Object(m)
            },
        )
}

fn matcher() -> impl Strategy<Value = Value> {
    leaf_matcher().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"all": v})),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"any": v})),
            inner.clone().prop_map(|v| json!({"not": v})),
            (leaf_matcher(), inner).prop_map(|(mut a, b)| {
                a["any"] = json!([b]);
                a
            }),
        ]
    })
}

// ---- The reference: the rule text read directly. ----

fn glob_match(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| glob_match(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && glob_match(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
}

fn ref_text(m: &Value, text: Option<&str>) -> bool {
    let Some(text) = text else { return false };
    match m {
        Value::String(s) => s == text,
        Value::Array(all) => all.iter().any(|x| ref_text(x, Some(text))),
        Value::Object(o) => {
            if let Some(g) = o.get("glob").and_then(Value::as_str) {
                let p: Vec<char> = g.chars().collect();
                let t: Vec<char> = text.chars().collect();
                glob_match(&p, &t)
            } else {
                let r = o["regex"].as_str().unwrap();
                let prefix: String = r[1..].chars().filter(|c| *c != '\\').collect();
                text.starts_with(&prefix)
            }
        }
        _ => unreachable!(),
    }
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| num_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| num_eq(v, w)))
        }
        _ => a == b,
    }
}

fn partial(p: &Value, a: &Value) -> bool {
    match (p, a) {
        (Value::Object(p), Value::Object(a)) => p
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|w| partial(v, w))),
        (Value::Object(_), _) => false,
        _ => num_eq(p, a),
    }
}

fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.trim_start_matches("$.")
        .split('.')
        .try_fold(v, |v, k| v.get(k))
}

fn ref_condition(c: &Value, msg: &Value) -> bool {
    let found = lookup(msg, c["path"].as_str().unwrap());
    if c.get("exists") == Some(&json!(false)) {
        return found.is_none();
    }
    let Some(n) = found else { return false };
    let num = |op: &str, f: fn(f64, f64) -> bool| {
        c.get(op)
            .is_none_or(|b| n.as_f64().is_some_and(|x| f(x, b.as_f64().unwrap())))
    };
    c.get("equals").is_none_or(|e| num_eq(e, n))
        && c.get("regex").is_none_or(|r| {
            n.as_str()
                .is_some_and(|s| s.starts_with(&r.as_str().unwrap()[1..]))
        })
        && num("gt", |x, b| x > b)
        && num("gte", |x, b| x >= b)
        && num("lt", |x, b| x < b)
        && num("lte", |x, b| x <= b)
}

fn ref_matches(m: &Value, c: &Case) -> bool {
    let v = &c.value;
    let kind = if v.get("method").is_some() {
        if v.get("id").is_some() {
            "request"
        } else {
            "notification"
        }
    } else if v.get("result").is_some() {
        "response"
    } else {
        "error"
    };
    let is_response = matches!(kind, "response" | "error");
    let method = v.get("method").and_then(Value::as_str);
    let tool = match kind {
        "request" if method == Some("tools/call") => v["params"]["name"].as_str(),
        "response" | "error" => c.request_tool,
        _ => None,
    };
    let dir = match c.direction {
        Direction::ClientToServer => "client_to_server",
        _ => "server_to_client",
    };
    let o = m.as_object().unwrap();
    o.get("direction").is_none_or(|d| d == "both" || d == dir)
        && o.get("kind").is_none_or(|k| k == kind)
        && o.get("method").is_none_or(|t| ref_text(t, method))
        && o.get("request_method")
            .is_none_or(|t| is_response && ref_text(t, c.request_method))
        && o.get("session")
            .is_none_or(|t| ref_text(t, Some(c.session)))
        && o.get("transport")
            .is_none_or(|t| ref_text(t, Some(c.transport)))
        && o.get("tool").is_none_or(|t| ref_text(t, tool))
        && o.get("params")
            .is_none_or(|p| v.get("params").is_some_and(|a| partial(p, a)))
        && o.get("json")
            .is_none_or(|cs| cs.as_array().unwrap().iter().all(|x| ref_condition(x, v)))
        && o.get("all")
            .is_none_or(|a| a.as_array().unwrap().iter().all(|x| ref_matches(x, c)))
        && o.get("any")
            .is_none_or(|a| a.as_array().unwrap().iter().any(|x| ref_matches(x, c)))
        && o.get("not").is_none_or(|x| !ref_matches(x, c))
}

fn evaluate(rules: &RuleSet, c: &Case) -> (Vec<String>, Outcome) {
    let msg = Message::parse(serde_json::to_vec(&c.value).unwrap()).unwrap();
    let ctx = InterceptContext::new(c.session, c.direction, c.transport, &msg)
        .with_request(c.request_method, c.request_tool);
    let ids: Vec<String> = rules
        .matching_rules(&ctx)
        .into_iter()
        .map(str::to_owned)
        .collect();
    // The tool read by the caller, as the pipeline passes it, changes nothing.
    let tool = called_tool(&msg);
    let given = ctx.with_tool(tool.as_deref());
    assert_eq!(rules.matching_rules(&given), ids, "with the tool given");
    (ids, rules.evaluate(&ctx))
}

fn rule_file(matchers: &[Value], actions: &[Value], seed: u64) -> RuleSet {
    let rules: Vec<Value> = matchers
        .iter()
        .zip(actions.iter().cycle())
        .enumerate()
        .map(|(i, (m, a))| json!({"id": format!("r{i}"), "match": m, "action": a}))
        .collect();
    let text = serde_json::to_string(&json!({"version": 1, "seed": seed, "rules": rules})).unwrap();
    RuleSet::from_json_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn matcher_agrees_with_the_reference(
        matchers in prop::collection::vec(matcher(), 1..6),
        cases in prop::collection::vec(case(), 1..8),
    ) {
        let rules = rule_file(&matchers, &[json!({"type": "continue"})], 1);
        for c in &cases {
            let (ids, _) = evaluate(&rules, c);
            let want: Vec<String> = matchers
                .iter()
                .enumerate()
                .filter(|(_, m)| ref_matches(m, c))
                .map(|(i, _)| format!("r{i}"))
                .collect();
            prop_assert_eq!(ids, want, "message {}", c.value);
        }
    }

    #[test]
    fn rules_that_only_continue_forward_everything(
        matchers in prop::collection::vec(matcher(), 0..8),
        cases in prop::collection::vec(case(), 1..8),
    ) {
        let actions = [
            json!({"type": "continue"}),
            json!({"type": "fault", "fault": "drop", "probability": 0}),
            json!({"type": "continue", "probability": 0.5}),
            json!({"type": "modify", "set": {"$.jsonrpc": "2.0"}}),
            json!({"type": "fault", "fault": "slow_initialize", "delay_ms": 5}),
        ];
        let rules = rule_file(&matchers, &actions, 2);
        for c in &cases {
            if c.value.get("method") == Some(&json!("initialize")) {
                continue;
            }
            prop_assert_eq!(evaluate(&rules, c).1, Outcome::Forward);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_outcomes(
        matchers in prop::collection::vec(matcher(), 1..6),
        cases in prop::collection::vec(case(), 1..12),
        seed in any::<u64>(),
    ) {
        let actions = [
            json!({"type": "fault", "fault": "drop", "probability": 0.3}),
            json!({"type": "delay", "uniform_ms": [1, 1000], "probability": 0.7}),
            json!({"type": "delay", "lognormal": {"median_ms": 50, "sigma": 1}}),
            json!({"type": "block", "code": -32001, "probability": 0.5}),
            json!({"type": "fault", "fault": "duplicate", "probability": 0.5}),
        ];
        let a = rule_file(&matchers, &actions, seed);
        let b = rule_file(&matchers, &actions, seed);
        let run = |rules: &RuleSet| cases.iter().map(|c| evaluate(rules, c).1).collect::<Vec<_>>();
        let first = run(&a);
        prop_assert_eq!(&first, &run(&b));
        a.reset_random();
        prop_assert_eq!(&first, &run(&a));
    }
}
