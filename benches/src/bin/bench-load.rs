//! `bench-load`: the stdio load generator.
//!
//! - `bench-load [--in-flight N] [--requests N] [--warmup N] [--pin] -- CMD ARGS…` runs one
//!   scenario against CMD and prints one JSON line.
//! - `bench-load --compare` runs the echo server directly and through
//!   `shadowcat forward stdio`, at 1 and 16 in flight, in alternating rounds, and prints a
//!   table and a verdict against the performance targets. With `--rules FILE` it also runs
//!   `shadowcat forward stdio --rules FILE` in the same rounds and reports what the rules
//!   cost; with `--record DIR`, `shadowcat forward stdio --record DIR`, and what recording
//!   costs.
//! - `bench-load --check` is the same with 2,000 requests and one round: a quick correctness
//!   pass that fails on any lost or wrong answer.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shadowcat_benches::{CompareConfig, Error, LoadConfig, pin_current_process};

/// Drives an MCP stdio server with echo tool calls, keeping a fixed number in flight, and
/// checks every answer.
#[derive(Debug, Parser)]
#[command(name = "bench-load", version)]
struct Cli {
    /// Compare the echo server direct and through `shadowcat forward stdio`.
    #[arg(long, conflicts_with = "check")]
    compare: bool,
    /// Quick correctness pass: like --compare with 2,000 requests and one round.
    #[arg(long)]
    check: bool,
    /// Requests kept in flight; a list (1,16) for --compare and --check [default: 16 for one
    /// run, 1,16 otherwise].
    #[arg(long, value_delimiter = ',')]
    in_flight: Vec<usize>,
    /// Measured requests per run [default: 200000; 2000 with --check].
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up requests per run, not measured [default: 20000; 200 with --check].
    #[arg(long)]
    warmup: Option<u64>,
    /// Direct and proxied runs per scenario, alternating; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The shadowcat binary [default: next to bench-load, else target/release/shadowcat].
    #[arg(long)]
    shadowcat: Option<PathBuf>,
    /// The echo server binary [default: bench-echo-server next to bench-load].
    #[arg(long)]
    echo_server: Option<PathBuf>,
    /// Pin the load generator to CPU 0 and the target to CPU 1 (uses taskset).
    #[arg(long)]
    pin: bool,
    /// Fail when no answer arrives for this many seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// With --compare or --check: skip the proxied runs.
    #[arg(long)]
    direct_only: bool,
    /// With --compare or --check: also run the echo server through
    /// `shadowcat forward stdio --rules FILE`, in the same rounds, and report what the rules
    /// cost (target: at most 10% of the proxied rate at 16 in flight).
    #[arg(long, value_name = "FILE", conflicts_with = "direct_only")]
    rules: Option<PathBuf>,
    /// With --compare or --check: also run the echo server through
    /// `shadowcat forward stdio --record DIR`, in the same rounds, and report what recording
    /// costs (target: at most 2% of the proxied rate at 16 in flight). The tapes are left in
    /// DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "direct_only")]
    record: Option<PathBuf>,
    /// With --compare: exit with status 2 when a performance target is missed.
    #[arg(long)]
    strict: bool,
    /// The target command for a single run.
    #[arg(last = true)]
    command: Vec<OsString>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench-load: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, Error> {
    if cli.pin {
        pin_current_process(0)?;
    }
    let timeout = Duration::from_secs(cli.timeout.max(1));
    if !cli.compare && !cli.check {
        if cli.rules.is_some() || cli.record.is_some() {
            return Err(Error::Usage(
                "--rules and --record go with --compare or --check; for a single run, put it in the \
                 command after `--`"
                    .into(),
            ));
        }
        let mut config = LoadConfig::new(cli.command.clone());
        if config.command.is_empty() {
            return Err(Error::Usage(
                "give a target command after `--`, or --compare or --check".into(),
            ));
        }
        match cli.in_flight[..] {
            [] => {}
            [n] => config.in_flight = n,
            _ => {
                return Err(Error::Usage(
                    "one --in-flight value for a single run".into(),
                ));
            }
        }
        config.requests = cli.requests.unwrap_or(config.requests);
        config.warmup = cli.warmup.unwrap_or(config.warmup);
        config.target_cpu = cli.pin.then_some(1);
        config.timeout = timeout;
        let target = config
            .command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        println!("{}", config.run()?.to_json(&target));
        return Ok(ExitCode::SUCCESS);
    }
    if !cli.command.is_empty() {
        return Err(Error::Usage(
            "--compare and --check start their own targets; drop the command after `--`".into(),
        ));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let config = CompareConfig {
        shadowcat: cli.shadowcat.clone().unwrap_or_else(|| {
            let sibling = exe_dir.join("shadowcat");
            if sibling.is_file() {
                sibling
            } else {
                PathBuf::from("target/release/shadowcat")
            }
        }),
        echo_server: cli
            .echo_server
            .clone()
            .unwrap_or_else(|| exe_dir.join("bench-echo-server")),
        in_flight: if cli.in_flight.is_empty() {
            vec![1, 16]
        } else {
            cli.in_flight.clone()
        },
        rounds: if cli.check { 1 } else { cli.rounds },
        requests: cli
            .requests
            .unwrap_or(if cli.check { 2_000 } else { 200_000 }),
        warmup: cli.warmup.unwrap_or(if cli.check { 200 } else { 20_000 }),
        pin: cli.pin,
        timeout,
        direct_only: cli.direct_only,
        rules: cli.rules.clone(),
        record: cli.record.clone(),
    };
    let comparison = config.run(|line| eprintln!("{line}"))?;
    print!("{}", comparison.table());
    if cli.check {
        println!("check: every answer arrived and matched");
        return Ok(ExitCode::SUCCESS);
    }
    let verdict = comparison.verdict();
    for (line, _) in &verdict {
        println!("verdict: {line}");
    }
    if cli.strict && verdict.iter().any(|(_, ok)| !ok) {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
