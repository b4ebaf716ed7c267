//! The official MCP conformance suite, run by `interop/run-conformance.sh` against a URL.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::interop::existing;
use crate::{ProcessOutput, interop_dir, run_with_timeout};

/// One run of the conformance suite: what the script did and the summary it wrote.
#[derive(Debug)]
pub struct ConformanceRun {
    /// The `run-conformance.sh` process.
    pub output: ProcessOutput,
    /// Its JSON summary (`total`, `passed`, `failed`, `scenarios[]`), or `Null` when it wrote
    /// none.
    pub summary: Value,
    /// The results directory (`--out`): `summary.json`, `suite.log`, `raw/…/checks.json`.
    pub out_dir: PathBuf,
}

/// Runs `interop/run-conformance.sh --url URL --out OUT_DIR OPTIONS…` (options such as
/// `--next`, `--scenario NAME`, `--strict`) and reads its summary. The suite gets `timeout`
/// minus 20 s; the script is killed at `timeout`.
///
/// # Panics
///
/// When the script is missing.
pub fn run_conformance(
    url: &str,
    out_dir: &Path,
    options: &[&str],
    timeout: Duration,
) -> ConformanceRun {
    let script = existing(interop_dir().join("run-conformance.sh"));
    let suite_timeout = timeout
        .saturating_sub(Duration::from_secs(20))
        .max(Duration::from_secs(10));
    let mut command = Command::new("bash");
    command
        .arg(script)
        .args(["--url", url, "--out"])
        .arg(out_dir)
        .args(["--timeout", &suite_timeout.as_secs().to_string()])
        .args(options);
    let output = run_with_timeout(&mut command, timeout);
    let summary = serde_json::from_str(&output.stdout)
        .ok()
        .or_else(|| {
            let text = fs::read_to_string(out_dir.join("summary.json")).ok()?;
            serde_json::from_str(&text).ok()
        })
        .unwrap_or(Value::Null);
    ConformanceRun {
        output,
        summary,
        out_dir: out_dir.to_path_buf(),
    }
}

impl ConformanceRun {
    /// Whether the script exited 0 and its summary lists scenarios that all passed.
    pub fn all_passed(&self) -> bool {
        self.output.success()
            && self.total() > 0
            && self.summary["passed"].as_u64() == Some(self.total())
            && self.failed_scenarios().is_empty()
    }

    /// How many scenarios the summary lists.
    pub fn total(&self) -> u64 {
        self.summary["total"].as_u64().unwrap_or(0)
    }

    /// The names of the scenarios whose result is not `pass`.
    pub fn failed_scenarios(&self) -> Vec<String> {
        self.scenarios()
            .filter(|s| s["result"] != "pass")
            .filter_map(|s| s["scenario"].as_str().map(str::to_owned))
            .collect()
    }

    /// The names of every scenario in the summary.
    pub fn scenario_names(&self) -> Vec<String> {
        self.scenarios()
            .filter_map(|s| s["scenario"].as_str().map(str::to_owned))
            .collect()
    }

    fn scenarios(&self) -> impl Iterator<Item = &Value> {
        self.summary["scenarios"].as_array().into_iter().flatten()
    }

    /// A report for assertion messages: the counts, and for every scenario that did not
    /// pass its result and each failed (and warned) check with its message; the script's
    /// own output when there is no summary.
    pub fn report(&self) -> String {
        let mut report = String::new();
        if self.summary.is_null() {
            let _ = write!(
                report,
                "no summary from the conformance run: {}",
                self.output
            );
            return report;
        }
        let _ = writeln!(
            report,
            "{} against {}: {}/{} scenarios passed (suite exit code {}, script {}); results in {}",
            self.summary["suite"].as_str().unwrap_or("?"),
            self.summary["url"].as_str().unwrap_or("?"),
            self.summary["passed"],
            self.summary["total"],
            self.summary["suite_exit_code"],
            self.output.status,
            self.out_dir.display(),
        );
        for scenario in self.scenarios().filter(|s| s["result"] != "pass") {
            let _ = writeln!(
                report,
                "  {} {}{}",
                scenario["result"].as_str().unwrap_or("?").to_uppercase(),
                scenario["scenario"].as_str().unwrap_or("?"),
                scenario["error"]
                    .as_str()
                    .map(|error| format!(": {error}"))
                    .unwrap_or_default()
            );
            for (kind, key) in [("FAILURE", "failures"), ("WARNING", "warnings")] {
                for check in scenario[key].as_array().into_iter().flatten() {
                    let _ = writeln!(
                        report,
                        "      {kind} {}: {}",
                        check["id"].as_str().unwrap_or("?"),
                        check["message"].as_str().unwrap_or("")
                    );
                }
            }
        }
        if self.output.timed_out {
            let _ = writeln!(report, "  the run was killed at its time limit");
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance_fixture;

    #[test]
    fn a_scenario_against_the_fixture_passes_and_one_against_nothing_fails() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = conformance_fixture(&[]);
        let run = run_conformance(
            fixture.url(),
            &dir.path().join("ok"),
            &["--scenario", "ping"],
            Duration::from_secs(120),
        );
        assert!(run.all_passed(), "{}", run.report());
        assert_eq!(run.scenario_names(), ["ping"]);
        assert!(run.out_dir.join("summary.json").is_file());

        // Nothing listens on the fixture's port once it is gone.
        let url = fixture.url().to_owned();
        drop(fixture);
        let run = run_conformance(
            &url,
            &dir.path().join("fail"),
            &["--scenario", "ping"],
            Duration::from_secs(120),
        );
        assert!(!run.all_passed(), "{}", run.report());
        assert_eq!(run.failed_scenarios(), ["ping"], "{}", run.report());
        let report = run.report();
        assert!(report.contains("0/1 scenarios passed"), "{report}");
        assert!(report.contains("ping"), "{report}");
    }
}
