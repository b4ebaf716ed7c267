//! The tape store: indexing real tape files, search, removal, retention, and an index
//! that survives crashes (a stray temporary file, a corrupt index, a torn tape).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use shadowcat_tape::{
    Direction, Edge, JsonlWriter, RetentionPolicy, TapeFilter, TapeFrame, TapeHeader, TapeStore,
};

const SEC: u64 = 1_000_000_000;
const DAY: u64 = 86_400 * SEC;
/// 2025-06-18T09:30:00Z.
const T0: u64 = 1_750_239_000 * SEC;

/// Writes a tape with a tools/list and one tools/call of `tool` in `session`, ending
/// `duration` after `start`.
fn write_tape(dir: &Path, id: &str, start: u64, tool: &str, session: &str, tags: &[&str]) {
    let mut header = TapeHeader::from_unix_ns(id, start).with_name(format!("tape {id}"));
    for tag in tags {
        header = header.with_tag(*tag);
    }
    let mut writer = JsonlWriter::create(dir.join(format!("{id}.jsonl"))).unwrap();
    writer.write_header(&header).unwrap();
    let messages = [
        (
            Direction::ClientToServer,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_owned(),
        ),
        (
            Direction::ServerToClient,
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{{"name":"{tool}","inputSchema":{{"type":"object"}}}}]}}}}"#
            ),
        ),
        (
            Direction::ClientToServer,
            format!(
                r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
            ),
        ),
        (
            Direction::ServerToClient,
            r#"{"jsonrpc":"2.0","id":2,"result":{"content":[]}}"#.to_owned(),
        ),
        (
            Direction::ClientToServer,
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}"#
                .to_owned(),
        ),
    ];
    for (i, (direction, message)) in messages.into_iter().enumerate() {
        for edge in [Edge::Client, Edge::Server] {
            let frame = TapeFrame::new(
                i as u64 * SEC,
                direction,
                edge,
                message.clone().into_bytes(),
            )
            .with_session_id(session);
            writer.write_frame(&frame).unwrap();
        }
    }
    writer.flush().unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn index_ids(dir: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["tapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn indexes_every_field_and_searches_by_each() {
    let dir = tempfile::tempdir().unwrap();
    write_tape(dir.path(), "b", T0 + DAY, "add", "s-2", &["nightly"]);
    write_tape(dir.path(), "a", T0, "echo", "s-1", &["smoke", "ci"]);
    let store = TapeStore::open(dir.path()).unwrap();
    // Oldest first, whatever the directory order.
    let ids: Vec<&str> = store.entries().iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let a = store.get("a").unwrap();
    assert_eq!(a.file, "a.jsonl");
    assert_eq!(a.format, "jsonl");
    assert_eq!(a.name.as_deref(), Some("tape a"));
    assert_eq!(a.tags, ["smoke", "ci"]);
    assert_eq!(a.started_at_unix_ns, T0);
    assert_eq!(a.ended_at_unix_ns, T0 + 4 * SEC);
    assert_eq!(a.sessions, ["s-1"]);
    assert_eq!(a.frames.total, 10);
    assert_eq!(
        (a.frames.client_to_server, a.frames.server_to_client),
        (6, 4)
    );
    assert_eq!((a.frames.client_edge, a.frames.server_edge), (5, 5));
    assert_eq!(
        a.methods,
        ["notifications/cancelled", "tools/call", "tools/list"]
    );
    assert_eq!(a.tools, ["echo"]);
    assert_eq!(
        a.bytes,
        fs::metadata(dir.path().join("a.jsonl")).unwrap().len()
    );
    assert!(a.problem.is_none());

    let ids = |f: TapeFilter| {
        store
            .list(&f)
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(TapeFilter::new().with_tag("nightly")), ["b"]);
    assert_eq!(ids(TapeFilter::new().with_tool("echo")), ["a"]);
    assert_eq!(ids(TapeFilter::new().with_session("s-2")), ["b"]);
    assert_eq!(ids(TapeFilter::new().with_method("tools/call")), ["a", "b"]);
    assert_eq!(
        ids(TapeFilter::new().with_method("resources/read")),
        Vec::<String>::new()
    );
    assert_eq!(ids(TapeFilter::new().with_name("TAPE B")), ["b"]);
    assert_eq!(
        ids(TapeFilter::new().with_time_range(Some(T0 + DAY), None)),
        ["b"]
    );
    assert_eq!(
        ids(TapeFilter::new().with_time_range(None, Some(T0 + 1))),
        ["a"]
    );
    assert_eq!(
        ids(TapeFilter::new().with_tag("ci").with_tool("add")),
        Vec::<String>::new()
    );

    assert_eq!(store.resolve("tape b").unwrap().id, "b");
    assert_eq!(store.resolve("a.jsonl").unwrap().id, "a");
    assert!(store.resolve("zzz").is_none());
    // The index on disk says the same.
    assert_eq!(index_ids(dir.path()), ["a", "b"]);
}

#[test]
fn rescans_changes_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    write_tape(dir.path(), "a", T0, "echo", "s-1", &[]);
    let mut store = TapeStore::open(dir.path()).unwrap();
    assert_eq!(store.entries().len(), 1);
    write_tape(dir.path(), "b", T0 + SEC, "add", "s-2", &[]);
    let report = store.scan().unwrap();
    assert_eq!((report.added, report.updated, report.removed), (1, 0, 0));
    // Unchanged files are not read again.
    assert!(!store.scan().unwrap().changed());
    fs::remove_file(dir.path().join("a.jsonl")).unwrap();
    assert_eq!(store.scan().unwrap().removed, 1);
    assert_eq!(index_ids(dir.path()), ["b"]);
    let removed = store.remove("b").unwrap();
    assert_eq!(removed.file, "b.jsonl");
    assert!(!dir.path().join("b.jsonl").exists());
    assert!(index_ids(dir.path()).is_empty());
    assert!(store.remove("b").is_err());
}

#[test]
fn a_stray_temp_file_and_a_corrupt_index_do_no_harm() {
    let dir = tempfile::tempdir().unwrap();
    write_tape(dir.path(), "a", T0, "echo", "s-1", &[]);
    drop(TapeStore::open(dir.path()).unwrap());
    // What a writer killed between creating and renaming its temporary file leaves.
    fs::write(
        dir.path().join(".index.json.4242.17.tmp"),
        b"{\"version\":1,\"tapes\":[{\"id\":",
    )
    .unwrap();
    let store = TapeStore::open(dir.path()).unwrap();
    assert_eq!(store.entries().len(), 1);
    assert_eq!(index_ids(dir.path()), ["a"]);
    // A corrupt index is rebuilt from the tapes.
    fs::write(dir.path().join("index.json"), b"{\"version\":1,\"tap").unwrap();
    let store = TapeStore::open(dir.path()).unwrap();
    assert_eq!(store.entries()[0].tools, ["echo"]);
    assert_eq!(index_ids(dir.path()), ["a"]);
    // Only the index's own temporaries are ever written: no new ones are left behind.
    let tmp: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert_eq!(tmp, [".index.json.4242.17.tmp"]);
}

#[test]
fn a_torn_tape_is_indexed_from_what_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    write_tape(dir.path(), "a", T0, "echo", "s-1", &[]);
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("a.jsonl"))
        .unwrap();
    file.write_all(br#"{"offset_ns":9000000000,"direction":"client_to_ser"#)
        .unwrap();
    drop(file);
    // Not a tape at all: skipped, not fatal.
    fs::write(dir.path().join("junk.jsonl"), b"hello\n").unwrap();
    let store = TapeStore::open(dir.path()).unwrap();
    assert_eq!(store.entries().len(), 1);
    let a = &store.entries()[0];
    assert_eq!(a.frames.total, 10);
    assert!(
        a.problem.as_deref().unwrap().contains("torn tail"),
        "{:?}",
        a.problem
    );
}

#[test]
fn prune_removes_oldest_first_within_each_limit() {
    let dir = tempfile::tempdir().unwrap();
    for (i, id) in ["t1", "t2", "t3", "t4", "t5"].iter().enumerate() {
        write_tape(dir.path(), id, T0 + i as u64 * DAY, "echo", "s", &[]);
    }
    let mut store = TapeStore::open(dir.path()).unwrap();
    let size = store.entries()[0].bytes;
    let now = T0 + 5 * DAY;

    // Dry run: reports, deletes nothing.
    let policy = RetentionPolicy::new().with_max_count(3);
    let report = store.prune_at(&policy, now, true).unwrap();
    let ids: Vec<_> = report.removed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2"]);
    assert_eq!(report.kept, 3);
    assert_eq!(files(dir.path()).len(), 6);

    // Age: everything whose last frame is more than 4.5 days old.
    let policy = RetentionPolicy::new().with_max_age(Duration::from_secs(108 * 3600));
    let report = store.prune_at(&policy, now, false).unwrap();
    let ids: Vec<_> = report.removed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["t1"]);
    assert_eq!(report.freed_bytes, size);

    // Size: at most two tapes' worth.
    let policy = RetentionPolicy::new().with_max_total_bytes(2 * size + 1);
    let report = store.prune_at(&policy, now, false).unwrap();
    let ids: Vec<_> = report.removed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["t2", "t3"]);
    assert_eq!(report.kept, 2);

    // Count.
    let report = store
        .prune_at(&RetentionPolicy::new().with_max_count(1), now, false)
        .unwrap();
    assert_eq!(report.removed[0].id, "t4");
    assert_eq!(files(dir.path()), ["index.json", "t5.jsonl"]);
    assert_eq!(index_ids(dir.path()), ["t5"]);
    // A fresh open agrees with the index.
    let reopened = TapeStore::open(dir.path()).unwrap();
    assert_eq!(reopened.entries(), store.entries());
}
