//! Every matcher and action, evaluated on real messages.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::Duration;

use serde_json::{Value, json};
use shadowcat_interceptor::{Direction, InterceptContext, Outcome, RuleSet, TransportFault};
use shadowcat_mcp::Message;

const C2S: Direction = Direction::ClientToServer;
const S2C: Direction = Direction::ServerToClient;

fn rules(yaml: &str) -> RuleSet {
    RuleSet::from_yaml_str(yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn msg(text: &str) -> Message {
    Message::parse(text.to_owned()).unwrap()
}

fn run(rules: &RuleSet, direction: Direction, text: &str) -> Outcome {
    let m = msg(text);
    rules.evaluate(&InterceptContext::new(
        "sess-1",
        direction,
        "streamable-http",
        &m,
    ))
}

fn run_response(rules: &RuleSet, text: &str, method: &str, tool: Option<&str>) -> Outcome {
    let m = msg(text);
    let ctx = InterceptContext::new("sess-1", S2C, "stdio", &m).with_request(Some(method), tool);
    rules.evaluate(&ctx)
}

fn json_of(m: &Message) -> Value {
    serde_json::from_slice(m.as_bytes()).unwrap()
}

const CALL: &str = r#"{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo","count":5}}}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#;
const NOTE: &str = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#;
const RESULT: &str =
    r#"{"jsonrpc":"2.0","id":"abc","result":{"content":[{"type":"text","text":"ok"}]}}"#;

#[test]
fn block_answers_with_a_json_rpc_error_keeping_the_id() {
    let r = rules(
        "rules:\n  - id: b\n    match: {method: tools/call}\n    action: {type: block, code: -32001, message: \"no {{request.params.name}}\"}\n",
    );
    let Outcome::Reply(answer) = run(&r, C2S, CALL) else {
        panic!()
    };
    assert_eq!(
        answer.as_bytes().as_ref(),
        br#"{"jsonrpc":"2.0","id":"abc","error":{"code":-32001,"message":"no get_weather"}}"#
    );
    // Defaults; a notification is dropped (nothing to answer); a response becomes an error.
    let r = rules("rules:\n  - id: b2\n    action: {type: block}\n");
    let Outcome::Reply(answer) = run(&r, C2S, LIST) else {
        panic!()
    };
    assert_eq!(
        json_of(&answer),
        json!({"jsonrpc":"2.0","id":9,"error":{"code":-32600,"message":"blocked by rule b2"}})
    );
    assert_eq!(run(&r, C2S, NOTE), Outcome::Drop);
    let Outcome::Replace(err) = run(&r, S2C, RESULT) else {
        panic!()
    };
    assert_eq!(json_of(&err)["error"]["code"], json!(-32600));
    assert_eq!(json_of(&err)["id"], json!("abc"));
}

#[test]
fn mock_templates_use_request_fields() {
    let r = rules(
        r#"rules:
  - id: m
    match: {tool: get_weather}
    action:
      type: mock
      result:
        content: [{type: text, text: "Sunny in {{request.params.arguments.city}}"}]
        echo: "{{request.params.arguments.count}}"
        meta: {session: "{{session}}", id: "{{request.id}}"}
  - id: e
    match: {method: tools/list}
    action: {type: mock, error: {code: -32002, message: "nothing for {{transport}}", data: {id: "{{request.id}}"}}}
"#,
    );
    let Outcome::Reply(answer) = run(&r, C2S, CALL) else {
        panic!()
    };
    assert_eq!(
        json_of(&answer),
        json!({"jsonrpc":"2.0","id":"abc","result":{
            "content":[{"type":"text","text":"Sunny in Oslo"}],
            "echo": 5, "meta": {"session": "sess-1", "id": "abc"}}})
    );
    let Outcome::Reply(answer) = run(&r, C2S, LIST) else {
        panic!()
    };
    assert_eq!(
        json_of(&answer),
        json!({"jsonrpc":"2.0","id":9,"error":{"code":-32002,
               "message":"nothing for streamable-http","data":{"id":9}}})
    );
}

#[test]
fn modify_rewrites_and_an_unchanged_message_is_forwarded_as_is() {
    let r = rules(
        r#"rules:
  - id: m
    match: {method: tools/call}
    action:
      type: modify
      set: {"$.params.arguments.count": 1, "$.params.arguments.via": "{{session}}"}
      remove: ["$.params.arguments.city"]
      rename: {"$.params.name": "tool"}
"#,
    );
    let Outcome::Replace(new) = run(&r, C2S, CALL) else {
        panic!()
    };
    assert_eq!(
        json_of(&new),
        json!({"jsonrpc":"2.0","id":"abc","method":"tools/call",
               "params":{"tool":"get_weather","arguments":{"count":1,"via":"sess-1"}}})
    );
    assert_eq!(new.id(), msg(CALL).id());
    // Setting what is already there changes nothing: the original bytes go on.
    let r = rules(
        "rules:\n  - id: same\n    action: {type: modify, set: {\"$.params.arguments.count\": 5}}\n",
    );
    assert_eq!(run(&r, C2S, CALL), Outcome::Forward);
    // Removing what makes it JSON-RPC sends the result as it is.
    let r = rules("rules:\n  - id: bad\n    action: {type: modify, remove: [\"$.jsonrpc\"]}\n");
    let Outcome::Malformed(bytes) = run(&r, C2S, LIST) else {
        panic!()
    };
    assert_eq!(bytes.as_ref(), br#"{"id":9,"method":"tools/list"}"#);
}

#[test]
fn modify_and_delay_go_on_to_later_rules_which_see_the_change() {
    let r = rules(
        r#"rules:
  - id: rename-tool
    match: {tool: get_weather}
    actions:
      - {type: modify, set: {"$.params.name": "get_forecast"}}
      - {type: delay, fixed_ms: 20}
  - id: forecast
    match: {tool: get_forecast}
    action: {type: delay, fixed_ms: 30}
  - id: stop
    match: {tool: get_forecast}
    action: {type: forward}
  - id: never
    action: {type: fault, fault: drop}
"#,
    );
    let Outcome::Delay(d, inner) = run(&r, C2S, CALL) else {
        panic!()
    };
    assert_eq!(d, Duration::from_millis(50));
    let Outcome::Replace(m) = *inner else {
        panic!()
    };
    assert_eq!(json_of(&m)["params"]["name"], json!("get_forecast"));
    let eval = r.evaluate_traced(&InterceptContext::new("s", C2S, "stdio", &msg(CALL)));
    assert_eq!(eval.matched, ["rename-tool", "forecast", "stop"]);
    assert_eq!(eval.decided_by.as_deref(), Some("stop"));
    // The same when the pipeline read the tool already: later rules see the new one.
    let call = msg(CALL);
    let given = InterceptContext::new("s", C2S, "stdio", &call).with_tool(Some("get_weather"));
    assert_eq!(
        r.evaluate_traced(&given).matched,
        ["rename-tool", "forecast", "stop"]
    );
    assert_eq!(run(&r, C2S, LIST), Outcome::Drop);
}

#[test]
fn faults() {
    let r = rules(
        r#"rules:
  - {id: d, match: {method: a}, action: {type: fault, fault: drop}}
  - {id: u, match: {method: b}, action: {type: fault, fault: duplicate}}
  - {id: o, match: {method: c}, action: {type: fault, fault: reorder}}
  - {id: m, match: {method: d}, action: {type: fault, fault: malformed}}
  - {id: c, match: {method: e}, action: {type: fault, fault: cut_stream}}
  - {id: x, match: {method: f}, action: {type: fault, fault: expire_session}}
  - {id: i, action: {type: fault, fault: slow_initialize, delay_ms: 250}}
  - {id: t, match: {tool: {glob: "get_*"}}, action: {type: fault, fault: tool_error, text: "down ({{request.params.name}})"}}
  - {id: r, match: {method: g}, action: {type: fault, fault: error, code: -32603}}
"#,
    );
    let req = |m: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{m}"}}"#);
    assert_eq!(run(&r, C2S, &req("a")), Outcome::Drop);
    assert_eq!(run(&r, C2S, &req("b")), Outcome::Duplicate);
    assert_eq!(run(&r, C2S, &req("c")), Outcome::Reorder);
    let Outcome::Malformed(bytes) = run(&r, C2S, &req("d")) else {
        panic!()
    };
    assert!(req("d").as_bytes().starts_with(&bytes) && bytes.len() < req("d").len());
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    assert_eq!(
        run(&r, C2S, &req("e")),
        Outcome::Transport(TransportFault::CutStream)
    );
    assert_eq!(
        run(&r, C2S, &req("f")),
        Outcome::Transport(TransportFault::ExpireSession)
    );
    // slow_initialize: only `initialize` (and its answer) wait; the rest go on.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
    assert_eq!(
        run(&r, C2S, init),
        Outcome::Delay(Duration::from_millis(250), Box::new(Outcome::Forward))
    );
    assert_eq!(
        run_response(
            &r,
            r#"{"jsonrpc":"2.0","id":0,"result":{}}"#,
            "initialize",
            None
        ),
        Outcome::Delay(Duration::from_millis(250), Box::new(Outcome::Forward))
    );
    // tool_error: a tools/call request is answered; a tools/call response is replaced.
    let tool_error =
        json!({"content":[{"type":"text","text":"down (get_weather)"}],"isError":true});
    let Outcome::Reply(m) = run(&r, C2S, CALL) else {
        panic!()
    };
    assert_eq!(
        json_of(&m),
        json!({"jsonrpc":"2.0","id":"abc","result":tool_error})
    );
    let Outcome::Replace(m) = run_response(&r, RESULT, "tools/call", Some("get_weather")) else {
        panic!()
    };
    assert_eq!(json_of(&m)["result"]["isError"], json!(true));
    assert_eq!(json_of(&m)["id"], json!("abc"));
    let Outcome::Reply(m) = run(&r, C2S, &req("g")) else {
        panic!()
    };
    assert_eq!(json_of(&m)["error"]["code"], json!(-32603));
}

#[test]
fn pause_holds_for_a_person() {
    let r = rules(
        "rules:\n  - id: p\n    match: {method: tools/call}\n    action: {type: pause, timeout_ms: 1500, on_timeout: drop}\n  - id: q\n    action: {type: pause}\n",
    );
    assert_eq!(
        run(&r, C2S, CALL),
        Outcome::Pause {
            by: "p".into(),
            timeout: Duration::from_millis(1500),
            on_timeout: Box::new(Outcome::Drop)
        }
    );
    assert_eq!(
        run(&r, C2S, LIST),
        Outcome::Pause {
            by: "q".into(),
            timeout: Duration::from_secs(30),
            on_timeout: Box::new(Outcome::Forward)
        }
    );
}

#[test]
fn matchers() {
    let drop_if = |m: &str| {
        rules(&format!(
            "rules:\n  - id: x\n    match: {m}\n    action: {{type: fault, fault: drop}}\n"
        ))
    };
    let hits = |m: &str, d: Direction, text: &str| run(&drop_if(m), d, text) == Outcome::Drop;
    assert!(hits("{direction: client_to_server}", C2S, LIST));
    assert!(!hits("{direction: server_to_client}", C2S, LIST));
    assert!(hits("{direction: both}", S2C, LIST));
    assert!(hits("{kind: notification}", C2S, NOTE));
    assert!(hits("{kind: [response, error]}", S2C, RESULT));
    assert!(!hits("{kind: request}", S2C, RESULT));
    assert!(hits("{method: {glob: \"tools/*\"}}", C2S, LIST));
    assert!(!hits("{method: {glob: \"tool?/x\"}}", C2S, LIST));
    assert!(hits("{method: {regex: \"^notifications/\"}}", C2S, NOTE));
    assert!(hits("{method: [ping, tools/list]}", C2S, LIST));
    assert!(hits(
        "{session: {glob: \"sess-*\"}, transport: streamable-http}",
        C2S,
        LIST
    ));
    assert!(!hits("{transport: stdio}", C2S, LIST));
    assert!(hits("{tool: get_weather}", C2S, CALL));
    assert!(!hits("{tool: get_weather}", C2S, LIST));
    assert!(hits("{params: {arguments: {city: Oslo}}}", C2S, CALL));
    assert!(!hits("{params: {arguments: {city: Rome}}}", C2S, CALL));
    assert!(hits(
        "{json: {path: \"$.params.arguments.count\", gt: 4, lte: 5}}",
        C2S,
        CALL
    ));
    assert!(!hits(
        "{json: {path: \"$.params.arguments.count\", lt: 5}}",
        C2S,
        CALL
    ));
    assert!(hits(
        "{json: [{path: \"$.params.arguments.city\", regex: \"^O\"}, {path: \"$.params.x\", exists: false}]}",
        C2S,
        CALL
    ));
    assert!(hits(
        "{json: {path: \"$.params.arguments.count\", equals: 5.0}}",
        C2S,
        CALL
    ));
    assert!(hits(
        "{json: {path: \"$.params.arguments[?@ == 'Oslo']\"}}",
        C2S,
        CALL
    ));
    assert!(!hits(
        "{json: {path: \"$.params.arguments.city\", gt: 1}}",
        C2S,
        CALL
    ));
    assert!(hits(
        "{any: [{method: ping}, {tool: get_weather}]}",
        C2S,
        CALL
    ));
    assert!(!hits(
        "{all: [{method: tools/call}, {not: {tool: get_weather}}]}",
        C2S,
        CALL
    ));
    assert!(hits("{not: {kind: request}}", C2S, NOTE));
    assert!(hits("{}", C2S, NOTE));
    // Responses: the request's method and tool, as the pipeline knows them.
    let r = drop_if("{request_method: tools/call, tool: get_weather}");
    assert_eq!(
        run_response(&r, RESULT, "tools/call", Some("get_weather")),
        Outcome::Drop
    );
    assert_eq!(
        run_response(&r, RESULT, "tools/call", Some("other")),
        Outcome::Forward
    );
    // Disabled rules never run.
    let r = rules("rules:\n  - {id: off, enabled: false, action: {type: fault, fault: drop}}\n");
    assert_eq!(run(&r, C2S, LIST), Outcome::Forward);
}

#[test]
fn priority_orders_rules_and_equal_ones_keep_file_order() {
    let r = rules(
        r#"rules:
  - {id: late, priority: 10, action: {type: block, message: late}}
  - {id: first, priority: -1, match: {method: ping}, action: {type: block, message: first}}
  - {id: early, priority: 5, action: {type: block, message: early}}
"#,
    );
    let order: Vec<String> = r.rules().into_iter().map(|x| x.id).collect();
    assert_eq!(order, ["first", "early", "late"]);
    let Outcome::Reply(m) = run(&r, C2S, LIST) else {
        panic!()
    };
    assert_eq!(json_of(&m)["error"]["message"], json!("early"));
}

#[test]
fn batches_get_one_answer_per_request() {
    let r =
        rules("rules:\n  - {id: b, match: {kind: batch}, action: {type: block, code: -32001}}\n");
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":"2","method":"b"}]"#;
    let Outcome::Reply(m) = run(&r, C2S, batch) else {
        panic!()
    };
    let v = json_of(&m);
    assert_eq!(v[0]["id"], json!(1));
    assert_eq!(v[1]["id"], json!("2"));
    assert_eq!(v.as_array().unwrap().len(), 2);
}

#[test]
fn backoff_grows_per_session_and_probability_zero_never_fires() {
    let r = rules(
        r#"rules:
  - id: never
    action: {type: fault, fault: drop, probability: 0}
  - id: slow
    action: {type: delay, backoff: {base_ms: 10, factor: 3, max_ms: 200}}
"#,
    );
    let delays: Vec<Outcome> = (0..5).map(|_| run(&r, C2S, LIST)).collect();
    let ms: Vec<u64> = delays
        .iter()
        .map(|o| match o {
            Outcome::Delay(d, _) => d.as_millis() as u64,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ms, [10, 30, 90, 200, 200]);
    let m = msg(LIST);
    let other = InterceptContext::new("sess-2", C2S, "stdio", &m);
    assert_eq!(
        r.evaluate(&other),
        Outcome::Delay(Duration::from_millis(10), Box::new(Outcome::Forward))
    );
    let stats = r.stats();
    assert_eq!((stats[0].matches, stats[0].actions), (6, 0));
    assert_eq!((stats[1].matches, stats[1].actions), (6, 6));
}
