//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

/// What went wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule file (or text) is invalid: the rules were not loaded.
    #[error("{0}")]
    Rules(#[from] RuleError),
    /// A decision about a held message could not be carried out.
    #[error(transparent)]
    Held(#[from] crate::HeldError),
    /// A rule file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Precisely what is wrong in a rule file: where (file, line, column), which rule, which
/// field, and why.
///
/// Displayed as `rules.yaml:14:7: rule "mock-weather": action.result: why`; parts that are
/// unknown are left out. Serializes (for `--json` output) as an object with these fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RuleError {
    /// The file, when the rules came from one.
    pub file: Option<PathBuf>,
    /// The line (1-based), when known.
    pub line: Option<u32>,
    /// The column (1-based), when known.
    pub column: Option<u32>,
    /// The id of the rule at fault, when the error is inside a rule that has one.
    pub rule: Option<String>,
    /// The field at fault, relative to the rule (`action.result`) or to the file
    /// (`version`).
    pub field: Option<String>,
    /// Why it is wrong.
    pub message: String,
}

impl RuleError {
    /// An error with only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            file: None,
            line: None,
            column: None,
            rule: None,
            field: None,
            message: message.into(),
        }
    }

    /// The same error with the file set.
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(line), Some(col)) => write!(f, "{}:{line}:{col}: ", file.display())?,
            (Some(file), Some(line), None) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None, _) => write!(f, "{}: ", file.display())?,
            (None, Some(line), Some(col)) => write!(f, "line {line}, column {col}: ")?,
            (None, Some(line), None) => write!(f, "line {line}: ")?,
            (None, None, _) => {}
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule:?}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}
