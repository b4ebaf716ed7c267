use super::*;

fn ok(text: &str) -> Scanned<'_> {
    scan(text, MAX_DEPTH).unwrap_or_else(|e| panic!("{text:?} should scan, got {e:?}"))
}

/// The problem and the 1-based (line, column) of the offending byte.
fn err(text: &str) -> (Problem, (usize, usize)) {
    match scan(text, MAX_DEPTH) {
        Ok(scanned) => panic!("{text:?} should fail, got {scanned:?}"),
        Err(e) => (e.problem, position(text.as_bytes(), e.offset)),
    }
}

fn envelope(text: &str) -> Envelope<'_> {
    match ok(text) {
        Scanned::Object(env) => env,
        other => panic!("{text:?} is not an object: {other:?}"),
    }
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn accepts_every_kind_of_value() {
    for text in [
        "null",
        "true",
        "false",
        "0",
        "-0",
        "7",
        "-12.5e+3",
        "1E9",
        "0.0e-0",
        "123456789012345678901234567890",
        "1e400",
        r#""""#,
        r#""a""#,
        r#""\"\\\/\b\f\n\r\t\u0041\u00e9\uD83D\uDE00""#,
        r#""\ud800""#,
        r#""\uDC00x""#,
        "\"caf\u{e9} \u{1F600}\u{7f}\"",
        "[]",
        "{}",
        "[1,[2,{}],{\"a\":[]}]",
        " \t\r\n[ 1 , 2 ]\n\r\t ",
        "{ \"a\" : { \"b\" : [ ] } , \"c\" : null }",
    ] {
        ok(text);
    }
}

#[test]
fn scalars_and_arrays_keep_their_text() {
    assert_eq!(ok(" -1.5e3 \n"), Scanned::Scalar("-1.5e3"));
    assert_eq!(ok("\"x\""), Scanned::Scalar("\"x\""));
    let items = match ok(r#"[ {"id":1} , 2, "s",[]]"#) {
        Scanned::Array(items) => items,
        other => panic!("{other:?}"),
    };
    assert_eq!(items.len(), 4);
    assert!(
        matches!(items[0], Item::Object(env) if env.text == r#"{"id":1}"# && env.id == Some("1"))
    );
    assert_eq!(
        &items[1..],
        [Item::Other("2"), Item::Other("\"s\""), Item::Other("[]")]
    );
    assert_eq!(ok("[]"), Scanned::Array(Vec::new()));
}

#[test]
fn finds_the_envelope_members() {
    let text = r#" {"x":{"id":9},"jsonrpc" : "2.0","id":null, "method":"m\n","params":[1, {}],
        "result" :{"a":"b"},"error":false,"other":[]} "#;
    let env = envelope(text);
    assert_eq!(env.text, text.trim());
    assert_eq!(env.jsonrpc, Some("\"2.0\""));
    assert_eq!(env.id, Some("null"));
    assert_eq!(env.method, Some("\"m\\n\""));
    assert_eq!(env.params, Some("[1, {}]"));
    assert_eq!(env.result, Some(r#"{"a":"b"}"#));
    assert_eq!(env.error, Some("false"));
    assert_eq!(env.duplicate, None);
    assert_eq!(
        envelope("{}"),
        Envelope {
            text: "{}",
            ..Envelope::default()
        }
    );
    // Only exact names count.
    let env = envelope(r#"{"ID":1,"id ":2,"Method":3,"jsonrpc2":4,"":5}"#);
    assert_eq!((env.id, env.method, env.jsonrpc), (None, None, None));
}

#[test]
fn escaped_keys_are_decoded() {
    let env =
        envelope(r#"{"\u0069d":1,"m\u0065thod":"x","\u006A\u0073onrpc":"2.0","par\/ams":[]}"#);
    assert_eq!(env.id, Some("1"));
    assert_eq!(env.method, Some("\"x\""));
    assert_eq!(env.jsonrpc, Some("\"2.0\""));
    assert_eq!(env.params, None, "`\\/` is `/`, so this key is `par/ams`");
    let env = envelope(r#"{"i\u0064\u0000":1,"\u00e9":2,"\ud800":3,"res\u0075lt\u0073":4}"#);
    assert_eq!((env.id, env.result), (None, None));
}

#[test]
fn reports_the_first_duplicated_member() {
    let text = r#"{"id":1,"x":1,"x":2,"method":"a","\u0069d":2,"method":"b"}"#;
    let env = envelope(text);
    assert_eq!(env.duplicate, Some(("id", r#""\u0069d""#)));
    assert_eq!(env.id, Some("1"));
    let env = envelope("{\"error\":null,\n \"error\" : {}}");
    assert_eq!(env.duplicate, Some(("error", "\"error\"")));
    // Other repeated members are not envelope members.
    assert_eq!(envelope(r#"{"a":1,"a":2}"#).duplicate, None);
}

#[test]
fn batches_find_the_members_of_each_object() {
    let text = r#"[{"id":1,"id":2},{"method":"x","params":{"id":3}}]"#;
    let Scanned::Array(items) = ok(text) else {
        panic!("not an array");
    };
    let [Item::Object(a), Item::Object(b)] = items[..] else {
        panic!("{items:?}");
    };
    assert_eq!(a.duplicate, Some(("id", "\"id\"")));
    assert_eq!((b.id, b.params), (None, Some(r#"{"id":3}"#)));
}

#[test]
fn rejects_bad_structure() {
    use Problem::*;
    let cases = [
        ("", ExpectedValue, (1, 1)),
        ("  \n ", ExpectedValue, (2, 2)),
        ("}", ExpectedValue, (1, 1)),
        ("[1,]", TrailingComma, (1, 4)),
        ("[,1]", ExpectedValue, (1, 2)),
        ("[1 2]", ExpectedArrayEnd, (1, 4)),
        ("[1}", ExpectedArrayEnd, (1, 3)),
        ("[1", ExpectedArrayEnd, (1, 3)),
        ("[", ExpectedValue, (1, 2)),
        ("[[]", ExpectedArrayEnd, (1, 4)),
        ("{", ExpectedKey, (1, 2)),
        ("{,}", ExpectedKey, (1, 2)),
        ("{1:2}", ExpectedKey, (1, 2)),
        (r#"{"a" 1}"#, ExpectedColon, (1, 6)),
        (r#"{"a":}"#, ExpectedValue, (1, 6)),
        (r#"{"a":1,}"#, TrailingComma, (1, 8)),
        (r#"{"a":1 "b":2}"#, ExpectedObjectEnd, (1, 8)),
        (r#"{"a":1]"#, ExpectedObjectEnd, (1, 7)),
        (r#"{"a":1"#, ExpectedObjectEnd, (1, 7)),
        (r#"{"a""#, ExpectedColon, (1, 5)),
        (r#"{"a":{"b" 1}}"#, ExpectedColon, (1, 11)),
        (r#"{"a":{"b":1,}}"#, TrailingComma, (1, 13)),
        (r#"{"a":{1:1}}"#, ExpectedKey, (1, 7)),
        (r#"{"a":[{"b":1]]}"#, ExpectedObjectEnd, (1, 13)),
        ("{}}", TrailingCharacters, (1, 3)),
        ("{} {}", TrailingCharacters, (1, 4)),
        ("[] x", TrailingCharacters, (1, 4)),
        ("1 2", TrailingCharacters, (1, 3)),
        ("\u{feff}{}", ExpectedValue, (1, 1)),
        ("\u{a0}{}", ExpectedValue, (1, 1)),
        ("{}\u{c}", TrailingCharacters, (1, 3)),
        ("[1,\u{b}2]", ExpectedValue, (1, 4)),
        ("{\"a\"\n:\n1\n,\n}", TrailingComma, (5, 1)),
    ];
    for (text, problem, at) in cases {
        assert_eq!(err(text), (problem, at), "{text:?}");
    }
}

#[test]
fn rejects_bad_strings() {
    use Problem::*;
    let cases = [
        ("\"abc", UnterminatedString, (1, 5)),
        ("\"abcdefghijklmnopq", UnterminatedString, (1, 19)),
        ("[\"a\\\"]", UnterminatedString, (1, 7)),
        ("\"\\", InvalidEscape, (1, 3)),
        (r#""\x""#, InvalidEscape, (1, 3)),
        (r#""\U0041""#, InvalidEscape, (1, 3)),
        (r#""\'""#, InvalidEscape, (1, 3)),
        (r#""\u12G4""#, InvalidUnicodeEscape, (1, 6)),
        (r#""\u12""#, InvalidUnicodeEscape, (1, 6)),
        (r#""\u""#, InvalidUnicodeEscape, (1, 4)),
        ("\"\\u00", InvalidUnicodeEscape, (1, 6)),
        ("\"a\u{1}\"", ControlCharacter(1), (1, 3)),
        ("\"a\tb\"", ControlCharacter(b'\t'), (1, 3)),
        ("\"0123456789\n\"", ControlCharacter(b'\n'), (1, 12)),
        ("\"0123456\u{0}\"", ControlCharacter(0), (1, 9)),
        (
            "\"0123456789abcdef\u{1f}\"",
            ControlCharacter(0x1f),
            (1, 18),
        ),
        ("{\"a\u{7}\":1}", ControlCharacter(7), (1, 4)),
        ("{\"\\q\":1}", InvalidEscape, (1, 4)),
    ];
    for (text, problem, at) in cases {
        assert_eq!(err(text), (problem, at), "{text:?}");
    }
    // DEL and non-ASCII text need no escaping.
    ok("\"\u{7f}\u{80}\u{10FFFF}\"");
}

#[test]
fn rejects_bad_numbers_and_literals() {
    use Problem::*;
    let cases = [
        ("01", InvalidNumber, (1, 2)),
        ("-01", InvalidNumber, (1, 3)),
        ("[00]", InvalidNumber, (1, 3)),
        ("-", InvalidNumber, (1, 2)),
        ("-a", InvalidNumber, (1, 2)),
        ("--1", InvalidNumber, (1, 2)),
        ("+1", ExpectedValue, (1, 1)),
        (".5", ExpectedValue, (1, 1)),
        ("1.", InvalidNumber, (1, 3)),
        ("1.e3", InvalidNumber, (1, 3)),
        ("[1.]", InvalidNumber, (1, 4)),
        ("1e", InvalidNumber, (1, 3)),
        ("1e+", InvalidNumber, (1, 4)),
        ("1E-x", InvalidNumber, (1, 4)),
        ("1.5.5", TrailingCharacters, (1, 4)),
        ("1e5e5", TrailingCharacters, (1, 4)),
        ("0x10", TrailingCharacters, (1, 2)),
        ("[1 .5]", ExpectedArrayEnd, (1, 4)),
        ("tru", InvalidLiteral, (1, 4)),
        ("trUe", InvalidLiteral, (1, 3)),
        ("[nul]", InvalidLiteral, (1, 5)),
        ("falsey", TrailingCharacters, (1, 6)),
        ("nulL", InvalidLiteral, (1, 4)),
        ("True", ExpectedValue, (1, 1)),
        ("NaN", ExpectedValue, (1, 1)),
    ];
    for (text, problem, at) in cases {
        assert_eq!(err(text), (problem, at), "{text:?}");
    }
}

#[test]
fn nesting_stops_where_serde_json_stops() {
    ok(&nested(MAX_DEPTH));
    assert_eq!(err(&nested(MAX_DEPTH + 1)), (Problem::TooDeep, (1, 128)));
    assert_eq!(err(&nested(100_000)), (Problem::TooDeep, (1, 128)));
    // Objects count like arrays, at every position of the envelope.
    let deep_params = |n: usize| format!(r#"{{"params":{}}}"#, nested(n));
    ok(&deep_params(MAX_DEPTH - 1));
    assert_eq!(err(&deep_params(MAX_DEPTH)), (Problem::TooDeep, (1, 137)));
    let objects = |n: usize| format!("{}{{}}{}", r#"{"a":"#.repeat(n - 1), "}".repeat(n - 1));
    ok(&objects(MAX_DEPTH));
    assert_eq!(err(&objects(MAX_DEPTH + 1)).0, Problem::TooDeep);
    let batch = |n: usize| format!("[{{\"id\":{}}}]", nested(n));
    ok(&batch(MAX_DEPTH - 2));
    assert_eq!(err(&batch(MAX_DEPTH - 1)).0, Problem::TooDeep);
    assert_eq!(err(&format!("[{}]", nested(MAX_DEPTH))).0, Problem::TooDeep);
    // Deep but unterminated input fails at the end, not with a stack overflow.
    assert_eq!(err(&"[{\"a\":".repeat(60)).0, Problem::ExpectedValue);
}

#[test]
fn without_a_limit_any_nesting_scans() {
    for depth in [127, 128, 129, 255, 256, 257, 1000, 100_000] {
        let text = format!("{}0{}", "[{\"a\":".repeat(depth), "}]".repeat(depth));
        let object = format!("{{\"params\":{text},\"id\":1}}");
        assert!(scan(&text, usize::MAX).is_ok(), "{depth}");
        let env = match scan(&object, usize::MAX) {
            Ok(Scanned::Object(env)) => env,
            other => panic!("{other:?}"),
        };
        assert_eq!((env.params, env.id), (Some(&*text), Some("1")));
        // Closing with the wrong bracket is caught at any depth.
        let wrong = format!("{}0{}", "[{\"a\":".repeat(depth), "]}".repeat(depth));
        assert!(scan(&wrong, usize::MAX).is_err(), "{depth}");
    }
}

#[test]
fn errors_read_well() {
    let error = |text: &str| match scan(text, MAX_DEPTH) {
        Err(e) => e.into_error(text),
        Ok(scanned) => panic!("{scanned:?}"),
    };
    let reason = |text: &str| match error(text) {
        Error::Json { reason, .. } => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        error("{\"jsonrpc\" 1}"),
        Error::Json {
            line: 1,
            column: 12,
            reason: "expected `:` after object key at line 1 column 12".into()
        }
    );
    assert_eq!(
        reason(r#"{"jsonrpc":"2.0","method":"tools/call""#),
        "EOF while parsing an object at line 1 column 39"
    );
    assert_eq!(
        reason("{\n\"a\":\"x"),
        "EOF while parsing a string at line 2 column 7"
    );
    assert_eq!(
        reason("[\"\u{1}\"]"),
        "control character U+0001 in string (must be escaped) at line 1 column 3"
    );
    assert_eq!(reason("{} x"), "trailing characters at line 1 column 4");
    assert_eq!(
        reason(&nested(200)),
        "nesting deeper than 127 levels at line 1 column 128"
    );
    assert_eq!(
        reason("[1,"),
        "EOF while parsing a value at line 1 column 4"
    );
    assert_eq!(
        reason("[1"),
        "EOF while parsing an array at line 1 column 3"
    );
    assert_eq!(reason("-"), "EOF while parsing a number at line 1 column 2");
    assert_eq!(
        reason("nul"),
        "EOF while parsing a value at line 1 column 4"
    );
    assert_eq!(
        reason("\"\\u00"),
        "EOF while parsing a string at line 1 column 6"
    );
    assert_eq!(
        reason("\"\\u0g00\""),
        "invalid `\\u` escape (expected four hex digits) at line 1 column 5"
    );
    assert_eq!(reason("[1,]"), "trailing comma at line 1 column 4");
    assert_eq!(
        reason("{\"a\":1\n"),
        "EOF while parsing an object at line 2 column 1"
    );
}

#[test]
fn positions_count_lines_and_bytes() {
    assert_eq!(position(b"", 0), (1, 1));
    assert_eq!(position(b"abc", 2), (1, 3));
    assert_eq!(position(b"a\nbc\n", 3), (2, 2));
    assert_eq!(position(b"a\nbc\n", 5), (3, 1));
    assert_eq!(position("\u{e9}x".as_bytes(), 2), (1, 3));
}

#[test]
fn string_stop_finds_the_first_special_byte() {
    let special = [b'"', b'\\', 0, 0x1f, b'\n'];
    for len in 0..40 {
        for at in 0..=len {
            for &byte in &special {
                let mut bytes = vec![b'a'; len];
                if at < len {
                    bytes[at] = byte;
                    // Bytes after the first special one do not matter.
                    bytes
                        .iter_mut()
                        .skip(at + 1)
                        .step_by(3)
                        .for_each(|b| *b = 0x01);
                }
                let expected = if at < len { at } else { len };
                assert_eq!(string_stop(&bytes, 0), expected, "{bytes:?}");
            }
        }
    }
    // High bytes and bytes just above the specials are plain content.
    let plain: Vec<u8> = (0x20..=0xff).filter(|&b| b != b'"' && b != b'\\').collect();
    assert_eq!(string_stop(&plain, 0), plain.len());
    assert_eq!(string_stop(b"\xc3\xa9\xff\x80\x7f\x21\x23\x5b\x5d\"", 0), 9);
}
