//! Matcher tests over a small recorded conversation.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::{Direction, Edge};

fn frame(ns: u64, dir: Direction, session: &str, v: Value) -> TapeFrame {
    TapeFrame::new(ns, dir, Edge::Client, v.to_string().into_bytes()).with_session_id(session)
}

fn script() -> Arc<ReplayScript> {
    use Direction::{ClientToServer as C, ServerToClient as S};
    let frames = [
        frame(
            10,
            C,
            "a",
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}),
        ),
        frame(
            20,
            S,
            "a",
            json!({"jsonrpc":"2.0","id":1,"result":{"serverInfo":{"name":"x"}}}),
        ),
        frame(
            30,
            C,
            "a",
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        ),
        frame(
            40,
            S,
            "a",
            json!({"jsonrpc":"2.0","method":"notifications/tools/list_changed"}),
        ),
        frame(
            50,
            C,
            "a",
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"weather","arguments":{"city":"Paris"},"_meta":{"progressToken":"p2"}}}),
        ),
        frame(
            60,
            S,
            "a",
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p2","progress":1}}),
        ),
        frame(
            70,
            S,
            "a",
            json!({"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"sunny"}]}}),
        ),
        frame(
            80,
            C,
            "a",
            json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"weather","arguments":{"city":"Paris"}}}),
        ),
        frame(
            90,
            S,
            "a",
            json!({"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"rainy"}]}}),
        ),
        frame(
            100,
            C,
            "b",
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        ),
        frame(
            110,
            S,
            "b",
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[]}}),
        ),
    ];
    Arc::new(ReplayScript::from_frames(&frames))
}

fn emits(r: Reaction) -> Vec<Emit> {
    match r {
        Reaction::Emit(e) => e,
        other => panic!("expected emits, got {other:?}"),
    }
}

#[test]
fn answers_with_live_ids_fifo_and_remaps_tokens() {
    let mut m = Matcher::new(script(), 0);
    let out = emits(m.on_client(&json!({"jsonrpc":"2.0","id":"init-a","method":"initialize","params":{"protocolVersion":"2025-06-18"}})));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message["id"], json!("init-a"));
    assert_eq!(out[0].gap_ns, 10);
    let out = emits(m.on_client(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})));
    assert_eq!(out[0].message["method"], "notifications/tools/list_changed");
    assert_eq!(out[0].related, None);
    // Keys in another order, another _meta: the first recorded call, its progress remapped.
    let call = json!({"method":"tools/call","jsonrpc":"2.0","id":"c1","params":{"arguments":{"city":"Paris"},"_meta":{"progressToken":77},"name":"weather"}});
    let out = emits(m.on_client(&call));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].message["params"]["progressToken"], json!(77));
    assert_eq!(out[0].related, Some(json!("c1")));
    assert_eq!(out[1].message["id"], json!("c1"));
    assert_eq!(out[1].message["result"]["content"][0]["text"], "sunny");
    // The second: the second recorded answer; the third: the last again.
    let out = emits(m.on_client(&json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"weather","arguments":{"city":"Paris"}}})));
    assert_eq!(out[0].message["result"]["content"][0]["text"], "rainy");
    assert_eq!(out[0].message["id"], json!(9));
    let out = emits(m.on_client(&json!({"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"weather","arguments":{"city":"Paris"}}})));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message["result"]["content"][0]["text"], "rainy");
    // A request of the next session moves there.
    let out = emits(m.on_client(&json!({"jsonrpc":"2.0","id":11,"method":"tools/list"})));
    assert_eq!(out[0].message["result"], json!({"tools":[]}));
    assert_eq!(m.current_session(), 1);
}

#[test]
fn unmatched_names_the_closest_and_the_difference() {
    let mut m = Matcher::new(script(), 0);
    let r = m.on_client(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"weather","arguments":{"city":"Lyon"}}}));
    let Reaction::Unmatched(miss) = r else {
        panic!("expected a miss, got {r:?}")
    };
    let text = miss.to_string();
    assert!(
        text.contains(r#"params.arguments.city: recorded "Paris", got "Lyon""#),
        "{text}"
    );
    assert!(
        text.contains(r#"closest recorded: tools/call "weather""#),
        "{text}"
    );
    let r = m.on_client(&json!({"jsonrpc":"2.0","id":6,"method":"prompts/list"}));
    assert!(matches!(r, Reaction::Unmatched(_)));
    // Notifications the tape has nothing for are accepted silently.
    assert_eq!(
        m.on_client(&json!({"jsonrpc":"2.0","method":"notifications/roots/list_changed"})),
        Reaction::Nothing
    );
}

#[test]
fn later_sessions_start_where_told() {
    let m = Matcher::new(script(), 3);
    assert_eq!(m.current_session(), 1);
    assert!(m.startup().is_empty());
    let empty = Matcher::new(Arc::new(ReplayScript::default()), 2);
    assert_eq!(empty.current_session(), 0);
}
