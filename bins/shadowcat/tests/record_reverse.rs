//! Recording through `shadowcat reverse --record DIR`: the Python `mcp` 2.x client over
//! Streamable HTTP, server-everything on stdio behind (a process per session); one tape per
//! session, HTTP metadata on the client edge.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[path = "support/tapes.rs"]
mod tapes;

use std::time::Duration;

use serde_json::json;
use shadowcat_tape::{Direction, Edge};
use shadowcat_test_support::{
    HttpServer, http_client_mcp2, json_stdout, run_with_timeout, server_everything_stdio, temp_dir,
};
use tapes::{assert_offsets_non_decreasing, at, json, methods, read_tape, tapes_in};

const TIMEOUT: Duration = Duration::from_secs(60);

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
