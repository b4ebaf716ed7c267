//! JSONL tapes round-trip: whatever is written reads back equal, message bytes exactly, and
//! the message of every JSON frame is a JSON value in the line (so `jq` can reach into it).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;

use proptest::prelude::*;
use shadowcat_tape::{Direction, Edge, HttpMeta, JsonlReader, JsonlWriter, TapeFrame, TapeHeader};

/// Whitespace a sender might put between JSON tokens, line breaks included.
fn ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", " ", "  ", "\t", "\n", "\r\n", " \n\t"])
}

/// Numbers as they appear on the wire, including ones no `f64` or `u64` holds.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        prop::sample::select(vec![
            "0",
            "-0",
            "-0.0",
            "1E+2",
            "1e-7",
            "123456789012345678901234567890",
            "-98765432109876543210.000000000000000000001",
            "18446744073709551616",
            "9007199254740993",
            "1.7976931348623157e308",
        ])
        .prop_map(str::to_owned),
    ]
}

/// JSON strings, with escapes written out in the unusual ways the grammar allows.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop::sample::select(vec![
            r#""""#,
            r#""caf\u00e9""#,
            r#""\uD83D\uDE00 grin""#,
            r#""\ud83d\ude00""#,
            "\"caf\u{e9} \u{1f600}\"",
            r#""\/\b\f\n\r\t\"\\""#,
            r#""\u0000""#,
            r#""line\u2028sep""#,
        ])
        .prop_map(str::to_owned),
    ]
}

/// A JSON text with arbitrary whitespace between tokens.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number(),
        string(),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                let body: Vec<String> = items
                    .into_iter()
                    .map(|(a, v, b)| format!("{a}{v}{b}"))
                    .collect();
                format!("[{}]", body.join(","))
            }),
            prop::collection::vec((ws(), string(), ws(), ws(), inner, ws()), 0..6).prop_map(
                |members| {
                    let body: Vec<String> = members
                        .into_iter()
                        .map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }
            ),
        ]
    })
}

/// Message bytes: mostly JSON (sometimes padded with whitespace), sometimes anything.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => json_text().prop_map(String::into_bytes),
        2 => (ws(), json_text(), ws()).prop_map(|(a, j, b)| format!("{a}{j}{b}").into_bytes()),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn http() -> impl Strategy<Value = HttpMeta> {
    (
        prop::option::of(any::<u16>()),
        prop::collection::btree_map("[a-z][a-z0-9-]{0,15}", any::<String>(), 0..4),
        prop::option::of(any::<String>()),
    )
        .prop_map(|(status, headers, event_id)| {
            let mut meta = HttpMeta::new();
            meta.status = status;
            meta.headers = headers;
            meta.event_id = event_id;
            meta
        })
}

fn frame() -> impl Strategy<Value = TapeFrame> {
    (
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(any::<String>()),
        message(),
        prop::option::of(http()),
    )
        .prop_map(|(offset, c2s, client, session_id, message, http)| {
            let direction = if c2s {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            let edge = if client { Edge::Client } else { Edge::Server };
            let mut frame = TapeFrame::new(offset, direction, edge, message);
            frame.session_id = session_id;
            frame.http = http;
            frame
        })
}

fn header() -> impl Strategy<Value = TapeHeader> {
    (
        any::<String>(),
        any::<u64>(),
        any::<String>(),
        prop::option::of(any::<String>()),
        prop::collection::vec(any::<String>(), 0..3),
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..3),
    )
        .prop_map(|(id, unix_ns, version, name, tags, metadata)| {
            let mut header = TapeHeader::from_unix_ns(id, unix_ns).with_shadowcat_version(version);
            header.name = name;
            header.tags = tags;
            header.metadata = metadata
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect::<BTreeMap<_, _>>();
            header
        })
}

fn write_tape(header: &TapeHeader, frames: &[TapeFrame]) -> Vec<u8> {
    let mut writer = JsonlWriter::new(Vec::new());
    writer.write_header(header).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        // Every other frame that is valid JSON goes the way parsed messages are recorded:
        // both ways must give the same line.
        let parsed = serde_json::from_slice::<serde::de::IgnoredAny>(&frame.message).is_ok();
        if parsed && i % 2 == 1 {
            writer.write_parsed_frame(frame).unwrap();
        } else {
            writer.write_frame(frame).unwrap();
        }
    }
    writer.into_inner().unwrap()
}

#[test]
fn session_ids_are_written_for_every_frame_as_they_change() {
    let sessions = [
        Some("a\"1"),
        Some("a\"1"),
        Some("b"),
        None,
        Some("a\"1"),
        Some("b"),
    ];
    let frames: Vec<TapeFrame> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut f = TapeFrame::new(
                i as u64 * 1_000_000_007,
                Direction::ClientToServer,
                Edge::Client,
                &b"{}"[..],
            );
            f.session_id = s.map(str::to_owned);
            f
        })
        .collect();
    let tape = write_tape(&TapeHeader::from_unix_ns("t", 0), &frames);
    let read: Vec<TapeFrame> = JsonlReader::new(&tape[..])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(read, frames);
    let text = String::from_utf8(tape).unwrap();
    assert!(
        text.contains(r#"{"offset_ns":5000000035,"direction""#),
        "{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames_round_trip(header in header(), frames in prop::collection::vec(frame(), 0..8)) {
        let tape = write_tape(&header, &frames);
        prop_assert_eq!(tape.iter().filter(|&&b| b == b'\n').count(), frames.len() + 1);
        prop_assert_eq!(tape.last(), Some(&b'\n'));

        let mut reader = JsonlReader::new(&tape[..]).unwrap();
        prop_assert_eq!(reader.header(), &header);
        prop_assert_eq!(reader.version(), 1);
        let read: Vec<TapeFrame> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(read.len(), frames.len());
        for (got, want) in read.iter().zip(&frames) {
            // Compare bytes first for a readable failure, then everything.
            prop_assert_eq!(
                String::from_utf8_lossy(&got.message),
                String::from_utf8_lossy(&want.message)
            );
            prop_assert_eq!(got, want);
        }
        prop_assert_eq!(reader.next_position().byte, tape.len() as u64);
    }

    #[test]
    fn json_messages_are_json_values_in_the_line(message in json_text(), pad in ws()) {
        let bytes = format!("{pad}{message}{pad}");
        let frame = TapeFrame::new(1, Direction::ServerToClient, Edge::Server, bytes.clone());
        let tape = write_tape(&TapeHeader::from_unix_ns("t", 0), &[frame]);
        let line = tape.split(|&b| b == b'\n').nth(1).unwrap();
        let line: serde_json::Value = serde_json::from_slice(line).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&bytes).unwrap();
        prop_assert_eq!(&line["message"], &expected);
    }

    #[test]
    fn arbitrary_input_never_panics(data in prop::collection::vec(any::<u8>(), 0..512)) {
        shadowcat_tape::fuzzing::jsonl_read(&data);
    }
}

#[test]
fn message_field_is_an_object_for_jq() {
    let request = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}"#;
    let frame = TapeFrame::new(42, Direction::ClientToServer, Edge::Client, &request[..])
        .with_session_id("s-1");
    let tape = write_tape(&TapeHeader::from_unix_ns("t", 0), &[frame]);
    let text = String::from_utf8(tape).unwrap();
    let line = text.lines().nth(1).unwrap();
    assert_eq!(
        line,
        r#"{"offset_ns":42,"direction":"client_to_server","edge":"client","session_id":"s-1","message":{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}}"#
    );
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(value["message"].is_object());
    assert_eq!(value["message"]["method"], "tools/call");
    assert_eq!(value["message"]["params"]["name"], "echo");
}

#[test]
fn exact_bytes_survive_whitespace_escapes_and_big_numbers() {
    let messages: [&[u8]; 6] = [
        b"{ \"jsonrpc\" : \"2.0\",\t\"id\":1 , \"result\":{} }",
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"n\":123456789012345678901234567890}}",
        br#"{"jsonrpc":"2.0","method":"x","params":{"s":"caf\u00e9 \ud83d\ude00 \/"}}"#,
        b"{\n  \"jsonrpc\": \"2.0\",\r\n  \"id\": 3\n}\n",
        b"null",
        b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"x\":1e400}}",
    ];
    let frames: Vec<TapeFrame> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| TapeFrame::new(i as u64, Direction::ServerToClient, Edge::Client, *m))
        .collect();
    let tape = write_tape(&TapeHeader::from_unix_ns("t", 0), &frames);
    let read: Vec<TapeFrame> = JsonlReader::new(&tape[..])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (got, want) in read.iter().zip(messages) {
        assert_eq!(&got.message[..], want);
    }
    // Every one of them is still a JSON value `jq` can reach into.
    let text = String::from_utf8(tape).unwrap();
    for line in text.lines().skip(1) {
        // (`1e400` is valid JSON but out of `serde_json::Value`'s range: look at the text.)
        let fields: BTreeMap<&str, &serde_json::value::RawValue> =
            serde_json::from_str(line).unwrap();
        let message = fields["message"].get();
        assert!(message.starts_with(['{', 'n']), "{line}");
    }
}

#[test]
fn writer_refuses_out_of_order_use() {
    let frame = TapeFrame::new(0, Direction::ClientToServer, Edge::Client, &b"{}"[..]);
    let mut writer = JsonlWriter::new(Vec::new());
    assert!(writer.write_frame(&frame).is_err());
    writer
        .write_header(&TapeHeader::from_unix_ns("t", 0))
        .unwrap();
    assert!(
        writer
            .write_header(&TapeHeader::from_unix_ns("t", 0))
            .is_err()
    );
    writer.write_frame(&frame).unwrap();

    // Appending to an existing tape writes frames only.
    let mut tape = writer.into_inner().unwrap();
    let mut appender = JsonlWriter::append(&mut tape);
    appender.write_frame(&frame).unwrap();
    appender.flush().unwrap();
    drop(appender);
    assert_eq!(JsonlReader::new(&tape[..]).unwrap().count(), 2);
}

#[test]
fn files_round_trip_through_create_and_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let frame = TapeFrame::new(9, Direction::ServerToClient, Edge::Server, &b"[1, 2]"[..])
        .with_http(HttpMeta::new().with_status(200).with_event_id("e-1"));
    let mut writer = JsonlWriter::create(&path).unwrap();
    writer
        .write_header(&TapeHeader::from_unix_ns("t", 5))
        .unwrap();
    writer.write_frame(&frame).unwrap();
    writer.flush().unwrap();
    drop(writer);
    let mut reader = JsonlReader::open(&path).unwrap();
    assert_eq!(reader.header().started_at_unix_ns, 5);
    assert_eq!(reader.next().unwrap().unwrap(), frame);
    assert!(reader.next().is_none());
}
