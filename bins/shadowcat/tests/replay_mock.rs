//! `shadowcat replay`: a tape recorded from the real Python `mcp` 1.x client and
//! server-everything, played back as a mock over stdio and Streamable HTTP to the real
//! Python clients, with closest-miss errors, spy mode, and `--verify` against the live
//! server.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use shadowcat_tape::{Direction, Edge, JsonlWriter, TapeFrame, read_tape};
use shadowcat_test_support::{
    CommandLine, EverythingTransport, HttpServer, ProcessOutput, http_client_mcp2, interop_dir,
    json_stdout, python_mcp1, run_with_timeout, server_everything_http, server_everything_stdio,
    temp_dir,
};

const TIMEOUT: Duration = Duration::from_secs(60);
const RECORDED: &str = "hello replay";

fn shadowcat() -> CommandLine {
    CommandLine::new(env!("CARGO_BIN_EXE_shadowcat"))
}

/// Runs the `mcp` 1.x stdio client against `server`, echoing `message`.
fn mcp1_client(server: &CommandLine, message: &str) -> (ProcessOutput, Value) {
    let mut command = Command::new(python_mcp1());
    command
        .arg(interop_dir().join("py/stdio_client_mcp1.py"))
        .args(["--timeout", "40", "--message", message, "--"])
        .args(server.argv());
    let out = run_with_timeout(&mut command, TIMEOUT);
    let report = json_stdout(&out);
    (out, report)
}

/// Records the `mcp` 1.x client talking to server-everything; the tape's path.
fn record(dir: &Path) -> PathBuf {
    let tapes = dir.join("tapes");
    let proxy = shadowcat()
        .args(["forward", "stdio", "--record"])
        .arg(tapes.as_os_str())
        .arg("--")
        .args(server_everything_stdio().argv());
    let (out, report) = mcp1_client(&proxy, RECORDED);
    assert_eq!(report["ok"], true, "recording: {out}");
    std::fs::read_dir(&tapes)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a tape")
}

/// Copies the tape at `src` to `dst`, every message rewritten by `edit` (and written with
/// its keys sorted, so in another order than the client writes them).
fn rewrite(src: &Path, dst: &Path, mut edit: impl FnMut(&TapeFrame, &mut Value)) {
    let (header, frames) = read_tape(src).unwrap();
    let mut writer = JsonlWriter::new(std::fs::File::create(dst).unwrap());
    writer.write_header(&header).unwrap();
    for frame in frames {
        let mut message: Value = serde_json::from_slice(&frame.message).unwrap();
        edit(&frame, &mut message);
        let mut out = TapeFrame::new(
            frame.offset_ns,
            frame.direction,
            frame.edge,
            message.to_string().into_bytes(),
        );
        out.session_id = frame.session_id.clone();
        writer.write_frame(&out).unwrap();
    }
    writer.into_inner().unwrap();
}

/// The client's requests and their answers get string ids (`"rec-N"`); the live client
/// uses numbers.
fn string_ids(frame: &TapeFrame, message: &mut Value) {
    let is_request =
        frame.direction == Direction::ClientToServer && message.get("method").is_some();
    let is_answer = frame.direction == Direction::ServerToClient && message.get("method").is_none();
    if (is_request || is_answer)
        && let Some(n) = message.get("id").and_then(Value::as_i64)
    {
        message["id"] = Value::String(format!("rec-{n}"));
    }
}

#[test]
fn python_mcp1_client_gets_the_recorded_answers_with_its_own_ids() {
    let dir = temp_dir("replay-stdio");
    let recorded = record(dir.path());
    let tape = dir.path().join("string-ids.jsonl");
    rewrite(&recorded, &tape, string_ids);
    let text = std::fs::read_to_string(&tape).unwrap();
    assert!(text.contains(r#""id":"rec-2""#), "the tape has string ids");
    assert!(
        text.contains(r#"{"arguments":{"message":"hello replay"},"name":"echo"}"#),
        "the tape's keys are in another order than the client's"
    );

    let mock = shadowcat().arg("replay").arg(tape.as_os_str());
    let (out, report) = mcp1_client(&mock, RECORDED);
    assert!(out.success(), "{out}");
    assert_eq!(report["ok"], true, "{out}");
    assert_eq!(report["server_name"], "mcp-servers/everything");
    assert_eq!(report["echo_text"], "Echo: hello replay");
    // Server-to-client messages in their recorded places: the list_changed notifications,
    // the roots/list request, and the log line that follows the client's answer to it.
    assert_eq!(report["tool_list_changed"], true, "{out}");
    assert_eq!(report["roots_requested"], true, "{out}");
    assert_eq!(report["roots_acknowledged"], true, "{out}");
    assert!(report["tools"].as_array().unwrap().len() > 5);
}

#[test]
fn unmatched_request_gets_the_closest_miss_and_spy_mode_asks_the_live_server() {
    let dir = temp_dir("replay-miss");
    let tape = record(dir.path());

    let mock = shadowcat().arg("replay").arg(tape.as_os_str());
    let (out, report) = mcp1_client(&mock, "bonjour");
    assert!(!out.success(), "{out}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(r#"closest recorded: tools/call "echo""#)
            && error
                .contains(r#"params.arguments.message: recorded "hello replay", got "bonjour""#),
        "{out}"
    );

    let spy = shadowcat()
        .arg("replay")
        .arg(tape.as_os_str())
        .arg("--fallback")
        .arg("--")
        .args(server_everything_stdio().argv());
    let (out, report) = mcp1_client(&spy, "bonjour");
    assert!(out.success(), "{out}");
    assert_eq!(report["echo_text"], "Echo: bonjour", "{out}");
    assert!(out.stderr.contains("passed to the live server"), "{out}");
}

#[test]
fn python_mcp2_client_over_http_gets_fresh_sessions_and_recorded_answers() {
    let dir = temp_dir("replay-http");
    let tape = record(dir.path());
    let mut command = shadowcat()
        .arg("replay")
        .arg(tape.as_os_str())
        .args(["--listen", "127.0.0.1:0"])
        .command();
    let mut server = HttpServer::start(&mut command).unwrap();
    for _ in 0..2 {
        let mut client = http_client_mcp2(server.url(), Duration::from_secs(40));
        client.args(["--message", RECORDED]);
        let out = run_with_timeout(&mut client, TIMEOUT);
        let report = json_stdout(&out);
        assert!(out.success(), "{out}\n{}", server.stderr_tail(20));
        let first = &report["clients"][0];
        assert_eq!(first["echo_text"], "Echo: hello replay", "{out}");
        assert_eq!(first["server_name"], "mcp-servers/everything");
    }
    let stopped = server.stop();
    assert!(!stopped.exited_early && !stopped.forced, "{stopped:?}");
    assert!(!stopped.left_processes_behind, "{stopped:?}");
}

#[test]
fn verify_passes_against_the_live_server_and_names_what_differs() {
    let dir = temp_dir("replay-verify");
    let tape = record(dir.path());
    let verify = |tape: &Path, json: bool| {
        let mut line = shadowcat()
            .arg("replay")
            .arg(tape.as_os_str())
            .arg("--verify");
        if json {
            line = line.arg("--json");
        }
        let line = line.arg("--").args(server_everything_stdio().argv());
        run_with_timeout(&mut line.command(), TIMEOUT)
    };
    let out = verify(&tape, false);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("0 differ, 0 missing"), "{out}");
    assert!(
        out.stdout
            .contains(r#"same     session 1 tools/call "echo""#),
        "{out}"
    );

    // The same tape against server-everything over Streamable HTTP.
    let live = server_everything_http(EverythingTransport::StreamableHttp);
    let mut command = shadowcat()
        .arg("replay")
        .arg(tape.as_os_str())
        .args(["--verify", "--upstream", live.url()])
        .command();
    let out = run_with_timeout(&mut command, TIMEOUT);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("3 calls: 3 same"), "{out}");
    drop(live);

    // An answer the live server no longer gives.
    let altered = dir.path().join("altered.jsonl");
    rewrite(&tape, &altered, |frame, message| {
        if frame.edge == Edge::Client
            && let Some(text) = message.pointer_mut("/result/content/0/text")
        {
            *text = Value::String("Echo: something else".into());
        }
    });
    let out = verify(&altered, false);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stdout.contains(
            r#"result.content[0].text: recorded "Echo: something else", got "Echo: hello replay""#
        ),
        "{out}"
    );
    let out = verify(&altered, true);
    assert_eq!(out.status.code(), Some(1), "{out}");
    let report = json_stdout(&out);
    assert_eq!(report["ok"], false);
    assert_eq!(report["differs"], 1);
    let call = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["outcome"] == "differs")
        .unwrap();
    assert_eq!(call["tool"], "echo");
    assert_eq!(call["differences"][0]["path"], "result.content[0].text");

    // The same difference, ignored by path.
    let line = shadowcat()
        .arg("replay")
        .arg(altered.as_os_str())
        .args(["--verify", "--ignore", "result.content[*].text", "--"])
        .args(server_everything_stdio().argv());
    let out = run_with_timeout(&mut line.command(), TIMEOUT);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("0 differ, 0 missing"), "{out}");
}

#[test]
fn bad_tapes_and_options_are_refused_clearly() {
    let dir = temp_dir("replay-bad");
    let missing = dir.path().join("missing.jsonl");
    let out = run_with_timeout(
        &mut shadowcat().arg("replay").arg(missing.as_os_str()).command(),
        TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("cannot read the tape") && out.stderr.contains("missing.jsonl"),
        "{out}"
    );

    let foreign = dir.path().join("foreign.jsonl");
    std::fs::write(&foreign, "not a tape\n").unwrap();
    let out = run_with_timeout(
        &mut shadowcat().arg("replay").arg(foreign.as_os_str()).command(),
        TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("foreign.jsonl"), "{out}");

    let tape = dir.path().join("empty.jsonl");
    let header = shadowcat_tape::TapeHeader::from_unix_ns("t", 0);
    let mut writer = JsonlWriter::new(std::fs::File::create(&tape).unwrap());
    writer.write_header(&header).unwrap();
    writer.into_inner().unwrap();
    let out = run_with_timeout(
        &mut shadowcat()
            .arg("replay")
            .arg(tape.as_os_str())
            .args(["--speed", "20"])
            .command(),
        TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("--speed 20"), "{out}");
}

#[test]
fn spy_mode_over_http_sends_each_session_to_the_live_http_server() {
    let dir = temp_dir("replay-spy-http");
    let tape = record(dir.path());
    let live = server_everything_http(EverythingTransport::StreamableHttp);
    let mut command = shadowcat()
        .arg("replay")
        .arg(tape.as_os_str())
        .args(["--listen", "127.0.0.1:0", "--fallback", live.url()])
        .command();
    let mut server = HttpServer::start(&mut command).unwrap();
    // Two sessions at once, each echoing its own message, which the tape does not have.
    let mut client = http_client_mcp2(server.url(), Duration::from_secs(40));
    client.args(["--clients", "2", "--message", "spy"]);
    let out = run_with_timeout(&mut client, TIMEOUT);
    let report = json_stdout(&out);
    assert!(out.success(), "{out}\n{}", server.stderr_tail(20));
    let echoes: Vec<&str> = report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["echo_text"].as_str().unwrap())
        .collect();
    assert_eq!(echoes, ["Echo: spy #0", "Echo: spy #1"], "{out}");
    // tools/list came from the tape (server-everything over HTTP lists no get-roots-list
    // for a client without roots; the tape's recorded client had them).
    assert!(
        report["clients"][0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "get-roots-list"),
        "{out}"
    );
    server.stop();
    drop(live);
}
