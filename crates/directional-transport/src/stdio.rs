//! The proxy's own stdin/stdout as an incoming transport.

use async_trait::async_trait;
use shadowcat_raw_transport::{stdin, stdout};

use crate::{Connection, Incoming, LineReader, LineWriter, Result, TransportKind};

/// Accepts exactly one client: the process that launched the proxy, on stdin/stdout.
#[derive(Debug)]
pub struct StdioIncoming {
    max_line: usize,
    accepted: bool,
}

impl StdioIncoming {
    /// Lines over `max_line` bytes from the client are answered with an error and skipped.
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            accepted: false,
        }
    }
}

#[async_trait]
impl Incoming for StdioIncoming {
    async fn accept(&mut self) -> Result<Option<Connection>> {
        if std::mem::replace(&mut self.accepted, true) {
            return Ok(None);
        }
        let (input, output) = (stdin(), stdout());
        tracing::debug!(
            stdin_pipe = input.is_pipe(),
            stdout_pipe = output.is_pipe(),
            "accepted the stdio client"
        );
        Ok(Some(Connection {
            reader: Box::new(LineReader::new(input, self.max_line)),
            writer: Box::new(LineWriter::new(output)),
            kind: TransportKind::Stdio,
            session: None,
            grant: None,
        }))
    }
}

impl Default for StdioIncoming {
    fn default() -> Self {
        Self::new(shadowcat_mcp::DEFAULT_MAX_LINE)
    }
}
