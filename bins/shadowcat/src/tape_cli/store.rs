//! `tape list`, `tape prune` and `tape rm`: the tape directory and its index.

use std::process::ExitCode;

use clap::Args;
use shadowcat_core::tape::{RetentionPolicy, TapeEntry, TapeFilter, format_rfc3339};

use super::style::Paint;
use super::{CmdResult, Ctx, units};

#[derive(Debug, Args)]
pub(crate) struct List {
    /// Only tapes with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only tapes in which this method occurs.
    #[arg(long)]
    method: Option<String>,
    /// Only tapes in which this tool is called.
    #[arg(long)]
    tool: Option<String>,
    /// Only tapes that hold this session.
    #[arg(long)]
    session: Option<String>,
    /// Only tapes whose name contains this (ignoring case).
    #[arg(long)]
    name: Option<String>,
    /// Only tapes that end after this time (RFC 3339, Unix seconds, or `2h` for two hours
    /// ago).
    #[arg(long)]
    since: Option<String>,
    /// Only tapes that start before this time.
    #[arg(long)]
    until: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct Prune {
    /// Delete tapes whose last frame is older than this (`30m`, `12h`, `7d`, `2w`).
    #[arg(long)]
    max_age: Option<String>,
    /// Keep the newest tapes up to this total size (`500M`, `1G`).
    #[arg(long)]
    max_bytes: Option<String>,
    /// Keep at most this many of the newest tapes.
    #[arg(long)]
    max_count: Option<usize>,
    /// Only say what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Rm {
    /// The tapes: ids, names, file names or paths inside the tape directory.
    #[arg(required = true)]
    tapes: Vec<String>,
}

pub(crate) fn list(ctx: &Ctx, args: &List) -> CmdResult {
    let store = ctx.store()?;
    let mut filter = TapeFilter::new().with_time_range(
        args.since.as_deref().map(units::parse_time).transpose()?,
        args.until.as_deref().map(units::parse_time).transpose()?,
    );
    filter.tag.clone_from(&args.tag);
    filter.method.clone_from(&args.method);
    filter.tool.clone_from(&args.tool);
    filter.session.clone_from(&args.session);
    filter.name.clone_from(&args.name);
    let found = store.list(&filter);
    if ctx.out.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&found).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if found.is_empty() {
        say!("no tapes in {}", ctx.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let out = &ctx.out;
    say!(
        "{}",
        out.paint(
            Paint::Bold,
            &format!(
                "{:<24} {:<20} {:<20} {:>9} {:>7} {:>4} {:>10}  TAGS",
                "ID", "NAME", "STARTED", "DURATION", "FRAMES", "SESS", "SIZE"
            )
        )
    );
    for entry in found {
        let started = &format_rfc3339(entry.started_at_unix_ns)[..19];
        let mut line = format!(
            "{} {:<20} {:<20} {:>9} {:>7} {:>4} {:>10}  {}",
            out.paint(Paint::Cyan, &format!("{:<24}", clip(&entry.id, 24))),
            clip(entry.name.as_deref().unwrap_or("-"), 20),
            started.replace('T', " "),
            units::duration_ns(
                entry
                    .ended_at_unix_ns
                    .saturating_sub(entry.started_at_unix_ns)
            ),
            entry.frames.total,
            entry.sessions.len(),
            units::bytes(entry.bytes),
            out.paint(Paint::Magenta, &entry.tags.join(",")),
        );
        if let Some(problem) = &entry.problem {
            line.push_str(&out.paint(Paint::Yellow, &format!("  ! {}", clip(problem, 60))));
        }
        say!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn prune(ctx: &Ctx, args: &Prune) -> CmdResult {
    let mut policy = RetentionPolicy::new();
    if let Some(age) = &args.max_age {
        policy =
            policy.with_max_age(units::parse_duration(age).map_err(|e| format!("--max-age: {e}"))?);
    }
    if let Some(size) = &args.max_bytes {
        policy = policy.with_max_total_bytes(
            units::parse_size(size).map_err(|e| format!("--max-bytes: {e}"))?,
        );
    }
    if let Some(count) = args.max_count {
        policy = policy.with_max_count(count);
    }
    if policy == RetentionPolicy::new() {
        return Err("prune: give at least one of --max-age, --max-bytes, --max-count".to_owned());
    }
    let mut store = ctx.store()?;
    let report = store
        .prune(&policy, args.dry_run)
        .map_err(|e| e.to_string())?;
    if ctx.out.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for entry in &report.removed {
        say!(
            "{verb} {} ({}, {})",
            describe(entry),
            entry.file,
            units::bytes(entry.bytes)
        );
    }
    say!(
        "{verb} {} tape(s), {}; {} kept",
        report.removed.len(),
        units::bytes(report.freed_bytes),
        report.kept
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rm(ctx: &Ctx, args: &Rm) -> CmdResult {
    let mut store = ctx.store()?;
    let mut removed = Vec::new();
    let mut missing = Vec::new();
    for key in &args.tapes {
        let id = store
            .resolve(key)
            .or_else(|| {
                // A path to a file in the directory.
                let name = std::path::Path::new(key).file_name()?.to_str()?;
                store.entries().iter().find(|e| e.file == name)
            })
            .map(|e| e.id.clone());
        match id {
            Some(id) => removed.push(store.remove(&id).map_err(|e| e.to_string())?),
            None => missing.push(key.clone()),
        }
    }
    if ctx.out.json {
        let report = serde_json::json!({ "removed": removed, "not_found": missing });
        say!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        for entry in &removed {
            say!("deleted {} ({})", describe(entry), entry.file);
        }
        for key in &missing {
            ctx.out
                .error(&format!("{key}: no such tape in {}", ctx.dir.display()));
        }
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn describe(entry: &TapeEntry) -> String {
    match &entry.name {
        Some(name) => format!("{} {name:?}", entry.id),
        None => entry.id.clone(),
    }
}

/// At most `max` characters of `text`, with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}
