//! `shadowcat tape …`: list, inspect, search, export, compare and maintain recorded tapes.

/// `println!` that ignores a closed stdout (`shadowcat tape list | head` must not panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod diff;
mod export;
mod frames;
mod maint;
mod pager;
mod show;
mod stats;
mod store;
mod style;
mod units;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use shadowcat_core::tape::TapeStore;

pub(crate) use style::Out;

/// Work with recorded tapes.
#[derive(Debug, Args)]
pub(crate) struct Tape {
    /// The tape directory (with its `index.json`).
    #[arg(
        long,
        global = true,
        env = "SHADOWCAT_TAPES",
        default_value = "./tapes"
    )]
    dir: PathBuf,
    /// Print JSON (JSONL for frames) for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: TapeCommand,
}

#[derive(Debug, Subcommand)]
enum TapeCommand {
    /// List the tapes in the directory, oldest first, optionally filtered.
    List(store::List),
    /// A readable timeline of a tape's frames.
    Show(show::Show),
    /// Counts per method and tool, latency percentiles per method, errors and bytes.
    Stats(stats::Stats),
    /// Frames that match: by method, tool, direction, session, time or JSON path.
    Grep(show::Grep),
    /// Export a tape as JSONL or HAR 1.2.
    Export(export::Export),
    /// Compare two tapes: the tools/list inventory and the tool calls' results; exit
    /// status 1 when they differ.
    Diff(diff::Diff),
    /// Read a tape through and report what is wrong with it; exit status 1 when damaged.
    Validate(maint::Validate),
    /// Cut a torn tail off a tape (atomically).
    Repair(maint::Repair),
    /// Rewrite a tape in a compact format (lz4 blocks by default).
    Compress(maint::Compress),
    /// Rewrite a tape in the current version of its format (or another format).
    Migrate(maint::Migrate),
    /// Delete the oldest tapes beyond the limits given.
    Prune(store::Prune),
    /// Delete tapes.
    Rm(store::Rm),
}

/// Runs a `shadowcat tape` command.
pub(crate) fn run(tape: Tape) -> ExitCode {
    let out = Out::new(tape.json);
    let ctx = Ctx { dir: tape.dir, out };
    let result = match tape.command {
        TapeCommand::List(args) => store::list(&ctx, &args),
        TapeCommand::Show(args) => show::show(&ctx, &args),
        TapeCommand::Stats(args) => stats::stats(&ctx, &args),
        TapeCommand::Grep(args) => show::grep(&ctx, &args),
        TapeCommand::Export(args) => export::export(&ctx, &args),
        TapeCommand::Diff(args) => diff::diff(&ctx, &args),
        TapeCommand::Validate(args) => maint::validate(&ctx, &args),
        TapeCommand::Repair(args) => maint::repair(&ctx, &args),
        TapeCommand::Compress(args) => maint::compress(&ctx, &args),
        TapeCommand::Migrate(args) => maint::migrate(&ctx, &args),
        TapeCommand::Prune(args) => store::prune(&ctx, &args),
        TapeCommand::Rm(args) => store::rm(&ctx, &args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            ctx.out.error(&message);
            ExitCode::from(2)
        }
    }
}

/// What every command gets: the tape directory and the output settings.
struct Ctx {
    dir: PathBuf,
    out: Out,
}

/// A command's result: its exit code, or a message for stderr (exit status 2).
type CmdResult = Result<ExitCode, String>;

impl Ctx {
    /// Opens the tape directory's store.
    fn store(&self) -> Result<TapeStore, String> {
        TapeStore::open(&self.dir)
            .map_err(|e| format!("tape directory {}: {e}", self.dir.display()))
    }

    /// The file a TAPE argument names: an existing path, else an id, file name, name or
    /// unique id prefix from the directory's index.
    fn resolve(&self, key: &str) -> Result<PathBuf, String> {
        let path = Path::new(key);
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        if !self.dir.is_dir() {
            return Err(format!(
                "{key}: no such file, and no tape directory {}",
                self.dir.display()
            ));
        }
        let store = self.store()?;
        store.resolve(key).map(|e| store.path_of(e)).ok_or_else(|| {
            format!(
                "{key}: no such file, and no tape with that id or name in {}",
                self.dir.display()
            )
        })
    }
}
