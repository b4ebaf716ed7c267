//! Replay reads every tape format: a conversation written with `TapeWriter` in each
//! format, read back with `read_tape`, and matched.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;

use serde_json::json;
use shadowcat_tape::{
    Direction, Edge, Matcher, Reaction, ReplayScript, TapeFormat, TapeFrame, TapeHeader,
    TapeWriter, read_tape,
};

#[test]
fn every_format_replays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let header = TapeHeader::from_unix_ns("t", 1_750_239_000_000_000_000);
    let frames = [
        (
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}),
        ),
        (
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Echo: hi"}]}}),
        ),
    ];
    for format in TapeFormat::ALL {
        let path = dir.path().join(format!("tape.{}", format.extension()));
        let mut writer = TapeWriter::create(&path, format, &header).unwrap();
        for (i, (direction, message)) in frames.iter().enumerate() {
            for edge in [Edge::Client, Edge::Server] {
                let frame = TapeFrame::new(
                    i as u64 * 1000,
                    *direction,
                    edge,
                    message.to_string().into_bytes(),
                )
                .with_session_id("s-1");
                writer.write_frame(&frame).unwrap();
            }
        }
        writer.finish().unwrap();

        let (read_header, read_frames) = read_tape(&path).unwrap();
        assert_eq!(read_header.tape_id, "t");
        assert_eq!(read_frames.len(), 4, "{format:?}");
        let script = Arc::new(ReplayScript::from_frames(&read_frames));
        assert_eq!(script.sessions.len(), 1);
        assert_eq!(script.sessions[0].edge, Some(Edge::Client));
        let mut matcher = Matcher::new(script, 0);
        let live = json!({"id":"x","params":{"arguments":{"message":"hi"},"name":"echo","_meta":{"progressToken":1}},"method":"tools/call","jsonrpc":"2.0"});
        let Reaction::Emit(out) = matcher.on_client(&live) else {
            panic!("{format:?}: no match");
        };
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message["id"], "x");
        assert_eq!(out[0].message["result"]["content"][0]["text"], "Echo: hi");
    }
}

#[test]
fn a_missing_or_foreign_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let error = read_tape(&missing).unwrap_err().to_string();
    assert!(error.contains("nope.jsonl"), "{error}");
    let foreign = dir.path().join("foreign.jsonl");
    std::fs::write(&foreign, "this is no tape\n").unwrap();
    assert!(read_tape(&foreign).is_err());
}
