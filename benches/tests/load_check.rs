//! The load benchmark's quick check, in the test run: 2,000 echo calls at 1 and 16 in flight,
//! directly and through `shadowcat forward stdio`, every answer checked for loss, routing
//! and content.

use std::path::PathBuf;
use std::process::Command;

/// A binary of the workspace, built into the same directory as `bench-load`.
fn sibling(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_bench-load"))
        .parent()
        .expect("bench-load is in a directory")
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

#[test]
fn every_answer_reaches_its_request_direct_and_proxied() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-load"))
        .arg("--check")
        .arg("--shadowcat")
        .arg(sibling("shadowcat"))
        .arg("--echo-server")
        .arg(env!("CARGO_BIN_EXE_bench-echo-server"))
        .output()
        .expect("bench-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-load --check failed\n{stdout}\n{stderr}"
    );
    // Four runs (1 and 16 in flight, direct and proxied), each reporting a rate.
    let runs = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| l.starts_with('{') && l.contains("\"rate\""))
        .count();
    assert!(runs >= 4, "expected a report per run\n{stdout}\n{stderr}");
}

#[test]
fn the_fifty_rule_file_lets_every_echo_answer_through() {
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/fifty.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_bench-load"))
        .arg("--check")
        .arg("--shadowcat")
        .arg(sibling("shadowcat"))
        .arg("--echo-server")
        .arg(env!("CARGO_BIN_EXE_bench-echo-server"))
        .arg("--rules")
        .arg(&rules)
        .output()
        .expect("bench-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-load --check --rules failed\n{stdout}\n{stderr}"
    );
    // Two runs through the proxy with the rules (1 and 16 in flight), each checked.
    let with_rules = stderr
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"target\":\"proxied+rules\""))
        .count();
    assert_eq!(
        with_rules, 2,
        "expected two runs with rules\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("proxied + rules, 16 in flight"),
        "the table has a row for the rules\n{stdout}"
    );
}
