//! Direct vs proxied: the same load against the echo server alone and through
//! `shadowcat forward stdio`, in alternating rounds, summarized as medians.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::stats::median;
use crate::{Error, LoadConfig, LoadReport, Result};

/// Target: the proxied rate at 16 in flight is at least this fraction of the direct rate.
pub const TARGET_RATIO: f64 = 0.60;
/// Target: the proxy adds at most this many microseconds to the median latency at 1 in
/// flight.
pub const TARGET_ADDED_P50_US: f64 = 30.0;

/// The environment variable that sets Shadowcat's log level.
const PROXY_LOG_VAR: &str = "SHADOWCAT_LOG";

/// What to compare and how.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// The `shadowcat` binary.
    pub shadowcat: PathBuf,
    /// The `bench-echo-server` binary.
    pub echo_server: PathBuf,
    /// One scenario per value: requests kept in flight.
    pub in_flight: Vec<usize>,
    /// Direct and proxied runs per scenario, alternating.
    pub rounds: usize,
    /// Measured requests per run.
    pub requests: u64,
    /// Warm-up requests per run.
    pub warmup: u64,
    /// Pin the load generator to CPU 0 and the target to CPU 1.
    pub pin: bool,
    /// How long without an answer before a run fails.
    pub timeout: Duration,
    /// Skip the proxied runs.
    pub direct_only: bool,
}

/// The runs of one scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Requests kept in flight.
    pub in_flight: usize,
    /// Runs against the echo server alone.
    pub direct: Vec<LoadReport>,
    /// Runs through the proxy.
    pub proxied: Vec<LoadReport>,
}

/// Median of one measure over some runs.
fn med(runs: &[LoadReport], measure: impl Fn(&LoadReport) -> f64) -> f64 {
    median(runs.iter().map(measure))
}

impl Scenario {
    /// The median direct rate (requests per second).
    pub fn direct_rate(&self) -> f64 {
        med(&self.direct, |r| r.rate)
    }

    /// The median proxied rate (requests per second).
    pub fn proxied_rate(&self) -> f64 {
        med(&self.proxied, |r| r.rate)
    }

    /// The median proxied rate over the median direct rate.
    pub fn ratio(&self) -> f64 {
        self.proxied_rate() / self.direct_rate()
    }

    /// What the proxy adds to the median latency (µs): median proxied p50 minus median
    /// direct p50.
    pub fn added_p50_us(&self) -> f64 {
        med(&self.proxied, |r| r.latency.p50_us) - med(&self.direct, |r| r.latency.p50_us)
    }
}

/// The outcome of a comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// One per in-flight value.
    pub scenarios: Vec<Scenario>,
}

impl CompareConfig {
    /// Runs every scenario, `rounds` times direct and proxied in alternating order, and
    /// calls `progress` with a JSON line per run.
    pub fn run(&self, mut progress: impl FnMut(&str)) -> Result<Comparison> {
        let mut binaries = vec![&self.echo_server];
        if !self.direct_only {
            binaries.push(&self.shadowcat);
        }
        for path in binaries {
            if !path.is_file() {
                return Err(Error::Usage(format!(
                    "{} not found (build with `cargo build --release -p shadowcat -p \
                     shadowcat-benches`, or pass --shadowcat / --echo-server)",
                    path.display()
                )));
            }
        }
        let direct: Vec<OsString> = vec![self.echo_server.clone().into()];
        let proxied: Vec<OsString> = vec![
            self.shadowcat.clone().into(),
            "forward".into(),
            "stdio".into(),
            "--".into(),
            self.echo_server.clone().into(),
        ];
        // Shadowcat logs a line per session at `info`; keep stderr for the run reports.
        let env: Vec<(OsString, OsString)> = match std::env::var_os(PROXY_LOG_VAR) {
            Some(_) => Vec::new(),
            None => vec![(PROXY_LOG_VAR.into(), "warn".into())],
        };
        let mut scenarios = Vec::new();
        for &in_flight in &self.in_flight {
            let mut scenario = Scenario {
                in_flight,
                direct: Vec::new(),
                proxied: Vec::new(),
            };
            for round in 0..self.rounds.max(1) {
                let mut order = [(false, &direct), (true, &proxied)];
                if round % 2 == 1 {
                    order.reverse();
                }
                for (is_proxied, command) in order {
                    if is_proxied && self.direct_only {
                        continue;
                    }
                    let config = LoadConfig {
                        command: command.clone(),
                        in_flight,
                        requests: self.requests,
                        warmup: self.warmup,
                        target_cpu: self.pin.then_some(1),
                        timeout: self.timeout,
                        env: env.clone(),
                    };
                    let label = if is_proxied { "proxied" } else { "direct" };
                    let report = config.run().map_err(|e| match e {
                        Error::Usage(_) | Error::Spawn { .. } => e,
                        other => Error::Run {
                            run: format!("{label} run, {in_flight} in flight, round {}", round + 1),
                            source: Box::new(other),
                        },
                    })?;
                    progress(&report.to_json(label));
                    if is_proxied {
                        scenario.proxied.push(report);
                    } else {
                        scenario.direct.push(report);
                    }
                }
            }
            scenarios.push(scenario);
        }
        Ok(Comparison { scenarios })
    }
}

impl Comparison {
    /// The results as a text table, one row per scenario (medians over the rounds).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let header = [
            "scenario",
            "direct req/s",
            "proxied req/s",
            "ratio",
            "direct p50",
            "proxied p50",
            "added p50",
            "direct p99",
            "proxied p99",
        ];
        let mut rows = vec![header.map(str::to_owned).to_vec()];
        for s in &self.scenarios {
            let us = |v: f64| format!("{v:.1} µs");
            let proxied = !s.proxied.is_empty();
            let or_dash = |v: String| if proxied { v } else { "-".to_owned() };
            rows.push(vec![
                format!("stdio, {} in flight", s.in_flight),
                format!("{:.0}", s.direct_rate()),
                or_dash(format!("{:.0}", s.proxied_rate())),
                or_dash(format!("{:.2}", s.ratio())),
                us(med(&s.direct, |r| r.latency.p50_us)),
                or_dash(us(med(&s.proxied, |r| r.latency.p50_us))),
                or_dash(us(s.added_p50_us())),
                us(med(&s.direct, |r| r.latency.p99_us)),
                or_dash(us(med(&s.proxied, |r| r.latency.p99_us))),
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for row in rows {
            for (c, cell) in row.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                if c == 0 {
                    write!(out, "{cell}{}", " ".repeat(pad))
                } else {
                    write!(out, "  {}{cell}", " ".repeat(pad))
                }
                .expect("writing to a String cannot fail");
            }
            out.push('\n');
        }
        out
    }

    /// The verdict against the performance targets: one line per target and whether it was
    /// met. Empty when the scenarios needed (1 and 16 in flight, proxied) were not run.
    pub fn verdict(&self) -> Vec<(String, bool)> {
        let find = |n: usize| {
            self.scenarios
                .iter()
                .find(|s| s.in_flight == n && !s.proxied.is_empty())
        };
        let mut lines = Vec::new();
        if let Some(s) = find(16) {
            let ok = s.ratio() >= TARGET_RATIO;
            lines.push((
                format!(
                    "16 in flight: proxied rate is {:.0}% of direct (target >= {:.0}%): {}",
                    s.ratio() * 100.0,
                    TARGET_RATIO * 100.0,
                    if ok { "PASS" } else { "FAIL" }
                ),
                ok,
            ));
        }
        if let Some(s) = find(1) {
            let ok = s.added_p50_us() <= TARGET_ADDED_P50_US;
            lines.push((
                format!(
                    "1 in flight: added p50 is {:.1} µs (target <= {:.0} µs): {}",
                    s.added_p50_us(),
                    TARGET_ADDED_P50_US,
                    if ok { "PASS" } else { "FAIL" }
                ),
                ok,
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LatencySummary;

    fn report(rate: f64, p50_us: f64) -> LoadReport {
        LoadReport {
            in_flight: 1,
            requests: 1,
            warmup: 0,
            elapsed: Duration::from_secs(1),
            rate,
            latency: LatencySummary {
                p50_us,
                p90_us: p50_us,
                p99_us: p50_us,
                max_us: p50_us,
            },
        }
    }

    #[test]
    fn medians_and_verdict() {
        let comparison = Comparison {
            scenarios: vec![
                Scenario {
                    in_flight: 1,
                    direct: vec![report(100.0, 10.0), report(90.0, 12.0), report(80.0, 50.0)],
                    proxied: vec![report(50.0, 30.0), report(60.0, 31.0), report(1.0, 90.0)],
                },
                Scenario {
                    in_flight: 16,
                    direct: vec![report(1000.0, 1.0)],
                    proxied: vec![report(500.0, 2.0)],
                },
            ],
        };
        assert_eq!(comparison.scenarios[0].added_p50_us(), 19.0);
        let verdict = comparison.verdict();
        assert_eq!(verdict.len(), 2);
        assert!(!verdict[0].1, "{}", verdict[0].0);
        assert!(verdict[1].1, "{}", verdict[1].0);
        let table = comparison.table();
        assert!(table.contains("stdio, 16 in flight"), "{table}");
        assert!(table.contains("0.50"), "{table}");
    }
}
