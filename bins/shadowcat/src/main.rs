//! The `shadowcat` command: argument parsing and output only; the work is in `shadowcat-core`.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shadowcat_core::mcp::SessionConfig;
use shadowcat_core::raw::CommandSpec;
use shadowcat_core::transport::{Incoming, Outgoing, StdioIncoming, SubprocessOutgoing};
use shadowcat_core::{EndedBy, ForwardConfig, ForwardProxy};

/// Shadowcat: a proxy for the Model Context Protocol.
#[derive(Debug, Parser)]
#[command(name = "shadowcat", version, about, propagate_version = true)]
struct Cli {
    /// Log level (error, warn, info, debug, trace) or a filter such as `shadowcat=debug`.
    /// Logs go to stderr, never stdout.
    #[arg(long, global = true, default_value = "info", env = "SHADOWCAT_LOG")]
    log_level: String,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Forward proxy: a client launches shadowcat, shadowcat reaches the server.
    #[command(subcommand)]
    Forward(Forward),
    /// Serve the embedded demo MCP server (tools `echo` and `add`) on stdin/stdout.
    DemoServer,
}

#[derive(Debug, Subcommand)]
enum Forward {
    /// The client speaks MCP over our stdin/stdout; the server is a command we start.
    ///
    /// Without a command, the embedded demo server is started.
    Stdio(ForwardStdio),
}

#[derive(Debug, Args)]
struct ForwardStdio {
    /// Largest message accepted from either side, in bytes; a longer line is answered
    /// with an error and skipped.
    #[arg(long, default_value_t = shadowcat_core::mcp::DEFAULT_MAX_LINE)]
    max_message_size: usize,
    /// Seconds the server gets to exit after its input is closed, before SIGTERM.
    #[arg(long, default_value_t = 1.0)]
    shutdown_grace: f64,
    /// Seconds the server gets after SIGTERM, before SIGKILL of its process group.
    #[arg(long, default_value_t = 0.5)]
    kill_grace: f64,
    /// Answer a request with an error if the server has not answered it in this many seconds.
    #[arg(long)]
    request_timeout: Option<f64>,
    /// Most requests waiting for an answer in each direction.
    #[arg(long, default_value_t = 4096)]
    max_pending: usize,
    /// The server command and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("--{flag}: {value} is not a number of seconds"))
}

fn init_logs(level: &str, format: LogFormat) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| format!("--log-level {level}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logs(&cli.log_level, cli.log_format) {
        return fail(&e);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match cli.command {
        Command::Forward(Forward::Stdio(args)) => runtime.block_on(forward_stdio(args)),
        Command::DemoServer => {
            let served = runtime.block_on(async {
                shadowcat_core::demo::serve(
                    shadowcat_core::raw::stdin(),
                    shadowcat_core::raw::stdout(),
                )
                .await
            });
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("demo server: {e}")),
            }
        }
    }
}

async fn forward_stdio(args: ForwardStdio) -> ExitCode {
    let (grace, kill_grace, timeout) = match (
        seconds(args.shutdown_grace, "shutdown-grace"),
        seconds(args.kill_grace, "kill-grace"),
        args.request_timeout
            .map(|t| seconds(t, "request-timeout"))
            .transpose(),
    ) {
        (Ok(g), Ok(k), Ok(t)) => (g, k, t),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return fail(&e),
    };
    let spec = match args.command.split_first() {
        Some((program, rest)) => CommandSpec::new(program.clone()).args(rest.iter().cloned()),
        None => match std::env::current_exe() {
            Ok(me) => CommandSpec::new(me).args(["demo-server", "--log-level", "warn"]),
            Err(e) => return fail(&format!("cannot find the demo server: {e}")),
        },
    };
    let config = ForwardConfig::default()
        .with_shutdown_grace(grace)
        .with_kill_grace(kill_grace)
        .with_session(
            SessionConfig::default()
                .with_max_pending(args.max_pending)
                .with_request_timeout(timeout),
        );
    let mut incoming = StdioIncoming::new(args.max_message_size);
    let mut outgoing = SubprocessOutgoing::new(spec, args.max_message_size);
    let client = match incoming.accept().await {
        Ok(Some(client)) => client,
        Ok(None) => return fail("no client on stdin"),
        Err(e) => return fail(&e.to_string()),
    };
    let upstream = match outgoing.connect().await {
        Ok(upstream) => upstream,
        Err(e) => return fail(&format!("server side: {e}")),
    };
    tracing::info!(server = %upstream.description, "forwarding stdio");
    let (signal_code, shutdown) = shutdown_signal();
    let report = match ForwardProxy::new(config)
        .run(client, upstream, shutdown)
        .await
    {
        Ok(report) => report,
        Err(e) => return fail(&e.to_string()),
    };
    match report.ended_by {
        EndedBy::Server => fail(&report.reason()),
        EndedBy::Shutdown => {
            tracing::info!("{}", report.reason());
            ExitCode::from(128 + signal_code.get().copied().unwrap_or(15))
        }
        _ => {
            tracing::info!("{}", report.reason());
            ExitCode::SUCCESS
        }
    }
}

/// A future that completes on SIGINT or SIGTERM, and a cell that then holds the signal number.
fn shutdown_signal() -> (
    std::sync::Arc<std::sync::OnceLock<u8>>,
    impl std::future::Future<Output = ()>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let code = std::sync::Arc::new(std::sync::OnceLock::new());
    let cell = code.clone();
    let fut = async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        let number = tokio::select! {
            _ = int.recv() => 2,
            _ = term.recv() => 15,
        };
        let _ = cell.set(number);
    };
    (code, fut)
}

/// Prints one line to stderr and returns a failure exit code.
fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "shadowcat: {message}");
    ExitCode::FAILURE
}
