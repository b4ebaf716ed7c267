//! `shadowcat replay`: a tape played back as an MCP server, or verified against a live one.

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use shadowcat_core::tape::{ReplayScript, Timing, read_tape};
use shadowcat_core::transport::{
    HttpIncomingConfig, HttpOutgoing, Incoming, Outgoing, StdioIncoming, SubprocessOutgoing,
};
use shadowcat_core::{
    CallOutcome, EndedBy, FallbackFactory, ForwardProxy, ReplayConfig, ReplayOutgoing,
    ReverseConfig, ReverseProxy, UpstreamFactory, VerifyConfig, VerifyReport, verify,
};

use crate::{Pipeline, fail, http_upstream, rules, seconds, shutdown_signal};

/// Play a tape back as an MCP server (a mock), or verify it against a live server.
///
/// As a mock (the default), requests are matched to recorded ones by method and params
/// (key order and `_meta` ignored; the tool name for `tools/call`), repeats first come
/// first served, and each gets its recorded answer with the live request's id. Over stdio
/// (the client launches `shadowcat replay TAPE`), or Streamable HTTP with `--listen`. A
/// request the tape cannot answer gets a JSON-RPC error (code -32060) naming the closest
/// recorded request and the difference, or goes to a live server with `--fallback`.
///
/// With `--verify`, the tape's client side is sent to a live server (`--upstream URL` or a
/// command after `--`) and each answer is compared with the recorded one; the exit status
/// is 1 when any differs or is missing.
#[derive(Debug, Args)]
pub(crate) struct Replay {
    /// The tape to play (any tape format).
    tape: PathBuf,
    /// Serve Streamable HTTP on this address instead of stdio (each client session replays
    /// the tape from its next recorded session).
    #[arg(long, value_name = "ADDR", conflicts_with = "verify")]
    listen: Option<SocketAddr>,
    /// Pacing: `fast` (no waiting; the default) or `recorded` (the recorded gaps between a
    /// request and what answered it).
    #[arg(long, value_enum, default_value_t = Pace::Fast)]
    timing: Pace,
    /// Recorded gaps divided by this factor (0.1 to 10); implies `--timing recorded`.
    #[arg(long)]
    speed: Option<f64>,
    /// The longest single wait, in milliseconds, whatever was recorded.
    #[arg(long, value_name = "MS")]
    max_gap_ms: Option<u64>,
    /// Send requests the tape cannot answer to a live server: this Streamable HTTP URL, or
    /// (without a value) the command after `--`.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "", conflicts_with = "verify")]
    fallback: Option<String>,
    /// Verify the tape against a live server instead of serving it.
    #[arg(long)]
    verify: bool,
    /// The live server to verify against (with `--verify`), instead of a command.
    #[arg(
        long,
        value_name = "URL",
        requires = "verify",
        conflicts_with = "command"
    )]
    upstream: Option<String>,
    /// Seconds the live server gets for each answer (with `--verify`).
    #[arg(long, default_value_t = 10.0)]
    answer_timeout: f64,
    /// A path whose differences do not count (repeatable; with `--verify`), e.g.
    /// `result._meta` or `result.content[*].text`; `*` stands for any key, `[*]` for any
    /// index, and a path covers everything under it.
    #[arg(long = "ignore", value_name = "PATH", requires = "verify")]
    ignore: Vec<String>,
    /// Print the verification report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pipeline: Pipeline,
    #[command(flatten)]
    intercept: rules::InterceptOptions,
    /// The live server command (for `--verify` or `--fallback`), after `--`.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Pace {
    Fast,
    Recorded,
}

impl Replay {
    fn timing(&self) -> Result<Timing, String> {
        let timing = match (self.speed, self.timing) {
            (Some(speed), _) => Timing::scaled(speed)
                .ok_or_else(|| format!("--speed {speed}: expected a factor from 0.1 to 10"))?,
            (None, Pace::Recorded) => Timing::recorded(),
            (None, Pace::Fast) => Timing::fast(),
        };
        Ok(timing.with_max_gap(self.max_gap_ms.map(Duration::from_millis)))
    }

    /// A connector to the live server given by `url` or the command after `--`.
    fn live(&self, url: Option<&str>, flag: &str) -> Result<FallbackFactory, String> {
        let max_line = self.pipeline.max_message_size;
        match url.filter(|u| !u.is_empty()) {
            Some(url) => {
                let (uri, config) = http_upstream(url, &[], flag)?;
                Ok(Arc::new(move || {
                    Box::new(HttpOutgoing::new(uri.clone(), config.clone())) as Box<dyn Outgoing>
                }))
            }
            None => {
                let Some((program, rest)) = self.command.split_first() else {
                    return Err(format!(
                        "--{flag}: give a URL, or a server command after `--`"
                    ));
                };
                let spec = shadowcat_core::raw::CommandSpec::new(program.clone())
                    .args(rest.iter().cloned());
                Ok(Arc::new(move || {
                    Box::new(SubprocessOutgoing::new(spec.clone(), max_line)) as Box<dyn Outgoing>
                }))
            }
        }
    }
}

pub(crate) async fn run(args: Replay) -> ExitCode {
    let script = match read_tape(&args.tape) {
        Ok((_, frames)) => Arc::new(ReplayScript::from_frames(&frames)),
        Err(e) => return fail(&format!("cannot read the tape: {e}")),
    };
    if args.verify {
        return run_verify(&args, &script).await;
    }
    if !args.command.is_empty() && args.fallback.is_none() {
        return fail("a command after `--` is for --verify or --fallback");
    }
    let timing = match args.timing() {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let fallback = match &args.fallback {
        Some(url) => match args.live(Some(url), "fallback") {
            Ok(f) => Some(f),
            Err(e) => return fail(&e),
        },
        None => None,
    };
    let config = ReplayConfig::default()
        .with_timing(timing)
        .with_fallback(fallback);
    let outgoing = ReplayOutgoing::new(script, config, &args.tape.display().to_string());
    let forward = match args.pipeline.config() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let interception = match args.intercept.start().await {
        Ok(running) => running,
        Err(e) => return fail(&e),
    };
    let forward = forward.with_interception(interception.interception.clone());
    let (signal_code, shutdown) = shutdown_signal();
    let signalled = || ExitCode::from(128 + signal_code.get().copied().unwrap_or(15));
    match args.listen {
        Some(listen) => {
            let factory: UpstreamFactory =
                Arc::new(move |_: &_| Box::new(outgoing.clone()) as Box<dyn Outgoing>);
            let config = ReverseConfig::default()
                .with_listen(listen)
                .with_incoming(HttpIncomingConfig::default())
                .with_forward(forward);
            let proxy = match ReverseProxy::bind(config, factory).await {
                Ok(p) => p,
                Err(e) => return fail(&e.to_string()),
            };
            let addr = proxy.local_addr();
            let _ = writeln!(
                std::io::stderr(),
                "shadowcat: listening on http://{addr}/mcp replaying {}",
                args.tape.display()
            );
            match proxy.run(shutdown).await {
                Ok(()) if signal_code.get().is_some() => signalled(),
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.to_string()),
            }
        }
        None => {
            let mut outgoing = outgoing;
            let mut incoming = StdioIncoming::new(args.pipeline.max_message_size);
            let client = match incoming.accept().await {
                Ok(Some(client)) => client,
                Ok(None) => return fail("no client on stdin"),
                Err(e) => return fail(&e.to_string()),
            };
            let upstream = match outgoing.connect().await {
                Ok(u) => u,
                Err(e) => return fail(&e.to_string()),
            };
            match ForwardProxy::new(forward)
                .run(client, upstream, shutdown)
                .await
            {
                Ok(report) if report.ended_by == EndedBy::Shutdown => signalled(),
                Ok(report) => {
                    tracing::info!("{}", report.reason());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
    }
}

async fn run_verify(args: &Replay, script: &ReplayScript) -> ExitCode {
    let factory = match args.live(args.upstream.as_deref(), "upstream") {
        Ok(f) => f,
        Err(e) => return fail(&format!("--verify: {e}")),
    };
    let timeout = match seconds(args.answer_timeout, "answer-timeout") {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let config = VerifyConfig::default()
        .with_answer_timeout(timeout)
        .with_ignore(args.ignore.clone());
    let mut outgoing = factory();
    let report = match verify(script, outgoing.as_mut(), &config).await {
        Ok(r) => r,
        Err(e) => return fail(&format!("verify: {e}")),
    };
    let mut out = std::io::stdout().lock();
    let _ = if args.json {
        writeln!(out, "{}", report.to_json())
    } else {
        write!(out, "{}", text_report(&report))
    };
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn text_report(report: &VerifyReport) -> String {
    let mut text = String::new();
    for call in &report.calls {
        let name = format!(
            "session {} {} (id {})",
            call.session + 1,
            call.name(),
            call.id
        );
        match &call.outcome {
            CallOutcome::Missing(why) => text.push_str(&format!("missing  {name}: {why}\n")),
            CallOutcome::Differs(d) => {
                text.push_str(&format!("differs  {name}\n"));
                for difference in d {
                    text.push_str(&format!("           {difference}\n"));
                }
            }
            _ => text.push_str(&format!("same     {name}\n")),
        }
    }
    let (same, differs, missing) = report.counts();
    text.push_str(&format!(
        "{} calls: {same} same, {differs} differ, {missing} missing\n",
        report.calls.len()
    ));
    text
}
