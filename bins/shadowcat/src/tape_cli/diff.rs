//! `tape diff`: two tapes compared at the level of the tools/list inventory (tools added,
//! removed, and changed, with the JSON paths that changed) and call by call (each tool's
//! `tools/call` outcomes compared structurally, in order).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value, json};
use shadowcat_core::tape::Edge;

use super::frames::{self, Kind, Msg, Pending};
use super::style::{Out, Paint};
use super::{CmdResult, Ctx};

/// The most changed paths reported for one tool or one call.
const MAX_PATHS: usize = 50;

#[derive(Debug, Args)]
pub(crate) struct Diff {
    /// The first tape (the baseline): a path, or an id or name from the tape directory.
    a: String,
    /// The second tape.
    b: String,
}

/// One difference between two JSON values.
#[derive(Debug, Serialize)]
struct Change {
    /// Where: a JSONPath such as `$.inputSchema.properties.text.type`.
    path: String,
    /// The value in the first tape (absent when added).
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<Value>,
    /// The value in the second tape (absent when removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<Value>,
}

/// What one tape holds for the comparison.
#[derive(Debug, Default)]
struct Side {
    /// The tools its tools/list answers listed, by name.
    tools: BTreeMap<String, Value>,
    /// Whether it had a tools/list answer at all.
    listed: bool,
    /// Per tool, each call's arguments and outcome (`{"result": …}` or `{"error": …}`).
    calls: BTreeMap<String, Vec<(Value, Value)>>,
}

/// One edge's frame count, what it holds, and its requests in flight (method, tool,
/// arguments).
type EdgeSide = (u64, Side, Pending<(String, Option<String>, Value)>);

fn collect(out: &Out, path: &Path) -> Result<Side, String> {
    // Each edge is collected apart; the client edge wins when the tape has one.
    let mut sides: [EdgeSide; 2] = Default::default();
    frames::read_tape(out, path, "diff", |_, frame| {
        let (count, side, pending) = &mut sides[usize::from(frame.edge != Edge::Client)];
        *count += 1;
        let msg = Msg::parse(&frame.message);
        match msg.kind {
            Kind::Request => {
                let arguments = msg
                    .value
                    .as_ref()
                    .and_then(|v| v.get("params")?.get("arguments").cloned())
                    .unwrap_or(Value::Null);
                let method = msg.method.clone().unwrap_or_default();
                pending.request(&frame, &msg, (method, msg.tool.clone(), arguments));
            }
            Kind::Result | Kind::Error => {
                let Some((method, tool, arguments)) = pending.response(&frame, &msg) else {
                    return ControlFlow::Continue(());
                };
                let value = msg.value.unwrap_or(Value::Null);
                if method == "tools/list" {
                    if let Some(tools) = value
                        .get("result")
                        .and_then(|r| r.get("tools"))
                        .and_then(Value::as_array)
                    {
                        side.listed = true;
                        for tool in tools {
                            if let Some(name) = tool.get("name").and_then(Value::as_str) {
                                side.tools.insert(name.to_owned(), tool.clone());
                            }
                        }
                    }
                } else if let Some(tool) = tool {
                    let outcome: Map<String, Value> = value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| *k == "result" || *k == "error")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    side.calls
                        .entry(tool)
                        .or_default()
                        .push((arguments, Value::Object(outcome)));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    })?;
    let [(client_frames, client, _), (_, server, _)] = sides;
    Ok(if client_frames > 0 { client } else { server })
}

/// Appends the differences between `a` and `b` under `path`, at most [`MAX_PATHS`].
fn changes(a: Option<&Value>, b: Option<&Value>, path: &str, out: &mut Vec<Change>) {
    if out.len() >= MAX_PATHS || a == b {
        return;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                changes(x.get(key), y.get(key), &child(path, key), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                changes(x.get(i), y.get(i), &format!("{path}[{i}]"), out);
            }
        }
        _ => out.push(Change {
            path: path.to_owned(),
            a: a.cloned(),
            b: b.cloned(),
        }),
    }
}

fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_owned()))
    }
}

pub(crate) fn diff(ctx: &Ctx, args: &Diff) -> CmdResult {
    let (path_a, path_b) = (ctx.resolve(&args.a)?, ctx.resolve(&args.b)?);
    let a = collect(&ctx.out, &path_a)?;
    let b = collect(&ctx.out, &path_b)?;

    let added: Vec<&String> = b
        .tools
        .keys()
        .filter(|k| !a.tools.contains_key(*k))
        .collect();
    let removed: Vec<&String> = a
        .tools
        .keys()
        .filter(|k| !b.tools.contains_key(*k))
        .collect();
    let mut changed = Vec::new();
    for (name, tool) in &a.tools {
        if let Some(other) = b.tools.get(name) {
            let mut found = Vec::new();
            changes(Some(tool), Some(other), "$", &mut found);
            if !found.is_empty() {
                let schema = found.iter().any(|c| c.path.starts_with("$.inputSchema"));
                changed.push(
                    json!({ "tool": name, "input_schema_changed": schema, "changes": found }),
                );
            }
        }
    }

    let mut calls = Vec::new();
    let mut names: Vec<&String> = a.calls.keys().chain(b.calls.keys()).collect();
    names.sort();
    names.dedup();
    let empty = Vec::new();
    for name in names {
        let (xs, ys) = (
            a.calls.get(name).unwrap_or(&empty),
            b.calls.get(name).unwrap_or(&empty),
        );
        for i in 0..xs.len().max(ys.len()) {
            match (xs.get(i), ys.get(i)) {
                (Some((args_a, x)), Some((_, y))) => {
                    let mut found = Vec::new();
                    changes(Some(x), Some(y), "$", &mut found);
                    if !found.is_empty() {
                        calls.push(json!({ "tool": name, "call": i + 1, "status": "changed", "arguments": args_a, "changes": found }));
                    }
                }
                (Some((args_a, _)), None) => {
                    calls.push(json!({ "tool": name, "call": i + 1, "status": "only_in_a", "arguments": args_a }));
                }
                (None, Some((args_b, _))) => {
                    calls.push(json!({ "tool": name, "call": i + 1, "status": "only_in_b", "arguments": args_b }));
                }
                (None, None) => {}
            }
        }
    }
    let same = added.is_empty() && removed.is_empty() && changed.is_empty() && calls.is_empty();
    let code = if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if ctx.out.json {
        let report = json!({
            "a": path_a.display().to_string(),
            "b": path_b.display().to_string(),
            "same": same,
            "tools": { "listed_in_a": a.listed, "listed_in_b": b.listed, "added": added, "removed": removed, "changed": changed },
            "calls": calls,
        });
        say!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
        return Ok(code);
    }
    let out = &ctx.out;
    say!("--- a {}\n+++ b {}", path_a.display(), path_b.display());
    if same {
        say!("no differences in tools or tool calls");
        return Ok(code);
    }
    say!("{}", out.paint(Paint::Bold, "tools/list"));
    for name in &added {
        say!("  {}", out.paint(Paint::Green, &format!("+ {name}")));
    }
    for name in &removed {
        say!("  {}", out.paint(Paint::Red, &format!("- {name}")));
    }
    for change in &changed {
        say!(
            "  {}",
            out.paint(
                Paint::Yellow,
                &format!("~ {}", change["tool"].as_str().unwrap_or(""))
            )
        );
        print_changes(out, &change["changes"]);
    }
    if !calls.is_empty() {
        say!("{}", out.paint(Paint::Bold, "tools/call"));
    }
    for call in &calls {
        let tool = call["tool"].as_str().unwrap_or("");
        let n = &call["call"];
        match call["status"].as_str() {
            Some("only_in_a") => say!(
                "  {}",
                out.paint(Paint::Red, &format!("- {tool} call {n}: only in a"))
            ),
            Some("only_in_b") => say!(
                "  {}",
                out.paint(Paint::Green, &format!("+ {tool} call {n}: only in b"))
            ),
            _ => {
                say!(
                    "  {}",
                    out.paint(
                        Paint::Yellow,
                        &format!("~ {tool} call {n} {}", call["arguments"])
                    )
                );
                print_changes(out, &call["changes"]);
            }
        }
    }
    Ok(code)
}

fn print_changes(out: &Out, changes: &Value) {
    for change in changes.as_array().into_iter().flatten() {
        let show = |v: Option<&Value>| v.map_or("(absent)".to_owned(), Value::to_string);
        say!(
            "      {}: {} {} {}",
            change["path"].as_str().unwrap_or(""),
            out.paint(Paint::Red, &show(change.get("a"))),
            out.paint(Paint::Dim, "→"),
            out.paint(Paint::Green, &show(change.get("b")))
        );
    }
}
