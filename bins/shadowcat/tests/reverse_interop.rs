//! `shadowcat reverse` between real MCP peers: the Python `mcp` 2.x and 1.x clients and the
//! MCP Inspector CLI speak Streamable HTTP to it; behind it, the reference "everything" server runs
//! on stdio (a child process per session) or on Streamable HTTP.
//!
//! The peers are pinned under `interop/` and installed by `scripts/install-interop.sh`;
//! without them these tests fail (they do not skip). `SHADOWCAT_LOG` reaches the proxy.

use std::ffi::OsStr;
use std::fs;
use std::time::Duration;

use serde_json::{Value, json};
use shadowcat_test_support::{
    CommandLine, EverythingTransport, HttpServer, ProcessOutput, free_port, http_client_mcp1,
    http_client_mcp2, inspector_cli, json_stdout, json_strings, run_with_timeout,
    server_everything_http, server_everything_stdio, temp_dir,
};

/// The limit for one client run, from start to exit.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the Python client asks the server to echo.
const MESSAGE: &str = "hello through shadowcat reverse";

/// The tools server-everything offers a client without sampling, elicitation or roots.
const EVERYTHING_TOOLS: usize = 13;

/// `shadowcat reverse --listen 127.0.0.1:0 ARGS…`, accepting connections.
fn reverse<I, S>(args: I) -> HttpServer
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shadowcat"));
    command
        .args(["reverse", "--listen", "127.0.0.1:0"])
        .args(args);
    let proxy =
        HttpServer::start(&mut command).unwrap_or_else(|e| panic!("shadowcat reverse: {e}"));
    assert!(
        proxy.url().starts_with("http://127.0.0.1:") && proxy.url().ends_with("/mcp"),
        "shadowcat reverse announced {}",
        proxy.url()
    );
    proxy
}

/// `shadowcat reverse -- SERVER…`: a child process per client session.
fn reverse_to_stdio(server: &CommandLine) -> HttpServer {
    reverse(std::iter::once(OsStr::new("--")).chain(server.argv()))
}

/// `shadowcat reverse --upstream URL`.
fn reverse_to_http(upstream: &HttpServer) -> HttpServer {
    reverse(["--upstream", upstream.url()])
}

/// Runs the Python `mcp` 2.x client with `options` against `url`.
fn python_client(url: &str, options: &[&str]) -> (ProcessOutput, Value) {
    // The script gives up a little before the process is killed, so that it still reports.
    let mut command = http_client_mcp2(url, TIMEOUT - Duration::from_secs(10));
    command.args(["--message", MESSAGE]).args(options);
    let out = run_with_timeout(&mut command, TIMEOUT);
    let report = json_stdout(&out);
    (out, report)
}

/// Checks a single client's report: connected, 13 tools with `echo`, its message echoed.
fn assert_one_client_succeeded(out: &ProcessOutput, report: &Value, proxy: &HttpServer) {
    let context = format!("{out}\nshadowcat: {}", proxy.stderr_tail(40));
    assert_eq!(report["failures"], json!([]), "{context}");
    assert!(out.success(), "{context}");
    assert_eq!(report["ok"], true, "{context}");
    let client = &report["clients"][0];
    let version = client["protocol_version"].as_str().unwrap_or_default();
    assert!(
        version.len() == "YYYY-MM-DD".len() && version.starts_with("20"),
        "negotiated protocol version {version:?}: {context}"
    );
    assert_eq!(client["server_name"], "mcp-servers/everything", "{context}");
    let tools = json_strings(&client["tools"]);
    assert!(tools.contains(&"echo"), "{context}");
    assert_eq!(tools.len(), EVERYTHING_TOOLS, "{context}");
    assert_eq!(client["echo_text"], format!("Echo: {MESSAGE}"), "{context}");
}

/// Runs the Python `mcp` 1.x HTTP client against `proxy` and checks that the session worked,
/// the server's `roots/list` request (on the GET stream) and the client's answer included.
fn assert_mcp1_client_succeeds(proxy: &HttpServer) {
    let mut command = http_client_mcp1(proxy.url(), TIMEOUT - Duration::from_secs(10));
    command.args(["--message", MESSAGE]);
    let out = run_with_timeout(&mut command, TIMEOUT);
    let report = json_stdout(&out);
    let context = format!("{out}\nshadowcat: {}", proxy.stderr_tail(40));
    assert_eq!(report["failures"], json!([]), "{context}");
    assert!(out.success(), "{context}");
    assert_eq!(report["server_name"], "mcp-servers/everything", "{context}");
    assert!(report["session_id"].is_string(), "{context}");
    assert_eq!(report["echo_text"], format!("Echo: {MESSAGE}"), "{context}");
    assert_eq!(
        report["server_requests"],
        json!(["roots/list"]),
        "{context}"
    );
    assert_eq!(report["roots_acknowledged"], true, "{context}");
}

/// Stops the proxy with SIGTERM and checks that it went, taking what it started with it.
fn assert_stops_cleanly(proxy: &mut HttpServer) {
    let stopped = proxy.stop();
    let context = format!("{stopped:?}\nshadowcat: {}", proxy.stderr_tail(40));
    assert!(
        !stopped.exited_early,
        "shadowcat exited on its own: {context}"
    );
    assert!(
        !stopped.forced,
        "shadowcat ignored SIGTERM for 5 s: {context}"
    );
    assert!(
        !stopped.left_processes_behind,
        "processes shadowcat started outlived it: {context}"
    );
}

/// Runs the Inspector CLI against the Streamable HTTP endpoint `url` with `options`; returns
/// the `result` of the JSON it printed.
fn inspector(url: &str, options: &[&str], proxy: &HttpServer) -> Value {
    let inspector = inspector_cli();
    let target = CommandLine::new(url);
    let mut command = inspector.command(
        ["--transport", "http", "--format", "json"]
            .iter()
            .chain(options),
        &target,
    );
    let out = run_with_timeout(&mut command, TIMEOUT);
    let context = format!("{out}\nshadowcat: {}", proxy.stderr_tail(40));
    assert!(out.success(), "{context}");
    let mut answer = json_stdout(&out);
    assert!(
        answer.get("error").is_none(),
        "the Inspector reported an error: {context}"
    );
    answer["result"].take()
}

fn assert_inspector_lists_echo(proxy: &HttpServer) {
    let result = inspector(proxy.url(), &["--method", "tools/list"], proxy);
    let tools = result["tools"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"echo"), "tools/list answered {result}");
    let echo = tools
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("echo is listed");
    assert_eq!(
        echo["inputSchema"]["required"],
        json!(["message"]),
        "{echo}"
    );
}

fn assert_inspector_calls_echo(proxy: &HttpServer) {
    let options = [
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
        "message=hi",
    ];
    let result = inspector(proxy.url(), &options, proxy);
    assert!(!result["isError"].as_bool().unwrap_or(false), "{result}");
    assert_eq!(
        result["content"],
        json!([{ "type": "text", "text": "Echo: hi" }]),
        "tools/call answered {result}"
    );
}

#[test]
fn python_mcp2_client_through_reverse_to_a_stdio_server() {
    let mut proxy = reverse_to_stdio(&server_everything_stdio());
    let (out, report) = python_client(proxy.url(), &[]);
    assert_one_client_succeeded(&out, &report, &proxy);
    assert_stops_cleanly(&mut proxy);
}

#[test]
fn python_mcp2_client_through_reverse_to_a_streamable_http_server() {
    let upstream = server_everything_http(EverythingTransport::StreamableHttp);
    let mut proxy = reverse_to_http(&upstream);
    let (out, report) = python_client(proxy.url(), &[]);
    assert_one_client_succeeded(&out, &report, &proxy);
    assert_stops_cleanly(&mut proxy);
}

#[test]
fn python_mcp2_client_with_the_handshake_only_through_reverse_to_a_streamable_http_server() {
    // Mode `legacy` skips the `server/discover` probe: initialize is the first request.
    let upstream = server_everything_http(EverythingTransport::StreamableHttp);
    let proxy = reverse_to_http(&upstream);
    let (out, report) = python_client(proxy.url(), &["--mode", "legacy"]);
    assert_one_client_succeeded(&out, &report, &proxy);
}

#[test]
fn python_mcp1_client_through_reverse_to_a_stdio_server() {
    let mut proxy = reverse_to_stdio(&server_everything_stdio());
    assert_mcp1_client_succeeds(&proxy);
    assert_stops_cleanly(&mut proxy);
}

#[test]
fn python_mcp1_client_through_reverse_to_a_streamable_http_server() {
    let upstream = server_everything_http(EverythingTransport::StreamableHttp);
    let proxy = reverse_to_http(&upstream);
    assert_mcp1_client_succeeds(&proxy);
}

#[test]
fn inspector_cli_lists_tools_through_reverse_to_a_stdio_server() {
    let proxy = reverse_to_stdio(&server_everything_stdio());
    assert_inspector_lists_echo(&proxy);
}

#[test]
fn inspector_cli_calls_echo_through_reverse_to_a_stdio_server() {
    let proxy = reverse_to_stdio(&server_everything_stdio());
    assert_inspector_calls_echo(&proxy);
}

#[test]
fn inspector_cli_lists_tools_through_reverse_to_a_streamable_http_server() {
    let upstream = server_everything_http(EverythingTransport::StreamableHttp);
    let proxy = reverse_to_http(&upstream);
    assert_inspector_lists_echo(&proxy);
}

#[test]
fn inspector_cli_calls_echo_through_reverse_to_a_streamable_http_server() {
    let upstream = server_everything_http(EverythingTransport::StreamableHttp);
    let proxy = reverse_to_http(&upstream);
    assert_inspector_calls_echo(&proxy);
}

#[test]
fn concurrent_sessions_through_reverse_each_get_their_own_server_and_answers() {
    const CLIENTS: usize = 8;
    // Every server process the proxy starts writes its pid to this file first.
    let dir = temp_dir("reverse-pids");
    let pids = dir.path().join("server-pids");
    let server = server_everything_stdio();
    let script = format!(r#"echo $$ >>'{}'; exec "$0" "$@""#, pids.display());
    let recording = CommandLine::new("sh")
        .args(["-c", &script])
        .args(server.argv());
    let mut proxy = reverse_to_stdio(&recording);

    // The clients all connect and list tools, then call echo at the same moment, client i
    // with "MESSAGE #i". `legacy`: initialize is each session's first request.
    let clients = CLIENTS.to_string();
    let (out, report) = python_client(
        proxy.url(),
        &[
            "--clients",
            &clients,
            "--mode",
            "legacy",
            "--expect-tools",
            "13",
        ],
    );
    let context = format!("{out}\nshadowcat: {}", proxy.stderr_tail(60));
    assert_eq!(report["failures"], json!([]), "{context}");
    assert!(out.success(), "{context}");
    let reports = report["clients"].as_array().cloned().unwrap_or_default();
    assert_eq!(reports.len(), CLIENTS, "{context}");
    for (i, client) in reports.iter().enumerate() {
        assert_eq!(client["index"], i, "{context}");
        assert_eq!(
            client["echo_text"],
            format!("Echo: {MESSAGE} #{i}"),
            "client {i} got another session's answer: {context}"
        );
    }

    let recorded = fs::read_to_string(&pids).unwrap_or_default();
    let mut started: Vec<&str> = recorded.lines().collect();
    started.sort_unstable();
    started.dedup();
    assert!(
        started.len() >= CLIENTS,
        "{CLIENTS} concurrent sessions but {} server processes ({started:?}): {context}",
        started.len()
    );
    assert_stops_cleanly(&mut proxy);
}

#[test]
fn python_mcp2_client_fails_against_a_closed_port() {
    // The client's own failure path: nothing listens on a port that was just released.
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut command = http_client_mcp2(&url, Duration::from_secs(20));
    let out = run_with_timeout(&mut command, TIMEOUT);
    let report = json_stdout(&out);
    assert!(!out.success(), "{out}");
    assert_eq!(report["ok"], false, "{out}");
    assert!(report["clients"][0]["error"].is_string(), "{out}");
}
