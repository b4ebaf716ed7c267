//! Recording options (`--record DIR` and the redaction flags) and the `record` shorthand.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shadowcat_core::tape::{RedactConfig, TapeFormat};
use shadowcat_core::{RecordConfig, RecordEdges, Recorder, TapePer};

/// Recording options of the forward and reverse proxies.
#[derive(Debug, Args)]
pub(crate) struct RecordOptions {
    /// Record every message into tapes in this directory.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// The tape format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl, value_name = "FORMAT")]
    record_format: Format,
    /// One tape per client session, or one for the whole run.
    #[arg(long, value_enum, default_value_t = Per::Session, value_name = "PER")]
    tape_per: Per,
    /// Which edges of the proxy to record: `both` (what the client and the server each sent
    /// and were sent), `client`, or `auto`: both when rules or the control API can change
    /// messages, the client edge alone otherwise (the server edge would repeat it).
    #[arg(long, value_enum, default_value_t = Edges::Auto, value_name = "EDGES")]
    record_edges: Edges,
    /// A header to redact in tapes, besides Authorization, Cookie, Set-Cookie and
    /// Proxy-Authorization, which always are (repeatable).
    #[arg(long = "redact-header", value_name = "NAME")]
    redact_headers: Vec<String>,
    /// A JSONPath (RFC 9535) into each message whose values are redacted in tapes, e.g.
    /// `$.params.arguments.api_key` (repeatable).
    #[arg(long = "redact-path", value_name = "JSONPATH")]
    redact_paths: Vec<String>,
    /// A regular expression whose matches in string values are redacted in tapes
    /// (repeatable).
    #[arg(long = "redact-regex", value_name = "RE")]
    redact_regexes: Vec<String>,
    /// A file holding the redaction key. Tokens made with the same key are the same across
    /// runs (so tapes recorded separately match each other); without it, a random key per
    /// run.
    #[arg(long, value_name = "FILE")]
    redact_key_file: Option<PathBuf>,
    /// How many frames may wait for the tape writer before frames are dropped.
    #[arg(long, default_value_t = 64 * 1024, hide = true)]
    record_queue: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// JSONL (`.jsonl`): one JSON object per line, readable with jq.
    Jsonl,
    /// Binary framed records with CRC32 (`.sctape`).
    Binary,
    /// lz4-compressed blocks with a footer index (`.sctape.lz4`).
    Lz4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Edges {
    /// Both when messages can be changed, else the client edge.
    Auto,
    /// The client edge and the server edge.
    Both,
    /// The client edge.
    Client,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Per {
    /// One tape per client session.
    Session,
    /// One tape for the whole run.
    Run,
}

impl RecordOptions {
    /// Starts recording when `--record` was given; `mode` goes into each tape's header, and
    /// `intercepting` says whether messages may be changed on their way through.
    pub(crate) fn start(&self, mode: &str, intercepting: bool) -> Result<Option<Recorder>, String> {
        let Some(dir) = &self.record else {
            return Ok(None);
        };
        let mut redact = RedactConfig::default();
        redact.headers.clone_from(&self.redact_headers);
        redact.paths.clone_from(&self.redact_paths);
        redact.patterns.clone_from(&self.redact_regexes);
        if let Some(file) = &self.redact_key_file {
            let key = std::fs::read(file)
                .map_err(|e| format!("--redact-key-file {}: {e}", file.display()))?;
            let key = key.trim_ascii_end().to_vec();
            if key.is_empty() {
                return Err(format!(
                    "--redact-key-file {}: the file is empty",
                    file.display()
                ));
            }
            redact = redact.with_key(key);
        }
        let format = match self.record_format {
            Format::Jsonl => TapeFormat::Jsonl,
            Format::Binary => TapeFormat::Binary,
            Format::Lz4 => TapeFormat::Lz4,
        };
        let per = match self.tape_per {
            Per::Session => TapePer::Session,
            Per::Run => TapePer::Run,
        };
        let config = RecordConfig::new(dir)
            .with_format(format)
            .with_tape_per(per)
            .with_queue(self.record_queue)
            .with_redact(redact)
            .with_edges(match self.record_edges {
                Edges::Both => RecordEdges::Both,
                Edges::Auto if intercepting => RecordEdges::Both,
                Edges::Auto | Edges::Client => RecordEdges::Client,
            })
            .with_metadata("mode", mode.into());
        let recorder = Recorder::start(config).map_err(|e| e.to_string())?;
        tracing::info!(dir = %dir.display(), "recording");
        Ok(Some(recorder))
    }
}

/// Stops a recording, writing out what is queued, and logs what it did.
pub(crate) async fn finish(recorder: Option<Recorder>) {
    if let Some(recorder) = recorder {
        let stats = recorder.finish().await;
        if stats.dropped > 0 {
            tracing::warn!(
                dropped = stats.dropped,
                written = stats.written,
                "recording finished; some frames were dropped (marked in the tapes)"
            );
        } else {
            tracing::info!(
                written = stats.written,
                tapes = stats.tapes,
                "recording finished"
            );
        }
    }
}

/// `shadowcat record DIR [OPTIONS] -- CMD…`: the arguments of the shorthand (for help;
/// the command line is rewritten by [`expand`] before parsing).
#[derive(Debug, Args)]
pub(crate) struct RecordShorthand {
    /// The directory tapes are written into.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Options of `forward stdio`, or of `reverse` when `--listen` or `--upstream` is among
    /// them, then `--` and the server command.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    rest: Vec<OsString>,
}

/// Rewrites `shadowcat [global options] record DIR REST…` into
/// `shadowcat forward stdio --record DIR REST…`, or `reverse --record DIR REST…` when REST
/// (before `--`) has `--listen` or `--upstream`. Other command lines are left as they are.
pub(crate) fn expand(args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    // Skip global options (and the values of those that take one).
    while let Some(arg) = args.get(i) {
        let s = arg.to_string_lossy();
        if s == "--log-level" || s == "--log-format" {
            i += 2;
        } else if s.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    if args.get(i).is_none_or(|a| a != "record") {
        return args;
    }
    let (Some(dir), true) = (args.get(i + 1), args.len() > i + 1) else {
        return args;
    };
    if dir.to_string_lossy().starts_with('-') {
        // `record --help` and the like.
        return args;
    }
    let rest = &args[i + 2..];
    let options = rest.iter().take_while(|a| *a != "--");
    let reverse = options.map(|a| a.to_string_lossy()).any(|a| {
        ["--listen", "--upstream"]
            .iter()
            .any(|f| a == *f || a.starts_with(&format!("{f}=")))
    });
    let mut out: Vec<OsString> = args[..i].to_vec();
    if reverse {
        out.push("reverse".into());
    } else {
        out.push("forward".into());
        out.push("stdio".into());
    }
    out.push("--record".into());
    out.push(dir.clone());
    out.extend(rest.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn expands_the_shorthand() {
        assert_eq!(
            expand(v(&[
                "sc",
                "--log-level",
                "warn",
                "record",
                "d",
                "--",
                "srv",
                "--listen"
            ])),
            v(&[
                "sc",
                "--log-level",
                "warn",
                "forward",
                "stdio",
                "--record",
                "d",
                "--",
                "srv",
                "--listen"
            ])
        );
        assert_eq!(
            expand(v(&[
                "sc",
                "record",
                "d",
                "--listen",
                "127.0.0.1:0",
                "--",
                "srv"
            ])),
            v(&[
                "sc",
                "reverse",
                "--record",
                "d",
                "--listen",
                "127.0.0.1:0",
                "--",
                "srv"
            ])
        );
        assert_eq!(
            expand(v(&["sc", "record", "--help"])),
            v(&["sc", "record", "--help"])
        );
        assert_eq!(expand(v(&["sc", "reverse"])), v(&["sc", "reverse"]));
    }
}
