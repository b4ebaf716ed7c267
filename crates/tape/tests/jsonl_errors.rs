//! Reading broken JSONL tapes: errors say where (line and byte) and what; a torn tail is
//! told apart from corruption; newer versions and other files are refused clearly.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Write;

use shadowcat_tape::{Error, JsonlReader, TapeFrame};

const HEADER: &str = r#"{"shadowcat_tape":"jsonl","version":1,"tape_id":"t","started_at":"1970-01-01T00:00:00.000000000Z","started_at_unix_ns":0,"shadowcat_version":"0.1.0"}"#;
const PING: &str = r#"{"offset_ns":1,"direction":"client_to_server","edge":"client","message":{"jsonrpc":"2.0","id":1,"method":"ping"}}"#;

fn tape(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Reads a tape named `tape.jsonl`: the header's error, or every frame's result.
fn read(text: &str) -> Result<Vec<Result<TapeFrame, Error>>, Error> {
    Ok(JsonlReader::named(text.as_bytes(), "tape.jsonl")?.collect())
}

fn header_error(text: &str) -> Error {
    read(text).expect_err("the header is refused")
}

#[test]
fn a_bad_frame_names_its_line_byte_and_field() {
    let missing = r#"{"offset_ns":5,"edge":"client","message":{}}"#;
    let text = tape(&[HEADER, PING, missing, PING]);
    let results = read(&text).unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    let err = results[1].as_ref().unwrap_err();
    let line_start = HEADER.len() + 1 + PING.len() + 1;
    // serde_json notices the missing field at the object's closing brace.
    let at = line_start + missing.len() - 1;
    assert_eq!(
        err.to_string(),
        format!("tape.jsonl:3 (byte {at}): frame: missing field `direction`")
    );
    assert_eq!(err.position().unwrap().line, 3);
    assert!(!err.is_torn_tail());
    // The reader goes on past a malformed line.
    assert!(results[2].is_ok());
}

#[test]
fn frame_errors_point_at_the_offending_byte() {
    let bad_direction = r#"{"offset_ns":5,"direction":"sideways","edge":"client","message":{}}"#;
    let text = tape(&[HEADER, bad_direction]);
    let err = read(&text).unwrap().remove(0).unwrap_err();
    // The byte is the value's closing quote, where serde_json knew it was wrong.
    let column = bad_direction.find("\"sideways\"").unwrap() + "\"sideways\"".len() - 1;
    assert_eq!(
        err.to_string(),
        format!(
            "tape.jsonl:2 (byte {}): frame: unknown variant `sideways`, expected `client_to_server` or `server_to_client`",
            HEADER.len() + 1 + column
        )
    );

    let cases = [
        ("", "empty line"),
        ("[1]", "frame: not a JSON object"),
        ("\"x\"", "frame: not a JSON object"),
        (
            r#"{"offset_ns":-1,"direction":"client_to_server","edge":"client","message":{}}"#,
            "frame: invalid value: integer `-1`, expected u64",
        ),
        (
            r#"{"offset_ns":1,"direction":"client_to_server","edge":"client"}"#,
            "frame: missing field `message` (or `raw` or `raw_base64`)",
        ),
        (
            r#"{"offset_ns":1,"direction":"client_to_server","edge":"client","raw":"x","raw_base64":"eA=="}"#,
            r#"frame: both "raw" and "raw_base64""#,
        ),
        (
            r#"{"offset_ns":1,"direction":"client_to_server","edge":"client","raw_base64":"eA="}"#,
            r#"frame: "raw_base64": base64 length is not a multiple of 4"#,
        ),
        (
            r#"{"offset_ns":1,"direction":"client_to_server","edge":"client","http":{"headers":{"Content-Type":"x"}},"message":{}}"#,
            r#"frame: http header name "Content-Type" is not lowercase"#,
        ),
        (
            r#"{"offset_ns":1,"direction":"client_to_server","edge":"client","message":{}} x"#,
            "frame: trailing characters",
        ),
    ];
    for (line, reason) in cases {
        let text = tape(&[HEADER, line, PING]);
        let results = read(&text).unwrap();
        match &results[0] {
            Err(Error::Malformed { at, reason: got }) => {
                assert_eq!(got, reason, "{line}");
                assert_eq!(at.line, 2);
                assert!(at.byte > HEADER.len() as u64);
            }
            other => panic!("{line}: {other:?}"),
        }
        assert!(results[1].is_ok(), "{line}: the next line still reads");
    }
}

#[test]
fn a_cut_last_line_is_a_torn_tail() {
    let whole = tape(&[HEADER, PING, PING]);
    let complete_len = HEADER.len() + 1 + PING.len() + 1;
    // Every cut inside the last frame line is a torn tail at that line's start.
    for cut in complete_len + 1..whole.len() - 1 {
        let results = read(&whole[..cut]).unwrap();
        assert_eq!(results.len(), 2, "cut at {cut}");
        assert!(results[0].is_ok());
        match &results[1] {
            Err(Error::TornTail { at, len }) => {
                assert_eq!((at.line, at.byte), (3, complete_len as u64), "cut at {cut}");
                assert_eq!(*len, (cut - complete_len) as u64);
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
        assert!(results[1].as_ref().unwrap_err().is_torn_tail());
    }
    // A complete last line that only lacks its line feed is accepted.
    let results = read(&whole[..whole.len() - 1]).unwrap();
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(results.len(), 2);
}

#[test]
fn torn_tail_message_and_place_to_cut() {
    let text = format!("{}{}", tape(&[HEADER, PING]), &PING[..20]);
    let mut reader = JsonlReader::named(text.as_bytes(), "tape.jsonl").unwrap();
    assert!(reader.next().unwrap().is_ok());
    let cut = reader.next_position().byte;
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "tape.jsonl:3 (byte {cut}): torn tail: the last line is incomplete (20 bytes, no line feed)"
        )
    );
    assert!(reader.next().is_none(), "a torn tail ends the tape");
    // Cutting there leaves a clean tape.
    let repaired = &text[..cut as usize];
    assert!(read(repaired).unwrap().iter().all(Result::is_ok));
}

#[test]
fn a_cut_header_is_torn_but_a_non_tape_is_not() {
    for cut in 1..HEADER.len() {
        let err = header_error(&HEADER[..cut]);
        assert!(err.is_torn_tail(), "cut at {cut}: {err}");
    }
    let err = header_error("");
    assert_eq!(
        err.to_string(),
        "tape.jsonl:1 (byte 0): empty file: no header line"
    );
    let err = header_error("hello world");
    assert!(!err.is_torn_tail());
    assert!(
        err.to_string().starts_with(
            "tape.jsonl:1 (byte 0): not a Shadowcat tape: line 1 is not a JSON object"
        ),
        "{err}"
    );
}

#[test]
fn other_files_and_formats_are_refused() {
    let cases = [
        (
            r#"{"a":1}"#,
            r#"not a Shadowcat tape: no "shadowcat_tape" field"#,
        ),
        (
            r#"{"shadowcat_tape":"binary","version":1}"#,
            r#"not a JSONL tape: "shadowcat_tape" is "binary""#,
        ),
        (
            r#"{"shadowcat_tape":"jsonl"}"#,
            "header: missing field `version`",
        ),
        (
            r#"{"shadowcat_tape":"jsonl","version":0}"#,
            r#"header: "version" must be a positive integer, not 0"#,
        ),
        (
            r#"{"shadowcat_tape":"jsonl","version":"1"}"#,
            r#"header: "version" must be a positive integer, not "1""#,
        ),
        (
            r#"{"shadowcat_tape":"jsonl","version":1,"tape_id":"t"}"#,
            "header: missing field `started_at`",
        ),
    ];
    for (line, reason) in cases {
        match header_error(&tape(&[line])) {
            Error::Malformed { at, reason: got } => {
                assert_eq!(got, reason);
                assert_eq!(at.line, 1);
            }
            other => panic!("{line}: {other:?}"),
        }
    }
}

#[test]
fn a_newer_version_is_refused_by_name() {
    let v2 = r#"{"shadowcat_tape":"jsonl","version":2,"something_new":true}"#;
    let err = header_error(&tape(&[v2, PING]));
    assert!(matches!(
        err,
        Error::NewerVersion {
            found: 2,
            supported: 1,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "tape.jsonl:1 (byte 0): written by a newer Shadowcat: version 2; this one reads 1"
    );
}

#[test]
fn unknown_fields_are_ignored_and_null_is_a_message() {
    let header = HEADER.replace("\"tape_id\"", "\"future\":[1],\"tape_id\"");
    let frame = r#"{"offset_ns":1,"direction":"server_to_client","edge":"server","extra":{"x":1},"message":null}"#;
    let frames = read(&tape(&[&header, frame])).unwrap();
    assert_eq!(&frames[0].as_ref().unwrap().message[..], b"null");
}

#[test]
fn overlong_lines_are_skipped_without_being_kept() {
    let long = format!(
        r#"{{"offset_ns":1,"direction":"client_to_server","edge":"client","raw":"{}"}}"#,
        "x".repeat(1000)
    );
    let text = tape(&[HEADER, &long, PING]);
    let mut reader = JsonlReader::named(text.as_bytes(), "tape.jsonl").unwrap();
    reader.set_max_line_len(500);
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "tape.jsonl:2 (byte {}): line longer than 500 bytes",
            HEADER.len() + 1
        )
    );
    assert!(reader.next().unwrap().is_ok());
    assert!(reader.next().is_none());
}

#[test]
fn read_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(tape(&[HEADER, "{}"]).as_bytes()).unwrap();
    drop(file);
    let err = JsonlReader::open(&path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2 (byte ", path.display())),
        "{err}"
    );
    let missing = JsonlReader::open(dir.path().join("nope.jsonl")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
    assert!(missing.to_string().starts_with("opening "), "{missing}");
}

#[test]
fn damaged_golden_tapes_never_panic() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.jsonl");
    let golden = std::fs::read(path).unwrap();
    shadowcat_tape::fuzzing::jsonl_read(&golden);
    for cut in (0..golden.len()).step_by(3) {
        shadowcat_tape::fuzzing::jsonl_read(&golden[..cut]);
    }
    let mut damaged = golden.clone();
    for i in (0..golden.len()).step_by(13) {
        for byte in [b'"', b'}', b'\n', b'\\', 0xff] {
            damaged[i] = byte;
            shadowcat_tape::fuzzing::jsonl_read(&damaged);
        }
        damaged[i] = golden[i];
    }
}
