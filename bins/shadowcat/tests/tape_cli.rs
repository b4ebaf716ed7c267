//! `shadowcat tape …` run as a real process over real tape files: every command's text and
//! JSON output, exit codes, HAR shape, diff, prune and repair.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use shadowcat_tape::{Direction, Edge, JsonlReader, JsonlWriter, TapeFrame, TapeHeader};

const MS: u64 = 1_000_000;
/// 2025-06-18T09:30:00Z.
const T0: u64 = 1_750_239_000_000_000_000;

/// What differs between the two tapes the tests compare.
struct Variant {
    /// An extra property in `echo`'s input schema.
    loud: bool,
    /// What `add` answers.
    sum: u64,
}

/// Writes a realistic two-session MCP exchange, as the proxy records it at its client
/// edge (and, for session one, its server edge too).
fn write_tape(path: &Path, id: &str, name: &str, start: u64, v: &Variant) {
    let mut echo_props = json!({ "message": { "type": "string" } });
    if v.loud {
        echo_props["loud"] = json!({ "type": "boolean" });
    }
    let tools = json!([
        { "name": "echo", "description": "Echoes", "inputSchema": { "type": "object", "properties": echo_props, "required": ["message"] } },
        { "name": "add", "description": "Adds", "inputSchema": { "type": "object", "properties": { "a": { "type": "number" }, "b": { "type": "number" } } } },
    ]);
    let s1: Vec<(u64, Direction, Value)> = vec![
        (
            0,
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
        ),
        (
            3,
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"s","version":"1"}}}),
        ),
        (
            4,
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        ),
        (
            5,
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        ),
        (
            7,
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":tools}}),
        ),
        (
            10,
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}),
        ),
        (
            12,
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"hi"}]}}),
        ),
        (
            20,
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}),
        ),
        (
            30,
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":v.sum.to_string()}]}}),
        ),
        (
            40,
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"add","arguments":{"a":"x"}}}),
        ),
        (
            41,
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"a must be a number"}}),
        ),
    ];
    let s2: Vec<(u64, Direction, Value)> = vec![
        (
            50,
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{"message":"second"}}}),
        ),
        (
            58,
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":"a","result":{"content":[{"type":"text","text":"second"}],"isError":true}}),
        ),
    ];
    let mut writer = JsonlWriter::create(path).unwrap();
    writer
        .write_header(
            &TapeHeader::from_unix_ns(id, start)
                .with_name(name)
                .with_tag("ci")
                .with_metadata("mode", "forward".into()),
        )
        .unwrap();
    for (ms, direction, message) in s1 {
        let bytes = serde_json::to_vec(&message).unwrap();
        for edge in [Edge::Client, Edge::Server] {
            let at = ms * MS + u64::from(edge == Edge::Server) * 100_000;
            writer
                .write_frame(
                    &TapeFrame::new(at, direction, edge, bytes.clone()).with_session_id("s-1"),
                )
                .unwrap();
        }
    }
    for (ms, direction, message) in s2 {
        let bytes = serde_json::to_vec(&message).unwrap();
        writer
            .write_frame(
                &TapeFrame::new(ms * MS, direction, Edge::Client, bytes).with_session_id("s-2"),
            )
            .unwrap();
    }
    writer.flush().unwrap();
}

/// A tape directory with tapes `one` (baseline) and `two` (a changed schema and result).
fn tapes() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.jsonl");
    let two = dir.path().join("two.jsonl");
    write_tape(
        &one,
        "tape-one",
        "baseline",
        T0,
        &Variant {
            loud: false,
            sum: 3,
        },
    );
    write_tape(
        &two,
        "tape-two",
        "changed",
        T0 + 60_000 * MS,
        &Variant { loud: true, sum: 4 },
    );
    (dir, one, two)
}

fn tape(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowcat"))
        .arg("tape")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.code().is_some(), "killed: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn list_filters_and_reports_each_tape() {
    let (dir, _, _) = tapes();
    let out = tape(dir.path(), &["list", "--json"]);
    assert!(out.status.success());
    let list = json_of(&out);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tape-one", "tape-two"]);
    assert_eq!(list[0]["sessions"], json!(["s-1", "s-2"]));
    assert_eq!(list[0]["tools"], json!(["add", "echo"]));
    assert_eq!(list[0]["frames"]["total"], 24);
    assert!(dir.path().join("index.json").is_file());

    let out = tape(
        dir.path(),
        &["list", "--json", "--since", "2025-06-18T09:30:30Z"],
    );
    assert_eq!(json_of(&out).as_array().unwrap().len(), 1);
    let out = tape(dir.path(), &["list", "--json", "--tool", "nope"]);
    assert_eq!(json_of(&out), json!([]));

    let out = tape(dir.path(), &["list", "--tag", "ci"]);
    let text = stdout(&out);
    assert!(
        text.contains("tape-one")
            && text.contains("baseline")
            && text.contains("2025-06-18 09:30:00"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal: {text}"
    );
}

#[test]
fn show_prints_a_timeline() {
    let (dir, _, _) = tapes();
    let out = tape(
        dir.path(),
        &["show", "tape-one", "--edge", "client", "--session", "s-1"],
    );
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 11, "{text}");
    assert!(
        lines[5].contains("→") && lines[5].contains("tools/call #2 (echo)"),
        "{}",
        lines[5]
    );
    assert!(
        lines[6].contains("←") && lines[6].contains("result #2"),
        "{}",
        lines[6]
    );
    assert!(lines[7].contains("+   20.0ms"), "{}", lines[7]);
    assert!(lines[10].contains("error #4 -32602"), "{}", lines[10]);

    // By name, limited, in full.
    let out = tape(dir.path(), &["show", "baseline", "--limit", "1", "--full"]);
    let text = stdout(&out);
    assert!(
        text.contains("initialize #0") && text.contains("\"protocolVersion\": \"2025-06-18\""),
        "{text}"
    );
    assert!(!text.contains("result #0"), "{text}");

    let out = tape(dir.path(), &["show", "no-such-tape"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-tape"));

    // Through a pager: the whole timeline reaches it, nothing goes to stdout.
    let paged = dir.path().join("paged.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_shadowcat"))
        .args(["tape", "--dir"])
        .arg(dir.path())
        .args(["show", "tape-one", "--pager", "always"])
        .env("PAGER", format!("cat > '{}'", paged.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    let text = std::fs::read_to_string(&paged).unwrap();
    assert!(text.contains("tools/call #2 (echo)"), "{text}");
    let direct = stdout(&tape(dir.path(), &["show", "tape-one", "--pager", "never"]));
    assert_eq!(text, direct);
}

#[test]
fn stats_counts_methods_tools_latency_and_errors() {
    let (dir, one, _) = tapes();
    let report = json_of(&tape(
        dir.path(),
        &["stats", one.to_str().unwrap(), "--json"],
    ));
    assert_eq!(report["frames"]["total"], 24);
    assert_eq!(report["sessions"], 2);
    assert_eq!(report["paired_on_edge"], "client");
    let call = &report["methods"]["tools/call"];
    assert_eq!(call["requests"], 4);
    assert_eq!(call["errors"], 1);
    // Latencies 2, 10, 1 and 8 ms.
    assert_eq!(call["latency"]["count"], 4);
    assert_eq!(call["latency"]["max_ns"], 10 * MS);
    assert_eq!(call["latency"]["min_ns"], MS);
    let p50 = call["latency"]["p50_ns"].as_u64().unwrap();
    assert!((1_900_000..=2_100_000).contains(&p50), "{p50}");
    assert_eq!(
        report["methods"]["notifications/initialized"]["notifications"],
        1
    );
    assert_eq!(
        report["tools"]["echo"],
        json!({"calls": 2, "errors": 0, "tool_errors": 1})
    );
    assert_eq!(
        report["tools"]["add"],
        json!({"calls": 2, "errors": 1, "tool_errors": 0})
    );
    assert_eq!(report["errors"], 1);
    assert_eq!(report["unanswered"], 0);

    let text = stdout(&tape(dir.path(), &["stats", "tape-one"]));
    assert!(
        text.contains("tools/call") && text.contains("P99"),
        "{text}"
    );
}

#[test]
fn grep_selects_frames_as_a_valid_tape() {
    let (dir, _, _) = tapes();
    let out = tape(
        dir.path(),
        &[
            "grep", "tape-one", "--tool", "add", "--edge", "client", "--json",
        ],
    );
    assert!(out.status.success());
    let mut reader = JsonlReader::new(&out.stdout[..]).unwrap();
    assert_eq!(reader.header().tape_id, "tape-one");
    let frames: Vec<TapeFrame> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(frames.len(), 4, "two calls and their answers");
    assert!(frames.iter().all(|f| f.edge == Edge::Client));

    let out = tape(
        dir.path(),
        &[
            "grep",
            "tape-one",
            "--method",
            "tools/*",
            "--direction",
            "c2s",
            "--edge",
            "client",
        ],
    );
    assert_eq!(stdout(&out).lines().count(), 5, "{}", stdout(&out));

    let out = tape(
        dir.path(),
        &[
            "grep",
            "tape-one",
            "--path",
            "$.params.arguments.message",
            "--equals",
            "hi",
            "--json",
        ],
    );
    assert_eq!(stdout(&out).lines().count(), 3, "header and both edges");
    let out = tape(
        dir.path(),
        &[
            "grep",
            "tape-one",
            "--path",
            "$.error.message",
            "--regex",
            "must be",
            "--session",
            "s-1",
            "--edge",
            "server",
        ],
    );
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = tape(
        dir.path(),
        &["grep", "tape-one", "--since-ms", "45", "--until-ms", "55"],
    );
    assert!(stdout(&out).lines().all(|l| l.contains("[s-2]")) && out.status.success());

    let out = tape(dir.path(), &["grep", "tape-one", "--method", "resources/*"]);
    assert_eq!(out.status.code(), Some(1), "no match");
    let out = tape(
        dir.path(),
        &["grep", "tape-one", "--path", "$[", "--equals", "1"],
    );
    assert_eq!(out.status.code(), Some(2), "bad JSONPath");
}

#[test]
fn export_har_has_every_required_field() {
    let (dir, _, _) = tapes();
    let har_path = dir.path().join("one.har");
    let out = tape(
        dir.path(),
        &[
            "export",
            "tape-one",
            "--format",
            "har",
            "--edge",
            "client",
            "-o",
            har_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let har: Value = serde_json::from_slice(&fs::read(&har_path).unwrap()).unwrap();
    let log = &har["log"];
    assert_eq!(log["version"], "1.2");
    assert_eq!(log["creator"]["name"], "shadowcat");
    assert!(log["creator"]["version"].is_string());
    let entries = log["entries"].as_array().unwrap();
    // Six request/answer pairs in s-1, one notification, one pair in s-2.
    assert_eq!(entries.len(), 7);
    for e in entries {
        for key in [
            "startedDateTime",
            "time",
            "request",
            "response",
            "cache",
            "timings",
        ] {
            assert!(e.get(key).is_some(), "entry without {key}: {e}");
        }
        for key in [
            "method",
            "url",
            "httpVersion",
            "cookies",
            "headers",
            "queryString",
            "headersSize",
            "bodySize",
        ] {
            assert!(
                e["request"].get(key).is_some(),
                "request without {key}: {e}"
            );
        }
        for key in [
            "status",
            "statusText",
            "httpVersion",
            "cookies",
            "headers",
            "content",
            "redirectURL",
            "headersSize",
            "bodySize",
        ] {
            assert!(
                e["response"].get(key).is_some(),
                "response without {key}: {e}"
            );
        }
        assert!(
            e["response"]["content"]["mimeType"].is_string()
                && e["response"]["content"]["size"].is_number()
        );
        for key in ["send", "wait", "receive"] {
            assert!(e["timings"][key].is_number());
        }
        assert_eq!(e["request"]["method"], "POST");
        assert_eq!(e["request"]["url"], "mcp://stdio");
        assert!(
            e["startedDateTime"]
                .as_str()
                .unwrap()
                .starts_with("2025-06-18T09:30:00.")
        );
    }
    let add = entries.iter().find(|e| e["_mcp"]["tool"] == "add").unwrap();
    assert_eq!(add["_mcp"]["method"], "tools/call");
    assert_eq!(add["_mcp"]["id"], 3);
    assert_eq!(add["_mcp"]["session"], "s-1");
    assert_eq!(add["_mcp"]["direction"], "client_to_server");
    assert_eq!(add["time"], 10.0);
    let failed = entries.iter().find(|e| e["_mcp"]["id"] == 4).unwrap();
    assert_eq!(failed["_mcp"]["error"]["code"], -32602);
    let note = entries
        .iter()
        .find(|e| e["_mcp"]["method"] == "notifications/initialized")
        .unwrap();
    assert_eq!(note["response"]["status"], 202);

    // JSONL export reads back as the same tape.
    let out = tape(dir.path(), &["export", "tape-one"]);
    let frames = JsonlReader::new(&out.stdout[..]).unwrap().count();
    assert_eq!(frames, 24);
}

#[test]
fn diff_reports_schema_and_result_changes() {
    let (dir, _, _) = tapes();
    let out = tape(dir.path(), &["diff", "tape-one", "tape-two", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out);
    assert_eq!(report["same"], false);
    assert_eq!(report["tools"]["added"], json!([]));
    assert_eq!(report["tools"]["removed"], json!([]));
    let changed = report["tools"]["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["tool"], "echo");
    assert_eq!(changed[0]["input_schema_changed"], true);
    assert_eq!(
        changed[0]["changes"][0]["path"],
        "$.inputSchema.properties.loud"
    );
    assert_eq!(changed[0]["changes"][0]["b"], json!({"type": "boolean"}));
    let calls = report["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["tool"], "add");
    assert_eq!(calls[0]["call"], 1);
    assert_eq!(calls[0]["changes"][0]["path"], "$.result.content[0].text");
    assert_eq!(calls[0]["changes"][0]["a"], "3");
    assert_eq!(calls[0]["changes"][0]["b"], "4");

    let out = tape(dir.path(), &["diff", "tape-one", "tape-two"]);
    let text = stdout(&out);
    assert!(
        text.contains("~ echo") && text.contains("$.inputSchema.properties.loud"),
        "{text}"
    );
    assert!(text.contains("~ add call 1"), "{text}");

    let out = tape(dir.path(), &["diff", "tape-one", "baseline"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn validate_and_repair_a_torn_tail() {
    let (dir, one, _) = tapes();
    let intact = fs::metadata(&one).unwrap().len();
    let mut bytes = fs::read(&one).unwrap();
    bytes.extend_from_slice(br#"{"offset_ns":99000000,"direction":"client_to_server","edge":"cli"#);
    fs::write(&one, &bytes).unwrap();

    let out = tape(dir.path(), &["validate", "tape-one", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out);
    assert_eq!(report["clean"], false);
    assert_eq!(report["torn_tail_at"], intact);
    assert_eq!(report["frames"], 24);
    let text = stdout(&tape(dir.path(), &["validate", "tape-one"]));
    assert!(
        text.contains(&format!("torn tail at byte {intact}")),
        "{text}"
    );

    let out = tape(dir.path(), &["repair", one.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    assert_eq!(json_of(&out)["truncated_at"], intact);
    assert_eq!(fs::metadata(&one).unwrap().len(), intact);
    let out = tape(dir.path(), &["validate", "tape-one"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn compress_and_migrate_keep_the_tape_readable() {
    let (dir, one, _) = tapes();
    let out = tape(dir.path(), &["compress", "tape-one", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let report = json_of(&out);
    assert_eq!(report["frames"], 24);
    assert!(!one.exists());
    let lz4 = dir.path().join("one.sctape.lz4");
    assert!(lz4.is_file());
    let list = json_of(&tape(dir.path(), &["list", "--json", "--name", "baseline"]));
    assert_eq!(list[0]["format"], "lz4");
    assert_eq!(list[0]["file"], "one.sctape.lz4");
    let stats = json_of(&tape(dir.path(), &["stats", "tape-one", "--json"]));
    assert_eq!(stats["methods"]["tools/call"]["requests"], 4);

    let out = tape(dir.path(), &["migrate", "tape-one", "--format", "binary"]);
    assert!(out.status.success(), "{out:?}");
    assert!(dir.path().join("one.sctape").is_file() && !lz4.exists());
    assert!(tape(dir.path(), &["validate", "tape-one"]).status.success());
}

#[test]
fn prune_and_rm_keep_the_index_consistent() {
    let (dir, _, _) = tapes();
    write_tape(
        &dir.path().join("three.jsonl"),
        "tape-three",
        "third",
        T0 + 120_000 * MS,
        &Variant {
            loud: false,
            sum: 3,
        },
    );
    let out = tape(
        dir.path(),
        &["prune", "--max-count", "1", "--dry-run", "--json"],
    );
    let report = json_of(&out);
    let ids: Vec<&str> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tape-one", "tape-two"]);
    assert!(dir.path().join("one.jsonl").exists());

    let out = tape(dir.path(), &["prune", "--max-count", "2"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("deleted tape-one"),
        "{}",
        stdout(&out)
    );
    assert!(!dir.path().join("one.jsonl").exists() && dir.path().join("two.jsonl").exists());

    let out = tape(dir.path(), &["rm", "tape-two", "nope"]);
    assert_eq!(out.status.code(), Some(1), "one of them is unknown");
    assert!(!dir.path().join("two.jsonl").exists());
    let index: Value =
        serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let ids: Vec<&str> = index["tapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tape-three"]);
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["index.json", "three.jsonl"],
        "no temporary files left"
    );

    let out = tape(dir.path(), &["prune"]);
    assert_eq!(out.status.code(), Some(2), "a limit is required");
}

#[test]
fn the_directory_comes_from_the_environment() {
    let (dir, _, _) = tapes();
    let out = Command::new(env!("CARGO_BIN_EXE_shadowcat"))
        .args(["tape", "list", "--json"])
        .env("SHADOWCAT_TAPES", dir.path())
        .output()
        .unwrap();
    assert_eq!(json_of(&out).as_array().unwrap().len(), 2);
}
