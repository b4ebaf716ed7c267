//! Runs the `tape_jsonl` fuzz entry point over its committed seed corpus
//! (`fuzz/corpus/tape_jsonl/`), so the corpus stays valid input in the normal test run.

use std::path::Path;

#[test]
fn the_seed_corpus_runs_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/tape_jsonl");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory exists") {
        let path = entry.expect("a directory entry").path();
        let data = std::fs::read(&path).expect("a readable seed");
        shadowcat_tape::fuzzing::jsonl_read(&data);
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected the committed seeds in {}",
        dir.display()
    );
}
