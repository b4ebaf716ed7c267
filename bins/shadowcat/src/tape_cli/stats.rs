//! `tape stats`: counts, latency percentiles, errors and bytes, in one pass and constant
//! memory (only requests in flight are kept; latencies go into fixed-size histograms).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};
use shadowcat_core::tape::{Direction, Edge};

use super::frames::{self, Kind, Msg, Pending};
use super::style::Paint;
use super::{CmdResult, Ctx, units};

#[derive(Debug, Args)]
pub(crate) struct Stats {
    /// The tape: a path, or an id or name from the tape directory.
    tape: String,
    /// Pair requests and responses on this edge (default: the client edge when the tape
    /// has one).
    #[arg(long, value_parser = frames::parse_edge)]
    edge: Option<Edge>,
}

/// Sub-buckets per power of two: latencies are kept to within about 3%.
const SUB: u32 = 32;

/// A log-bucketed latency histogram (64 × 32 counters), for percentiles in fixed memory.
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; (64 * SUB) as usize],
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    fn bucket(ns: u64) -> usize {
        if ns < u64::from(SUB) {
            return ns as usize;
        }
        let power = 63 - ns.leading_zeros();
        let shift = power - SUB.trailing_zeros();
        let sub = (ns >> shift) as u32 - SUB;
        ((power - SUB.trailing_zeros() + 1) * SUB + sub) as usize
    }

    /// The smallest value in a bucket.
    fn floor(bucket: usize) -> u64 {
        let bucket = bucket as u32;
        if bucket < SUB {
            return u64::from(bucket);
        }
        let shift = bucket / SUB - 1;
        u64::from(SUB + bucket % SUB) << shift
    }

    fn record(&mut self, ns: u64) {
        if let Some(c) = self.counts.get_mut(Self::bucket(ns)) {
            *c += 1;
        }
        self.total += 1;
        self.sum += u128::from(ns);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    fn percentile(&self, p: f64) -> u64 {
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let upper = Self::floor(i + 1).saturating_sub(1).max(Self::floor(i));
                return ((Self::floor(i) + upper) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    fn to_json(&self) -> Value {
        if self.total == 0 {
            return json!({ "count": 0 });
        }
        json!({
            "count": self.total,
            "min_ns": self.min,
            "mean_ns": (self.sum / u128::from(self.total)) as u64,
            "p50_ns": self.percentile(50.0),
            "p90_ns": self.percentile(90.0),
            "p99_ns": self.percentile(99.0),
            "max_ns": self.max,
        })
    }
}

#[derive(Debug, Default)]
struct MethodStats {
    requests: u64,
    notifications: u64,
    errors: u64,
    latency: Option<Histogram>,
}

#[derive(Debug, Default)]
struct ToolStats {
    calls: u64,
    /// JSON-RPC errors.
    errors: u64,
    /// Results with `isError: true`.
    tool_errors: u64,
}

/// What one edge's frames add up to.
#[derive(Debug, Default)]
struct Acc {
    frames: u64,
    methods: BTreeMap<String, MethodStats>,
    tools: BTreeMap<String, ToolStats>,
    pending: Pending<(String, Option<String>, u64)>,
    errors: u64,
    unparsed: u64,
}

impl Acc {
    fn add(&mut self, frame: &shadowcat_core::tape::TapeFrame) {
        self.frames += 1;
        let msg = Msg::parse(&frame.message);
        match msg.kind {
            Kind::Request => {
                let method = msg.method.clone().unwrap_or_default();
                self.methods.entry(method.clone()).or_default().requests += 1;
                if let Some(tool) = &msg.tool {
                    self.tools.entry(tool.clone()).or_default().calls += 1;
                }
                self.pending
                    .request(frame, &msg, (method, msg.tool.clone(), frame.offset_ns));
            }
            Kind::Notification => {
                self.methods
                    .entry(msg.method.clone().unwrap_or_default())
                    .or_default()
                    .notifications += 1;
            }
            Kind::Result | Kind::Error => {
                let Some((method, tool, at)) = self.pending.response(frame, &msg) else {
                    return;
                };
                let entry = self.methods.entry(method).or_default();
                entry
                    .latency
                    .get_or_insert_with(Histogram::new)
                    .record(frame.offset_ns.saturating_sub(at));
                let tool = tool.map(|t| self.tools.entry(t).or_default());
                if msg.kind == Kind::Error {
                    self.errors += 1;
                    entry.errors += 1;
                    if let Some(t) = tool {
                        t.errors += 1;
                    }
                } else if let Some(t) = tool
                    && msg
                        .value
                        .as_ref()
                        .and_then(|v| v.get("result")?.get("isError")?.as_bool())
                        == Some(true)
                {
                    t.tool_errors += 1;
                }
            }
            Kind::Other => self.unparsed += 1,
        }
    }
}

pub(crate) fn stats(ctx: &Ctx, args: &Stats) -> CmdResult {
    let path = ctx.resolve(&args.tape)?;
    // Both edges are counted apart; the report pairs on the one asked for, else on the
    // client edge when the tape has one (what the client saw).
    let (mut client, mut server) = (Acc::default(), Acc::default());
    let (mut frames_total, mut c2s, mut s2c, mut bytes_c2s, mut bytes_s2c) =
        (0u64, 0, 0, 0u64, 0u64);
    let mut last_offset = 0u64;
    let mut sessions = std::collections::BTreeSet::new();
    let header = frames::read_tape(&ctx.out, &path, "stats", |_, frame| {
        frames_total += 1;
        last_offset = last_offset.max(frame.offset_ns);
        match frame.direction {
            Direction::ClientToServer => (c2s += 1, bytes_c2s += frame.message.len() as u64),
            _ => (s2c += 1, bytes_s2c += frame.message.len() as u64),
        };
        if let Some(s) = &frame.session_id
            && !sessions.contains(s)
        {
            sessions.insert(s.clone());
        }
        match frame.edge {
            Edge::Client => client.add(&frame),
            _ => server.add(&frame),
        }
        ControlFlow::Continue(())
    })?;
    let edges = json!({ "client": client.frames, "server": server.frames });
    let edge = args
        .edge
        .unwrap_or_else(|| frames::preferred_edge(client.frames));
    let Acc {
        methods,
        tools,
        pending,
        errors,
        unparsed,
        ..
    } = match edge {
        Edge::Client => client,
        _ => server,
    };
    let unanswered = pending.into_unanswered().count();
    let file_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let report = json!({
        "tape": header.tape_id,
        "name": header.name,
        "started_at": header.started_at,
        "duration_ns": last_offset,
        "frames": { "total": frames_total, "client_to_server": c2s, "server_to_client": s2c, "by_edge": edges },
        "sessions": sessions.len(),
        "paired_on_edge": edge.as_str(),
        "bytes": { "file": file_bytes, "client_to_server": bytes_c2s, "server_to_client": bytes_s2c },
        "errors": errors,
        "unanswered": unanswered,
        "not_json_rpc": unparsed,
        "methods": methods.iter().map(|(m, s)| (m.clone(), json!({
            "requests": s.requests,
            "notifications": s.notifications,
            "errors": s.errors,
            "latency": s.latency.as_ref().map(Histogram::to_json),
        }))).collect::<serde_json::Map<_, _>>(),
        "tools": tools.iter().map(|(t, s)| (t.clone(), json!({
            "calls": s.calls, "errors": s.errors, "tool_errors": s.tool_errors,
        }))).collect::<serde_json::Map<_, _>>(),
    });
    if ctx.out.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let out = &ctx.out;
    say!(
        "{} {}  started {}  duration {}",
        out.paint(Paint::Bold, "tape"),
        out.paint(Paint::Cyan, &header.tape_id),
        header.started_at,
        units::duration_ns(last_offset)
    );
    say!(
        "frames {frames_total} (→ {c2s}, ← {s2c})  sessions {}  bytes {} (file {})",
        sessions.len(),
        units::bytes(bytes_c2s + bytes_s2c),
        units::bytes(file_bytes)
    );
    let mut summary = format!("errors {errors}  unanswered {unanswered}");
    if unparsed > 0 {
        summary.push_str(&format!("  not JSON-RPC {unparsed}"));
    }
    say!(
        "{}",
        if errors > 0 {
            out.paint(Paint::Red, &summary)
        } else {
            summary
        }
    );
    say!();
    say!(
        "{}",
        out.paint(
            Paint::Bold,
            &format!(
                "{:<32} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
                "METHOD", "REQ", "NOTIF", "ERR", "P50", "P90", "P99"
            )
        )
    );
    for (method, s) in &methods {
        let pct = |p| {
            s.latency
                .as_ref()
                .map_or("-".to_owned(), |h| units::duration_ns(h.percentile(p)))
        };
        say!(
            "{:<32} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
            method,
            s.requests,
            s.notifications,
            s.errors,
            pct(50.0),
            pct(90.0),
            pct(99.0)
        );
    }
    if !tools.is_empty() {
        say!();
        say!(
            "{}",
            out.paint(
                Paint::Bold,
                &format!(
                    "{:<32} {:>6} {:>6} {:>8}",
                    "TOOL", "CALLS", "ERR", "isError"
                )
            )
        );
        for (tool, s) in &tools {
            say!(
                "{:<32} {:>6} {:>6} {:>8}",
                tool,
                s.calls,
                s.errors,
                s.tool_errors
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_close() {
        let mut h = Histogram::new();
        for ns in 1..=10_000u64 {
            h.record(ns * 1000);
        }
        let close = |got: u64, want: u64| (got as f64 - want as f64).abs() / (want as f64) < 0.04;
        assert!(
            close(h.percentile(50.0), 5_000_000),
            "{}",
            h.percentile(50.0)
        );
        assert!(close(h.percentile(90.0), 9_000_000));
        assert!(close(h.percentile(99.0), 9_900_000));
        assert_eq!(h.percentile(100.0), 10_000_000);
        let mut one = Histogram::new();
        one.record(7);
        assert_eq!(one.percentile(50.0), 7);
    }
}
