//! A program and its arguments, kept apart from `std::process::Command` so that one command
//! line can be nested inside another (a proxy in front of a server).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::process::Command;

/// A program and its arguments.
///
/// ```
/// use shadowcat_test_support::CommandLine;
///
/// let server = CommandLine::new("node").args(["server.js", "stdio"]);
/// let proxied = CommandLine::new("shadowcat")
///     .args(["forward", "stdio", "--"])
///     .args(server.argv());
/// assert_eq!(proxied.to_string(), "shadowcat forward stdio -- node server.js stdio");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    program: OsString,
    args: Vec<OsString>,
}

impl CommandLine {
    /// A command line that runs `program` without arguments.
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The program.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments, without the program.
    pub fn arguments(&self) -> &[OsString] {
        &self.args
    }

    /// The program followed by its arguments, as a nested command line is passed on.
    pub fn argv(&self) -> impl Iterator<Item = &OsStr> {
        std::iter::once(self.program.as_os_str()).chain(self.args.iter().map(OsString::as_os_str))
    }

    /// A `Command` that runs this command line.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command
    }
}

impl fmt::Display for CommandLine {
    /// The words separated by spaces (lossy, unquoted: for messages only).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = self.argv();
        if let Some(program) = words.next() {
            write!(f, "{}", program.to_string_lossy())?;
        }
        for word in words {
            write!(f, " {}", word.to_string_lossy())?;
        }
        Ok(())
    }
}
