//! The crate's one error type.

use std::fmt;
use std::sync::Arc;

/// Where in a tape something is: the tape's name (its path, or `<tape>`), the 1-based line
/// and the byte offset from the start of the file.
///
/// Displays as `tape.jsonl:17 (byte 4021)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Position {
    /// The tape's name, as given to the reader (usually its path).
    pub source: Arc<str>,
    /// The 1-based line number.
    pub line: u64,
    /// The byte offset from the start of the file.
    pub byte: u64,
}

impl Position {
    /// A position in the tape named `source`.
    pub fn new(source: impl Into<Arc<str>>, line: u64, byte: u64) -> Self {
        Self {
            source: source.into(),
            line,
            byte,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} (byte {})", self.source, self.line, self.byte)
    }
}

/// What went wrong reading or writing a tape.
///
/// Reading distinguishes a [`TornTail`](Error::TornTail) (the last line was cut short, as a
/// crash in the middle of a write leaves it; `tape repair` cuts it off) from a
/// [`Malformed`](Error::Malformed) line (corruption, or a file that is no tape at all).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying file or stream failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done: `reading <tape>` or `writing <tape>`.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not what the format says it must be.
    #[error("{at}: {reason}")]
    Malformed {
        /// Where the problem is; `byte` points at the offending byte when it is known,
        /// otherwise at the start of the line.
        at: Position,
        /// What is wrong, e.g. `frame: missing field "direction"`.
        reason: String,
    },
    /// The last line ends without a line feed and is incomplete: the write that made it was
    /// cut short. Everything before `at.byte` is intact; truncating the file there repairs it.
    #[error("{at}: torn tail: the last line is incomplete ({len} bytes, no line feed)")]
    TornTail {
        /// The start of the incomplete line, where a repair truncates the file.
        at: Position,
        /// The incomplete line's length in bytes.
        len: u64,
    },
    /// The tape was written in a newer version of the format than this build reads.
    #[error("{at}: written by a newer Shadowcat: version {found}; this one reads {supported}")]
    NewerVersion {
        /// The header line.
        at: Position,
        /// The version the tape declares.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The writer was used out of order: a frame before the header, or a second header.
    #[error("tape writer: {0}")]
    WriterOrder(&'static str),
    /// No tape in the store has this id.
    #[error("no tape with id {0:?} in the store")]
    UnknownTape(String),
    /// A redaction setting is invalid (a JSON path or regular expression that does not
    /// parse), or redaction could not be set up.
    #[error("redaction: {0}")]
    Redaction(String),
}

impl Error {
    /// Whether this is a torn tail (a repairable cut at the end), not corruption.
    pub fn is_torn_tail(&self) -> bool {
        matches!(self, Self::TornTail { .. })
    }

    /// Where in the tape the problem is, for errors that have a place.
    pub fn position(&self) -> Option<&Position> {
        match self {
            Self::Malformed { at, .. }
            | Self::TornTail { at, .. }
            | Self::NewerVersion { at, .. } => Some(at),
            Self::Io { .. } | Self::WriterOrder(_) | Self::Redaction(_) | Self::UnknownTape(_) => {
                None
            }
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Opens the tape file at `path` for buffered reading; its display name comes along, and an
/// error names it.
pub(crate) fn open_tape_file(
    path: &std::path::Path,
) -> Result<(std::io::BufReader<std::fs::File>, String)> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        context: format!("opening {name}"),
        source,
    })?;
    Ok((std::io::BufReader::with_capacity(64 * 1024, file), name))
}
