//! Runs the fuzz entry points over the committed seed corpus in `fuzz/corpus/*/`, so the
//! corpus stays valid input for every target in the normal test run. Inputs a local fuzz run
//! added to the corpus directories are run too.

use std::path::{Path, PathBuf};

use shadowcat_mcp::fuzzing;

const TARGETS: [&str; 3] = ["message_parse", "line_framing", "sse_framing"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// Every seed file of every target; fails when a target has none.
fn seeds() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for target in TARGETS {
        let dir = corpus_dir().join(target);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.is_file())
            .collect();
        assert!(!found.is_empty(), "no corpus files in {}", dir.display());
        found.sort();
        files.append(&mut found);
    }
    files
}

#[test]
fn every_target_has_committed_seeds() {
    for target in TARGETS {
        let dir = corpus_dir().join(target);
        let committed = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .filter(|entry| {
                let entry = entry.as_ref().expect("a directory entry");
                entry.file_name().to_string_lossy().starts_with("seed-")
            })
            .count();
        // Only files named `seed-*` are committed (see .gitignore); the rest are local runs.
        assert!(
            committed >= 10,
            "only {committed} seed files in {}",
            dir.display()
        );
    }
}

#[test]
fn every_target_accepts_every_seed() {
    let mut failures = Vec::new();
    for file in seeds() {
        let data = std::fs::read(&file).unwrap();
        for (name, run) in [
            ("parse_message", fuzzing::parse_message as fn(&[u8])),
            ("line_framing", fuzzing::line_framing),
            ("sse_framing", fuzzing::sse_framing),
        ] {
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(format!("{name} on {}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "failed: {failures:#?}");
}
