//! The control API over real HTTP on loopback, acting on messages really held by
//! `HeldMessages::hold`.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::time::Duration;

use shadowcat_core::ControlServer;
use shadowcat_core::mcp::Message;
use shadowcat_interceptor::{Decision, Direction, HeldInfo, HeldMessages};
use shadowcat_test_support::{RawResponse, http_request};
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

    /// Holds `text` in a task for up to `timeout`; returns the task and the id it is held as.
    async fn hold(&self, text: &str, timeout: Duration) -> (JoinHandle<Decision>, String) {
        let message = Message::parse(text.to_owned()).unwrap();
        let info = HeldInfo::new(
            "session-1",
            Direction::ClientToServer,
            "streamable-http",
            "pause-tools",
            &message,
        );
        let before = self.held.len();
        let held = self.held.clone();
        let task = tokio::spawn(async move { held.hold(info, timeout).await });
        for _ in 0..200 {
            if self.held.len() > before {
                let id = self.held.list().last().unwrap().id.clone();
                return (task, id);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the message was never held");
    }

    async fn request(&self, method: &str, path: &str, body: &str) -> RawResponse {
        self.request_with(method, path, &[], body).await
    }

    async fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> RawResponse {
        let addr = self.addr.to_string();
        let (method, path, body) = (method.to_owned(), path.to_owned(), body.to_owned());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            http_request(
                &addr,
                &method,
                &path,
                &headers,
                body.as_bytes(),
                Duration::from_secs(10),
            )
        })
        .await
        .unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.await.unwrap().unwrap();
    }
}

async fn decision(task: JoinHandle<Decision>) -> Decision {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the hold ended")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_resume_as_is() {
    let api = Api::start().await;
    let empty = api.request("GET", "/held", "").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.header("content-type"), Some("application/json"));
    assert_eq!(empty.json(), serde_json::json!([]));

    let (task, id) = api.hold(CALL, Duration::from_secs(60)).await;
    let list = api.request("GET", "/held", "").await;
    assert_eq!(list.status, 200);
    let list = list.json();
    let entry = &list.as_array().unwrap()[0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["session"], "session-1");
    assert_eq!(entry["direction"], "client_to_server");
    assert_eq!(entry["transport"], "streamable-http");
    assert_eq!(entry["method"], "tools/call");
    assert_eq!(entry["request_id"], 3);
    assert_eq!(entry["by"], "pause-tools");
    let left = entry["remaining_ms"].as_u64().unwrap();
    assert!(left > 50_000 && left <= 60_000, "{left}");

    let show = api.request("GET", &format!("/held/{id}"), "").await;
    assert_eq!(show.status, 200);
    assert_eq!(
        show.json()["message"],
        serde_json::from_str::<serde_json::Value>(CALL).unwrap()
    );
    assert!(show.text().contains(CALL), "the message exactly as held");

    let resumed = api.request("POST", &format!("/held/{id}/resume"), "").await;
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    assert_eq!(
        resumed.json(),
        serde_json::json!({"id": id, "decision": "resume"})
    );
    assert_eq!(decision(task).await, Decision::Resume);
    assert_eq!(
        api.request("GET", "/held", "").await.json(),
        serde_json::json!([])
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_validated_then_forwarded() {
    let api = Api::start().await;
    let (task, id) = api.hold(CALL, Duration::from_secs(60)).await;
    let path = format!("/held/{id}/resume");

    let bad = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":echo}}"#;
    let rejected = api.request("POST", &path, bad).await;
    assert_eq!(rejected.status, 400, "{}", rejected.text());
    let body = rejected.json();
    let offset = bad.find("echo}").unwrap();
    assert_eq!(body["offset"], offset);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains(&format!("byte offset {offset}")), "{error}");

    let not_rpc = api.request("POST", &path, r#"{"id":3}"#).await;
    assert_eq!(not_rpc.status, 400);
    assert!(not_rpc.json()["offset"].is_null());
    assert!(
        not_rpc.json()["error"]
            .as_str()
            .unwrap()
            .contains("jsonrpc")
    );
    assert_eq!(api.held.len(), 1, "still held after rejected edits");

    let good = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#;
    let accepted = api.request("POST", &path, good).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!(accepted.json()["decision"], "resume_edited");
    match decision(task).await {
        Decision::ResumeEdited(message) => assert_eq!(&message.as_bytes()[..], good.as_bytes()),
        other => panic!("{other:?}"),
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_unknown_ids() {
    let api = Api::start().await;
    let (task, id) = api.hold(CALL, Duration::from_secs(60)).await;
    let dropped = api.request("POST", &format!("/held/{id}/drop"), "").await;
    assert_eq!(dropped.status, 200, "{}", dropped.text());
    assert_eq!(dropped.json()["decision"], "drop");
    assert_eq!(decision(task).await, Decision::Drop);

    // Now unknown, as is any made-up id, on every endpoint.
    for (method, path) in [
        ("GET", format!("/held/{id}")),
        ("POST", format!("/held/{id}/resume")),
        ("POST", format!("/held/{id}/drop")),
        ("GET", "/held/h999".to_owned()),
        ("GET", "/held/nonsense".to_owned()),
    ] {
        let r = api.request(method, &path, "").await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.starts_with("no held message "), "{error}");
    }
    let edit_unknown = api.request("POST", "/held/h999/resume", "{bad").await;
    assert_eq!(edit_unknown.status, 404);

    let wrong_method = api.request("DELETE", "/held", "").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET"));
    assert_eq!(api.request("GET", "/nothing", "").await.status, 404);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_message_times_out() {
    let api = Api::start().await;
    let (task, id) = api.hold(CALL, Duration::from_millis(300)).await;
    assert_eq!(decision(task).await, Decision::TimedOut);
    let gone = api.request("POST", &format!("/held/{id}/resume"), "").await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        api.request("GET", "/held", "").await.json(),
        serde_json::json!([])
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_are_refused() {
    let api = Api::start().await;
    let (task, id) = api.hold(CALL, Duration::from_secs(60)).await;
    let path = format!("/held/{id}/resume");
    let from_page = api
        .request_with("POST", &path, &[("Origin", "http://evil.example")], "")
        .await;
    assert_eq!(from_page.status, 403);
    let rebound = api
        .request_with("POST", &path, &[("Host", "evil.example:7777")], "")
        .await;
    assert_eq!(rebound.status, 403);
    assert_eq!(api.held.len(), 1, "still held");
    let by_name = api
        .request_with("POST", &path, &[("Host", "localhost:7777")], "")
        .await;
    assert_eq!(by_name.status, 200, "{}", by_name.text());
    assert_eq!(decision(task).await, Decision::Resume);
    api.stop().await;
}

#[tokio::test]
async fn binding_elsewhere_than_loopback_is_refused() {
    let err = ControlServer::bind("0.0.0.0:0".parse().unwrap(), HeldMessages::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the control API listens on loopback only; 0.0.0.0:0 is not a loopback address"
    );
}
