//! Direct vs proxied: the same load against the echo server alone and through
//! `shadowcat forward stdio` (and, with a rule file, through `shadowcat forward stdio
//! --rules FILE`, and with a directory to record into, through `shadowcat forward stdio
//! --record DIR`), in alternating rounds, summarized as medians.

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
/// Target: a rule set costs at most this fraction of the proxied rate at 16 in flight.
pub const TARGET_RULES_COST: f64 = 0.10;
/// Target: recording costs at most this fraction of the proxied rate at 16 in flight.
pub const TARGET_RECORD_COST: f64 = 0.02;

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
    /// Skip the proxied runs (and the runs with rules).
    pub direct_only: bool,
    /// A rule file: adds a third target, the proxy running these rules on every message.
    pub rules: Option<PathBuf>,
    /// A directory to record tapes into: adds a target, the proxy recording every message.
    pub record: Option<PathBuf>,
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
    /// Runs through the proxy with the rule file (empty without one).
    pub rules: Vec<LoadReport>,
    /// Runs through the proxy recording (empty without a record directory).
    pub record: Vec<LoadReport>,
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

    /// The median rate through the proxy with rules (requests per second).
    pub fn rules_rate(&self) -> f64 {
        med(&self.rules, |r| r.rate)
    }

    /// What the rules cost: 1 minus the median rate with rules over the median proxied
    /// rate (0.05: 5% of the throughput).
    pub fn rules_cost(&self) -> f64 {
        1.0 - self.rules_rate() / self.proxied_rate()
    }

    /// What the rules add to the median latency (µs) over the plain proxy.
    pub fn rules_added_p50_us(&self) -> f64 {
        med(&self.rules, |r| r.latency.p50_us) - med(&self.proxied, |r| r.latency.p50_us)
    }

    /// The median rate through the recording proxy (requests per second).
    pub fn record_rate(&self) -> f64 {
        med(&self.record, |r| r.rate)
    }

    /// What recording costs: 1 minus the median recording rate over the median proxied
    /// rate.
    pub fn record_cost(&self) -> f64 {
        1.0 - self.record_rate() / self.proxied_rate()
    }

    /// What recording adds to the median latency (µs) over the plain proxy.
    pub fn record_added_p50_us(&self) -> f64 {
        med(&self.record, |r| r.latency.p50_us) - med(&self.proxied, |r| r.latency.p50_us)
    }

    /// What the proxy with rules adds to the median latency (µs) over the direct runs.
    pub fn rules_added_p50_vs_direct_us(&self) -> f64 {
        med(&self.rules, |r| r.latency.p50_us) - med(&self.direct, |r| r.latency.p50_us)
    }
}

/// The outcome of a comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// One per in-flight value.
    pub scenarios: Vec<Scenario>,
    /// How many rules the rule file has (0 without one).
    pub rule_count: usize,
}

/// One of the targets a comparison runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Direct,
    Proxied,
    Rules,
    Record,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Proxied => "proxied",
            Self::Rules => "proxied+rules",
            Self::Record => "proxied+record",
        }
    }
}

impl CompareConfig {
    /// Runs every scenario, `rounds` times direct and proxied (and with rules, when a rule
    /// file is given), the order rotating each round, and calls `progress` with a JSON line
    /// per run.
    pub fn run(&self, mut progress: impl FnMut(&str)) -> Result<Comparison> {
        let rules = self.rules.as_ref().filter(|_| !self.direct_only);
        let rule_count = match rules {
            Some(path) => shadowcat_interceptor::RuleSet::load(path)
                .map_err(|e| Error::Usage(format!("--rules: {e}")))?
                .len(),
            None => 0,
        };
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
        let with_rules: Vec<OsString> = match rules {
            Some(path) => vec![
                self.shadowcat.clone().into(),
                "forward".into(),
                "stdio".into(),
                "--rules".into(),
                path.clone().into(),
                "--".into(),
                self.echo_server.clone().into(),
            ],
            None => Vec::new(),
        };
        let record = self.record.as_ref().filter(|_| !self.direct_only);
        let with_record: Vec<OsString> = match record {
            Some(dir) => vec![
                self.shadowcat.clone().into(),
                "forward".into(),
                "stdio".into(),
                "--record".into(),
                dir.clone().into(),
                "--".into(),
                self.echo_server.clone().into(),
            ],
            None => Vec::new(),
        };
        let mut targets = vec![(Target::Direct, &direct)];
        if !self.direct_only {
            targets.push((Target::Proxied, &proxied));
        }
        if rules.is_some() {
            targets.push((Target::Rules, &with_rules));
        }
        if record.is_some() {
            targets.push((Target::Record, &with_record));
        }
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
                rules: Vec::new(),
                record: Vec::new(),
            };
            for round in 0..self.rounds.max(1) {
                // Each round starts with the next target, so drift hits them all alike.
                let mut order = targets.clone();
                order.rotate_left(round % targets.len());
                for (target, command) in order {
                    let config = LoadConfig {
                        command: command.clone(),
                        in_flight,
                        requests: self.requests,
                        warmup: self.warmup,
                        target_cpu: self.pin.then_some(1),
                        timeout: self.timeout,
                        env: env.clone(),
                    };
                    let label = target.label();
                    let report = config.run().map_err(|e| match e {
                        Error::Usage(_) | Error::Spawn { .. } => e,
                        other => Error::Run {
                            run: format!("{label} run, {in_flight} in flight, round {}", round + 1),
                            source: Box::new(other),
                        },
                    })?;
                    progress(&report.to_json(label));
                    match target {
                        Target::Direct => scenario.direct.push(report),
                        Target::Proxied => scenario.proxied.push(report),
                        Target::Rules => scenario.rules.push(report),
                        Target::Record => scenario.record.push(report),
                    }
                }
            }
            scenarios.push(scenario);
        }
        Ok(Comparison {
            scenarios,
            rule_count,
        })
    }
}

impl Comparison {
    /// The results as a text table, one row per scenario (medians over the rounds); with
    /// rules, a second table with a "proxied + rules" row per scenario.
    pub fn table(&self) -> String {
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
        let mut out = layout(&rows);
        if self.scenarios.iter().any(|s| !s.rules.is_empty()) {
            out.push('\n');
            out.push_str(&self.rules_table());
        }
        if self.scenarios.iter().any(|s| !s.record.is_empty()) {
            out.push('\n');
            out.push_str(&self.record_table());
        }
        out
    }

    /// The runs with rules: per scenario, their median rate, its ratio to the plain proxy
    /// (1 minus the rules' cost) and to the direct runs, and their latencies.
    fn rules_table(&self) -> String {
        let header = [
            "target",
            "req/s",
            "vs proxied",
            "rules cost",
            "vs direct",
            "p50",
            "added p50 vs proxied",
            "p99",
        ];
        let mut rows = vec![header.map(str::to_owned).to_vec()];
        let us = |v: f64| format!("{v:.1} µs");
        for s in self.scenarios.iter().filter(|s| !s.rules.is_empty()) {
            rows.push(vec![
                format!("proxied + rules, {} in flight", s.in_flight),
                format!("{:.0}", s.rules_rate()),
                format!("{:.3}", s.rules_rate() / s.proxied_rate()),
                format!("{:.1}%", s.rules_cost() * 100.0),
                format!("{:.2}", s.rules_rate() / s.direct_rate()),
                us(med(&s.rules, |r| r.latency.p50_us)),
                us(s.rules_added_p50_us()),
                us(med(&s.rules, |r| r.latency.p99_us)),
            ]);
        }
        layout(&rows)
    }

    /// The recording runs: per scenario, their median rate, its ratio to the plain proxy
    /// (1 minus recording's cost), and their latencies.
    fn record_table(&self) -> String {
        let header = [
            "target",
            "req/s",
            "vs proxied",
            "recording cost",
            "p50",
            "added p50 vs proxied",
            "p99",
        ];
        let mut rows = vec![header.map(str::to_owned).to_vec()];
        let us = |v: f64| format!("{v:.1} µs");
        for s in self.scenarios.iter().filter(|s| !s.record.is_empty()) {
            rows.push(vec![
                format!("proxied + recording, {} in flight", s.in_flight),
                format!("{:.0}", s.record_rate()),
                format!("{:.3}", s.record_rate() / s.proxied_rate()),
                format!("{:.1}%", s.record_cost() * 100.0),
                us(med(&s.record, |r| r.latency.p50_us)),
                us(s.record_added_p50_us()),
                us(med(&s.record, |r| r.latency.p99_us)),
            ]);
        }
        layout(&rows)
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
        let with_rules = |n: usize| find(n).filter(|s| !s.rules.is_empty());
        if let Some(s) = with_rules(16) {
            let ok = s.rules_cost() <= TARGET_RULES_COST;
            lines.push((
                format!(
                    "16 in flight: {} rules cost {:.1}% of throughput (target <= {:.0}%): {}",
                    self.rule_count,
                    s.rules_cost() * 100.0,
                    TARGET_RULES_COST * 100.0,
                    if ok { "PASS" } else { "FAIL" }
                ),
                ok,
            ));
        }
        if let Some(s) = with_rules(1) {
            let added = s.rules_added_p50_vs_direct_us();
            let ok = added <= TARGET_ADDED_P50_US;
            lines.push((
                format!(
                    "1 in flight: with {} rules, added p50 is {:.1} µs ({:+.1} µs for the rules; \
                     target <= {:.0} µs): {}",
                    self.rule_count,
                    added,
                    s.rules_added_p50_us(),
                    TARGET_ADDED_P50_US,
                    if ok { "PASS" } else { "FAIL" }
                ),
                ok,
            ));
        }
        if let Some(s) = find(16).filter(|s| !s.record.is_empty()) {
            let ok = s.record_cost() <= TARGET_RECORD_COST;
            lines.push((
                format!(
                    "16 in flight: recording costs {:.1}% of throughput (target <= {:.0}%): {}",
                    s.record_cost() * 100.0,
                    TARGET_RECORD_COST * 100.0,
                    if ok { "PASS" } else { "FAIL" }
                ),
                ok,
            ));
        }
        lines
    }
}

/// Rows of cells as text: the first column left-aligned, the others right-aligned.
fn layout(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
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
                    rules: Vec::new(),
                    record: Vec::new(),
                },
                Scenario {
                    in_flight: 16,
                    direct: vec![report(1000.0, 1.0)],
                    proxied: vec![report(500.0, 2.0)],
                    rules: Vec::new(),
                    record: Vec::new(),
                },
            ],
            rule_count: 0,
        };
        assert_eq!(comparison.scenarios[0].added_p50_us(), 19.0);
        let verdict = comparison.verdict();
        assert_eq!(verdict.len(), 2);
        assert!(!verdict[0].1, "{}", verdict[0].0);
        assert!(verdict[1].1, "{}", verdict[1].0);
        let table = comparison.table();
        assert!(table.contains("stdio, 16 in flight"), "{table}");
        assert!(table.contains("0.50"), "{table}");
        assert!(!table.contains("rules"), "{table}");
    }

    #[test]
    fn rules_cost_is_measured_against_the_plain_proxy() {
        let comparison = Comparison {
            scenarios: vec![
                Scenario {
                    in_flight: 1,
                    direct: vec![report(100.0, 10.0)],
                    proxied: vec![report(50.0, 20.0)],
                    rules: vec![report(45.0, 22.5), report(40.0, 45.0), report(48.0, 21.0)],
                    record: Vec::new(),
                },
                Scenario {
                    in_flight: 16,
                    direct: vec![report(1000.0, 1.0)],
                    proxied: vec![report(500.0, 2.0), report(520.0, 2.0), report(480.0, 2.0)],
                    rules: vec![report(440.0, 2.5), report(460.0, 2.5), report(300.0, 9.0)],
                    record: vec![report(495.0, 2.1)],
                },
            ],
            rule_count: 50,
        };
        let s16 = &comparison.scenarios[1];
        assert!(
            (s16.rules_cost() - 0.12).abs() < 1e-9,
            "{}",
            s16.rules_cost()
        );
        assert_eq!(comparison.scenarios[0].rules_added_p50_us(), 2.5);
        let verdict = comparison.verdict();
        assert_eq!(verdict.len(), 5, "{verdict:?}");
        assert!(
            verdict[2].0.contains("50 rules cost 12.0%"),
            "{}",
            verdict[2].0
        );
        assert!(!verdict[2].1);
        assert!(
            verdict[3].0.contains("added p50 is 12.5 µs"),
            "{}",
            verdict[3].0
        );
        assert!(verdict[3].1);
        let table = comparison.table();
        assert!(table.contains("proxied + rules, 16 in flight"), "{table}");
        assert!(table.contains("12.0%"), "{table}");
        assert!(table.contains("0.880"), "{table}");
        // Recording's cost is measured against the plain proxy too: 495 of 500.
        assert!(
            table.contains("proxied + recording, 16 in flight"),
            "{table}"
        );
        assert!((s16.record_cost() - 0.01).abs() < 1e-9);
        assert!(
            verdict[4].0.contains("recording costs 1.0%"),
            "{}",
            verdict[4].0
        );
        assert!(verdict[4].1);
    }
}
