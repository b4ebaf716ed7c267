//! Runs the tape fuzz entry points over their committed seed corpora
//! (`fuzz/corpus/tape_jsonl/`, `fuzz/corpus/tape_binary/`, `fuzz/corpus/tape_lz4/`), so the
//! corpora stay valid input in the normal test run; and runs the binary and lz4 entry
//! points over every cut and every single-byte corruption of the golden tapes.

use std::path::Path;

fn run_corpus(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seen = 0;
    for entry_path in std::fs::read_dir(&dir).expect("the corpus directory exists") {
        let path = entry_path.expect("a directory entry").path();
        let data = std::fs::read(&path).expect("a readable seed");
        entry(&data);
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected the committed seeds in {}",
        dir.display()
    );
}

#[test]
fn the_seed_corpus_runs_clean() {
    run_corpus("tape_jsonl", shadowcat_tape::fuzzing::jsonl_read);
}

#[test]
fn the_binary_seed_corpus_runs_clean() {
    run_corpus("tape_binary", shadowcat_tape::fuzzing::binary_read);
}

#[test]
fn the_lz4_seed_corpus_runs_clean() {
    run_corpus("tape_lz4", shadowcat_tape::fuzzing::lz4_read);
}

fn every_cut_and_flip(golden: &str, entry: fn(&[u8])) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(golden);
    let data = std::fs::read(&path).expect("the golden tape");
    for cut in 0..data.len() {
        entry(&data[..cut]);
    }
    let mut flipped = data.clone();
    for i in 0..data.len() {
        flipped[i] ^= 0xA5;
        entry(&flipped);
        flipped[i] ^= 0xA5;
    }
}

#[test]
fn binary_reading_survives_every_cut_and_flip_of_the_golden_tape() {
    every_cut_and_flip("v1.sctape", shadowcat_tape::fuzzing::binary_read);
}

#[test]
fn lz4_reading_survives_every_cut_and_flip_of_the_golden_tape() {
    every_cut_and_flip("v1.sctape.lz4", shadowcat_tape::fuzzing::lz4_read);
}
