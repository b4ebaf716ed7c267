//! Property tests: messages built with the constructors survive serialization, parsing,
//! re-serialization through `serde_json::Value`, line framing and SSE framing.

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};
use shadowcat_mcp::{
    ErrorCode, LineDecoder, Message, MessageKind, RequestId, SseDecoder, SseEncoder, SseEvent,
    SseItem, encode_line,
};

/// Text with the characters that need escaping or framing care.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec!['\n', '\r', '"', '\\', '\0', ':', ' ', '\u{FEFF}', '\u{1F600}', 'é']),
    ];
    prop::collection::vec(ch, 0..16).prop_map(|c| c.into_iter().collect())
}

fn request_id() -> impl Strategy<Value = RequestId> {
    prop_oneof![
        any::<i64>().prop_map(RequestId::number),
        text().prop_map(|s| RequestId::string(&s)),
        (any::<i32>(), 0..1000u32, prop::bool::ANY).prop_map(|(n, frac, exp)| {
            let spelled = if exp {
                format!("{n}e2")
            } else {
                format!("{n}.{frac:03}")
            };
            RequestId::from_json(&spelled).expect("a JSON number")
        }),
    ]
}

/// JSON values whose numbers print and parse back exactly.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i32>().prop_map(|n| Value::from(f64::from(n) / 100.0)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(text(), json(), 0..6).prop_map(|m| m.into_iter().collect())
}

/// What a generated message should be.
#[derive(Debug, Clone)]
enum Spec {
    Request(RequestId, String, Option<Map<String, Value>>),
    Notification(String, Option<Map<String, Value>>),
    Response(RequestId, Value),
    Error(Option<RequestId>, i64, String, Option<Value>),
}

fn spec() -> impl Strategy<Value = Spec> {
    let method = prop_oneof![
        prop::sample::select(vec!["initialize", "tools/call", "notifications/progress"])
            .prop_map(String::from),
        text(),
    ];
    prop_oneof![
        (request_id(), method.clone(), prop::option::of(object()))
            .prop_map(|(id, m, p)| Spec::Request(id, m, p)),
        (method, prop::option::of(object())).prop_map(|(m, p)| Spec::Notification(m, p)),
        (request_id(), json()).prop_map(|(id, r)| Spec::Response(id, r)),
        (
            prop::option::of(request_id()),
            any::<i64>(),
            text(),
            prop::option::of(json())
        )
            .prop_map(|(id, c, m, d)| Spec::Error(id, c, m, d)),
    ]
}

fn build(spec: &Spec) -> Message {
    let object = |p: &Option<Map<String, Value>>| p.clone().map(Value::Object);
    match spec {
        Spec::Request(id, method, params) => Message::request(id, method, object(params).as_ref()),
        Spec::Notification(method, params) => {
            Message::notification(method, object(params).as_ref())
        }
        Spec::Response(id, result) => Message::response(id, result),
        Spec::Error(id, code, message, data) => {
            Message::error_response(id.as_ref(), ErrorCode(*code), message, data.as_ref())
        }
    }
}

fn value(text: Option<&str>) -> Option<Value> {
    text.map(|t| serde_json::from_str(t).expect("valid JSON"))
}

/// The parsed message says exactly what the spec says.
fn check(msg: &Message, spec: &Spec) {
    let params = |p: &Option<Map<String, Value>>| p.clone().map(Value::Object);
    match spec {
        Spec::Request(id, method, p) => {
            assert_eq!(msg.kind(), MessageKind::Request);
            assert_eq!((msg.id(), msg.method()), (Some(id), Some(method.as_str())));
            assert_eq!(value(msg.params()), params(p));
        }
        Spec::Notification(method, p) => {
            assert_eq!(msg.kind(), MessageKind::Notification);
            assert_eq!((msg.id(), msg.method()), (None, Some(method.as_str())));
            assert_eq!(value(msg.params()), params(p));
        }
        Spec::Response(id, result) => {
            assert_eq!((msg.kind(), msg.id()), (MessageKind::Response, Some(id)));
            assert_eq!(value(msg.result()), Some(result.clone()));
            assert!(msg.error().is_none() && msg.method().is_none());
        }
        Spec::Error(id, code, message, data) => {
            assert_eq!((msg.kind(), msg.id()), (MessageKind::Error, id.as_ref()));
            let error = msg.error().expect("an error object");
            assert_eq!((error.code, &error.message), (ErrorCode(*code), message));
            // `"data": null` reads back as no data.
            assert_eq!(error.data, data.clone().filter(|d| !d.is_null()));
            assert!(msg.result().is_none());
        }
    }
}

/// An id compared by its JSON value (re-serialization may respell a number).
fn id_value(id: Option<&RequestId>) -> Option<Value> {
    id.map(|id| serde_json::from_str(&id.to_json()).expect("an id is JSON"))
}

/// `count` sorted cut points into `len` bytes.
fn chunks<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in at.into_iter().chain([data.len()]) {
        out.push(&data[start..cut]);
        start = cut;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn messages_round_trip(spec in spec()) {
        let msg = build(&spec);
        check(&msg, &spec);
        let parsed = Message::parse(msg.as_bytes().clone()).unwrap();
        prop_assert_eq!(parsed.as_bytes(), msg.as_bytes());
        check(&parsed, &spec);
        prop_assert_eq!(&parsed, &msg);
    }

    #[test]
    fn batches_round_trip(specs in prop::collection::vec(spec(), 1..6)) {
        let elements: Vec<Message> = specs.iter().map(build).collect();
        let batch = Message::new_batch(&elements);
        let parsed = Message::parse(batch.as_bytes().clone()).unwrap();
        prop_assert_eq!(parsed.kind(), MessageKind::Batch);
        prop_assert_eq!(parsed.as_bytes(), batch.as_bytes());
        prop_assert_eq!(parsed.batch().len(), specs.len());
        for ((element, spec), original) in parsed.batch().iter().zip(&specs).zip(&elements) {
            check(element, spec);
            prop_assert_eq!(element.as_bytes(), original.as_bytes());
        }
    }

    #[test]
    fn value_reserialization_keeps_the_meaning(spec in spec()) {
        let msg = build(&spec);
        let tree: Value = serde_json::from_slice(msg.as_bytes()).unwrap();
        let again = Message::parse(tree.to_string()).unwrap();
        prop_assert_eq!(again.kind(), msg.kind());
        prop_assert_eq!(id_value(again.id()), id_value(msg.id()));
        prop_assert_eq!(again.method(), msg.method());
        prop_assert_eq!(value(again.params()), value(msg.params()));
        prop_assert_eq!(value(again.result()), value(msg.result()));
        prop_assert_eq!(again.error(), msg.error());
    }

    #[test]
    fn line_framing_round_trips(
        specs in prop::collection::vec(spec(), 0..8),
        cuts in prop::collection::vec(any::<Index>(), 0..10),
    ) {
        let messages: Vec<Message> = specs.iter().map(build).collect();
        let mut wire = BytesMut::new();
        for m in &messages {
            encode_line(m.as_bytes(), &mut wire);
        }
        let mut dec = LineDecoder::new(1 << 20);
        let mut lines = Vec::new();
        for chunk in chunks(&wire, &cuts) {
            dec.push(chunk);
            lines.extend(std::iter::from_fn(|| dec.next_line()).map(Result::unwrap));
        }
        prop_assert!(dec.finish().is_none());
        prop_assert_eq!(lines.len(), messages.len());
        for (i, (line, m)) in lines.iter().zip(&messages).enumerate() {
            prop_assert_eq!(&line.bytes, m.as_bytes());
            prop_assert_eq!(line.number, i as u64 + 1);
            prop_assert_eq!(&Message::parse(line.bytes.clone()).unwrap(), m);
        }
    }

    #[test]
    fn sse_framing_round_trips(
        items in prop::collection::vec(sse_item(), 0..8),
        cuts in prop::collection::vec(any::<Index>(), 0..10),
    ) {
        let enc = SseEncoder::new();
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        let mut last_id: Option<String> = None;
        for item in &items {
            match item {
                SseItem::Event(event) => {
                    enc.encode_event(event, &mut wire).unwrap();
                    if event.id.is_some() {
                        last_id.clone_from(&event.id);
                    }
                    let mut want = event.clone();
                    want.data = event.data.replace("\r\n", "\n").replace('\r', "\n");
                    want.id.clone_from(&last_id);
                    expected.push(SseItem::Event(want));
                }
                SseItem::Comment(text) => {
                    enc.encode_comment(text, &mut wire);
                    let lines = text.replace("\r\n", "\n").replace('\r', "\n");
                    expected.extend(lines.split('\n').map(|l| SseItem::Comment(l.to_owned())));
                }
                _ => unreachable!("only events and comments are generated"),
            }
        }
        let mut dec = SseDecoder::new(1 << 20);
        let mut got = Vec::new();
        for chunk in chunks(&wire, &cuts) {
            dec.push(chunk);
            got.extend(std::iter::from_fn(|| dec.next_item()).map(Result::unwrap));
        }
        dec.finish();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(dec.last_event_id(), last_id.as_deref().filter(|id| !id.is_empty()));
    }
}

/// Events with any data and valid `event` and `id` fields, and comments.
fn sse_item() -> impl Strategy<Value = SseItem> {
    let field = |forbidden: &'static [char]| {
        text().prop_map(move |t| {
            t.chars()
                .filter(|c| !forbidden.contains(c))
                .collect::<String>()
        })
    };
    let event = (
        text(),
        prop::option::of(field(&['\r', '\n'])),
        prop::option::of(field(&['\r', '\n', '\0'])),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(data, event, id, retry)| {
            let mut e = SseEvent::new(data);
            e.event = event;
            e.id = id;
            e.retry = retry;
            SseItem::Event(e)
        });
    prop_oneof![3 => event, 1 => text().prop_map(SseItem::Comment)]
}
