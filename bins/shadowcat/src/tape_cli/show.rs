//! `tape show` (a readable timeline) and `tape grep` (the frames that match).

use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;
use shadowcat_core::tape::{Direction, Edge, JsonlWriter, TapeFrame, TapeHeader};

use super::frames::{self, Kind, Msg, Pending};
use super::pager::{Paged, PagerMode};
use super::store::clip;
use super::style::{Out, Paint};
use super::{CmdResult, Ctx, units};

#[derive(Debug, Args)]
pub(crate) struct Show {
    /// The tape: a path, or an id or name from the tape directory.
    tape: String,
    #[command(flatten)]
    select: Select,
    /// Print each message in full, pretty-printed.
    #[arg(long)]
    full: bool,
    /// Page the timeline through `$PAGER` (default `less`): `auto` when standard output is
    /// a terminal, `always`, or `never`.
    #[arg(long, value_enum, default_value_t = PagerMode::Auto)]
    pager: PagerMode,
}

#[derive(Debug, Args)]
pub(crate) struct Grep {
    /// The tape: a path, or an id or name from the tape directory.
    tape: String,
    #[command(flatten)]
    select: Select,
    /// Requests and notifications whose method matches this glob (`tools/*`), and the
    /// responses to those requests.
    #[arg(long)]
    method: Option<String>,
    /// `tools/call` requests for this tool, and their responses.
    #[arg(long)]
    tool: Option<String>,
    /// Frames at or after this offset from the tape's start, in milliseconds.
    #[arg(long)]
    since_ms: Option<f64>,
    /// Frames at or before this offset, in milliseconds.
    #[arg(long)]
    until_ms: Option<f64>,
    /// Messages in which this JSONPath (RFC 9535, e.g. `$.params.arguments.text`) selects
    /// something (equal to `--equals`, or matching `--regex`, when given).
    #[arg(long)]
    path: Option<String>,
    /// With `--path`: the selected value must equal this JSON value (or string).
    #[arg(long, requires = "path", conflicts_with = "regex")]
    equals: Option<String>,
    /// With `--path`: the selected value (a string, or the JSON text of another value) must
    /// match this regular expression.
    #[arg(long, requires = "path")]
    regex: Option<String>,
    /// Print each message in full, pretty-printed (text output).
    #[arg(long)]
    full: bool,
}

/// Selection shared by `show` and `grep`.
#[derive(Debug, Args)]
struct Select {
    /// Only this session's frames.
    #[arg(long)]
    session: Option<String>,
    /// Only frames going this way: `c2s` (client to server) or `s2c`.
    #[arg(long, value_parser = frames::parse_direction)]
    direction: Option<Direction>,
    /// Only frames seen on this edge of the proxy: `client` or `server`.
    #[arg(long, value_parser = frames::parse_edge)]
    edge: Option<Edge>,
    /// At most this many frames.
    #[arg(long)]
    limit: Option<usize>,
}

impl Select {
    fn admits(&self, frame: &TapeFrame) -> bool {
        self.session
            .as_ref()
            .is_none_or(|s| frame.session_id.as_ref() == Some(s))
            && self.direction.is_none_or(|d| frame.direction == d)
            && self.edge.is_none_or(|e| frame.edge == e)
    }
}

pub(crate) fn show(ctx: &Ctx, args: &Show) -> CmdResult {
    let path = ctx.resolve(&args.tape)?;
    let mut sink = Sink::new(&ctx.out, args.full);
    if !ctx.out.json {
        sink.pager = Some(Paged::start(args.pager));
    }
    let mut shown = 0usize;
    frames::read_tape(&ctx.out, &path, "show", |header, frame| {
        if !args.select.admits(&frame) {
            return ControlFlow::Continue(());
        }
        if args.select.limit.is_some_and(|l| shown >= l) {
            return ControlFlow::Break(());
        }
        shown += 1;
        sink.frame(header, &frame, &Msg::parse(&frame.message))
    })?;
    sink.finish()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn grep(ctx: &Ctx, args: &Grep) -> CmdResult {
    let path = ctx.resolve(&args.tape)?;
    let json_path = args
        .path
        .as_deref()
        .map(serde_json_path::JsonPath::parse)
        .transpose()
        .map_err(|e| format!("--path: {e}"))?;
    let equals = args
        .equals
        .as_deref()
        .map(|v| serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned())));
    let regex = args
        .regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| format!("--regex: {e}"))?;
    let to_ns = |ms: f64| (ms.max(0.0) * 1e6) as u64;
    let (since, until) = (args.since_ms.map(to_ns), args.until_ms.map(to_ns));
    let by_method = args.method.is_some() || args.tool.is_some();
    let mut pending: Pending<()> = Pending::default();
    let mut sink = Sink::new(&ctx.out, args.full);
    let mut matched = 0usize;
    frames::read_tape(&ctx.out, &path, "grep", |header, frame| {
        if !args.select.admits(&frame)
            || since.is_some_and(|s| frame.offset_ns < s)
            || until.is_some_and(|u| frame.offset_ns > u)
        {
            return ControlFlow::Continue(());
        }
        let msg = Msg::parse(&frame.message);
        if by_method {
            let hit = match msg.kind {
                Kind::Request | Kind::Notification => {
                    let method = msg.method.as_deref().unwrap_or("");
                    let ok = args.method.as_ref().is_none_or(|g| frames::glob(g, method))
                        && args
                            .tool
                            .as_ref()
                            .is_none_or(|t| msg.tool.as_ref() == Some(t));
                    if ok && msg.kind == Kind::Request {
                        pending.request(&frame, &msg, ());
                    }
                    ok
                }
                Kind::Result | Kind::Error => pending.response(&frame, &msg).is_some(),
                Kind::Other => false,
            };
            if !hit {
                return ControlFlow::Continue(());
            }
        }
        if let Some(path) = &json_path {
            let Some(value) = &msg.value else {
                return ControlFlow::Continue(());
            };
            let nodes = path.query(value).all();
            let hit = nodes.iter().any(|node| match (&equals, &regex) {
                (Some(want), _) => *node == want,
                (None, Some(re)) => match node {
                    Value::String(s) => re.is_match(s),
                    other => re.is_match(&other.to_string()),
                },
                (None, None) => true,
            });
            if !hit {
                return ControlFlow::Continue(());
            }
        }
        if args.select.limit.is_some_and(|l| matched >= l) {
            return ControlFlow::Break(());
        }
        matched += 1;
        sink.frame(header, &frame, &msg)
    })?;
    sink.finish()?;
    Ok(if matched > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Where selected frames go: a JSONL tape on stdout (`--json`), or timeline lines.
struct Sink<'a> {
    out: &'a Out,
    full: bool,
    jsonl: Option<JsonlWriter<std::io::StdoutLock<'static>>>,
    /// Text lines go here when set (a pager, or standard output).
    pager: Option<Paged>,
    failed: Option<String>,
}

impl<'a> Sink<'a> {
    fn new(out: &'a Out, full: bool) -> Self {
        Self {
            out,
            full,
            jsonl: None,
            pager: None,
            failed: None,
        }
    }

    fn frame(&mut self, header: &TapeHeader, frame: &TapeFrame, msg: &Msg) -> ControlFlow<()> {
        let written = if self.out.json {
            self.jsonl_frame(header, frame)
        } else {
            let mut text = timeline_line(self.out, frame, msg);
            if self.full {
                let pretty = msg
                    .value
                    .as_ref()
                    .and_then(|v| serde_json::to_string_pretty(v).ok())
                    .unwrap_or_else(|| String::from_utf8_lossy(&frame.message).into_owned());
                for line in pretty.lines() {
                    text.push_str("\n    ");
                    text.push_str(line);
                }
            }
            match self.pager.as_mut() {
                Some(pager) => pager.line(&text),
                None => writeln!(std::io::stdout().lock(), "{text}"),
            }
            .map_err(|e| e.to_string())
        };
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.failed = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    fn jsonl_frame(&mut self, header: &TapeHeader, frame: &TapeFrame) -> Result<(), String> {
        if self.jsonl.is_none() {
            let mut writer = JsonlWriter::new(std::io::stdout().lock()).named("stdout");
            writer.write_header(header).map_err(|e| e.to_string())?;
            self.jsonl = Some(writer);
        }
        match &mut self.jsonl {
            Some(writer) => writer.write_frame(frame).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn finish(mut self) -> Result<(), String> {
        if let Some(writer) = &mut self.jsonl {
            writer.flush().map_err(|e| e.to_string())?;
        }
        if let Some(pager) = self.pager.take() {
            pager.finish();
        }
        // A closed pipe (`| head`) is not an error worth reporting.
        match self.failed {
            Some(e) if !e.contains("Broken pipe") => Err(e),
            _ => Ok(()),
        }
    }
}

/// One timeline line: offset, arrow, edge, session, what the message is, and the message
/// compacted.
pub(crate) fn timeline_line(out: &Out, frame: &TapeFrame, msg: &Msg) -> String {
    let offset = format!("+{:>9}", units::duration_ns(frame.offset_ns));
    let arrow = frames::arrow(frame.direction);
    let arrow = match frame.direction {
        Direction::ClientToServer => out.paint(Paint::Blue, arrow),
        _ => out.paint(Paint::Green, arrow),
    };
    let id = msg
        .id_text()
        .map(|id| format!(" #{id}"))
        .unwrap_or_default();
    let what = match msg.kind {
        Kind::Request => {
            let tool = msg
                .tool
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            out.paint(
                Paint::Bold,
                &format!("{}{id}{tool}", msg.method.as_deref().unwrap_or("")),
            )
        }
        Kind::Notification => out.paint(Paint::Cyan, msg.method.as_deref().unwrap_or("")),
        Kind::Result => {
            let failed = msg
                .value
                .as_ref()
                .and_then(|v| v.get("result")?.get("isError")?.as_bool())
                == Some(true);
            if failed {
                out.paint(Paint::Yellow, &format!("result{id} (isError)"))
            } else {
                format!("result{id}")
            }
        }
        Kind::Error => {
            let code = msg
                .value
                .as_ref()
                .and_then(|v| v.get("error")?.get("code").cloned())
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            out.paint(Paint::Red, &format!("error{id}{code}"))
        }
        Kind::Other => out.paint(Paint::Yellow, "(not JSON-RPC)"),
    };
    let session = frame
        .session_id
        .as_deref()
        .map(|s| out.paint(Paint::Dim, &format!(" [{}]", clip(s, 12))))
        .unwrap_or_default();
    let compact = match &msg.value {
        Some(v) => v.to_string(),
        None => String::from_utf8_lossy(&frame.message).into_owned(),
    };
    format!(
        "{} {arrow} {:<6}{session} {what}  {}",
        out.paint(Paint::Dim, &offset),
        frame.edge.as_str(),
        out.paint(Paint::Dim, &clip(&compact, 100))
    )
}
