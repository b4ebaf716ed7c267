//! Recording through `shadowcat forward stdio --record DIR` (and `shadowcat record`): a real
//! Python `mcp` 1.x client and server-everything, redaction, `kill -9` in the middle of a
//! recording, and a queue too small to keep up.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[path = "support/tapes.rs"]
mod tapes;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use shadowcat_tape::{Direction, Edge, RedactConfig, Redactor};
use shadowcat_test_support::{
    CommandLine, ProcessOutput, interop_dir, json_stdout, python_mcp1, run_with_timeout,
    server_everything_stdio, temp_dir,
};
use tapes::{assert_offsets_non_decreasing, at, json, methods, read_tape, tapes_in};

const TIMEOUT: Duration = Duration::from_secs(60);

fn shadowcat(args: &[&str], server: &CommandLine) -> CommandLine {
    CommandLine::new(env!("CARGO_BIN_EXE_shadowcat"))
        .args(args.iter().copied())
        .arg("--")
        .args(server.argv())
}

fn python_client(proxy: &CommandLine, message: &str) -> (ProcessOutput, Value) {
    // `stdio_client_mcp1` with `--message` before the server command.
    let mut command = Command::new(python_mcp1());
    command
        .arg(interop_dir().join("py/stdio_client_mcp1.py"))
        .args(["--timeout", "50", "--message", message, "--"])
        .args(proxy.argv());
    let out = run_with_timeout(&mut command, TIMEOUT);
    let report = json_stdout(&out);
    (out, report)
}

#[test]
fn python_mcp1_client_is_recorded_at_both_edges() {
    let dir = temp_dir("record-stdio");
    let d = dir.path().to_str().unwrap();
    let proxy = shadowcat(
        &["forward", "stdio", "--record", d, "--record-edges", "both"],
        &server_everything_stdio(),
    );
    let (out, report) = python_client(&proxy, "hello tape");
    assert!(out.success(), "{out}");
    assert_eq!(report["ok"], true, "{out}");

    let paths = tapes_in(dir.path());
    assert_eq!(paths.len(), 1, "one session, one tape: {paths:?}");
    let tape = read_tape(&paths[0]);
    assert!(tape.error.is_none(), "{:?}", tape.error);
    assert_eq!(tape.header.metadata["mode"], "forward");
    let session = tape.header.metadata["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        paths[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains(&session[..8])
    );
    assert!(
        tape.frames
            .iter()
            .all(|f| f.session_id.as_deref() == Some(&*session))
    );
    assert!(
        tape.frames.iter().all(|f| f.http.is_none()),
        "stdio has no HTTP metadata"
    );
    assert_offsets_non_decreasing(&tape.frames);

    let c2s_client = at(&tape.frames, Direction::ClientToServer, Edge::Client);
    let c2s_server = at(&tape.frames, Direction::ClientToServer, Edge::Server);
    let s2c_server = at(&tape.frames, Direction::ServerToClient, Edge::Server);
    let s2c_client = at(&tape.frames, Direction::ServerToClient, Edge::Client);
    let sent = methods(&c2s_client);
    for m in [
        "initialize",
        "notifications/initialized",
        "tools/list",
        "tools/call",
    ] {
        assert!(sent.iter().any(|s| s == m), "{m} not recorded: {sent:?}");
    }
    // Nothing intercepts: each message leaves the proxy with exactly the bytes it came with.
    let bytes = |frames: &[&shadowcat_tape::TapeFrame]| -> Vec<Vec<u8>> {
        frames.iter().map(|f| f.message.to_vec()).collect()
    };
    assert_eq!(bytes(&c2s_client), bytes(&c2s_server));
    assert_eq!(bytes(&s2c_server), bytes(&s2c_client));
    // The answers are there: to initialize, tools/list and the echo call.
    let call = c2s_client
        .iter()
        .map(|f| json(f))
        .find(|m| m["method"] == "tools/call")
        .unwrap();
    assert_eq!(call["params"]["arguments"]["message"], "hello tape");
    let answer = s2c_client
        .iter()
        .map(|f| json(f))
        .find(|m| m["id"] == call["id"])
        .expect("the tools/call answer is recorded");
    assert_eq!(answer["result"]["content"][0]["text"], "Echo: hello tape");
    let list = c2s_client
        .iter()
        .map(|f| json(f))
        .find(|m| m["method"] == "tools/list")
        .unwrap();
    assert!(
        s2c_client
            .iter()
            .map(|f| json(f))
            .any(|m| m["id"] == list["id"] && m["result"]["tools"].is_array())
    );
}

#[test]
fn secrets_are_redacted_to_the_same_token_everywhere() {
    let dir = temp_dir("record-redact");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "a fixed redaction key\n").unwrap();
    let tapes_dir = dir.path().join("tapes");
    let secret = "sk-live-0123456789ABCDEF";
    // The shorthand: `record DIR -- CMD` is `forward stdio --record DIR -- CMD`.
    let proxy = shadowcat(
        &[
            "record",
            tapes_dir.to_str().unwrap(),
            "--record-edges",
            "both",
            "--redact-path",
            "$.params.arguments.message",
            "--redact-regex",
            "sk-live-[0-9A-Z]+",
            "--redact-key-file",
            key_file.to_str().unwrap(),
        ],
        &server_everything_stdio(),
    );
    let (out, report) = python_client(&proxy, secret);
    assert!(out.success(), "{out}");
    assert_eq!(report["ok"], true, "{out}");

    let paths = tapes_in(&tapes_dir);
    assert_eq!(paths.len(), 1);
    let raw = std::fs::read(&paths[0]).unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(!text.contains(secret), "the secret reached the tape");
    let redactor =
        Redactor::new(&RedactConfig::default().with_key(b"a fixed redaction key".to_vec()))
            .unwrap();
    let token = redactor.token(secret.as_bytes());
    // In the request at both edges (the JSON path) and in the echoed answer at both edges
    // (the pattern): four times the same token.
    assert_eq!(text.matches(&token).count(), 4, "{text}");
    let tape = read_tape(&paths[0]);
    let call = at(&tape.frames, Direction::ClientToServer, Edge::Client)
        .into_iter()
        .map(json)
        .find(|m| m["method"] == "tools/call")
        .unwrap();
    assert_eq!(call["params"]["arguments"]["message"], token.as_str());
}

/// Starts `shadowcat forward stdio ARGS…` before the embedded demo server, with pipes.
fn spawn_proxy(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_shadowcat"))
        .args(["forward", "stdio", "--log-level", "info"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn echo(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"m{id}"}}}}}}"#
    )
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"driver","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
"#;

#[test]
fn kill_9_loses_at_most_the_last_batch_jsonl() {
    kill_9_loses_at_most_the_last_batch("jsonl");
}

#[test]
fn kill_9_loses_at_most_the_last_batch_binary() {
    kill_9_loses_at_most_the_last_batch("binary");
}

#[test]
fn kill_9_loses_at_most_the_last_batch_lz4() {
    kill_9_loses_at_most_the_last_batch("lz4");
}

/// Records a steady stream in `format`, kills the proxy with SIGKILL in the middle, and
/// reads the tape back: everything flushed before is there, and reading ends cleanly or
/// at a torn tail.
fn kill_9_loses_at_most_the_last_batch(format: &str) {
    let dir = temp_dir("record-kill");
    let d = dir.path().to_str().unwrap();
    let mut proxy = spawn_proxy(&[
        "--record",
        d,
        "--record-format",
        format,
        "--record-edges",
        "both",
    ]);
    let mut stdin = proxy.stdin.take().unwrap();
    let mut stdout = BufReader::new(proxy.stdout.take().unwrap());
    stdin.write_all(INIT.as_bytes()).unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // A first stretch, answered, then a pause longer than the flush interval: on disk.
    let settled = 200;
    for id in 1..=settled {
        writeln!(stdin, "{}", echo(id)).unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains(&format!("\"id\":{id}")), "{line}");
    }
    std::thread::sleep(Duration::from_millis(300));
    // Then a steady stream, killed in the middle.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = answered.clone();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        while stdout.read_line(&mut line).is_ok_and(|read| read > 0) {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            line.clear();
        }
    });
    let writer = std::thread::spawn(move || {
        for id in settled + 1.. {
            if writeln!(stdin, "{}", echo(id)).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while answered.load(std::sync::atomic::Ordering::Relaxed) < 1000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream did not get going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    proxy.kill().unwrap(); // SIGKILL, in the middle of the stream
    let _ = proxy.wait();
    reader.join().unwrap();
    writer.join().unwrap();

    let paths = tapes_in(dir.path());
    assert_eq!(paths.len(), 1);
    let tape = read_tape(&paths[0]);
    assert_eq!(tape.format.as_str(), format);
    if let Some(e) = &tape.error {
        assert!(
            e.is_torn_tail(),
            "only a torn tail may end the tape early: {e}"
        );
    }
    assert_offsets_non_decreasing(&tape.frames);
    // Everything before the pause is there, at both edges, both ways.
    for (direction, edge) in [
        (Direction::ClientToServer, Edge::Client),
        (Direction::ClientToServer, Edge::Server),
        (Direction::ServerToClient, Edge::Server),
        (Direction::ServerToClient, Edge::Client),
    ] {
        let ids: Vec<u64> = at(&tape.frames, direction, edge)
            .iter()
            .filter_map(|f| json(f)["id"].as_u64())
            .collect();
        for id in 0..=settled {
            assert!(ids.contains(&id), "{direction} at {edge}: id {id} lost");
        }
    }
}

#[test]
fn a_full_queue_drops_frames_but_never_the_clients_answers() {
    let dir = temp_dir("record-slow");
    let d = dir.path().to_str().unwrap();
    let mut proxy = spawn_proxy(&["--record", d, "--record-queue", "1"]);
    let mut stdin = proxy.stdin.take().unwrap();
    let stdout = BufReader::new(proxy.stdout.take().unwrap());
    let count = 3000u64;
    let writer = std::thread::spawn(move || {
        stdin.write_all(INIT.as_bytes()).unwrap();
        let mut burst = String::new();
        for id in 1..=count {
            burst.push_str(&echo(id));
            burst.push('\n');
        }
        stdin.write_all(burst.as_bytes()).unwrap();
    });
    let mut answered = std::collections::BTreeSet::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v.get("error").is_none(), "{line}");
        answered.insert(v["id"].as_u64().unwrap());
        if answered.len() as u64 == count + 1 {
            break;
        }
    }
    writer.join().unwrap();
    assert_eq!(
        answered.len() as u64,
        count + 1,
        "every request was answered"
    );
    drop(proxy.stdin.take());
    let out = proxy.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dropped: u64 = stderr
        .lines()
        .find(|l| l.contains("recording finished"))
        .and_then(|l| l.split("dropped=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in the log: {stderr}"));
    assert!(dropped > 0, "{stderr}");

    let paths = tapes_in(dir.path());
    let tape = read_tape(&paths[0]);
    assert!(tape.error.is_none(), "{:?}", tape.error);
    // Every dropped frame is accounted for by a marker in the tape. Without rules only the
    // client edge is recorded (the server edge would repeat it): two frames per call, and
    // the `initialized` notification.
    assert_eq!(tape.dropped, dropped);
    assert_eq!(tape.header.metadata["edges"], "client");
    assert!(tape.frames.iter().all(|f| f.edge == Edge::Client));
    assert_eq!(tape.frames.len() as u64 + dropped, 2 * (count + 1) + 1);
}

#[test]
fn with_interception_the_tape_shows_what_the_proxy_changed() {
    let dir = temp_dir("record-intercept");
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        r#"version: 1
rules:
  - id: rewrite
    match: {method: tools/call}
    action: {type: modify, set: {"$.params.arguments.message": "changed"}}
"#,
    )
    .unwrap();
    let tapes_dir = dir.path().join("tapes");
    let mut proxy = spawn_proxy(&[
        "--record",
        tapes_dir.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]);
    let mut stdin = proxy.stdin.take().unwrap();
    let mut stdout = BufReader::new(proxy.stdout.take().unwrap());
    stdin.write_all(INIT.as_bytes()).unwrap();
    writeln!(stdin, "{}", echo(1)).unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("changed"), "the rule applied: {line}");
    drop(stdin);
    assert!(proxy.wait().unwrap().success());

    let tape = read_tape(&tapes_dir.join(&tapes_in(&tapes_dir)[0]));
    let call_at = |edge| {
        at(&tape.frames, Direction::ClientToServer, edge)
            .into_iter()
            .map(json)
            .find(|m| m["method"] == "tools/call")
            .unwrap()
    };
    assert_eq!(
        call_at(Edge::Client)["params"]["arguments"]["message"],
        "m1"
    );
    assert_eq!(
        call_at(Edge::Server)["params"]["arguments"]["message"],
        "changed"
    );
}

#[test]
fn odd_and_malformed_lines_are_recorded_as_they_came() {
    let dir = temp_dir("record-odd");
    let d = dir.path().to_str().unwrap();
    let mut proxy = spawn_proxy(&["--record", d]);
    let mut stdin = proxy.stdin.take().unwrap();
    let stdout = BufReader::new(proxy.stdout.take().unwrap());
    let sent = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"driver","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "\t{ \"jsonrpc\" : \"2.0\", \"id\" : 2, \"method\" : \"ping\" } ",
        r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":{"_meta":{"s":"café \u00e9 \ud83d\ude00"}}}"#,
        "not json {",
        r#"{"jsonrpc":"2.0","id":4,"method":"ping","params":{"n":123456789012345678901234567890}}"#,
    ];
    for line in sent {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let answers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(proxy.wait().unwrap().success());
    assert_eq!(answers.len(), 5, "{answers:?}");
    let refused: Vec<&Value> = answers.iter().filter(|a| a["id"].is_null()).collect();
    assert_eq!(refused.len(), 1, "{answers:?}");
    assert_eq!(refused[0]["error"]["code"], -32700, "{answers:?}");

    let paths = tapes_in(dir.path());
    assert_eq!(paths.len(), 1);
    let tape = read_tape(&paths[0]);
    assert!(tape.error.is_none(), "{:?}", tape.error);
    let received: Vec<&[u8]> = at(&tape.frames, Direction::ClientToServer, Edge::Client)
        .iter()
        .map(|f| &f.message[..])
        .collect();
    // Every line, parsed or not, is on the tape byte for byte (without its line feed).
    let expected: Vec<&[u8]> = sent.iter().map(|l| l.as_bytes()).collect();
    assert_eq!(received, expected);
}
