use proptest::prelude::*;
use serde_json::{Value, json};
use shadowcat_mcp::Message;

use super::*;
use crate::rules::matcher::partial_match;

/// The value a path of member names and indexes selects, walking a `Value`.
fn walk<'v>(v: &'v Value, steps: &[PathStep<'_>]) -> Option<&'v Value> {
    steps.iter().try_fold(v, |v, step| match step {
        PathStep::Member(name) => v.as_object()?.get(*name),
        PathStep::Index(i) => v.as_array()?.get(*i),
    })
}

fn add_all(paths: &mut Paths, steps: &[PathStep<'_>]) -> u32 {
    steps.iter().fold(0, |node, step| paths.add(node, *step))
}

fn slot_value(slot: Slot<'_>) -> Value {
    match slot {
        Slot::Raw(text) => serde_json::from_slice(text).expect("a value's text"),
        Slot::Str(s) => Value::String(s.to_owned()),
    }
}

/// Checks that, whenever the message reads as plain, every path finds what walking its
/// `Value` finds, and that a plain message always reads as a `Value`. Returns whether it
/// was plain.
fn agrees(text: &str, all: &[Vec<PathStep<'_>>]) -> bool {
    let message = Message::parse(text.to_owned()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut paths = Paths::default();
    let nodes: Vec<u32> = all.iter().map(|s| add_all(&mut paths, s)).collect();
    paths.finish();
    let fields = paths.read(&message);
    if !fields.plain {
        return false;
    }
    let value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("plain text reads as a Value ({e}): {text}"));
    for (steps, node) in all.iter().zip(nodes) {
        let found = fields.get(node).map(slot_value);
        assert_eq!(found.as_ref(), walk(&value, steps), "{text}");
    }
    true
}

fn p(path: &str) -> Vec<PathStep<'_>> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse() {
            Ok(i) => PathStep::Index(i),
            Err(_) => PathStep::Member(s),
        })
        .collect()
}

fn all_paths() -> Vec<Vec<PathStep<'static>>> {
    [
        "",
        "jsonrpc",
        "id",
        "method",
        "params",
        "params.name",
        "params.arguments.message",
        "params.arguments.timeout_ms",
        "params.a.b",
        "params.x.0.y",
        "params.x.1",
        "params.0",
        "result",
        "result.isError",
        "result.content.0.text",
        "error",
        "error.code",
        "extra",
        "extra.a",
        "0.id",
        "1.method",
    ]
    .into_iter()
    .map(p)
    .collect()
}

#[test]
fn paths_find_what_walking_a_value_finds() {
    let all = all_paths();
    let plain = [
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
        r#" { "id" : -1.5e3 , "jsonrpc":"2.0", "method" : "t\"x" , "params" : { "name" : "e\"cho" , "arguments" : { "timeout_ms" : 40000 } } } "#,
        r#"{"jsonrpc":"2.0","id":"s-1","method":"m","params":{"a":{"b":1},"a":2}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":2,"a":{"b":[1,{"c":"}"}]}}}"#,
        r#"{"jsonrpc":"2.0","method":"m","params":{"\u0061":{"b":"\\"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"x":[{"y":true},[1,2],{"y":null}],"x":[{"y":false}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":[5,6]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{},"extra":{"a":[]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true},"params":{"name":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"isError":false,"isError":true}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#,
        r#"{"jsonrpc":"2.0","id":"e","error":{"code":-32000,"message":"x","data":{"n":1e-400}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"n":123456789012345678901234567890}}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":{"b":"😀"},"e":"1e999 in a string"}}"#,
    ];
    for text in plain {
        let read = agrees(text, &all);
        // Only the string holding what looks like a huge exponent is not plain.
        assert_eq!(read, !text.contains("1e999"), "{text}");
    }
}

#[test]
fn anything_a_value_might_not_hold_is_not_plain() {
    for text in [
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1e400}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":[1,{"b":-1e400}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"\ud800"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"\udc00":1}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","extra":1E+309}"#,
        r#"{"jsonrpc":"2.0","id":1e400,"method":"m"}"#,
    ] {
        let message = Message::parse(text).expect("valid");
        assert!(!Paths::default().read(&message).plain, "{text}");
    }
    let message = Message::parse(
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1e200,"b":-0.0,"c":1e-999}}"#,
    )
    .expect("valid");
    assert!(Paths::default().read(&message).plain);
}

#[test]
fn params_patterns_match_as_on_a_value() {
    let actual = json!({"name": "w", "arguments": {"a": [1, 2.0, "x"], "b": null, "c": {"d": 1}}});
    let patterns = [
        json!({"name": "w"}),
        json!({"name": "v"}),
        json!({}),
        json!({"arguments": {"a": [1.0, 2, "x"]}}),
        json!({"arguments": {"a": [1, 2]}}),
        json!({"arguments": {"a": [1, 2, "x", 4]}}),
        json!({"arguments": {"b": null}}),
        json!({"arguments": {"c": {"d": 1.0}}}),
        json!({"arguments": {"c": {}}}),
        json!({"arguments": {"x": null}}),
        json!({"arguments": "x"}),
        json!({"name": ["w"]}),
        json!([1]),
        json!(3),
    ];
    let mut paths = Paths::default();
    let nodes: Vec<u32> = patterns
        .iter()
        .map(|pat| {
            let node = paths.add(0, PathStep::Member("params"));
            add_pattern(&mut paths, node, pat);
            node
        })
        .collect();
    paths.finish();
    let message = Message::parse(format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{actual}}}"#
    ))
    .expect("valid");
    let fields = paths.read(&message);
    assert!(fields.plain);
    for (pattern, node) in patterns.iter().zip(nodes) {
        assert_eq!(
            partial_match_raw(pattern, &paths, &fields, node),
            partial_match(pattern, &actual),
            "{pattern}"
        );
    }
}

/// A JSON value written out with a few variations a parser must see through: spaces,
/// escaped member names and repeated members.
#[derive(Debug, Clone)]
enum Gen {
    Scalar(&'static str),
    Array(Vec<Gen>),
    Object(Vec<(usize, bool, Gen)>),
}

const NAMES: &[&str] = &["a", "b", "params", "arguments", "result", "isError"];

fn gen_value() -> impl Strategy<Value = Gen> {
    let leaf = prop::sample::select(vec![
        "1",
        "-2.5",
        "3e2",
        "true",
        "null",
        r#""x""#,
        r#""a\"b""#,
        r#""😀""#,
        "0",
    ])
    .prop_map(Gen::Scalar);
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Gen::Array),
            prop::collection::vec((0..NAMES.len(), any::<bool>(), inner), 0..5)
                .prop_map(Gen::Object),
        ]
    })
}

fn key(name: usize, escaped: bool) -> String {
    let name = NAMES[name];
    if escaped {
        format!("\\u{:04x}{}", u32::from(name.as_bytes()[0]), &name[1..])
    } else {
        name.to_owned()
    }
}

fn render(g: &Gen, space: bool, out: &mut String) {
    let sp = if space { " " } else { "" };
    match g {
        Gen::Scalar(s) => out.push_str(s),
        Gen::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(sp);
                render(item, space, out);
            }
            out.push_str(sp);
            out.push(']');
        }
        Gen::Object(members) => {
            out.push('{');
            for (i, (name, escaped, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!("{sp}\"{}\"{sp}:{sp}", key(*name, *escaped)));
                render(value, space, out);
            }
            out.push_str(sp);
            out.push('}');
        }
    }
}

proptest! {
    #[test]
    fn random_messages_read_as_their_values_do(
        payload in gen_value(),
        extra in prop::option::of((0..NAMES.len(), any::<bool>(), gen_value())),
        kind in 0..4usize,
        space in any::<bool>(),
    ) {
        let mut value = String::new();
        render(&payload, space, &mut value);
        let mut text = match kind {
            // A request's params must be an object or an array.
            0 if matches!(payload, Gen::Object(_) | Gen::Array(_)) => {
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{value}"#)
            }
            0 | 1 => r#"{"jsonrpc":"2.0","method":"m""#.to_owned(),
            2 => format!(r#"{{"jsonrpc":"2.0","id":"r","result":{value}"#),
            _ => format!(r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":1,"message":"m","data":{value}}}"#),
        };
        if let Some((name, escaped, extra)) = &extra {
            // Members that could repeat an envelope member are left out (the message
            // would be refused).
            if !matches!(NAMES[*name], "params" | "result") {
                text.push_str(&format!(r#","{}":"#, key(*name, *escaped)));
                render(extra, space, &mut text);
            }
        }
        text.push('}');
        let mut all = all_paths();
        all.extend(["a", "a.b", "b.1", "isError", "a.0.b"].into_iter().map(p));
        prop_assert!(agrees(&text, &all), "plain: {}", text);
    }
}
