use super::*;

/// Every item the decoder yields for `input` pushed in the given chunks, then `finish`; the
/// sizes of errors are zeroed, as they depend on how much input had arrived.
fn decode_chunks<'a>(
    max: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<SseItem>> {
    let mut dec = SseDecoder::new(max);
    let mut items = Vec::new();
    for chunk in chunks {
        dec.push(chunk);
        items.extend(std::iter::from_fn(|| dec.next_item()));
    }
    dec.finish();
    assert!(dec.next_item().is_none());
    items
        .into_iter()
        .map(|item| {
            item.map_err(|e| match e {
                Error::TooLarge {
                    limit, location, ..
                } => Error::TooLarge {
                    size: 0,
                    limit,
                    location,
                },
                other => other,
            })
        })
        .collect()
}

fn decode(input: &[u8]) -> Vec<Result<SseItem>> {
    decode_chunks(1 << 20, [input])
}

fn event(data: &str) -> Result<SseItem> {
    Ok(SseItem::Event(SseEvent::new(data)))
}

fn comment(text: &str) -> Result<SseItem> {
    Ok(SseItem::Comment(text.into()))
}

fn encode(event: &SseEvent) -> BytesMut {
    let mut out = BytesMut::new();
    SseEncoder::new().encode_event(event, &mut out).unwrap();
    out
}

const CORPUS: &[&[u8]] = &[
    b"\xEF\xBB\xBFdata: first\r\n\r\nevent: add\rdata: a\rdata\r\rid: 1\n\n",
    b": keep-alive\n\nid: 2\nretry: 1500\ndata: {\"jsonrpc\":\"2.0\"}\r\n\r\n",
    b"data:  two spaces\ndata:no-space\nfoo: bar\nevent\ndata: x\n\n",
    b"id: a\0b\ndata: nul id ignored\n\nid\ndata: reset\n\nretry: 12x\ndata: r\n\n",
    b"data: \xff\xfe bad utf-8\n\ndata: way too long for the limit here\ndata: y\n\n",
    b"data: ok\n\n: comment inside\ndata: z\n\ndata: never dispatched",
    b"\r\n\n\r\rdata: after blanks\r\n\r\nid: 3\n\n:\n\ndata\n\n",
    b"data: 0123456789012345678901234567890123456789\n: after\n\ndata: end\n\n",
];

#[test]
fn every_split_decodes_like_one_push() {
    for &input in CORPUS {
        for max in [24, 1 << 20] {
            let whole = decode_chunks(max, [input]);
            for cut in 0..=input.len() {
                let (a, b) = input.split_at(cut);
                assert_eq!(
                    decode_chunks(max, [a, b]),
                    whole,
                    "cut at {cut} of {:?}",
                    String::from_utf8_lossy(input)
                );
            }
            assert_eq!(decode_chunks(max, input.chunks(1)), whole);
        }
    }
}

#[test]
fn line_endings_crlf_lf_and_cr() {
    assert_eq!(
        decode(b"data: a\r\ndata: b\ndata: c\rdata: d\r\n\r\n"),
        vec![event("a\nb\nc\nd")]
    );
    // A CR ending a push, then an LF starting the next: one line ending, not two.
    let mut dec = SseDecoder::new(64);
    dec.push(b"data: a\r");
    assert!(dec.next_item().is_none());
    dec.push(b"\ndata: b\r");
    assert!(dec.next_item().is_none());
    dec.push(b"\r");
    assert_eq!(dec.next_item(), Some(event("a\nb")));
    dec.push(b"\n");
    assert!(dec.next_item().is_none());
}

#[test]
fn fields_follow_whatwg() {
    let items = decode(
        b"event: add\ndata:  lead\ndata\nunknown: x\nid: 9\nretry: 250\ndata: y\n\n\
          data: next\n\n",
    );
    let first = SseEvent::new(" lead\n\ny")
        .with_event("add")
        .with_id("9")
        .with_retry(250);
    let second = SseEvent::new("next").with_id("9");
    assert_eq!(
        items,
        vec![Ok(SseItem::Event(first)), Ok(SseItem::Event(second))]
    );
}

#[test]
fn data_lines_and_empty_data() {
    assert_eq!(decode(b"data\n\n"), vec![event("")]);
    assert_eq!(decode(b"data:\ndata:\n\n"), vec![event("\n")]);
    assert_eq!(decode(b"data: a\ndata:\n\n"), vec![event("a\n")]);
    assert_eq!(decode(b"event: x\n\ndata: b\n\n"), vec![event("b")]);
    assert_eq!(decode(b"data:a:b\n\n"), vec![event("a:b")]);
}

#[test]
fn comments_are_surfaced() {
    assert_eq!(
        decode(b": ping\n:\n:  two\ndata: x\n: mid\n\n"),
        vec![
            comment("ping"),
            comment(""),
            comment(" two"),
            comment("mid"),
            event("x")
        ]
    );
}

#[test]
fn id_rules() {
    let mut dec = SseDecoder::new(64);
    dec.push(b"id: 5\n\n");
    assert!(dec.next_item().is_none());
    assert_eq!(dec.last_event_id(), Some("5"));
    dec.push(b"id: 6\0\ndata: a\n\n");
    let SseItem::Event(a) = dec.next_item().unwrap().unwrap() else {
        panic!("expected an event")
    };
    assert_eq!(a.id.as_deref(), Some("5"));
    dec.push(b"id\ndata: b\n\n");
    let SseItem::Event(b) = dec.next_item().unwrap().unwrap() else {
        panic!("expected an event")
    };
    assert_eq!(b.id.as_deref(), Some(""));
    assert_eq!(dec.last_event_id(), None);
    // An id takes effect at the blank line; at the end of the stream it is discarded.
    dec.push(
        b"id: 7
data: c
",
    );
    assert!(dec.next_item().is_none());
    assert_eq!(dec.last_event_id(), None);
    dec.push(
        b"
id: 8
data: lost",
    );
    assert!(dec.next_item().is_some());
    assert_eq!(dec.last_event_id(), Some("7"));
    dec.finish();
    dec.push(
        b"data: d

",
    );
    let SseItem::Event(d) = dec.next_item().unwrap().unwrap() else {
        panic!("expected an event")
    };
    assert_eq!(
        (d.id.as_deref(), dec.last_event_id()),
        (Some("7"), Some("7"))
    );
}

#[test]
fn retry_rules() {
    let mut dec = SseDecoder::new(256);
    dec.push(b"retry: 3000\n\nretry: 12a\nretry: -1\nretry:\nretry: 1.5\ndata: a\n\n");
    let SseItem::Event(a) = dec.next_item().unwrap().unwrap() else {
        panic!("expected an event")
    };
    assert_eq!((a.retry, dec.retry()), (None, Some(3000)));
    dec.push(b"retry: 99999999999999999999999\nretry:42\ndata: b\n\n");
    let SseItem::Event(b) = dec.next_item().unwrap().unwrap() else {
        panic!("expected an event")
    };
    assert_eq!((b.retry, dec.retry()), (Some(42), Some(42)));
}

#[test]
fn bom_is_skipped_once() {
    assert_eq!(decode(b"\xEF\xBB\xBFdata: a\n\n"), vec![event("a")]);
    // A second BOM is part of the field name, which is then unknown.
    assert_eq!(decode(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), vec![]);
    assert_eq!(decode(b"\xEF\xBBdata: a\n\n"), vec![]);
    let mut dec = SseDecoder::new(64);
    dec.push(b"\xEF");
    assert!(dec.next_item().is_none());
    dec.push(b"\xBB\xBFdata: a\n\n");
    assert_eq!(dec.next_item(), Some(event("a")));
}

#[test]
fn invalid_utf8_is_replaced() {
    assert_eq!(
        decode(b"data: a\xffb\xe2\x82\n\n"),
        vec![event("a\u{FFFD}b\u{FFFD}")]
    );
}

#[test]
fn oversized_event_is_reported_and_skipped_without_buffering() {
    let mut dec = SseDecoder::new(16);
    dec.push(b"data: ok\n\nid: 1\ndata: 0123456789");
    assert_eq!(dec.next_item(), Some(event("ok")));
    match dec.next_item() {
        Some(Err(Error::TooLarge {
            size: 21,
            limit: 16,
            location,
        })) => assert_eq!(location, "event starting at byte offset 10"),
        other => panic!("{other:?}"),
    }
    for _ in 0..100 {
        dec.push(b"more of the same event\n");
        assert!(dec.next_item().is_none());
        assert!(dec.buffer(0).len() < 32);
    }
    dec.push(b"\ndata: next\n\n");
    let SseItem::Event(next) = dec.next_item().unwrap().unwrap() else {
        panic!("expected an event")
    };
    // The id of the skipped event still took effect before the limit was passed.
    assert_eq!(next, SseEvent::new("next").with_id("1"));
}

#[test]
fn oversized_single_line_in_one_push() {
    let mut dec = SseDecoder::new(8);
    dec.push(b": 0123456789\ndata: x\n\ndata: y\n\n");
    assert!(matches!(
        dec.next_item(),
        Some(Err(Error::TooLarge { size: 12, .. }))
    ));
    assert_eq!(dec.next_item(), Some(event("y")));
}

#[test]
fn finish_discards_the_incomplete_event_and_resets() {
    let mut dec = SseDecoder::new(64);
    dec.push(b"id: 4\ndata: a\n\ndata: pending\n");
    assert_eq!(
        dec.next_item().unwrap().unwrap(),
        SseItem::Event(SseEvent::new("a").with_id("4"))
    );
    assert!(dec.next_item().is_none());
    dec.finish();
    dec.push(b"\xEF\xBB\xBF\ndata: b\n\n");
    let SseItem::Event(b) = dec.next_item().unwrap().unwrap() else {
        panic!("expected an event")
    };
    assert_eq!(b, SseEvent::new("b").with_id("4"));
}

#[test]
fn encoder_round_trips() {
    let events = [
        SseEvent::new(""),
        SseEvent::new("\n"),
        SseEvent::new("a\n"),
        SseEvent::new("\na\n\nb"),
        SseEvent::new(" lead: colon").with_event(" spaced"),
        SseEvent::new("x").with_event("").with_id(""),
        SseEvent::new("x").with_event("nul\0ok").with_id(" 7 "),
        SseEvent::new("{\"a\":1}").with_id("ü-1").with_retry(0),
        SseEvent::new("x").with_retry(u64::MAX),
    ];
    for e in events {
        assert_eq!(decode(&encode(&e)), vec![Ok(SseItem::Event(e.clone()))]);
    }
    let crlf = SseEvent::new("a\r\nb\rc\r");
    assert_eq!(decode(&encode(&crlf)), vec![event("a\nb\nc\n")]);
    assert_eq!(&encode(&SseEvent::new(""))[..], b"data:\n\n");
    assert_eq!(
        &encode(
            &SseEvent::new("1")
                .with_event("e")
                .with_id("i")
                .with_retry(5)
        )[..],
        b"event: e\nid: i\nretry: 5\ndata: 1\n\n"
    );
}

#[test]
fn encoder_rejects_fields_that_break_the_stream() {
    let enc = SseEncoder::new();
    let mut out = BytesMut::new();
    for bad in [
        SseEvent::new("x").with_id("a\nb"),
        SseEvent::new("x").with_id("a\rb"),
        SseEvent::new("x").with_id("a\0b"),
        SseEvent::new("x").with_event("a\nevent: b"),
        SseEvent::new("x").with_event("a\r"),
    ] {
        assert!(matches!(
            enc.encode_event(&bad, &mut out),
            Err(Error::InvalidMessage { .. })
        ));
        assert!(out.is_empty());
    }
}

#[test]
fn comments_encode_line_by_line() {
    let mut out = BytesMut::new();
    SseEncoder::new().encode_comment("a\r\nb\n", &mut out);
    assert_eq!(&out[..], b": a\n: b\n:\n\n");
    assert_eq!(decode(&out), vec![comment("a"), comment("b"), comment("")]);
    out.clear();
    SseEncoder::new().encode_comment("", &mut out);
    assert_eq!(&out[..], b":\n\n");
}
