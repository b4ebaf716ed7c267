//! The `shadowcat` command: argument parsing and output only; the work is in `shadowcat-core`.

mod gateway_auth;
mod intercept;
mod oauth;
mod record;
mod replay;
mod rules;
mod tape_cli;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shadowcat_core::mcp::SessionConfig;
use shadowcat_core::raw::{CommandSpec, HttpClient, HttpClientConfig, HttpServerConfig};
use shadowcat_core::session::Limits;
use shadowcat_core::transport::{
    Connection, HttpIncomingConfig, HttpOutgoing, HttpOutgoingConfig, Incoming, Outgoing,
    StdioIncoming, SubprocessOutgoing,
};
use shadowcat_core::{
    EndedBy, ForwardConfig, ForwardProxy, ReverseConfig, ReverseProxy, UpstreamCredentialSource,
    UpstreamFactory,
};
use std::sync::Arc;

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
    /// Reverse proxy (gateway): HTTP clients reach an upstream MCP server.
    ///
    /// Serves Streamable HTTP at `/mcp` and legacy HTTP+SSE at `/sse` and `/message`, plus
    /// `/healthz`, `/readyz` and `/metrics`. The upstream is an HTTP server (`--upstream URL`)
    /// or a command after `--`, started once per client session; without either, the
    /// embedded demo server.
    Reverse(Reverse),
    /// Interception rule files: validate one, or test one against a recorded tape.
    #[command(subcommand)]
    Rules(rules::Rules),
    /// Serve the embedded demo MCP server (tools `echo` and `add`) on stdin/stdout.
    DemoServer,
    /// Record a session into tapes: `record DIR -- CMD…` is `forward stdio --record DIR --
    /// CMD…`; with `--listen` or `--upstream`, `reverse --record DIR …`.
    Record(record::RecordShorthand),
    /// Act on messages a running proxy holds (rules with the `pause` action): list, show,
    /// resume, edit or drop them through its control API.
    Intercept(intercept::Intercept),
    /// Play a tape back as an MCP server (stdio or `--listen`), or `--verify` it against a
    /// live server.
    Replay(replay::Replay),
    /// Recorded tapes: list, show, stats, grep, export (JSONL, HAR), diff, validate,
    /// repair, compress, migrate, prune and rm.
    Tape(tape_cli::Tape),
}

#[derive(Debug, Args)]
struct Reverse {
    /// Address to listen on. Loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// An upstream Streamable HTTP (or legacy SSE) server URL, instead of a command.
    #[arg(long, value_name = "URL", conflicts_with = "command")]
    upstream: Option<String>,
    /// A header sent with every upstream HTTP request, `Name: value` (repeatable).
    #[arg(long = "upstream-header", value_name = "HEADER")]
    upstream_headers: Vec<String>,
    /// Most concurrent client sessions (each has its own upstream connection or process).
    #[arg(long, default_value_t = 1024)]
    max_sessions: usize,
    /// Seconds a session may stay idle before it is closed (0: never).
    #[arg(long, default_value_t = 1800.0)]
    idle_timeout: f64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    max_body: usize,
    /// Host names the `Host` header may carry (repeatable; DNS rebinding protection).
    /// Default: localhost, 127.0.0.1 and [::1].
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Accept any `Host` header (for a gateway behind a trusted front end).
    #[arg(long, conflicts_with = "allowed_hosts")]
    any_host: bool,
    /// Origins accepted besides those naming an allowed host (repeatable), e.g.
    /// `https://app.example.com`.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Seconds between keep-alive comments on idle SSE streams (0: none).
    #[arg(long, default_value_t = 15.0)]
    keepalive: f64,
    /// Runtime worker threads (default: the cores this process may run on; 1 runs
    /// everything on one thread).
    #[arg(long)]
    workers: Option<usize>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    pipeline: Pipeline,
    #[command(flatten)]
    intercept: rules::InterceptOptions,
    #[command(flatten)]
    record: record::RecordOptions,
    #[command(flatten)]
    auth: gateway_auth::AuthOptions,
    /// The server command and its arguments, after `--`; one process per client session.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// Options of the message pipeline, shared by the forward and reverse proxies.
#[derive(Debug, Args)]
struct Pipeline {
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
    /// A remote Streamable HTTP (or legacy SSE) server URL to reach, instead of a command.
    #[arg(long, value_name = "URL", conflicts_with = "command")]
    to: Option<String>,
    /// A header sent with every request to the remote server, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "HEADER", requires = "to")]
    headers: Vec<String>,
    #[command(flatten)]
    oauth: oauth::OAuthOptions,
    #[command(flatten)]
    pipeline: Pipeline,
    #[command(flatten)]
    intercept: rules::InterceptOptions,
    #[command(flatten)]
    record: record::RecordOptions,
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
    let cli = Cli::parse_from(record::expand(std::env::args_os().collect()));
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
        Command::Intercept(args) => runtime.block_on(intercept::run(args)),
        Command::Replay(args) => runtime.block_on(replay::run(args)),
        Command::Rules(command) => rules::run(command),
        Command::Tape(tape) => tape_cli::run(tape),
        Command::Record(_) => fail("record: expected `record DIR -- CMD…`"),
        Command::Reverse(args) => {
            // The gateway serves many sessions at once: by default one worker per core it
            // may run on; one worker runs everything on the current thread.
            let workers = args.workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            });
            let built = if workers <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .enable_all()
                    .build()
            };
            match built {
                Ok(rt) => rt.block_on(reverse(args)),
                Err(e) => fail(&format!("cannot start the runtime: {e}")),
            }
        }
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

impl Pipeline {
    fn config(&self) -> Result<ForwardConfig, String> {
        let grace = seconds(self.shutdown_grace, "shutdown-grace")?;
        let kill_grace = seconds(self.kill_grace, "kill-grace")?;
        let timeout = self
            .request_timeout
            .map(|t| seconds(t, "request-timeout"))
            .transpose()?;
        Ok(ForwardConfig::default()
            .with_shutdown_grace(grace)
            .with_kill_grace(kill_grace)
            .with_session(
                SessionConfig::default()
                    .with_max_pending(self.max_pending)
                    .with_request_timeout(timeout),
            ))
    }
}

/// The command to run as the server: the one given, or the embedded demo server.
fn server_command(command: &[OsString]) -> Result<CommandSpec, String> {
    match command.split_first() {
        Some((program, rest)) => Ok(CommandSpec::new(program.clone()).args(rest.iter().cloned())),
        None => match std::env::current_exe() {
            Ok(me) => Ok(CommandSpec::new(me).args(["demo-server", "--log-level", "warn"])),
            Err(e) => Err(format!("cannot find the demo server: {e}")),
        },
    }
}

/// An HTTP upstream's URL and settings from a URL and `Name: value` header options.
fn http_upstream(
    url: &str,
    headers: &[String],
    flag: &str,
) -> Result<(http::Uri, HttpOutgoingConfig), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("--{flag} {url}: not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => {}
        _ => {
            return Err(format!(
                "--{flag} {url}: expected an http:// or https:// URL"
            ));
        }
    }
    let mut config = HttpOutgoingConfig::default();
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("header `{header}`: expected `Name: value`"))?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| format!("header `{header}`: {e}"))?;
        let value = http::HeaderValue::from_str(value.trim())
            .map_err(|e| format!("header `{header}`: {e}"))?;
        config.headers.append(name, value);
    }
    Ok((uri, config))
}

async fn forward_stdio(args: ForwardStdio) -> ExitCode {
    let config = match args.pipeline.config() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let interception = match args.intercept.start().await {
        Ok(running) => running,
        Err(e) => return fail(&e),
    };
    let recorder = match args
        .record
        .start("forward", interception.interception.is_some())
    {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let config = config
        .with_interception(interception.interception.clone())
        .with_recorder(recorder.as_ref().map(shadowcat_core::Recorder::handle));
    let max_line = args.pipeline.max_message_size;
    let mut outgoing: Box<dyn Outgoing> = match &args.to {
        Some(url) => match http_upstream(url, &args.headers, "to")
            .and_then(|(uri, config)| Ok((uri.clone(), args.oauth.apply(&uri, config)?)))
        {
            Ok((uri, config)) => Box::new(HttpOutgoing::new(uri, config)),
            Err(e) => return fail(&e),
        },
        None => match server_command(&args.command) {
            Ok(spec) => Box::new(SubprocessOutgoing::new(spec, max_line)),
            Err(e) => return fail(&e),
        },
    };
    let mut incoming = StdioIncoming::new(max_line);
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
    let report = ForwardProxy::new(config)
        .run(client, upstream, shutdown)
        .await;
    record::finish(recorder).await;
    let report = match report {
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

async fn reverse(args: Reverse) -> ExitCode {
    let forward = match args.pipeline.config() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let interception = match args.intercept.start().await {
        Ok(running) => running,
        Err(e) => return fail(&e),
    };
    let recorder = match args
        .record
        .start("reverse", interception.interception.is_some())
    {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let forward = forward
        .with_interception(interception.interception.clone())
        .with_recorder(recorder.as_ref().map(shadowcat_core::Recorder::handle));
    let idle = match seconds(args.idle_timeout, "idle-timeout") {
        Ok(d) if d.is_zero() => None,
        Ok(d) => Some(d),
        Err(e) => return fail(&e),
    };
    let keepalive = match seconds(args.keepalive, "keepalive") {
        Ok(d) => Some(d).filter(|d| !d.is_zero()),
        Err(e) => return fail(&e),
    };
    let max_line = args.pipeline.max_message_size;
    let admission = match args.auth.admission(args.listen) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let ca_file = admission
        .as_ref()
        .and_then(|a| a.resource_server.as_ref())
        .and_then(|r| r.ca_file.clone());
    let credentials = match admission.as_ref().and_then(|a| a.upstream.clone()) {
        Some(_) if args.upstream.is_none() => {
            return fail(
                "the `upstream` credentials section needs an HTTP upstream (--upstream URL)",
            );
        }
        Some(c) => match UpstreamCredentialSource::new(c, ca_file.as_deref()) {
            Ok(source) => Some(source),
            Err(e) => return fail(&e.to_string()),
        },
        None => None,
    };
    let upstream: UpstreamFactory = match &args.upstream {
        Some(url) => match http_upstream(url, &args.upstream_headers, "upstream") {
            Ok((uri, config)) => {
                // One connection pool for every session's upstream connection.
                let client = match HttpClient::new(&HttpClientConfig::default()) {
                    Ok(c) => c,
                    Err(e) => return fail(&format!("cannot set up the HTTP client: {e}")),
                };
                Arc::new(move |connection: &Connection| {
                    let config = match &credentials {
                        Some(source) => source.configure(config.clone(), connection),
                        None => config.clone(),
                    };
                    Box::new(HttpOutgoing::with_client(
                        uri.clone(),
                        config,
                        client.clone(),
                    )) as Box<dyn Outgoing>
                })
            }
            Err(e) => return fail(&e),
        },
        None => match server_command(&args.command) {
            Ok(spec) => Arc::new(move |_: &Connection| {
                Box::new(SubprocessOutgoing::new(spec.clone(), max_line)) as Box<dyn Outgoing>
            }),
            Err(e) => return fail(&e),
        },
    };
    let allowed_hosts = if args.any_host {
        None
    } else if args.allowed_hosts.is_empty() {
        Some(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
    } else {
        Some(
            args.allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        )
    };
    let limits = Limits::default()
        .with_max_sessions(args.max_sessions)
        .with_idle_timeout(idle)
        .with_max_pending(args.pipeline.max_pending);
    let incoming = HttpIncomingConfig::default()
        .with_limits(limits)
        .with_allowed_hosts(allowed_hosts)
        .with_allowed_origins(args.allowed_origins.clone())
        .with_max_body(args.max_body)
        .with_keepalive(keepalive);
    let mut server = HttpServerConfig::default();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        server = match server.with_tls_pem_files(cert, key) {
            Ok(s) => s,
            Err(e) => return fail(&format!("--tls-cert/--tls-key: {e}")),
        };
    }
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let config = ReverseConfig::default()
        .with_listen(args.listen)
        .with_incoming(incoming)
        .with_forward(forward)
        .with_server(server)
        .with_admission(admission);
    let proxy = match ReverseProxy::bind(config, upstream).await {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    if let Some(rules) = &interception.rules {
        proxy.metrics().attach_rules(rules.clone());
    }
    let addr = proxy.local_addr();
    let what = match &args.upstream {
        Some(url) => url.clone(),
        None if args.command.is_empty() => "the embedded demo server".into(),
        None => args
            .command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let _ = writeln!(
        std::io::stderr(),
        "shadowcat: listening on {scheme}://{addr}/mcp (legacy SSE: {scheme}://{addr}/sse) for {what}"
    );
    let (signal_code, shutdown) = shutdown_signal();
    let served = proxy.run(shutdown).await;
    record::finish(recorder).await;
    match served {
        Ok(()) => match signal_code.get() {
            Some(code) => ExitCode::from(128 + code),
            None => ExitCode::SUCCESS,
        },
        Err(e) => fail(&e.to_string()),
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
