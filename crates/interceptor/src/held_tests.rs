use super::*;

const PING: &str = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;

fn info(text: &str) -> HeldInfo {
    let message = Message::parse(text.to_owned()).unwrap();
    HeldInfo::new(
        "s1",
        Direction::ClientToServer,
        "stdio",
        "pause-ping",
        &message,
    )
}

/// Holds `text` in a task; returns the task and the held id once it is listed.
async fn hold_in_task(
    held: &HeldMessages,
    text: &str,
    timeout: Duration,
) -> (tokio::task::JoinHandle<Decision>, String) {
    let before: Vec<String> = held.list().into_iter().map(|s| s.id).collect();
    let task = tokio::spawn({
        let held = held.clone();
        let info = info(text);
        async move { held.hold(info, timeout).await }
    });
    for _ in 0..100 {
        if let Some(new) = held.list().into_iter().find(|s| !before.contains(&s.id)) {
            return (task, new.id);
        }
        tokio::task::yield_now().await;
    }
    panic!("the message was never held");
}

#[tokio::test]
async fn resume_forwards_as_is_and_releases_the_entry() {
    let held = HeldMessages::default();
    let (task, id) = hold_in_task(&held, PING, Duration::from_secs(60)).await;
    assert_eq!(id, "h1");
    let listed = held.list();
    assert_eq!(listed.len(), 1);
    let s = &listed[0];
    assert_eq!(s.session, "s1");
    assert_eq!(s.direction, Direction::ClientToServer);
    assert_eq!(s.method.as_deref(), Some("ping"));
    assert_eq!(s.request_id.as_deref(), Some("7"));
    assert_eq!(s.by, "pause-ping");
    assert!(s.time_left <= Duration::from_secs(60) && s.time_left > Duration::from_secs(50));
    held.resume(&id).unwrap();
    assert_eq!(task.await.unwrap(), Decision::Resume);
    assert!(held.is_empty());
    // Deciding twice: the id is gone.
    assert!(held.resume(&id).unwrap_err().is_unknown_id());
}

#[tokio::test]
async fn an_invalid_edit_names_the_offset_and_keeps_the_message_held() {
    let held = HeldMessages::default();
    let (task, id) = hold_in_task(&held, PING, Duration::from_secs(60)).await;
    let bad = "{\"jsonrpc\":\"2.0\",\n\"id\":7,\"method\":ping}";
    let err = held.edit(&id, bad).unwrap_err();
    let HeldError::InvalidEdit { offset, reason, .. } = &err else {
        panic!("{err:?}")
    };
    // The `p` of the unquoted `ping`.
    assert_eq!(*offset, Some(bad.find("ping}").unwrap()));
    assert!(reason.contains("byte offset"), "{reason}");
    // Valid JSON, not JSON-RPC: no offset, the reason names the problem.
    let err = held.edit(&id, r#"{"id":7,"method":"ping"}"#).unwrap_err();
    assert!(
        matches!(&err, HeldError::InvalidEdit { offset: None, reason, .. } if reason.contains("jsonrpc")),
        "{err:?}"
    );
    assert_eq!(held.len(), 1, "still held after bad edits");
    let good = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
    held.edit(&id, good).unwrap();
    match task.await.unwrap() {
        Decision::ResumeEdited(m) => {
            assert_eq!(m.method(), Some("tools/list"));
            assert_eq!(&m.as_bytes()[..], good.as_bytes());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn drop_drops() {
    let held = HeldMessages::default();
    let (task, id) = hold_in_task(&held, PING, Duration::from_secs(60)).await;
    held.drop_message(&id).unwrap();
    assert_eq!(task.await.unwrap(), Decision::Drop);
    assert!(held.is_empty());
}

#[tokio::test]
async fn unknown_ids_are_errors() {
    let held = HeldMessages::default();
    for id in ["h1", "h99", "1", "x", ""] {
        assert!(held.get(id).is_none());
        assert_eq!(held.resume(id), Err(HeldError::UnknownId { id: id.into() }));
        assert!(held.drop_message(id).unwrap_err().is_unknown_id());
        assert!(held.edit(id, PING).unwrap_err().is_unknown_id());
        assert!(held.edit(id, "not json").unwrap_err().is_unknown_id());
    }
    assert_eq!(
        HeldError::UnknownId { id: "h4".into() }.to_string(),
        "no held message h4"
    );
}

#[tokio::test]
async fn times_out_to_timed_out_and_counts_down() {
    tokio::time::pause();
    let held = HeldMessages::default();
    let (task, id) = hold_in_task(&held, PING, Duration::from_secs(30)).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    let s = held.get(&id).unwrap().summary;
    assert_eq!(s.held_for, Duration::from_secs(10));
    assert_eq!(s.time_left, Duration::from_secs(20));
    tokio::time::advance(Duration::from_secs(21)).await;
    assert_eq!(task.await.unwrap(), Decision::TimedOut);
    assert!(held.is_empty());
    assert!(held.resume(&id).unwrap_err().is_unknown_id());
}

#[tokio::test]
async fn beyond_the_bound_a_pause_times_out_at_once() {
    let held = HeldMessages::new(1);
    let (first, id) = hold_in_task(&held, PING, Duration::from_secs(60)).await;
    let second = tokio::time::timeout(
        Duration::from_secs(5),
        held.hold(info(PING), Duration::from_secs(60)),
    )
    .await
    .expect("answered at once");
    assert_eq!(second, Decision::TimedOut);
    assert_eq!(held.len(), 1);
    held.drop_message(&id).unwrap();
    assert_eq!(first.await.unwrap(), Decision::Drop);
    // Room again.
    let (again, id) = hold_in_task(&held, PING, Duration::from_secs(60)).await;
    held.resume(&id).unwrap();
    assert_eq!(again.await.unwrap(), Decision::Resume);
}

#[tokio::test]
async fn dropping_the_hold_future_releases_the_entry() {
    let held = HeldMessages::default();
    let (task, id) = hold_in_task(&held, PING, Duration::from_secs(60)).await;
    assert_eq!(held.len(), 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(held.is_empty());
    assert!(held.resume(&id).unwrap_err().is_unknown_id());
    // Also when dropped in place (a select that went the other way).
    tokio::select! {
        _ = held.hold(info(PING), Duration::from_secs(60)) => panic!("nobody decided"),
        () = tokio::task::yield_now() => {}
    }
    assert!(held.is_empty());
}

#[tokio::test]
async fn serializes_for_the_api() {
    let held = HeldMessages::default();
    let text = r#"{"jsonrpc":"2.0","id":"a b","method":"tools/call","params":{"name":"echo"}}"#;
    let (task, id) = hold_in_task(&held, text, Duration::from_secs(60)).await;
    let detail = held.get(&id).unwrap();
    let json = serde_json::to_string(&detail).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["id"], "h1");
    assert_eq!(value["session"], "s1");
    assert_eq!(value["direction"], "client_to_server");
    assert_eq!(value["transport"], "stdio");
    assert_eq!(value["method"], "tools/call");
    assert_eq!(value["request_id"], "a b");
    assert_eq!(value["by"], "pause-ping");
    assert!(value["held_ms"].is_u64() && value["remaining_ms"].is_u64());
    // The message goes out exactly as held, key order and all.
    assert!(json.ends_with(&format!(r#""message":{text}}}"#)), "{json}");
    held.resume(&id).unwrap();
    task.await.unwrap();
}

#[test]
fn byte_offsets_of_lines_and_columns() {
    let text = b"ab\ncd\n\nef";
    assert_eq!(byte_offset(text, 1, 1), 0);
    assert_eq!(byte_offset(text, 1, 2), 1);
    assert_eq!(byte_offset(text, 2, 1), 3);
    assert_eq!(byte_offset(text, 4, 2), 8);
    assert_eq!(byte_offset(text, 9, 9), text.len());
}
