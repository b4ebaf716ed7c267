//! `shadowcat forward stdio` between real MCP peers: the Python `mcp` 1.x client and the
//! MCP Inspector CLI in front, the reference "everything" server behind.
//!
//! The peers are pinned under `interop/` and installed by `scripts/install-interop.sh`;
//! without them these tests fail (they do not skip).

use std::time::Duration;

use serde_json::Value;
use shadowcat_test_support::{
    CommandLine, ProcessOutput, inspector_cli, run_with_timeout, server_everything_stdio,
    stdio_client_mcp1,
};

/// The limit for one client run, from start to exit.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the Python client asks the server to echo (the script's default).
const MESSAGE: &str = "hello through shadowcat";

/// `shadowcat forward stdio --log-level debug -- SERVER…`: debug logs make any log line that
/// strays onto stdout visible to the client.
fn forward_stdio(server: &CommandLine) -> CommandLine {
    CommandLine::new(env!("CARGO_BIN_EXE_shadowcat"))
        .args(["forward", "stdio", "--log-level", "debug", "--"])
        .args(server.argv())
}

/// The single JSON object a client printed on stdout.
fn json_stdout(out: &ProcessOutput) -> Value {
    let lines: Vec<&str> = out.stdout_lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one JSON line on stdout from {out}"
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"))
}

/// Runs the Python `mcp` 1.x stdio client against `server`.
fn python_client(server: &CommandLine) -> (ProcessOutput, Value) {
    // The script gives up a little before the process is killed, so that it still reports.
    let mut command = stdio_client_mcp1(server, TIMEOUT - Duration::from_secs(10));
    let out = run_with_timeout(&mut command, TIMEOUT);
    let report = json_stdout(&out);
    (out, report)
}

/// Runs the Inspector CLI with `options` against `server`; returns its run and the `result`
/// of the JSON it printed.
fn inspector(options: &[&str], server: &CommandLine) -> (ProcessOutput, Value) {
    let inspector = inspector_cli();
    let mut command = inspector.command(["--format", "json"].iter().chain(options), server);
    let out = run_with_timeout(&mut command, TIMEOUT);
    assert!(out.success(), "{out}");
    let mut answer = json_stdout(&out);
    assert!(
        answer.get("error").is_none(),
        "the Inspector reported an error: {out}"
    );
    let result = answer["result"].take();
    (out, result)
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn python_mcp1_client_talks_to_server_everything_through_forward_stdio() {
    let (out, report) = python_client(&forward_stdio(&server_everything_stdio()));

    assert_eq!(report["failures"], Value::Array(vec![]), "{out}");
    assert!(out.success(), "{out}");
    assert_eq!(report["ok"], true, "{out}");

    let version = report["protocol_version"].as_str().unwrap_or_default();
    assert!(
        version.len() == "YYYY-MM-DD".len() && version.starts_with("20"),
        "negotiated protocol version {version:?}: {out}"
    );
    assert_eq!(report["server_name"], "mcp-servers/everything", "{out}");
    assert!(strings(&report["tools"]).contains(&"echo"), "{out}");
    assert_eq!(report["echo_text"], format!("Echo: {MESSAGE}"), "{out}");
    assert_eq!(report["tool_list_changed"], true, "{out}");
    assert!(
        strings(&report["notifications"]).contains(&"notifications/tools/list_changed"),
        "{out}"
    );
    // A server-to-client request (roots/list) went through, and its answer came back.
    assert_eq!(report["roots_requested"], true, "{out}");
    assert_eq!(report["roots_acknowledged"], true, "{out}");
    // Everything shadowcat wrote to stdout was a JSON-RPC message.
    assert_eq!(report["invalid_messages"], Value::Array(vec![]), "{out}");
    // The client closed shadowcat's stdin and shadowcat exited by itself (the client
    // terminates a server that is still running after 2 s).
    let shutdown = report["shutdown_seconds"].as_f64().unwrap_or(f64::MAX);
    assert!(shutdown < 2.0, "shutdown took {shutdown} s: {out}");
    // Neither shadowcat nor its server outlived the client.
    assert!(!out.left_processes_behind, "{out}");
}

#[test]
fn inspector_cli_lists_tools_through_forward_stdio() {
    let (_, result) = inspector(
        &["--method", "tools/list"],
        &forward_stdio(&server_everything_stdio()),
    );
    let tools = result["tools"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"echo"), "tools/list answered {result}");
    let echo = tools
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("echo is listed");
    assert_eq!(
        echo["inputSchema"]["required"],
        serde_json::json!(["message"]),
        "{echo}"
    );
}

#[test]
fn inspector_cli_calls_echo_through_forward_stdio() {
    let (_, result) = inspector(
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "echo",
            "--tool-arg",
            "message=hi",
        ],
        &forward_stdio(&server_everything_stdio()),
    );
    assert!(!result["isError"].as_bool().unwrap_or(false), "{result}");
    assert_eq!(
        result["content"],
        serde_json::json!([{ "type": "text", "text": "Echo: hi" }]),
        "tools/call answered {result}"
    );
}

#[test]
fn inspector_cli_run_through_forward_stdio_leaves_no_process_behind() {
    // The Inspector closes its server's stdin when done, sends SIGTERM when the server has
    // not exited 2 s later, and SIGKILL after 2 s more. server-everything does not exit on
    // end of input while its roots/list request to the Inspector is unanswered, so shadowcat
    // gets the SIGTERM and must take its own server down before the SIGKILL.
    let (out, result) = inspector(
        &["--method", "tools/list"],
        &forward_stdio(&server_everything_stdio()),
    );
    assert!(result["tools"].is_array(), "{result}");
    assert!(!out.left_processes_behind, "{out}");
}

#[test]
fn python_mcp1_client_fails_against_a_process_that_is_not_an_mcp_server() {
    // `cat` sends the client's own initialize request back: not an answer.
    let (out, report) = python_client(&CommandLine::new("cat"));
    assert!(!out.success(), "{out}");
    assert!(!out.timed_out, "{out}");
    assert_eq!(report["ok"], false, "{out}");
    assert!(report["protocol_version"].is_null(), "{out}");
    assert!(
        !strings(&report["failures"]).is_empty(),
        "a failure names its reason: {out}"
    );
}

#[test]
fn python_mcp1_client_fails_when_stdout_carries_more_than_protocol() {
    // The real server behind a wrapper that first prints a line that is not JSON-RPC.
    let server = server_everything_stdio();
    let script = r#"echo 'not a JSON-RPC message'; exec "$0" "$@""#;
    let polluted = CommandLine::new("sh")
        .args(["-c", script])
        .args(server.argv());
    let (out, report) = python_client(&polluted);
    assert!(!out.success(), "{out}");
    assert_eq!(report["ok"], false, "{out}");
    assert_eq!(
        report["invalid_messages"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );
    // Everything else still worked: only the stray line fails the run.
    assert_eq!(report["echo_text"], format!("Echo: {MESSAGE}"), "{out}");
}
