//! A server started as a child process, spoken to over its stdin/stdout.

use async_trait::async_trait;
use shadowcat_raw_transport::{ChildProcess, CommandSpec};

use crate::{LineReader, LineWriter, Outgoing, Result, TransportKind, Upstream};

/// Starts a stdio MCP server as a child process in its own process group.
#[derive(Debug, Clone)]
pub struct SubprocessOutgoing {
    spec: CommandSpec,
    max_line: usize,
}

impl SubprocessOutgoing {
    /// Runs `spec`; lines over `max_line` bytes from the server are reported and skipped.
    pub fn new(spec: CommandSpec, max_line: usize) -> Self {
        Self { spec, max_line }
    }

    /// The command it runs.
    pub fn command(&self) -> &CommandSpec {
        &self.spec
    }
}

#[async_trait]
impl Outgoing for SubprocessOutgoing {
    async fn connect(&mut self) -> Result<Upstream> {
        let (process, stdin, stdout) = ChildProcess::spawn(&self.spec)?;
        Ok(Upstream {
            reader: Box::new(LineReader::server(stdout, self.max_line)),
            writer: Box::new(LineWriter::server(stdin)),
            description: format!("`{}`", process.command()),
            process: Some(process),
            kind: TransportKind::Stdio,
        })
    }
}
