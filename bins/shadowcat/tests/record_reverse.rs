//! Recording through `shadowcat reverse --record DIR`: the Python `mcp` 2.x client over
//! Streamable HTTP, server-everything behind on stdio (a process per session) or on
//! Streamable HTTP; one tape per session, HTTP metadata (statuses, SSE event ids) on the
//! HTTP edges.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[path = "support/tapes.rs"]
mod tapes;

use std::time::Duration;

use serde_json::json;
use shadowcat_tape::{Direction, Edge, TapeFrame};
use shadowcat_test_support::{
    EverythingTransport, HttpServer, http_client_mcp2, json_stdout, run_with_timeout,
    server_everything_http, server_everything_stdio, temp_dir,
};
use tapes::{assert_offsets_non_decreasing, at, json, methods, read_tape, tapes_in};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a recorded message is a response (it has an id and no method).
fn is_response(frame: &TapeFrame) -> bool {
    let message = json(frame);
    message.get("id").is_some() && message.get("method").is_none()
}

/// Checks that the SSE event ids among `frames` are non-empty and distinct.
fn assert_distinct_event_ids(frames: &[&TapeFrame]) {
    let mut ids: Vec<&str> = frames
        .iter()
        .filter_map(|f| f.http.as_ref()?.event_id.as_deref())
        .collect();
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "an event id is used once");
}

/// The client edge's HTTP metadata. The proxy sends every message for the client in a 200
/// response: a response in its POST's JSON answer or SSE stream, anything else in an SSE
/// event, which carries the id the proxy gave it (for resumption). A server message that
/// waited for the client to open a stream had not gone out when it was recorded: it has
/// neither. The client's messages have no response status.
fn assert_client_edge_http(frames: &[TapeFrame]) {
    let sent = at(frames, Direction::ServerToClient, Edge::Client);
    for f in &sent {
        let http = f.http.as_ref().expect("the client edge is HTTP");
        if is_response(f) {
            assert_eq!(http.status, Some(200), "{f:?}");
        } else if http.status.is_some() {
            assert_eq!(http.status, Some(200), "{f:?}");
            assert!(http.event_id.is_some(), "sent in an SSE event: {f:?}");
        } else {
            assert_eq!(http.event_id, None, "{f:?}");
        }
    }
    assert_distinct_event_ids(&sent);
    for f in at(frames, Direction::ClientToServer, Edge::Client) {
        let http = f.http.as_ref().expect("the client edge is HTTP");
        assert_eq!((http.status, &http.event_id), (None, &None), "{f:?}");
    }
}

#[test]
fn python_mcp2_sessions_are_recorded_one_tape_each() {
    let dir = temp_dir("record-reverse");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shadowcat"));
    command
        .args(["reverse", "--listen", "127.0.0.1:0", "--record"])
        .arg(dir.path())
        .args(["--record-edges", "both"])
        .arg("--")
        .args(server_everything_stdio().argv());
    let mut proxy = HttpServer::start(&mut command).unwrap();

    let mut client = http_client_mcp2(proxy.url(), TIMEOUT - Duration::from_secs(10));
    client.args(["--clients", "2", "--message", "taped"]);
    let out = run_with_timeout(&mut client, TIMEOUT);
    let report = json_stdout(&out);
    let context = format!("{out}\nshadowcat: {}", proxy.stderr_tail(40));
    assert_eq!(report["failures"], json!([]), "{context}");
    assert!(out.success(), "{context}");
    // SIGTERM: the proxy finishes its tapes.
    proxy.stop();
    let opened = proxy.stderr().matches("session opened").count();

    // The client opens more than one session per client (each is a tape).
    let paths = tapes_in(dir.path());
    assert!(opened >= 2, "{context}");
    assert_eq!(
        paths.len(),
        opened,
        "a tape per session: {paths:?} {context}"
    );
    let mut sessions = Vec::new();
    let mut calls = Vec::new();
    let mut echoes = 0;
    for path in &paths {
        let tape = read_tape(path);
        assert!(tape.error.is_none(), "{}: {:?}", path.display(), tape.error);
        assert_eq!(tape.header.metadata["mode"], "reverse");
        assert_eq!(tape.header.metadata["transport"], "streamable-http");
        let session = tape.header.metadata["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            tape.frames
                .iter()
                .all(|f| f.session_id.as_deref() == Some(&*session))
        );
        assert_offsets_non_decreasing(&tape.frames);
        // The client edge is HTTP; the server edge is the server's stdio.
        for f in &tape.frames {
            assert_eq!(f.http.is_some(), f.edge == Edge::Client, "{f:?}");
        }
        let sent = methods(&at(&tape.frames, Direction::ClientToServer, Edge::Client));
        // A session starts with `initialize` (or the 2026 `server/discover` probe).
        assert!(
            matches!(
                sent.first().map(String::as_str),
                Some("initialize" | "server/discover")
            ),
            "{sent:?}"
        );
        let forwarded = methods(&at(&tape.frames, Direction::ClientToServer, Edge::Server));
        assert_eq!(sent, forwarded);
        echoes += at(&tape.frames, Direction::ServerToClient, Edge::Client)
            .iter()
            .filter(|f| {
                json(f)["result"]["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Echo: taped"))
            })
            .count();
        assert_client_edge_http(&tape.frames);
        calls.extend(sent);
        sessions.push(session);
    }
    for m in ["initialize", "tools/list", "tools/call"] {
        assert!(calls.iter().any(|s| s == m), "{m} missing: {calls:?}");
    }
    assert_eq!(echoes, 2, "each client's echo answer is recorded once");
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), paths.len(), "one session per tape");
}

#[test]
fn both_edges_to_a_streamable_http_server_record_statuses_and_event_ids() {
    let mut upstream = server_everything_http(EverythingTransport::StreamableHttp);
    let dir = temp_dir("record-reverse-http");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shadowcat"));
    command
        .args(["reverse", "--listen", "127.0.0.1:0", "--record"])
        .arg(dir.path())
        .args(["--record-edges", "both", "--upstream", upstream.url()]);
    let mut proxy = HttpServer::start(&mut command).unwrap();

    let mut client = http_client_mcp2(proxy.url(), TIMEOUT - Duration::from_secs(10));
    client.args(["--message", "taped"]);
    let out = run_with_timeout(&mut client, TIMEOUT);
    let report = json_stdout(&out);
    let context = format!("{out}\nshadowcat: {}", proxy.stderr_tail(40));
    assert_eq!(report["failures"], json!([]), "{context}");
    assert!(out.success(), "{context}");
    proxy.stop();
    upstream.stop();

    let paths = tapes_in(dir.path());
    assert!(!paths.is_empty(), "{context}");
    let mut streamed = 0;
    for path in &paths {
        let tape = read_tape(path);
        assert!(tape.error.is_none(), "{}: {:?}", path.display(), tape.error);
        assert!(
            tape.frames.iter().all(|f| f.http.is_some()),
            "both edges are HTTP"
        );
        assert_client_edge_http(&tape.frames);
        // server-everything answers each POST with an SSE stream and keeps its events for
        // resumption: every message comes in a 200 response, in an event with an id. Only
        // a request it refuses (the 2026 `server/discover` probe) gets a JSON-RPC error on
        // an error status, with no event.
        let received = at(&tape.frames, Direction::ServerToClient, Edge::Server);
        for f in &received {
            let http = f.http.as_ref().unwrap();
            match http.status {
                Some(200) => {
                    assert!(http.event_id.is_some(), "{f:?}");
                    streamed += 1;
                }
                Some(status) => {
                    assert!(status >= 400, "{f:?}");
                    assert!(json(f)["error"].is_object(), "{f:?}");
                    assert_eq!(http.event_id, None, "{f:?}");
                }
                None => panic!("no status on the server edge: {f:?}"),
            }
        }
        assert_distinct_event_ids(&received);
        for f in at(&tape.frames, Direction::ClientToServer, Edge::Server) {
            let http = f.http.as_ref().unwrap();
            assert_eq!((http.status, &http.event_id), (None, &None), "{f:?}");
        }
    }
    // At least the answers to initialize, tools/list and tools/call.
    assert!(streamed >= 3, "{streamed} streamed messages");
}
