//! The committed version 1 tape, `tests/golden/v1.jsonl`: a recorded MCP exchange over
//! Streamable HTTP. Every later version of Shadowcat must read it to exactly these frames.
//! While the writer writes version 1, it must also write exactly these bytes; run with
//! `SHADOWCAT_BLESS=1` to rewrite the file after a deliberate change (version 1 only).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

use shadowcat_tape::{
    Direction, Edge, HttpMeta, JSONL_VERSION, JsonlReader, JsonlWriter, TapeFrame, TapeHeader,
};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1.jsonl")
}

fn bless() -> bool {
    std::env::var_os("SHADOWCAT_BLESS").is_some_and(|v| v == "1")
}

const SESSION: &str = "5f0c9a2e8d7b4c1aa3e6f9d2b8c4e701";
const UPSTREAM_SESSION: &str = "upstream-7d41";

fn header() -> TapeHeader {
    TapeHeader::from_unix_ns("01JY2K7Q9M4T6V8X0Z2B4D6F8H", 1_750_239_000_123_456_789)
        .with_shadowcat_version("0.1.0")
        .with_name("weather demo")
        .with_tag("demo")
        .with_tag("golden")
        .with_metadata("mode", "forward".into())
        .with_metadata("transport", "streamable-http".into())
        .with_metadata("upstream", "http://127.0.0.1:8931/mcp".into())
}

fn c2s(offset_ns: u64, message: &str) -> TapeFrame {
    TapeFrame::new(
        offset_ns,
        Direction::ClientToServer,
        Edge::Client,
        message.to_owned(),
    )
    .with_session_id(SESSION)
}

fn s2c(offset_ns: u64, message: &str) -> TapeFrame {
    TapeFrame::new(
        offset_ns,
        Direction::ServerToClient,
        Edge::Client,
        message.to_owned(),
    )
    .with_session_id(SESSION)
}

fn json_post() -> HttpMeta {
    HttpMeta::new()
        .with_header("content-type", "application/json")
        .with_header("accept", "application/json, text/event-stream")
}

fn frames() -> Vec<TapeFrame> {
    let initialize = c2s(
        0,
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"inspector","version":"0.16.2"}}}"#,
    )
    .with_http(json_post());
    vec![
        initialize,
        s2c(
            4_812_000,
            r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true},"logging":{}},"serverInfo":{"name":"weather","version":"1.2.0"}}}"#,
        )
        .with_http(
            HttpMeta::new()
                .with_status(200)
                .with_header("content-type", "application/json")
                .with_header("mcp-session-id", SESSION),
        ),
        c2s(6_004_500, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .with_http(json_post().with_status(202).with_header("mcp-session-id", SESSION)),
        c2s(7_250_000, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .with_http(json_post().with_header("mcp-session-id", SESSION)),
        // The same request leaving through the upstream edge, under the upstream's session.
        TapeFrame::new(
            7_391_250,
            Direction::ClientToServer,
            Edge::Server,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .with_session_id(SESSION)
        .with_http(json_post().with_header("mcp-session-id", UPSTREAM_SESSION)),
        s2c(
            9_870_000,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get_forecast","description":"Forecast for a city","inputSchema":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","maximum":10}},"required":["city"]}}]}}"#,
        )
        .with_http(
            HttpMeta::new()
                .with_status(200)
                .with_header("content-type", "text/event-stream")
                .with_event_id("0"),
        ),
        // Sent with spaces and a unicode escape: they are kept as they were.
        c2s(
            15_000_000_000,
            r#"{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_forecast", "arguments": {"city": "Z\u00fcrich", "days": 3}, "_meta": {"progressToken": 17}}}"#,
        )
        .with_http(json_post().with_header("mcp-session-id", SESSION)),
        s2c(
            15_250_000_000,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":17,"progress":1,"total":3,"message":"fetching"}}"#,
        )
        .with_http(
            HttpMeta::new()
                .with_status(200)
                .with_header("content-type", "text/event-stream")
                .with_event_id("1"),
        ),
        s2c(
            15_900_000_000,
            r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"Zürich: 21°C, sunny; 19°C; 23°C"}],"structuredContent":{"temps":[21.0,19,23],"station":12345678901234567890123},"isError":false}}"#,
        )
        .with_http(
            HttpMeta::new()
                .with_status(200)
                .with_header("content-type", "text/event-stream")
                .with_event_id("2"),
        ),
        c2s(
            21_000_000_000,
            r#"{"jsonrpc":"2.0","id":"call-3","method":"tools/call","params":{"name":"get_tides","arguments":{}}}"#,
        )
        .with_http(json_post().with_header("mcp-session-id", SESSION)),
        s2c(
            21_004_000_000,
            r#"{"jsonrpc":"2.0","id":"call-3","error":{"code":-32602,"message":"Unknown tool: get_tides"}}"#,
        )
        .with_http(
            HttpMeta::new()
                .with_status(200)
                .with_header("content-type", "application/json"),
        ),
        // A pretty-printed request: valid JSON over several lines, kept exactly in `raw`.
        c2s(
            30_000_000_000,
            "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 4,\n  \"method\": \"ping\"\n}\n",
        )
        .with_http(json_post().with_header("mcp-session-id", SESSION)),
        s2c(30_000_900_000, r#"{"jsonrpc":"2.0","id":4,"result":{}}"#)
            .with_http(HttpMeta::new().with_status(200)),
        // A client's broken input, answered by the proxy itself, outside any session.
        TapeFrame::new(
            41_000_000_000,
            Direction::ClientToServer,
            Edge::Client,
            r#"{"jsonrpc":"2.0","id":5,"method":"#,
        )
        .with_http(json_post().with_status(400)),
        TapeFrame::new(
            41_000_000_100,
            Direction::ClientToServer,
            Edge::Client,
            &b"\xff\xfe{\x00}"[..],
        ),
        s2c(
            50_000_000_000,
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
        )
        .with_http(
            HttpMeta::new()
                .with_status(200)
                .with_header("content-type", "text/event-stream")
                .with_event_id("3"),
        ),
    ]
}

#[test]
fn golden_v1_reads_to_the_recorded_frames() {
    let mut reader = JsonlReader::open(golden_path()).expect("tests/golden/v1.jsonl");
    assert_eq!(reader.version(), 1);

    let header = reader.header().clone();
    assert_eq!(header.tape_id, "01JY2K7Q9M4T6V8X0Z2B4D6F8H");
    assert_eq!(header.started_at, "2025-06-18T09:30:00.123456789Z");
    assert_eq!(header.started_at_unix_ns, 1_750_239_000_123_456_789);
    assert_eq!(header.shadowcat_version, "0.1.0");
    assert_eq!(header.name.as_deref(), Some("weather demo"));
    assert_eq!(header.tags, ["demo", "golden"]);
    assert_eq!(header.metadata["mode"], "forward");
    assert_eq!(header.metadata["upstream"], "http://127.0.0.1:8931/mcp");
    assert_eq!(header, self::header());

    let read: Vec<TapeFrame> = reader
        .by_ref()
        .collect::<Result<_, _>>()
        .expect("no errors");
    let expected = frames();
    assert_eq!(read.len(), expected.len());
    for (i, (got, want)) in read.iter().zip(&expected).enumerate() {
        assert_eq!(got.offset_ns, want.offset_ns, "frame {i}");
        assert_eq!(got.direction, want.direction, "frame {i}");
        assert_eq!(got.edge, want.edge, "frame {i}");
        assert_eq!(got.session_id, want.session_id, "frame {i}");
        assert_eq!(got.http, want.http, "frame {i}");
        assert_eq!(got.message, want.message, "frame {i}");
        assert_eq!(got, want, "frame {i}");
    }
    // Spot checks that do not depend on the expected list above.
    assert_eq!(read[0].session_id.as_deref(), Some(SESSION));
    assert_eq!(read[13].session_id, None);
    assert_eq!(read[4].edge, Edge::Server);
    assert_eq!(
        read[5].http.as_ref().and_then(|h| h.event_id.as_deref()),
        Some("0")
    );
    assert!(
        std::str::from_utf8(&read[6].message)
            .unwrap()
            .contains(r#""Z\u00fcrich""#)
    );
    assert_eq!(&read[14].message[..], b"\xff\xfe{\x00}");
}

#[test]
fn golden_v1_message_fields_are_json_values() {
    let text = std::fs::read_to_string(golden_path()).unwrap();
    let methods: Vec<Option<String>> = text
        .lines()
        .skip(1)
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["message"]["method"].as_str().map(str::to_owned)
        })
        .collect();
    assert_eq!(methods[0].as_deref(), Some("initialize"));
    assert_eq!(methods[2].as_deref(), Some("notifications/initialized"));
    assert_eq!(methods[3].as_deref(), Some("tools/list"));
    assert_eq!(methods[6].as_deref(), Some("tools/call"));
    assert_eq!(
        methods[11].as_deref(),
        Some("ping"),
        "a pretty-printed message too"
    );
    assert_eq!(methods[13], None, "broken input has no message value");
}

#[test]
fn writer_writes_golden_v1_exactly() {
    let mut writer = JsonlWriter::new(Vec::new());
    writer.write_header(&header()).unwrap();
    for frame in frames() {
        writer.write_frame(&frame).unwrap();
    }
    let written = writer.into_inner().unwrap();
    let path = golden_path();
    if bless() {
        assert_eq!(
            JSONL_VERSION, 1,
            "v1.jsonl is frozen once the writer moves on"
        );
        std::fs::write(&path, &written).unwrap();
        return;
    }
    if JSONL_VERSION != 1 {
        return;
    }
    let golden = std::fs::read(&path).unwrap();
    assert!(
        golden == written,
        "the writer's output differs from {} (SHADOWCAT_BLESS=1 rewrites it)\n--- golden\n{}--- written\n{}",
        path.display(),
        String::from_utf8_lossy(&golden),
        String::from_utf8_lossy(&written)
    );
}
