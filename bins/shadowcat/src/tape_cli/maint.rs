//! `tape validate`, `repair`, `compress` and `migrate`: the library's tape maintenance,
//! with output for people and scripts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::json;
use shadowcat_core::tape::{self, TapeFormat};

use super::style::Paint;
use super::{CmdResult, Ctx, units};

#[derive(Debug, Args)]
pub(crate) struct Validate {
    /// The tape: a path, or an id or name from the tape directory.
    tape: String,
}

#[derive(Debug, Args)]
pub(crate) struct Repair {
    /// The tape: a path, or an id or name from the tape directory.
    tape: String,
}

#[derive(Debug, Args)]
pub(crate) struct Compress {
    /// The tape: a path, or an id or name from the tape directory.
    tape: String,
    /// The format to write.
    #[arg(long, value_enum, default_value_t = Format::Lz4)]
    format: Format,
    /// Write here (default: next to the tape, with the format's extension).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Keep the original file (by default it is deleted once the new one is written).
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Migrate {
    /// The tape: a path, or an id or name from the tape directory.
    tape: String,
    /// Rewrite in this format instead of the tape's own.
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// JSONL (`.jsonl`).
    Jsonl,
    /// Binary framed (`.sctape`).
    Binary,
    /// lz4-compressed blocks with a footer index (`.sctape.lz4`).
    Lz4,
}

impl From<Format> for TapeFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Jsonl => Self::Jsonl,
            Format::Binary => Self::Binary,
            Format::Lz4 => Self::Lz4,
        }
    }
}

pub(crate) fn validate(ctx: &Ctx, args: &Validate) -> CmdResult {
    let path = ctx.resolve(&args.tape)?;
    let report = tape::validate(&path).map_err(|e| e.to_string())?;
    let clean = report.is_clean();
    if ctx.out.json {
        let value = json!({
            "tape": path.display().to_string(),
            "clean": clean,
            "format": report.format.as_str(),
            "version": report.version,
            "id": report.header.tape_id,
            "frames": report.frames,
            "dropped": report.dropped,
            "drop_markers": report.drop_markers,
            "bytes": report.bytes,
            "valid_bytes": report.valid_bytes,
            "torn_tail_at": report.torn_tail,
            "errors": report.errors,
            "first_error": report.first_error,
            "first_error_at": report.first_error_at,
            "complete": report.complete,
        });
        say!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        );
    } else {
        let out = &ctx.out;
        let verdict = if clean {
            out.paint(Paint::Green, "ok")
        } else {
            out.paint(Paint::Red, "damaged")
        };
        say!(
            "{}: {verdict}  {} v{}  {} frames  {}",
            path.display(),
            report.format,
            report.version,
            report.frames,
            units::bytes(report.bytes)
        );
        if report.dropped > 0 {
            say!(
                "  {}",
                out.paint(
                    Paint::Yellow,
                    &format!("the recorder dropped {} frame(s)", report.dropped)
                )
            );
        }
        if let Some(at) = report.torn_tail {
            say!(
                "  {}",
                out.paint(
                    Paint::Yellow,
                    &format!(
                        "torn tail at byte {at} ({} bytes); `shadowcat tape repair` cuts it off",
                        report.bytes - at
                    )
                )
            );
        }
        if report.errors > 0 {
            say!(
                "  {}",
                out.paint(
                    Paint::Red,
                    &format!(
                        "{} corrupt item(s); first: {}",
                        report.errors,
                        report.first_error.as_deref().unwrap_or("?")
                    )
                )
            );
        }
        if !report.complete {
            say!(
                "  {}",
                out.paint(
                    Paint::Yellow,
                    "incomplete: no footer index (the recording did not finish)"
                )
            );
        }
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn repair(ctx: &Ctx, args: &Repair) -> CmdResult {
    let path = ctx.resolve(&args.tape)?;
    let report = tape::repair(&path).map_err(|e| e.to_string())?;
    if ctx.out.json {
        let value = json!({
            "tape": path.display().to_string(),
            "already_clean": report.already_clean,
            "truncated_at": report.truncated_at,
            "removed_bytes": report.removed_bytes,
            "rewritten": report.rewritten,
            "dropped_errors": report.dropped_errors,
            "frames": report.frames,
        });
        say!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        );
    } else if report.already_clean {
        say!(
            "{}: already clean ({} frames)",
            path.display(),
            report.frames
        );
    } else {
        let mut what = Vec::new();
        if let Some(at) = report.truncated_at {
            what.push(format!(
                "cut a torn tail at byte {at} ({} bytes)",
                report.removed_bytes
            ));
        }
        if report.rewritten {
            what.push(format!(
                "rewrote it, leaving out {} corrupt item(s)",
                report.dropped_errors
            ));
        }
        say!(
            "{}: {}; {} frames",
            path.display(),
            what.join(", "),
            report.frames
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn compress(ctx: &Ctx, args: &Compress) -> CmdResult {
    let src = ctx.resolve(&args.tape)?;
    let format = TapeFormat::from(args.format);
    let dst = args
        .output
        .clone()
        .unwrap_or_else(|| with_format(&src, format));
    rewrite(ctx, &src, &dst, format, !args.keep, "compressed")
}

pub(crate) fn migrate(ctx: &Ctx, args: &Migrate) -> CmdResult {
    let src = ctx.resolve(&args.tape)?;
    let format = match args.format {
        Some(f) => TapeFormat::from(f),
        None => tape::open(&src).map_err(|e| e.to_string())?.format(),
    };
    let dst = with_format(&src, format);
    rewrite(ctx, &src, &dst, format, true, "migrated")
}

fn rewrite(
    ctx: &Ctx,
    src: &Path,
    dst: &Path,
    format: TapeFormat,
    remove_src: bool,
    verb: &str,
) -> CmdResult {
    let before = std::fs::metadata(src).map_or(0, |m| m.len());
    let report = tape::convert(src, dst, format).map_err(|e| e.to_string())?;
    let after = std::fs::metadata(dst).map_or(0, |m| m.len());
    let same_file = src == dst;
    if remove_src && !same_file {
        std::fs::remove_file(src).map_err(|e| format!("removing {}: {e}", src.display()))?;
    }
    if ctx.out.json {
        let value = json!({
            "from": src.display().to_string(),
            "to": dst.display().to_string(),
            "format": format.as_str(),
            "frames": report.frames,
            "drop_markers": report.drop_markers,
            "skipped_errors": report.skipped_errors,
            "torn_tail_at": report.torn_tail,
            "bytes_before": before,
            "bytes_after": after,
            "removed_original": remove_src && !same_file,
        });
        say!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        );
    } else {
        say!(
            "{verb} {} → {} ({format}): {} frames, {} → {}",
            src.display(),
            dst.display(),
            report.frames,
            units::bytes(before),
            units::bytes(after)
        );
        if report.skipped_errors > 0 || report.torn_tail.is_some() {
            ctx.out.error(&format!(
                "warning: left out {} corrupt item(s){}",
                report.skipped_errors,
                report
                    .torn_tail
                    .map(|at| format!(" and a torn tail at byte {at}"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `path` with its tape extension replaced by `format`'s.
fn with_format(path: &Path, format: TapeFormat) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = [".sctape.lz4", ".lz4", ".sctape", ".jsonl"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name);
    path.with_file_name(format!("{stem}.{}", format.extension()))
}
