use std::time::{Duration, Instant};

use super::*;

fn msg(text: &str) -> Message {
    Message::parse(text.to_owned()).unwrap()
}

fn sent(effects: &[Effect], to: Peer) -> Vec<&Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to: t, message } if *t == to => Some(message),
            _ => None,
        })
        .collect()
}

#[test]
fn handshake_sets_version_era_and_infos() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    let init = msg(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
    );
    assert_eq!(s.on_message(Peer::Client, &init, now), Effect::Forward);
    assert_eq!(s.phase(), Phase::Initializing);
    assert_eq!(s.era(), Some(Era::Session));
    assert_eq!(s.requested_version(), Some("2025-06-18"));
    // Servers may notify before answering; that changes nothing.
    let early = msg(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#);
    assert_eq!(s.on_message(Peer::Server, &early, now), Effect::Forward);
    let answer = msg(
        r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26","capabilities":{},"serverInfo":{"name":"s","version":"2"}}}"#,
    );
    assert_eq!(s.on_message(Peer::Server, &answer, now), Effect::Forward);
    assert_eq!(s.phase(), Phase::Initialized);
    assert_eq!(s.known_version(), Some(ProtocolVersion::V2025_03_26));
    assert_eq!(s.server_info().unwrap()["name"], "s");
    assert_eq!(s.client_info().unwrap()["name"], "c");
    let done = msg(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    s.on_message(Peer::Client, &done, now);
    assert_eq!(s.phase(), Phase::Ready);
    assert_eq!(s.pending(Peer::Client), 0);
}

#[test]
fn stateless_requests_set_the_era() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    let req = msg(
        r#"{"jsonrpc":"2.0","id":"a","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    );
    s.on_message(Peer::Client, &req, now);
    assert_eq!(s.era(), Some(Era::Stateless));
    assert_eq!(s.known_version(), Some(ProtocolVersion::V2026_07_28));
}

#[test]
fn tracks_both_directions_and_string_ids_separately_from_numbers() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
        now,
    );
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":"1","method":"ping"}"#),
        now,
    );
    s.on_message(
        Peer::Server,
        &msg(r#"{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{}}"#),
        now,
    );
    assert_eq!((s.pending(Peer::Client), s.pending(Peer::Server)), (2, 1));
    // The client answers the server's request 1; its own request 1 stays pending.
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
        now,
    );
    assert_eq!((s.pending(Peer::Client), s.pending(Peer::Server)), (2, 0));
    s.on_message(
        Peer::Server,
        &msg(r#"{"jsonrpc":"2.0","id":"1","result":{}}"#),
        now,
    );
    assert_eq!(
        s.pending_request(Peer::Client, &RequestId::number(1))
            .unwrap()
            .method(),
        "tools/list"
    );
    assert_eq!(s.pending(Peer::Client), 1);
    // An answer nobody waits for still passes, and is counted.
    assert_eq!(
        s.on_message(
            Peer::Server,
            &msg(r#"{"jsonrpc":"2.0","id":99,"result":{}}"#),
            now
        ),
        Effect::Forward
    );
    assert_eq!(s.stats().unmatched_answers, 1);
}

#[test]
fn duplicate_ids_and_too_many_pending_are_answered_with_errors() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default().with_max_pending(2), now);
    let a = msg(r#"{"jsonrpc":"2.0","id":1,"method":"a"}"#);
    assert_eq!(s.on_message(Peer::Client, &a, now), Effect::Forward);
    let Effect::Reply(dup) = s.on_message(Peer::Client, &a, now) else {
        panic!()
    };
    assert_eq!(dup.error().unwrap().code, ErrorCode::INVALID_REQUEST);
    assert!(dup.error().unwrap().message.contains("already used"));
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":2,"method":"b"}"#),
        now,
    );
    let Effect::Reply(full) = s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":3,"method":"c"}"#),
        now,
    ) else {
        panic!()
    };
    assert_eq!(full.id(), Some(&RequestId::number(3)));
    assert_eq!(full.error().unwrap().code, ErrorCode::TOO_MANY_PENDING);
    assert_eq!(s.stats().rejected, 2);
}

#[test]
fn batches_are_tracked_and_rejected_whole() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default().with_max_pending(2), now);
    let batch = msg(r#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"n"}]"#);
    assert_eq!(s.on_message(Peer::Client, &batch, now), Effect::Forward);
    assert_eq!(s.pending(Peer::Client), 1);
    let big =
        msg(r#"[{"jsonrpc":"2.0","id":2,"method":"a"},{"jsonrpc":"2.0","id":3,"method":"b"}]"#);
    let Effect::Reply(reply) = s.on_message(Peer::Client, &big, now) else {
        panic!()
    };
    assert_eq!(reply.batch().len(), 2);
    assert_eq!(reply.batch()[1].id(), Some(&RequestId::number(3)));
    assert_eq!(s.pending(Peer::Client), 1);
}

#[test]
fn cancelled_requests_are_forgotten() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":"x","method":"tools/call"}"#),
        now,
    );
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x"}}"#),
        now,
    );
    assert_eq!(s.pending(Peer::Client), 0);
}

#[test]
fn server_exit_answers_every_pending_request() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":1,"method":"a"}"#),
        now,
    );
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":"two","method":"b"}"#),
        now + Duration::from_millis(1),
    );
    s.on_message(
        Peer::Server,
        &msg(r#"{"jsonrpc":"2.0","id":5,"method":"roots/list"}"#),
        now,
    );
    let effects = s.on_peer_closed(Peer::Server, "exited with status 3", now);
    let to_client = sent(&effects, Peer::Client);
    assert_eq!(to_client.len(), 3);
    assert_eq!(to_client[0].id(), Some(&RequestId::number(1)));
    assert_eq!(to_client[1].id(), Some(&RequestId::string("two")));
    let err = to_client[0].error().unwrap();
    assert_eq!(err.code, ErrorCode::UPSTREAM_UNAVAILABLE);
    assert!(
        err.message.contains("exited with status 3"),
        "{}",
        err.message
    );
    assert_eq!(to_client[2].method(), Some("notifications/cancelled"));
    assert!(matches!(effects.last(), Some(Effect::Close { .. })));
    assert_eq!(s.phase(), Phase::Closed);
    assert_eq!(
        s.on_message(
            Peer::Client,
            &msg(r#"{"jsonrpc":"2.0","id":9,"method":"a"}"#),
            now
        ),
        Effect::Drop
    );
    assert!(s.on_peer_closed(Peer::Server, "again", now).is_empty());
}

#[test]
fn timeouts_answer_and_cancel() {
    let start = Instant::now();
    let cfg = SessionConfig::default()
        .with_request_timeout(Some(Duration::from_secs(5)))
        .with_idle_timeout(Some(Duration::from_secs(60)));
    let mut s = Session::new(cfg, start);
    assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(60)));
    s.on_message(
        Peer::Client,
        &msg(r#"{"jsonrpc":"2.0","id":1,"method":"slow"}"#),
        start,
    );
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, start + Duration::from_secs(5));
    assert!(s.on_timeout(deadline - Duration::from_millis(1)).is_empty());
    let effects = s.on_timeout(deadline);
    let err = sent(&effects, Peer::Client)[0].error().unwrap();
    assert_eq!(err.code, ErrorCode::REQUEST_TIMEOUT);
    assert_eq!(
        sent(&effects, Peer::Server)[0].method(),
        Some("notifications/cancelled")
    );
    assert_eq!(s.pending(Peer::Client), 0);
    let later = start + Duration::from_secs(61);
    assert!(matches!(
        s.on_timeout(later).as_slice(),
        [Effect::Close { .. }]
    ));
    assert_eq!(s.poll_timeout(), None);
}
