//! Wire-format golden files: real MCP messages of every revision in `tests/golden/<revision>/`.
//!
//! Each `<name>.json` must parse, keep its bytes exactly, and summarize to the text in
//! `<name>.expected`. Run with `SHADOWCAT_BLESS=1` to rewrite the `.expected` files.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use shadowcat_mcp::{Message, MessageKind, ProtocolVersion, detect_era};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn bless() -> bool {
    std::env::var_os("SHADOWCAT_BLESS").is_some_and(|v| v == "1")
}

/// One line per field; a batch lists its elements.
fn summary(msg: &Message) -> String {
    let mut out = format!("kind: {}\n", msg.kind().as_str());
    if msg.kind() == MessageKind::Batch {
        let _ = writeln!(out, "elements: {}", msg.batch().len());
        for (i, element) in msg.batch().iter().enumerate() {
            let fields = fields(element).join(" ");
            let _ = writeln!(out, "[{i}] {} {fields}", element.kind().as_str());
        }
    } else {
        for field in fields(msg) {
            let _ = writeln!(out, "{}", field.replacen('=', ": ", 1));
        }
    }
    out
}

fn fields(msg: &Message) -> Vec<String> {
    let present = |p: bool| if p { "present" } else { "absent" };
    let era = detect_era(msg).map_or_else(
        || "none".to_owned(),
        |s| format!("{} {}", format!("{:?}", s.era).to_lowercase(), s.version),
    );
    vec![
        format!(
            "id={}",
            msg.id().map_or_else(|| "-".to_owned(), |id| id.to_json())
        ),
        format!("method={}", msg.method().unwrap_or("-")),
        format!("params={}", present(msg.params().is_some())),
        format!("result={}", present(msg.result().is_some())),
        format!(
            "error={}",
            msg.error()
                .map_or_else(|| "absent".to_owned(), |e| format!("code {}", e.code.get()))
        ),
        format!("era={era}"),
    ]
}

/// Checks one revision's directory; returns how many files it held.
fn check_revision(version: ProtocolVersion, failures: &mut Vec<String>) -> usize {
    let dir = golden_dir().join(version.as_str());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    let json: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(!json.is_empty(), "no golden files in {}", dir.display());
    for stray in files.iter().filter(|p| {
        let json_twin = p.with_extension("json");
        p.extension().is_none_or(|e| e != "json" && e != "expected") || !json_twin.exists()
    }) {
        failures.push(format!(
            "{}: not a golden file or its summary",
            stray.display()
        ));
    }
    let mut kinds = BTreeSet::new();
    for path in &json {
        let bytes = std::fs::read(path).expect("a readable golden file");
        let msg = match Message::parse(bytes.clone()) {
            Ok(msg) => msg,
            Err(e) => {
                failures.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        assert_eq!(msg.as_bytes().as_ref(), &bytes[..], "{}", path.display());
        kinds.insert(msg.kind().as_str());
        if msg.kind() == MessageKind::Batch && !version.allows_batches() {
            failures.push(format!("{}: {version} has no batches", path.display()));
        }
        if let Some(signal) = detect_era(&msg)
            && (signal.era, signal.version.as_str()) != (version.era(), version.as_str())
        {
            failures.push(format!("{}: detected {signal:?}", path.display()));
        }
        let text = summary(&msg);
        let expected_path = path.with_extension("expected");
        if bless() {
            std::fs::write(&expected_path, &text).expect("a writable summary file");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == text => {}
            Ok(expected) => failures.push(format!(
                "{}: summary differs (SHADOWCAT_BLESS=1 rewrites it)\n--- expected\n{expected}--- got\n{text}",
                path.display()
            )),
            Err(e) => failures.push(format!(
                "{}: {e} (SHADOWCAT_BLESS=1 writes it)",
                expected_path.display()
            )),
        }
    }
    let mut needed = vec!["request", "notification", "response", "error"];
    if version.allows_batches() {
        needed.push("batch");
    }
    for kind in needed {
        if !kinds.contains(kind) {
            failures.push(format!("{}: no {kind} message", dir.display()));
        }
    }
    json.len()
}

#[test]
fn golden_messages_match_their_summaries() {
    let mut failures = Vec::new();
    let mut total = 0;
    for version in ProtocolVersion::ALL {
        total += check_revision(version, &mut failures);
    }
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_string_lossy();
        if ProtocolVersion::parse(&name).is_none() {
            failures.push(format!("tests/golden/{name}: not a known revision"));
        }
    }
    assert!(total > 0, "no golden files found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
