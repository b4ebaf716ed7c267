//! `bench-http`: the HTTP side of the load benchmark.
//!
//! - `bench-http serve [--listen ADDR]`: the echo MCP server over Streamable HTTP (the direct
//!   baseline); prints its URL on stdout.
//! - `bench-http load --url URL [--sessions N] [--requests N] [--warmup N]`: one run against
//!   any Streamable HTTP MCP server with an `echo` tool; prints one JSON line.
//! - `bench-http compare [--pin] [--sessions 1,16] [--idle-sessions N]`: the direct HTTP
//!   baseline against Shadowcat's HTTP → stdio, HTTP → HTTP and stdio → HTTP modes, and the
//!   memory an idle gateway session costs; a table and a verdict.
//! - `bench-http check`: `compare` with 2,000 requests, one round and 200 idle sessions: a
//!   quick correctness pass of every mode.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shadowcat_benches::{Error, HttpCompareConfig, HttpLoadConfig, pin_current_process};

/// Drives Streamable HTTP MCP servers with echo tool calls and checks every answer.
#[derive(Debug, Parser)]
#[command(name = "bench-http", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the HTTP echo MCP server.
    Serve {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// One load run against a URL.
    Load {
        /// The MCP endpoint.
        #[arg(long)]
        url: String,
        /// Concurrent sessions, one request in flight each.
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Direct vs Shadowcat's HTTP modes.
    Compare(Compare),
    /// A quick correctness pass of every mode (2,000 requests, one round).
    Check(Compare),
}

#[derive(Debug, Args)]
struct Common {
    /// Measured requests per run [default: 100000; 2000 for check].
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up requests per run [default: 10000; 200 for check].
    #[arg(long)]
    warmup: Option<u64>,
    /// Fail when one request takes longer than this many seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Pin the load generator to CPU 0 and the targets to CPU 1 (uses taskset).
    #[arg(long)]
    pin: bool,
}

#[derive(Debug, Args)]
struct Compare {
    /// Concurrent sessions per scenario.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    sessions: Vec<usize>,
    /// Runs of each mode per scenario, alternating; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Idle sessions for the memory measurement (0 skips it) [default: 10000; 200 for check].
    #[arg(long)]
    idle_sessions: Option<usize>,
    /// The shadowcat binary [default: next to bench-http, else target/release/shadowcat].
    #[arg(long)]
    shadowcat: Option<PathBuf>,
    /// With compare: exit with status 2 when a target is missed.
    #[arg(long)]
    strict: bool,
    /// Also measure HTTP → HTTP with the gateway's admission step on (a JWT on every
    /// request, rate limits, a policy, audit).
    #[arg(long)]
    admission: bool,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench-http: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Cmd::Serve { listen } => serve(listen),
        Cmd::Load {
            url,
            sessions,
            common,
        } => {
            if common.pin {
                pin_current_process(0)?;
            }
            let mut config = HttpLoadConfig::new(url.clone());
            config.sessions = sessions;
            config.requests = common.requests.unwrap_or(config.requests);
            config.warmup = common.warmup.unwrap_or(config.warmup);
            config.timeout = Duration::from_secs(common.timeout.max(1));
            println!("{}", config.run()?.to_json(&url));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare(args) => compare(args, false),
        Cmd::Check(args) => compare(args, true),
    }
}

fn serve(listen: SocketAddr) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Io {
                context: format!("binding {listen}"),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Io {
            context: "reading the bound address".into(),
            source,
        })?;
        println!("http://{addr}/mcp");
        shadowcat_benches::serve_http(listener)
            .await
            .map_err(|source| Error::Io {
                context: "serving".into(),
                source,
            })
    })?;
    Ok(ExitCode::SUCCESS)
}

fn compare(args: Compare, check: bool) -> Result<ExitCode, Error> {
    if args.common.pin {
        pin_current_process(0)?;
    }
    let me = std::env::current_exe().map_err(|source| Error::Io {
        context: "finding bench-http".into(),
        source,
    })?;
    let dir = me.parent().map(Path::to_path_buf).unwrap_or_default();
    let config = HttpCompareConfig {
        shadowcat: args.shadowcat.clone().unwrap_or_else(|| {
            let sibling = dir.join("shadowcat");
            if sibling.is_file() {
                sibling
            } else {
                PathBuf::from("target/release/shadowcat")
            }
        }),
        echo_server: dir.join("bench-echo-server"),
        bench_http: me,
        sessions: args.sessions.clone(),
        rounds: if check { 1 } else { args.rounds.max(1) },
        requests: args
            .common
            .requests
            .unwrap_or(if check { 2_000 } else { 100_000 }),
        warmup: args
            .common
            .warmup
            .unwrap_or(if check { 200 } else { 10_000 }),
        pin: args.common.pin,
        timeout: Duration::from_secs(args.common.timeout.max(1)),
        idle_sessions: args
            .idle_sessions
            .unwrap_or(if check { 200 } else { 10_000 }),
        admission: args.admission,
    };
    let comparison = config.run(|line| eprintln!("{line}"))?;
    print!("{}", comparison.table());
    if check {
        println!("check: every answer arrived at the session that asked");
        return Ok(ExitCode::SUCCESS);
    }
    let verdict = comparison.verdict();
    for (line, _) in &verdict {
        println!("verdict: {line}");
    }
    if args.strict && verdict.iter().any(|(_, ok)| !ok) {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
