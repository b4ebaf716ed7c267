//! Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the
//! integration tests. Each takes arbitrary bytes, runs the code on them and checks its
//! invariants with `assert!`; a panic is a bug.

use bytes::{Bytes, BytesMut};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::scan::{self, Envelope, Item, Scanned};
use crate::{
    Error, LineDecoder, Message, MessageKind, SseDecoder, SseEncoder, SseEvent, SseItem,
    detect_era, encode_line,
};

/// Parses `data` as one message: the JSON scanner agrees with `serde_json` (see
/// [`scanner_matches_serde_json`]); a message keeps its bytes, parses again to an equal
/// message, has the fields its kind requires, and rebuilds with the constructors; an error
/// turns into a valid error response.
pub fn parse_message(data: &[u8]) {
    scanner_matches_serde_json(data);
    match Message::parse(Bytes::copy_from_slice(data)) {
        Ok(msg) => {
            assert_eq!(msg.as_bytes().as_ref(), data);
            let _ = detect_era(&msg);
            if msg.kind() == MessageKind::Batch {
                assert!(!msg.batch().is_empty());
                for element in msg.batch() {
                    assert_ne!(element.kind(), MessageKind::Batch);
                    check_message(element);
                }
                let rebuilt = Message::new_batch(msg.batch());
                assert_eq!(rebuilt.batch().len(), msg.batch().len());
                for (a, b) in rebuilt.batch().iter().zip(msg.batch()) {
                    assert_eq!(a.as_bytes(), b.as_bytes());
                    assert_eq!(a.kind(), b.kind());
                }
            } else {
                assert!(msg.batch().is_empty());
                assert_eq!(msg.messages(), std::slice::from_ref(&msg));
            }
            check_message(&msg);
        }
        Err(err) => {
            let reply = err.to_error_response();
            assert_eq!(reply.kind(), MessageKind::Error);
            assert_eq!(reply.id(), err.request_id());
            let object = reply
                .error()
                .expect("an error response has an error object");
            assert_eq!(object.code, err.code());
            assert_eq!(object.message, err.to_string());
        }
    }
}

/// The envelope members as `serde_json` reads them (`Some` even when `null`).
#[derive(Deserialize)]
struct SerdeEnvelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Checks the JSON scanner behind [`Message::parse`] against `serde_json` on `data`.
///
/// The scanner accepts a UTF-8 input exactly when `serde_json` accepts it as
/// [`IgnoredAny`] and it nests at most 127 levels deep (`serde_json`'s limit for a
/// [`Value`]), so everything a `Value` parse accepts too. It finds the same top-level value,
/// batch elements and envelope members (`jsonrpc`, `id`, `method`, `params`, `result`,
/// `error`) at the same places as `serde_json`, and reports a duplicated member where
/// `serde_json` does; when it rejects the input, `Message::parse` gives [`Error::Json`] with
/// its position.
pub fn scanner_matches_serde_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = scan::scan(text, scan::MAX_DEPTH);
    let ignored = serde_json::from_str::<IgnoredAny>(text);
    let expected = ignored.is_ok() && max_depth(text) <= scan::MAX_DEPTH;
    assert_eq!(
        ours.is_ok(),
        expected,
        "scanner: {ours:?}; serde_json: {ignored:?}; input: {text:?}"
    );
    if serde_json::from_str::<Value>(text).is_ok() {
        assert!(ours.is_ok(), "serde_json reads a Value from {text:?}");
    }
    let parsed = Message::parse(Bytes::copy_from_slice(data));
    let scanned = match ours {
        Ok(scanned) => scanned,
        Err(e) => {
            assert!(e.offset <= text.len());
            let Err(Error::Json {
                line,
                column,
                reason,
            }) = parsed
            else {
                panic!("invalid JSON {text:?} parsed as {parsed:?}");
            };
            assert!(line >= 1 && column >= 1);
            assert!(reason.ends_with(&format!(" at line {line} column {column}")));
            return;
        }
    };
    assert!(!matches!(parsed, Err(Error::Json { .. })), "{parsed:?}");
    let whole: &RawValue = serde_json::from_str(text).expect("serde_json accepts it");
    match scanned {
        Scanned::Scalar(value) => same(value, whole.get()),
        Scanned::Object(env) => {
            same(env.text, whole.get());
            same_envelope(&env);
        }
        Scanned::Array(items) => {
            let elements: Vec<&RawValue> = serde_json::from_str(text).expect("an array");
            assert_eq!(items.len(), elements.len());
            for (item, element) in items.iter().zip(elements) {
                match item {
                    Item::Object(env) => {
                        same(env.text, element.get());
                        same_envelope(env);
                    }
                    Item::Other(value) => {
                        same(value, element.get());
                        assert!(!value.starts_with('{'));
                    }
                }
            }
        }
    }
}

/// The same text at the same place.
#[track_caller]
fn same(ours: &str, theirs: &str) {
    assert_eq!((ours.as_ptr(), ours), (theirs.as_ptr(), theirs));
}

fn same_envelope(env: &Envelope<'_>) {
    match serde_json::from_str::<SerdeEnvelope<'_>>(env.text) {
        Ok(theirs) => {
            assert_eq!(env.duplicate, None, "in {}", env.text);
            for (ours, theirs) in [
                (env.jsonrpc, theirs.jsonrpc),
                (env.id, theirs.id),
                (env.method, theirs.method),
                (env.params, theirs.params),
                (env.result, theirs.result),
                (env.error, theirs.error),
            ] {
                match (ours, theirs) {
                    (Some(ours), Some(theirs)) => same(ours, theirs.get()),
                    (ours, theirs) => assert_eq!(ours.is_some(), theirs.is_some()),
                }
            }
        }
        Err(e) => {
            let reason = e.to_string();
            if let Some(field) = reason.strip_prefix("duplicate field `") {
                let (name, key) = env.duplicate.expect("the scanner sees the duplicate");
                assert!(field.starts_with(&format!("{name}`")), "{reason} vs {name}");
                assert!(key.starts_with('"') && key.ends_with('"'));
            } else {
                // `serde_json` decodes member names and rejects lone surrogates there; the
                // scanner, like `serde_json` ignoring a value, accepts them.
                assert!(reason.contains("surrogate") || reason.contains("hex escape"));
            }
        }
    }
}

/// How deeply arrays and objects nest in valid JSON `text`.
fn max_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0);
    let (mut in_string, mut escaped) = (false, false);
    for byte in text.bytes() {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                max = max.max(depth);
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The invariants of one parsed message (or batch).
fn check_message(msg: &Message) {
    let again = Message::parse(msg.as_bytes().clone()).expect("a parsed message parses again");
    assert_eq!(&again, msg);
    if let Some(params) = msg.params() {
        assert!(params.starts_with('{') || params.starts_with('['));
        assert!(serde_json::from_str::<&RawValue>(params).is_ok());
    }
    let id = msg.id();
    match msg.kind() {
        MessageKind::Request | MessageKind::Notification => {
            assert_eq!(id.is_some(), msg.kind() == MessageKind::Request);
            assert!(msg.is_request() == id.is_some() && !msg.is_response());
            assert!(msg.result().is_none() && msg.error().is_none());
            let method = msg
                .method()
                .expect("a request or notification has a method");
            let Some(params) = to_value(msg.params()) else {
                return;
            };
            let rebuilt = match id {
                Some(id) => Message::request(id, method, params.as_ref()),
                None => Message::notification(method, params.as_ref()),
            };
            assert_eq!(
                (rebuilt.kind(), rebuilt.id(), rebuilt.method()),
                (msg.kind(), id, Some(method))
            );
            assert_eq!(rebuilt.params(), params.map(|p| p.to_string()).as_deref());
        }
        MessageKind::Response => {
            let id = id.expect("a response has an id");
            assert!(msg.is_response() && msg.method().is_none() && msg.params().is_none());
            let result = msg.result().expect("a response has a result");
            assert!(serde_json::from_str::<&RawValue>(result).is_ok());
            if let Some(Some(value)) = to_value(Some(result)) {
                let rebuilt = Message::response(id, &value);
                assert_eq!(rebuilt.id(), Some(id));
                assert_eq!(rebuilt.result(), Some(&*value.to_string()));
            }
        }
        MessageKind::Error => {
            assert!(msg.is_response() && msg.method().is_none() && msg.result().is_none());
            let error = msg.error().expect("an error response has an error object");
            let rebuilt =
                Message::error_response(id, error.code, &error.message, error.data.as_ref());
            let again = rebuilt
                .error()
                .expect("a rebuilt error response has an error");
            assert_eq!((rebuilt.id(), again.code), (id, error.code));
            assert_eq!(again.message, error.message);
            assert_eq!(again.data.is_some(), error.data.is_some());
        }
        MessageKind::Batch => assert!(id.is_none() && msg.method().is_none()),
    }
}

/// `None` when the JSON cannot become a `Value` (numbers out of range, nesting too deep).
fn to_value(text: Option<&str>) -> Option<Option<Value>> {
    match text {
        None => Some(None),
        Some(text) => serde_json::from_str(text).ok().map(Some),
    }
}

/// The fuzz input's first two bytes choose the size limit and a cut; the rest is input.
fn split_input(data: &[u8]) -> Option<(usize, &[u8], &[u8])> {
    let ([limit, cut], input) = data.split_first_chunk::<2>()?;
    let limit = match limit {
        255 => usize::MAX,
        n => usize::from(*n) * 2,
    };
    let cut = usize::from(*cut) * input.len() / 255;
    Some((limit, &input[..cut], &input[cut..]))
}

/// What can be compared between runs: errors by location (their size depends on how much
/// input had arrived).
fn comparable<T>(item: crate::Result<T>) -> Result<T, String> {
    item.map_err(|e| match e {
        Error::TooLarge { location, .. } => location,
        other => other.to_string(),
    })
}

type Lines = Vec<Result<(Vec<u8>, u64, u64), String>>;

fn decode_lines<'a>(max: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Lines {
    let mut dec = LineDecoder::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        dec.push(chunk);
        out.extend(std::iter::from_fn(|| dec.next_line()));
    }
    out.extend(dec.finish());
    assert!(dec.finish().is_none());
    out.into_iter()
        .map(|r| comparable(r.map(|l| (l.bytes.to_vec(), l.number, l.offset))))
        .collect()
}

/// Splits `data` into lines: any chunking gives the same lines, each line respects the
/// limit and has no line ending, and encoding the lines again gives them back.
pub fn line_framing(data: &[u8]) {
    let Some((max, a, b)) = split_input(data) else {
        return;
    };
    let input = &data[2..];
    let whole = decode_lines(max, [input]);
    assert_eq!(decode_lines(max, [a, b]), whole);
    assert_eq!(decode_lines(max, input.chunks(1)), whole);
    let mut encoded = BytesMut::new();
    let mut expected = Vec::new();
    for (bytes, number, offset) in whole.into_iter().flatten() {
        assert!(bytes.len() <= max && !bytes.contains(&b'\n'));
        assert!(!bytes.iter().all(u8::is_ascii_whitespace));
        assert!(number >= 1 && offset + bytes.len() as u64 <= input.len() as u64);
        encode_line(&bytes, &mut encoded);
        let spaced: Vec<u8> = bytes
            .iter()
            .map(|&c| if c == b'\r' { b' ' } else { c })
            .collect();
        expected.push(spaced);
    }
    let again: Vec<Vec<u8>> = decode_lines(max, [&encoded[..]])
        .into_iter()
        .map(|r| r.expect("encoded lines are within the limit").0)
        .collect();
    assert_eq!(again, expected);
}

fn decode_sse<'a>(
    max: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<SseItem, String>> {
    let mut dec = SseDecoder::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        dec.push(chunk);
        out.extend(std::iter::from_fn(|| dec.next_item()));
    }
    dec.finish();
    assert!(dec.next_item().is_none());
    out.into_iter().map(comparable).collect()
}

fn encode_sse(items: &[SseItem]) -> BytesMut {
    let enc = SseEncoder::new();
    let mut out = BytesMut::new();
    for item in items {
        match item {
            SseItem::Event(event) => enc
                .encode_event(event, &mut out)
                .expect("decoded events can be encoded"),
            SseItem::Comment(text) => enc.encode_comment(text, &mut out),
        }
    }
    out
}

/// Decodes `data` as an event stream: any chunking gives the same items, decoded events
/// and comments hold no line breaks where the format forbids them, and encoding each
/// event, and the whole stream, decodes to the same items.
pub fn sse_framing(data: &[u8]) {
    let Some((max, a, b)) = split_input(data) else {
        return;
    };
    let input = &data[2..];
    let whole = decode_sse(max, [input]);
    assert_eq!(decode_sse(max, [a, b]), whole);
    assert_eq!(decode_sse(max, input.chunks(1)), whole);
    let items: Vec<SseItem> = whole.into_iter().flatten().collect();
    for item in &items {
        match item {
            SseItem::Event(event) => check_event(event),
            SseItem::Comment(text) => assert!(!text.contains(['\r', '\n'])),
        }
    }
    let again = decode_sse(usize::MAX, [&encode_sse(&items)[..]]);
    assert_eq!(again, items.into_iter().map(Ok).collect::<Vec<_>>());
}

fn check_event(event: &SseEvent) {
    assert!(!event.data.contains('\r'));
    assert!(
        !event
            .event
            .as_deref()
            .unwrap_or_default()
            .contains(['\r', '\n'])
    );
    assert!(
        !event
            .id
            .as_deref()
            .unwrap_or_default()
            .contains(['\r', '\n', '\0'])
    );
    let one = encode_sse(std::slice::from_ref(&SseItem::Event(event.clone())));
    assert_eq!(
        decode_sse(usize::MAX, [&one[..]]),
        vec![Ok(SseItem::Event(event.clone()))]
    );
}
