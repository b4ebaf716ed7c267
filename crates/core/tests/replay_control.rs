//! `ReplayOutgoing` as a library: pacing, pause/resume/step, and error answers.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shadowcat_core::tape::{Direction, Edge, ReplayScript, TapeFrame, Timing};
use shadowcat_core::transport::{Outgoing, Upstream};
use shadowcat_core::{REPLAY_NO_MATCH, ReplayConfig, ReplayOutgoing};

const MS: u64 = 1_000_000;

fn script() -> Arc<ReplayScript> {
    let frame = |ns: u64, dir, v: Value| {
        TapeFrame::new(ns, dir, Edge::Client, v.to_string().into_bytes()).with_session_id("s")
    };
    use Direction::{ClientToServer as C, ServerToClient as S};
    let frames = [
        frame(
            0,
            C,
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{"n":1}}}),
        ),
        frame(
            100 * MS,
            S,
            json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"working"}}),
        ),
        frame(
            400 * MS,
            S,
            json!({"jsonrpc":"2.0","id":1,"result":{"content":[]}}),
        ),
    ];
    Arc::new(ReplayScript::from_frames(&frames))
}

async fn call(upstream: &mut Upstream, id: Value, n: i64) {
    let request = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"arguments":{"n":n},"name":"slow"}});
    upstream
        .writer
        .send(request.to_string().as_bytes())
        .await
        .unwrap();
    upstream.writer.flush().await.unwrap();
}

async fn next(upstream: &mut Upstream, within: Duration) -> Option<Value> {
    let frame = tokio::time::timeout(within, upstream.reader.recv())
        .await
        .ok()?;
    let frame = frame.unwrap().expect("open").expect("a frame");
    Some(serde_json::from_slice(&frame.bytes).unwrap())
}

#[tokio::test]
async fn recorded_timing_is_scaled_and_capped() {
    let timing = Timing::scaled(2.0)
        .unwrap()
        .with_max_gap(Some(Duration::from_millis(60)));
    let mut outgoing =
        ReplayOutgoing::new(script(), ReplayConfig::default().with_timing(timing), "t");
    let mut up = outgoing.connect().await.unwrap();
    let start = Instant::now();
    call(&mut up, json!("a"), 1).await;
    let log = next(&mut up, Duration::from_secs(2)).await.unwrap();
    assert_eq!(log["method"], "notifications/message");
    let first = start.elapsed();
    // 100 ms recorded, at twice the speed: 50 ms.
    assert!(
        first >= Duration::from_millis(45) && first < Duration::from_millis(300),
        "{first:?}"
    );
    let answer = next(&mut up, Duration::from_secs(2)).await.unwrap();
    assert_eq!(answer["id"], "a");
    // 300 ms more recorded, 150 ms at twice the speed, capped at 60 ms.
    let second = start.elapsed() - first;
    assert!(
        second >= Duration::from_millis(55) && second < Duration::from_millis(140),
        "{second:?}"
    );

    // As fast as possible: both at once.
    let mut fast = ReplayOutgoing::new(script(), ReplayConfig::default(), "t");
    let mut up = fast.connect().await.unwrap();
    let start = Instant::now();
    call(&mut up, json!(5), 1).await;
    next(&mut up, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        next(&mut up, Duration::from_secs(1)).await.unwrap()["id"],
        5
    );
    assert!(start.elapsed() < Duration::from_millis(50));
}

#[tokio::test]
async fn pause_holds_step_releases_one_answer_resume_releases_the_rest() {
    let mut outgoing = ReplayOutgoing::new(script(), ReplayConfig::default(), "t");
    let control = outgoing.control();
    control.pause();
    assert!(control.is_paused());
    let mut up = outgoing.connect().await.unwrap();
    call(&mut up, json!(7), 1).await;
    call(&mut up, json!(8), 1).await;
    assert!(next(&mut up, Duration::from_millis(200)).await.is_none());
    // One step: the first call's log line and its answer.
    control.step();
    let log = next(&mut up, Duration::from_secs(1)).await.unwrap();
    assert_eq!(log["method"], "notifications/message");
    assert_eq!(
        next(&mut up, Duration::from_secs(1)).await.unwrap()["id"],
        7
    );
    assert!(next(&mut up, Duration::from_millis(200)).await.is_none());
    control.resume();
    assert!(!control.is_paused());
    // The second call (a repeat) gets the recorded answer again.
    let answer = next(&mut up, Duration::from_secs(1)).await.unwrap();
    assert_eq!(answer["id"], 8);
    assert_eq!(answer["result"], json!({"content": []}));
}

#[tokio::test]
async fn unmatched_requests_get_errors_naming_the_closest() {
    let mut outgoing = ReplayOutgoing::new(script(), ReplayConfig::default(), "t");
    let mut up = outgoing.connect().await.unwrap();
    call(&mut up, json!(3), 2).await;
    let answer = next(&mut up, Duration::from_secs(1)).await.unwrap();
    assert_eq!(answer["id"], 3);
    assert_eq!(answer["error"]["code"], REPLAY_NO_MATCH.get());
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("params.arguments.n: recorded 1, got 2"),
        "{message}"
    );
    assert_eq!(
        answer["error"]["data"]["differences"][0]["path"],
        "params.arguments.n"
    );

    let unknown = json!({"jsonrpc":"2.0","id":4,"method":"prompts/list"});
    up.writer
        .send(unknown.to_string().as_bytes())
        .await
        .unwrap();
    up.writer.flush().await.unwrap();
    let answer = next(&mut up, Duration::from_secs(1)).await.unwrap();
    assert_eq!(answer["error"]["code"], -32601);

    // The client closing its side ends the replay once everything went out.
    up.writer.close().await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(1), up.reader.recv())
        .await
        .unwrap();
    assert!(end.unwrap().is_none());
}

#[tokio::test]
async fn a_cancelled_request_gets_nothing_more() {
    let timing = Timing::recorded();
    let mut outgoing =
        ReplayOutgoing::new(script(), ReplayConfig::default().with_timing(timing), "t");
    let mut up = outgoing.connect().await.unwrap();
    call(&mut up, json!("c"), 1).await;
    let cancel =
        json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c"}});
    up.writer.send(cancel.to_string().as_bytes()).await.unwrap();
    up.writer.flush().await.unwrap();
    assert!(next(&mut up, Duration::from_millis(600)).await.is_none());
}
