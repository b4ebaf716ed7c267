//! Differential tests: `Message::parse` accepts exactly the JSON that `serde_json` accepts
//! (as `IgnoredAny`, within `serde_json`'s nesting limit) and finds the same envelope
//! members, on generated JSON and on mutations of it: flipped, replaced, inserted and
//! deleted bytes, truncations, control characters, deep nesting, duplicated and escaped
//! member names. The comparison itself is `fuzzing::scanner_matches_serde_json`, which the
//! `message_parse` fuzz target runs as well.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use shadowcat_mcp::{Error, Message, fuzzing};

fn ws() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just(String::new()), 1 => "[ \t\r\n]{1,3}"]
}

fn number() -> BoxedStrategy<String> {
    prop_oneof![
        8 => "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
        1 => select(vec!["1e400", "-0", "123456789012345678901234567890", "-1E-400", "0.0"])
            .prop_map(String::from),
    ]
    .boxed()
}

/// String text with every kind of escape, lone surrogates and non-ASCII characters.
fn string() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        6 => "[^\"\\\\\\x00-\\x1f]",
        2 => "\\\\[\"\\\\/bfnrt]",
        1 => "\\\\u[0-9a-fA-F]{4}",
        1 => select(vec!["\\ud800", "\\uDFFF", "\\ud83d\\ude00", "\u{e9}", "\u{1F600}", "\u{7f}"])
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8)
        .prop_map(|p| format!("\"{}\"", p.concat()))
        .boxed()
}

const NAMES: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];

/// Member names, mostly envelope members (so duplicates are common), some escaped.
fn key() -> BoxedStrategy<String> {
    let escaped = (0..NAMES.len(), any::<Index>()).prop_map(|(n, at)| {
        let name = NAMES[n];
        let at = at.index(name.len());
        format!(
            "\"{}\\u{:04x}{}\"",
            &name[..at],
            u32::from(name.as_bytes()[at]),
            &name[at + 1..]
        )
    });
    prop_oneof![
        4 => select(NAMES.to_vec()).prop_map(|n| format!("\"{n}\"")),
        2 => escaped,
        1 => select(vec!["\"Id\"", "\"id \"", "\"\\ud800\"", "\"\\u0000\"", "\"x\""])
            .prop_map(String::from),
        1 => string(),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        select(vec!["null", "true", "false", "\"2.0\"", "1", "{}", "[]"]).prop_map(String::from),
        number(),
        string(),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        let element = (ws(), inner.clone(), ws()).prop_map(|(a, v, b)| format!("{a}{v}{b}"));
        let member = (ws(), key(), ws(), ws(), inner, ws())
            .prop_map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"));
        prop_oneof![
            prop::collection::vec(element, 0..5).prop_map(|e| format!("[{}]", e.join(","))),
            prop::collection::vec(member, 0..5).prop_map(|m| format!("{{{}}}", m.join(","))),
        ]
    })
    .boxed()
}

/// A JSON-RPC-shaped object: envelope members (possibly repeated) and others.
fn envelope() -> BoxedStrategy<String> {
    let member_value = prop_oneof![
        select(vec![
            "\"2.0\"",
            "\"1.0\"",
            "1",
            "\"a\"",
            "null",
            "\"tools/call\"",
            "{}"
        ])
        .prop_map(String::from),
        value(),
    ];
    let member =
        (ws(), key(), ws(), member_value).prop_map(|(a, k, b, v)| format!("{a}{k}:{b}{v}"));
    prop::collection::vec(member, 0..7)
        .prop_map(|m| format!("{{{}}}", m.join(",")))
        .boxed()
}

/// Arrays and objects nested around the limit, alone, as `params` or in a batch.
fn deep() -> BoxedStrategy<String> {
    (
        120usize..=132,
        prop::collection::vec(any::<bool>(), 1..4),
        value(),
        0..3u8,
    )
        .prop_map(|(depth, kinds, inner, place)| {
            let (mut open, mut close) = (String::new(), String::new());
            for level in 0..depth {
                if kinds[level % kinds.len()] {
                    open.push_str("{\"id\":");
                    close.push('}');
                } else {
                    open.push('[');
                    close.push(']');
                }
            }
            let close: String = close.chars().rev().collect();
            let nested = format!("{open}{inner}{close}");
            match place {
                0 => nested,
                1 => format!("{{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{nested}}}"),
                _ => format!("[{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{nested}}}]"),
            }
        })
        .boxed()
}

fn document() -> BoxedStrategy<String> {
    let batch = prop::collection::vec(prop_oneof![4 => envelope(), 1 => value()], 0..4)
        .prop_map(|e| format!("[{}]", e.join(",")));
    (
        ws(),
        prop_oneof![4 => envelope(), 2 => batch, 2 => value(), 1 => deep()],
        ws(),
    )
        .prop_map(|(a, d, b)| format!("{a}{d}{b}"))
        .boxed()
}

/// Bytes that matter to the JSON grammar, and some that break UTF-8.
const BYTES: &[u8] =
    b"\"\\/{}[],:0019-+.eEubxtrnfalsU \t\n\r\x00\x01\x08\x0b\x0c\x1f\x7f\xc3\xa9\xff";

/// Where an edit applies: the n-th byte of a class, so edits land on structure.
const CLASSES: [&[u8]; 6] = [
    b"",
    b"{}[]",
    b"\"\\",
    b"0123456789-.eE",
    b",:",
    b"truefalsn",
];

#[derive(Debug, Clone)]
enum Edit {
    Replace(u8),
    /// Replaces the byte with another of its class (a bracket by a bracket, ...).
    Swap(Index),
    InsertBefore(u8),
    InsertAfter(u8),
    Delete,
    Truncate,
    FlipBit(u8),
}

fn edit() -> impl Strategy<Value = (usize, Index, Edit)> {
    let byte = select(BYTES.to_vec());
    let op = prop_oneof![
        3 => byte.clone().prop_map(Edit::Replace),
        3 => any::<Index>().prop_map(Edit::Swap),
        2 => byte.clone().prop_map(Edit::InsertBefore),
        2 => byte.prop_map(Edit::InsertAfter),
        2 => Just(Edit::Delete),
        1 => Just(Edit::Truncate),
        1 => (0..8u8).prop_map(Edit::FlipBit),
    ];
    (0..CLASSES.len(), any::<Index>(), op)
}

fn apply(mut data: Vec<u8>, edits: &[(usize, Index, Edit)]) -> Vec<u8> {
    for (class, at, edit) in edits {
        let class = CLASSES[*class];
        let spots: Vec<usize> = (0..data.len())
            .filter(|&i| class.is_empty() || class.contains(&data[i]))
            .collect();
        if spots.is_empty() {
            data.push(b'x');
            continue;
        }
        let at = spots[at.index(spots.len())];
        match *edit {
            Edit::Replace(byte) => data[at] = byte,
            Edit::Swap(with) => {
                let pool = if class.is_empty() { BYTES } else { class };
                data[at] = pool[with.index(pool.len())];
            }
            Edit::InsertBefore(byte) => data.insert(at, byte),
            Edit::InsertAfter(byte) => data.insert(at + 1, byte),
            Edit::Delete => drop(data.remove(at)),
            Edit::Truncate => data.truncate(at),
            Edit::FlipBit(bit) => data[at] ^= 1 << bit,
        }
    }
    data
}

/// How deeply arrays and objects nest in valid JSON `text`.
fn max_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0, false, false);
    for byte in text.bytes() {
        if in_string {
            (in_string, escaped) = match byte {
                _ if escaped => (true, false),
                b'\\' => (true, true),
                b'"' => (false, false),
                _ => (true, false),
            };
        } else if byte == b'"' {
            in_string = true;
        } else if byte == b'[' || byte == b'{' {
            depth += 1;
            max = max.max(depth);
        } else if byte == b']' || byte == b'}' {
            depth -= 1;
        }
    }
    max
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn generated_json_scans_like_serde_json(text in document()) {
        let depth_ok = max_depth(&text) <= 127;
        let accepted = serde_json::from_str::<serde::de::IgnoredAny>(&text);
        // The generator writes valid JSON; only the deep documents may be too deep.
        prop_assert!(accepted.is_ok(), "{:?} for {}", accepted, text);
        fuzzing::scanner_matches_serde_json(text.as_bytes());
        fuzzing::parse_message(text.as_bytes());
        if depth_ok {
            let parsed = Message::parse(text.clone());
            prop_assert!(!matches!(parsed, Err(Error::Json { .. })), "{:?}", parsed);
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn mutated_json_scans_like_serde_json(
        text in document(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let data = apply(text.into_bytes(), &edits);
        fuzzing::scanner_matches_serde_json(&data);
        fuzzing::parse_message(&data);
    }
}

#[test]
fn tricky_inputs_scan_like_serde_json() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let mut inputs: Vec<String> = [
        "",
        " ",
        "{}",
        "[]",
        "[{}]",
        "{\"id\":1,\"id\":2",
        "{\"id\":1,\"\\u0069d\":2}",
        "{\"\\ud800\":1,\"id\":1,\"id\":2}",
        "{\"id\":\"\\udc00\"}",
        "[1,]",
        "{\"a\":1,}",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "01",
        "-",
        "1.",
        "1e+",
        "tru",
        "nul",
        "{}\u{a0}",
        "\u{feff}{}",
        "{\"a\"\u{c}:1}",
        "[\"\u{1f}\"]",
        "[\"\u{7f}\"]",
        "1e400",
        "[-0.0e-0]",
        "{\"method\":\"a\",\"method\":\"a\"}",
        "[{\"id\":1},{\"id\":1,\"id\":1}]",
        "{\"params\":[1,{\"id\":{}}],\"jsonrpc\":\"2.0\"}",
        "\n\r\t{\"id\" \n:\t1 }\r\n",
    ]
    .map(String::from)
    .to_vec();
    for n in [126, 127, 128, 129, 1000] {
        inputs.push(deep(n));
        inputs.push(format!("{{\"params\":{}}}", deep(n - 1)));
        inputs.push(format!("[{{\"id\":{}}}]", deep(n - 2)));
    }
    for input in &inputs {
        fuzzing::scanner_matches_serde_json(input.as_bytes());
        fuzzing::parse_message(input.as_bytes());
    }
}
