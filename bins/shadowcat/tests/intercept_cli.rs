//! `shadowcat intercept …`: the real binary against a real control API on loopback, acting on
//! messages really held by `HeldMessages::hold`.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use shadowcat_core::ControlServer;
use shadowcat_core::mcp::Message;
use shadowcat_interceptor::{Decision, Direction, HeldInfo, HeldMessages};
use shadowcat_test_support::{ProcessOutput, free_port, run_with_timeout};
use tokio::task::JoinHandle;

const CALL: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#;

struct Api {
    addr: SocketAddr,
    held: HeldMessages,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: JoinHandle<shadowcat_core::Result<()>>,
}

impl Api {
    async fn start() -> Self {
        let held = HeldMessages::default();
        let control = ControlServer::bind("127.0.0.1:0".parse().unwrap(), held.clone())
            .await
            .unwrap();
        let addr = control.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(control.run(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            held,
            stop: Some(stop),
            server,
        }
    }

    /// Holds `text` in a task; returns the task and the id it is held as.
    async fn hold(&self, text: &str) -> (JoinHandle<Decision>, String) {
        let message = Message::parse(text.to_owned()).unwrap();
        let info = HeldInfo::new(
            "sess-a",
            Direction::ClientToServer,
            "stdio",
            "pause-all",
            &message,
        );
        let before = self.held.len();
        let held = self.held.clone();
        let task = tokio::spawn(async move { held.hold(info, Duration::from_secs(120)).await });
        for _ in 0..200 {
            if self.held.len() > before {
                return (task, self.held.list().last().unwrap().id.clone());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the message was never held");
    }

    /// Runs `shadowcat intercept ARGS --control ADDR`.
    async fn cli(&self, args: &[&str]) -> ProcessOutput {
        self.cli_with(args, &[]).await
    }

    async fn cli_with(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> ProcessOutput {
        let mut command = intercept(args);
        command.args(["--control", &self.addr.to_string()]);
        for (name, value) in env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        run(command).await
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.await.unwrap().unwrap();
    }
}

fn intercept(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shadowcat"));
    command
        .arg("intercept")
        .args(args)
        .env_remove("SHADOWCAT_CONTROL");
    command
}

async fn run(mut command: Command) -> ProcessOutput {
    tokio::task::spawn_blocking(move || run_with_timeout(&mut command, Duration::from_secs(30)))
        .await
        .unwrap()
}

async fn decision(task: JoinHandle<Decision>) -> Decision {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the hold ended")
        .unwrap()
}

/// A failure: non-zero exit, one line on stderr starting `shadowcat: `, nothing on stdout.
fn failed_with(out: &ProcessOutput, needle: &str) {
    assert!(!out.success() && !out.timed_out, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.starts_with("shadowcat: "), "{out}");
    assert!(out.stderr.contains(needle), "wanted {needle:?}: {out}");
    assert!(out.stdout.is_empty(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_edit_resume_and_drop() {
    let api = Api::start().await;
    let empty = api.cli(&["list"]).await;
    assert!(empty.success(), "{empty}");
    assert_eq!(empty.stdout, "no held messages\n");

    let (call, id) = api.hold(CALL).await;
    let list = api.cli(&["list"]).await;
    assert!(list.success(), "{list}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "SESSION",
            "DIRECTION",
            "METHOD",
            "REQUEST",
            "BY",
            "HELD",
            "LEFT"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[..6],
        [
            id.as_str(),
            "sess-a",
            "client->server",
            "tools/call",
            "3",
            "pause-all"
        ]
    );
    // Columns line up: each cell starts where its header does.
    assert_eq!(
        lines[0].find("METHOD"),
        lines[1].find("tools/call"),
        "{list}"
    );

    let json = api.cli(&["list", "--json"]).await;
    assert!(json.success(), "{json}");
    let value: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value[0]["id"], id.as_str());
    assert_eq!(value[0]["request_id"], 3);

    let show = api.cli(&["show", &id]).await;
    assert!(show.success(), "{show}");
    assert!(show.stdout.contains("method:     tools/call"), "{show}");
    assert!(show.stdout.contains("held by:    pause-all"), "{show}");
    assert!(
        show.stdout
            .contains("{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 3,\n  \"method\": \"tools/call\""),
        "pretty-printed in its own order: {show}"
    );
    let show_json = api.cli(&["show", &id, "--json"]).await;
    let value: Value = serde_json::from_str(&show_json.stdout).unwrap();
    assert_eq!(value["message"]["params"]["name"], "echo");

    // A bad edit is refused with the offset; the message stays held.
    let bad = r#"{"jsonrpc":"2.0","id":3,"method":tools/call}"#;
    let refused = api.cli(&["edit", &id, "--message", bad]).await;
    // `t` could start `true`: the error is at the `o`.
    failed_with(
        &refused,
        &format!("byte offset {}", bad.find("tools/call}").unwrap() + 1),
    );
    assert_eq!(api.held.len(), 1);

    let good = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}"#;
    let edited = api.cli(&["edit", &id, "--message", good]).await;
    assert!(edited.success(), "{edited}");
    assert_eq!(
        edited.stdout,
        format!("{id} resumed with the edited message\n")
    );
    match decision(call).await {
        Decision::ResumeEdited(m) => assert_eq!(&m.as_bytes()[..], good.as_bytes()),
        other => panic!("{other:?}"),
    }

    let (second, id2) = api.hold(CALL).await;
    let resumed = api.cli(&["resume", &id2]).await;
    assert!(resumed.success(), "{resumed}");
    assert_eq!(resumed.stdout, format!("{id2} resumed\n"));
    assert_eq!(decision(second).await, Decision::Resume);

    let (third, id3) = api.hold(CALL).await;
    let dropped = api.cli(&["drop", &id3, "--json"]).await;
    assert!(dropped.success(), "{dropped}");
    let value: Value = serde_json::from_str(&dropped.stdout).unwrap();
    assert_eq!(value, serde_json::json!({"id": id3, "decision": "drop"}));
    assert_eq!(decision(third).await, Decision::Drop);

    // Gone now.
    failed_with(
        &api.cli(&["resume", &id3]).await,
        &format!("no held message {id3}"),
    );
    failed_with(&api.cli(&["show", "h999"]).await, "no held message h999");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_in_editor_and_from_a_file() {
    let api = Api::start().await;
    let (call, id) = api.hold(CALL).await;

    let unset = api.cli_with(&["edit", &id], &[("EDITOR", None)]).await;
    failed_with(&unset, "$EDITOR is not set");
    let unchanged = api
        .cli_with(&["edit", &id], &[("EDITOR", Some("true"))])
        .await;
    failed_with(&unchanged, "message unchanged");
    assert_eq!(api.held.len(), 1);

    // The editor sees the message pretty-printed (two-space indents, one member a line)
    // and changes the tool's name and the id.
    let editor = "sed -i -e 's/\"echo\"/\"add\"/' -e 's/^  \"id\": 3,$/  \"id\": 4,/'";
    let edited = api
        .cli_with(&["edit", &id], &[("EDITOR", Some(editor))])
        .await;
    assert!(edited.success(), "{edited}");
    match decision(call).await {
        Decision::ResumeEdited(m) => {
            let v: Value = serde_json::from_slice(m.as_bytes()).unwrap();
            assert_eq!(v["params"]["name"], "add");
            assert_eq!(v["id"], 4);
            assert!(m.as_bytes().contains(&b'\n'), "sent as the editor left it");
        }
        other => panic!("{other:?}"),
    }

    let (call, id) = api.hold(CALL).await;
    let dir = shadowcat_test_support::temp_dir("intercept-cli");
    let path = dir.path().join("edit.json");
    std::fs::write(&path, r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#).unwrap();
    let from_file = api
        .cli(&["edit", &id, "--file", path.to_str().unwrap()])
        .await;
    assert!(from_file.success(), "{from_file}");
    match decision(call).await {
        Decision::ResumeEdited(m) => assert_eq!(m.method(), Some("ping")),
        other => panic!("{other:?}"),
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_comes_from_the_environment_and_a_missing_api_is_named() {
    let api = Api::start().await;
    let mut command = intercept(&["list", "--json"]);
    command.env("SHADOWCAT_CONTROL", api.addr.to_string());
    let out = run(command).await;
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout.trim(), "[]");
    api.stop().await;

    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = intercept(&["list"]);
    command.env("SHADOWCAT_CONTROL", &addr);
    failed_with(
        &run(command).await,
        &format!("no control API at {addr} (start the proxy with --control {addr})"),
    );
}
