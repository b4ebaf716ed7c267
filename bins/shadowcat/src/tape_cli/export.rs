//! `tape export`: a tape as JSONL (any format in, the JSONL tape format out) or as a HAR
//! 1.2 log with `_mcp` fields, streamed (only requests in flight are held).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use shadowcat_core::tape::{Direction, Edge, JsonlWriter, TapeFrame, TapeHeader, format_rfc3339};

use super::frames::{self, Kind, Msg, Pending};
use super::{CmdResult, Ctx};

#[derive(Debug, Args)]
pub(crate) struct Export {
    /// The tape: a path, or an id or name from the tape directory.
    tape: String,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    format: ExportFormat,
    /// Write here instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Only frames seen on this edge (`client` or `server`); default both.
    #[arg(long, value_parser = frames::parse_edge)]
    edge: Option<Edge>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// The JSONL tape format (one JSON object per line; `jq`-friendly).
    Jsonl,
    /// HTTP Archive 1.2, one entry per request/response pair, with `_mcp` fields.
    Har,
}

pub(crate) fn export(ctx: &Ctx, args: &Export) -> CmdResult {
    let path = ctx.resolve(&args.tape)?;
    let sink: Box<dyn Write> = match &args.output {
        Some(file) => {
            Box::new(File::create(file).map_err(|e| format!("creating {}: {e}", file.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::new(sink);
    let mut failed: Option<String> = None;
    match args.format {
        ExportFormat::Jsonl => {
            let mut writer: Option<JsonlWriter<&mut BufWriter<Box<dyn Write>>>> = None;
            let mut sink_ref = Some(&mut sink);
            frames::read_tape(&ctx.out, &path, "export", |header, frame| {
                if args.edge.is_some_and(|e| frame.edge != e) {
                    return ControlFlow::Continue(());
                }
                if writer.is_none()
                    && let Some(s) = sink_ref.take()
                {
                    let mut w = JsonlWriter::new(s);
                    if let Err(e) = w.write_header(header) {
                        failed = Some(e.to_string());
                        return ControlFlow::Break(());
                    }
                    writer = Some(w);
                }
                if let Some(w) = &mut writer
                    && let Err(e) = w.write_frame(&frame)
                {
                    failed = Some(e.to_string());
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })
            .and_then(|header| {
                // A tape without frames still gets its header.
                let mut w = match writer {
                    Some(w) => w,
                    None => {
                        let mut w = JsonlWriter::new(sink_ref.take().ok_or("no output")?);
                        w.write_header(&header).map_err(|e| e.to_string())?;
                        w
                    }
                };
                w.flush().map_err(|e| e.to_string())
            })?;
        }
        ExportFormat::Har => {
            let mut har = Har::new(&mut sink);
            let header = frames::read_tape(&ctx.out, &path, "export", |header, frame| {
                if args.edge.is_some_and(|e| frame.edge != e) {
                    return ControlFlow::Continue(());
                }
                match har.frame(header, frame) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        failed = Some(e.to_string());
                        ControlFlow::Break(())
                    }
                }
            })?;
            har.finish(&header).map_err(|e| e.to_string())?;
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    sink.flush().map_err(|e| e.to_string())?;
    if let Some(file) = &args.output
        && !ctx.out.json
    {
        ctx.out.error(&format!("wrote {}", file.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// A HAR log written entry by entry.
struct Har<W: Write> {
    out: W,
    entries: u64,
    pending: Pending<(TapeFrame, Msg)>,
}

impl<W: Write> Har<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            entries: 0,
            pending: Pending::default(),
        }
    }

    fn frame(&mut self, header: &TapeHeader, frame: TapeFrame) -> std::io::Result<()> {
        let msg = Msg::parse(&frame.message);
        match msg.kind {
            Kind::Request => {
                self.pending
                    .request(&frame, &msg, (frame.clone(), msg.clone()));
                Ok(())
            }
            Kind::Result | Kind::Error => match self.pending.response(&frame, &msg) {
                Some((request, request_msg)) => {
                    self.entry(header, &request, &request_msg, Some((&frame, &msg)))
                }
                // A response to a request the tape does not hold: an entry of its own.
                None => self.entry(header, &frame, &msg, None),
            },
            Kind::Notification | Kind::Other => self.entry(header, &frame, &msg, None),
        }
    }

    fn entry(
        &mut self,
        header: &TapeHeader,
        request: &TapeFrame,
        msg: &Msg,
        response: Option<(&TapeFrame, &Msg)>,
    ) -> std::io::Result<()> {
        let entry = har_entry(header, request, msg, response);
        if self.entries == 0 {
            let creator = json!({ "name": "shadowcat", "version": env!("CARGO_PKG_VERSION") });
            let comment = format!("Shadowcat tape {}", header.tape_id);
            writeln!(
                self.out,
                "{{\"log\":{{\"version\":\"1.2\",\"creator\":{creator},\"pages\":[],\"comment\":{},\"entries\":[",
                Value::String(comment)
            )?;
        } else {
            self.out.write_all(b",\n")?;
        }
        self.entries += 1;
        serde_json::to_writer(&mut self.out, &entry)?;
        Ok(())
    }

    fn finish(mut self, header: &TapeHeader) -> std::io::Result<()> {
        let unanswered: Vec<_> = std::mem::take(&mut self.pending)
            .into_unanswered()
            .collect();
        let mut unanswered = unanswered;
        unanswered.sort_by_key(|(f, _)| f.offset_ns);
        for (frame, msg) in unanswered {
            self.entry(header, &frame, &msg, None)?;
        }
        if self.entries == 0 {
            let creator = json!({ "name": "shadowcat", "version": env!("CARGO_PKG_VERSION") });
            write!(
                self.out,
                "{{\"log\":{{\"version\":\"1.2\",\"creator\":{creator},\"pages\":[],\"entries\":["
            )?;
        }
        self.out.write_all(b"\n]}}\n")
    }
}

/// ISO 8601 with milliseconds, as HAR tools expect.
fn har_time(unix_ns: u64) -> String {
    let full = format_rfc3339(unix_ns);
    format!("{}Z", &full[..23])
}

fn har_headers(frame: &TapeFrame) -> Vec<Value> {
    frame
        .http
        .iter()
        .flat_map(|h| h.headers.iter())
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        0 => "No Response",
        _ => "",
    }
}

/// One HAR entry: the request frame and, when there is one, its response.
fn har_entry(
    header: &TapeHeader,
    request: &TapeFrame,
    msg: &Msg,
    response: Option<(&TapeFrame, &Msg)>,
) -> Value {
    let http = request.http.is_some() || response.is_some_and(|(r, _)| r.http.is_some());
    let (url, version) = if http {
        let base = ["upstream", "url", "listen"]
            .iter()
            .filter_map(|k| header.metadata.get(*k)?.as_str())
            .find(|u| u.starts_with("http://") || u.starts_with("https://"))
            .unwrap_or("http://localhost/mcp");
        (base.to_owned(), "HTTP/1.1")
    } else {
        match request.direction {
            Direction::ClientToServer => ("mcp://stdio".to_owned(), "stdio"),
            _ => ("mcp://stdio/client".to_owned(), "stdio"),
        }
    };
    let body = String::from_utf8_lossy(&request.message).into_owned();
    let latency_ns = response.map_or(0, |(r, _)| r.offset_ns.saturating_sub(request.offset_ns));
    let latency_ms = latency_ns as f64 / 1e6;
    let status = response
        .and_then(|(r, _)| r.http.as_ref()?.status)
        .or_else(|| request.http.as_ref()?.status)
        .unwrap_or(match (response, msg.kind) {
            (Some(_), _) => 200,
            (None, Kind::Notification) => 202,
            (None, _) => 0,
        });
    let response_json = match response {
        Some((frame, _)) => {
            let text = String::from_utf8_lossy(&frame.message).into_owned();
            let mime = frame
                .http
                .as_ref()
                .and_then(|h| h.headers.get("content-type").cloned())
                .unwrap_or_else(|| "application/json".to_owned());
            json!({
                "status": status,
                "statusText": status_text(status),
                "httpVersion": version,
                "cookies": [],
                "headers": har_headers(frame),
                "content": { "size": frame.message.len(), "mimeType": mime, "text": text },
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": frame.message.len(),
            })
        }
        None => json!({
            "status": status,
            "statusText": status_text(status),
            "httpVersion": version,
            "cookies": [],
            "headers": [],
            "content": { "size": 0, "mimeType": "application/json" },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": 0,
        }),
    };
    let mut mcp = json!({
        "method": msg.method,
        "id": msg.id(),
        "session": request.session_id,
        "tool": msg.tool,
        "direction": request.direction.as_str(),
        "edge": request.edge.as_str(),
        "offset_ns": request.offset_ns,
    });
    if let Some((_, rmsg)) = response
        && rmsg.kind == Kind::Error
    {
        mcp["error"] = rmsg
            .value
            .as_ref()
            .and_then(|v| v.get("error").cloned())
            .unwrap_or(Value::Null);
    }
    if response.is_none() && msg.kind == Kind::Request {
        mcp["unanswered"] = Value::Bool(true);
    }
    if let Some(event) = response.and_then(|(r, _)| r.http.as_ref()?.event_id.clone()) {
        mcp["sse_event_id"] = Value::String(event);
    }
    json!({
        "startedDateTime": har_time(header.unix_ns_at(request.offset_ns)),
        "time": latency_ms,
        "request": {
            "method": "POST",
            "url": url,
            "httpVersion": version,
            "cookies": [],
            "headers": har_headers(request),
            "queryString": [],
            "postData": { "mimeType": "application/json", "text": body },
            "headersSize": -1,
            "bodySize": request.message.len(),
        },
        "response": response_json,
        "cache": {},
        "timings": { "blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": latency_ms, "receive": 0, "ssl": -1 },
        "_mcp": mcp,
    })
}
