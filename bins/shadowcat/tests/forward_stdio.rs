//! `shadowcat forward stdio` end to end: the real binary, real child processes, real pipes.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// A running `shadowcat forward stdio`, driven as its client.
struct Proxy {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Proxy {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shadowcat"))
            .args(["forward", "stdio"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shadowcat starts");
        let stdin = child.stdin.take();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    fn demo() -> Self {
        Self::start(&[])
    }

    fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn send(&mut self, msg: &Value) {
        self.send_raw(&msg.to_string());
    }

    fn recv_raw(&self) -> String {
        self.stdout
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no message from shadowcat within {WAIT:?}: {e}"))
    }

    fn recv(&self) -> Value {
        let line = self.recv_raw();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {line}"))
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for exit; returns the exit code and all of stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        self.close_stdin();
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "shadowcat did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            err.push_str(&line);
            err.push('\n');
        }
        (status.code(), err)
    }

    fn assert_no_more_output(&self) {
        match self.stdout.recv_timeout(Duration::from_secs(2)) {
            Err(RecvTimeoutError::Disconnected) => {}
            Ok(line) => panic!("unexpected output: {line}"),
            Err(RecvTimeoutError::Timeout) => panic!("stdout still open"),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn initialize(id: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}})
}

fn echo(id: Value, message: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"message":message}}})
}

#[test]
fn demo_conversation_keeps_ids_exactly() {
    let mut p = Proxy::demo();
    p.send(&initialize(json!("init-1")));
    let init = p.recv();
    assert_eq!(init["id"], json!("init-1"));
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "shadowcat-demo");
    p.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    p.send(&json!({"jsonrpc":"2.0","id":7,"method":"tools/list"}));
    let tools = p.recv();
    assert_eq!(tools["id"], json!(7));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "add"]);
    // A string id that looks like a number stays a string; a float id keeps its spelling.
    p.send(&echo(json!("8"), "hello"));
    assert_eq!(p.recv()["id"], json!("8"));
    p.send_raw(r#"{"jsonrpc":"2.0","id":1.50,"method":"ping"}"#);
    assert!(p.recv_raw().starts_with(r#"{"jsonrpc":"2.0","id":1.50,"#));
    let (code, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn bad_input_gets_errors_and_the_proxy_carries_on() {
    let mut p = Proxy::start(&["--max-message-size", "1024"]);
    p.send_raw("this is not json");
    let err = p.recv();
    assert_eq!(err["id"], Value::Null);
    assert_eq!(err["error"]["code"], -32700);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("column 2 (in line 1 of the client stream)"),
        "{err}"
    );

    p.send_raw(r#"{"jsonrpc":"1.0","id":"v","method":"ping"}"#);
    let err = p.recv();
    assert_eq!(
        (err["id"].clone(), err["error"]["code"].clone()),
        (json!("v"), json!(-32600))
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"jsonrpc\""),
        "{err}"
    );

    p.send_raw(&format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    ));
    let err = p.recv();
    assert_eq!(err["id"], Value::Null);
    assert_eq!(err["error"]["code"], -32052);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("line 3"),
        "{err}"
    );

    // Still alive, and the next message is served.
    p.send(&echo(json!(10), "still here"));
    let ok = p.recv();
    assert_eq!(ok["id"], 10);
    assert_eq!(ok["result"]["content"][0]["text"], "still here");
    let (code, _) = p.finish();
    assert_eq!(code, Some(0));
}

#[test]
fn many_requests_in_flight_all_answered_in_order() {
    let mut p = Proxy::demo();
    p.send(&initialize(json!(0)));
    p.recv();
    let n = 2000;
    let mut batch = String::new();
    for i in 1..=n {
        batch.push_str(&echo(json!(i), &format!("m{i}")).to_string());
        batch.push('\n');
    }
    p.stdin
        .as_mut()
        .unwrap()
        .write_all(batch.as_bytes())
        .unwrap();
    for i in 1..=n {
        let answer = p.recv();
        assert_eq!(answer["id"], json!(i));
        assert_eq!(answer["result"]["content"][0]["text"], format!("m{i}"));
    }
    // A JSON-RPC batch passes as one message and is answered as one.
    p.send_raw(r#"[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":"b","method":"ping"}]"#);
    let answers = p.recv();
    assert_eq!(answers.as_array().map(Vec::len), Some(2));
    // Closing stdin with a request still being answered: its answer still arrives.
    p.send(&echo(json!("last"), "bye"));
    p.close_stdin();
    assert_eq!(p.recv()["id"], "last");
    p.assert_no_more_output();
    let (code, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
}

const SERVER_REQUEST: &str = r#"printf '%s\n' '{"jsonrpc":"2.0","id":"s1","method":"roots/list"}'
read -r reply
printf '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":%s}}\n' "$reply"
cat >/dev/null"#;

#[test]
fn server_requests_and_notifications_reach_the_client_and_back() {
    let mut p = Proxy::start(&["--", "sh", "-c", SERVER_REQUEST]);
    let request = p.recv();
    assert_eq!(request["method"], "roots/list");
    assert_eq!(request["id"], "s1");
    // The client's answer reaches the server byte for byte (odd spacing kept).
    let reply = r#"{"id":"s1",  "jsonrpc":"2.0","result":{"roots":[{"uri":"file:///tmp"}]}}"#;
    p.send_raw(reply);
    let note = p.recv_raw();
    assert!(note.contains(reply), "{note}");
    let (code, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn server_crash_answers_pending_requests_and_fails_with_one_line() {
    let mut p = Proxy::start(&[
        "--",
        "sh",
        "-c",
        "head -n 3 >/dev/null; echo 'boom' >&2; exit 3",
    ]);
    p.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
    p.send(&json!({"jsonrpc":"2.0","id":"two","method":"ping"}));
    p.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    let mut ids = vec![p.recv(), p.recv()];
    ids.sort_by_key(|v| v["id"].to_string());
    assert_eq!(ids[0]["id"], json!("two"));
    assert_eq!(ids[1]["id"], json!(1));
    for e in &ids {
        assert_eq!(e["error"]["code"], -32050);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exited with status 3"),
            "{e}"
        );
    }
    p.assert_no_more_output();
    let (code, err) = p.finish();
    assert_eq!(code, Some(1));
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("shadowcat: server `sh -c")
            && last.contains("exited with status 3; 2 pending requests were answered with errors"),
        "{err}"
    );
    assert!(err.contains("boom"), "server stderr is logged: {err}");
}

#[test]
fn server_that_ignores_eof_and_sigterm_is_killed_after_the_grace_period() {
    let p = Proxy::start(&[
        "--shutdown-grace",
        "0.3",
        "--",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
    ]);
    let started = Instant::now();
    let (code, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("was killed by signal 9"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn unknown_command_fails_with_a_clear_reason() {
    let p = Proxy::start(&["--", "/nonexistent/mcp-server"]);
    let (code, err) = p.finish();
    assert_eq!(code, Some(1));
    assert!(
        err.contains("shadowcat: server side: cannot start `/nonexistent/mcp-server`"),
        "{err}"
    );
}

#[test]
fn logs_never_reach_stdout() {
    let mut p = Proxy::start(&["--log-level", "trace"]);
    p.send(&initialize(json!(1)));
    p.send_raw("garbage");
    p.send(&echo(json!(2), "x"));
    for _ in 0..3 {
        let line = p.recv_raw();
        let v: Value = serde_json::from_str(&line).expect("only JSON-RPC on stdout");
        assert_eq!(v["jsonrpc"], "2.0");
    }
    let (code, err) = p.finish();
    assert_eq!(code, Some(0));
    assert!(err.contains("TRACE"), "trace logs go to stderr: {err}");
}
