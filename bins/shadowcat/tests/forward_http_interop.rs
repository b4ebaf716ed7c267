//! `shadowcat forward stdio --to URL` between real MCP peers: the Python `mcp` 1.x stdio client
//! launches shadowcat, which reaches the reference "everything" server over Streamable HTTP, or
//! over the legacy HTTP+SSE transport (the fallback).
//!
//! The peers are pinned under `interop/` and installed by `scripts/install-interop.sh`;
//! without them these tests fail (they do not skip). `SHADOWCAT_LOG` reaches the proxy.

use std::time::Duration;

use serde_json::{Value, json};
use shadowcat_test_support::{
    CommandLine, EverythingTransport, HttpServer, ProcessOutput, json_stdout, json_strings,
    run_with_timeout, server_everything_http, stdio_client_mcp1,
};

/// The limit for one client run, from start to exit.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the Python client asks the server to echo (the script's default).
const MESSAGE: &str = "hello through shadowcat";

/// What the client reports when `notifications/tools/list_changed` never came. Over Streamable
/// HTTP, server-everything sends it while handling `notifications/initialized`, before any
/// client can have its GET stream open, and the server drops it: the client cannot see it,
/// with or without a proxy in between.
const NO_LIST_CHANGED: &str = "no notifications/tools/list_changed received";

/// `shadowcat forward stdio --to URL`.
fn forward_to(upstream: &HttpServer) -> CommandLine {
    CommandLine::new(env!("CARGO_BIN_EXE_shadowcat")).args([
        "forward",
        "stdio",
        "--to",
        upstream.url(),
    ])
}

/// Runs the Python `mcp` 1.x stdio client with `server` as its server command.
fn python_client(server: &CommandLine) -> (ProcessOutput, Value) {
    // The script gives up a little before the process is killed, so that it still reports.
    let mut command = stdio_client_mcp1(server, TIMEOUT - Duration::from_secs(10));
    let out = run_with_timeout(&mut command, TIMEOUT);
    let report = json_stdout(&out);
    (out, report)
}

/// What every run through `forward stdio --to` must show, whatever the upstream transport.
fn assert_session_worked(out: &ProcessOutput, report: &Value, upstream: &HttpServer) {
    let context = format!("{out}\nupstream: {}", upstream.stderr_tail(30));
    assert!(report["error"].is_null(), "{context}");
    let version = report["protocol_version"].as_str().unwrap_or_default();
    assert!(
        version.len() == "YYYY-MM-DD".len() && version.starts_with("20"),
        "negotiated protocol version {version:?}: {context}"
    );
    assert_eq!(report["server_name"], "mcp-servers/everything", "{context}");
    assert!(
        json_strings(&report["tools"]).contains(&"echo"),
        "{context}"
    );
    assert_eq!(report["echo_text"], format!("Echo: {MESSAGE}"), "{context}");
    // The server asks for the roots (a request of its own, on its GET stream, or on the SSE
    // stream), the client answers through shadowcat, and the server's log notification says
    // it got the answer.
    assert_eq!(report["roots_requested"], true, "{context}");
    assert_eq!(report["roots_acknowledged"], true, "{context}");
    assert!(
        json_strings(&report["notifications"]).contains(&"notifications/message"),
        "{context}"
    );
    // Everything shadowcat wrote to stdout was a JSON-RPC message.
    assert_eq!(report["invalid_messages"], json!([]), "{context}");
    // The client closed shadowcat's stdin and shadowcat exited by itself (the client
    // terminates a server that is still running after 2 s).
    let shutdown = report["shutdown_seconds"].as_f64().unwrap_or(f64::MAX);
    assert!(shutdown < 2.0, "shutdown took {shutdown} s: {context}");
    assert!(!out.left_processes_behind, "{context}");
}

#[test]
fn python_mcp1_client_through_forward_stdio_to_a_streamable_http_server() {
    let upstream = server_everything_http(EverythingTransport::StreamableHttp);
    let (out, report) = python_client(&forward_to(&upstream));
    assert_session_worked(&out, &report, &upstream);
    let failures: Vec<&str> = json_strings(&report["failures"])
        .into_iter()
        .filter(|failure| *failure != NO_LIST_CHANGED)
        .collect();
    assert!(failures.is_empty(), "{failures:?}: {out}");
}

#[test]
fn python_mcp1_client_through_forward_stdio_to_a_legacy_sse_server() {
    let upstream = server_everything_http(EverythingTransport::Sse);
    assert!(upstream.url().ends_with("/sse"), "{}", upstream.url());
    let (out, report) = python_client(&forward_to(&upstream));
    assert_session_worked(&out, &report, &upstream);
    // Over SSE the server's stream is open from the start: nothing is lost.
    assert_eq!(report["failures"], json!([]), "{out}");
    assert_eq!(report["tool_list_changed"], true, "{out}");
    assert!(out.success(), "{out}");
    assert_eq!(report["ok"], true, "{out}");
}

#[test]
fn forward_stdio_to_a_closed_port_fails_the_client() {
    // Nothing listens at the URL once the server is gone: the client must not hang.
    let mut upstream = server_everything_http(EverythingTransport::StreamableHttp);
    let forward = forward_to(&upstream);
    upstream.stop();
    let (out, report) = python_client(&forward);
    assert!(!out.success(), "{out}");
    assert!(!out.timed_out, "{out}");
    assert_eq!(report["ok"], false, "{out}");
    assert!(report["echo_text"].is_null(), "{out}");
    let seconds = report["seconds"].as_f64().unwrap_or(f64::MAX);
    assert!(
        seconds < 20.0,
        "the failure took {seconds} s to show: {out}"
    );
    assert!(!out.left_processes_behind, "{out}");
}
