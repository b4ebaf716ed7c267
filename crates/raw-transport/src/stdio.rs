//! The process's own stdin and stdout.
//!
//! When they are pipes (the usual case: an MCP client launched us) they are driven by the
//! reactor directly (non-blocking, no thread hop per read or write); otherwise (a terminal,
//! a file) tokio's blocking-thread stdio is used.

use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// This process's stdin, as an `AsyncRead`.
#[derive(Debug)]
pub struct StdinReader(StdinInner);

#[derive(Debug)]
enum StdinInner {
    Pipe(pipe::Receiver),
    Blocking(tokio::io::Stdin),
}

/// This process's stdout, as an `AsyncWrite`.
#[derive(Debug)]
pub struct StdoutWriter(StdoutInner);

#[derive(Debug)]
enum StdoutInner {
    Pipe(pipe::Sender),
    Blocking(tokio::io::Stdout),
}

/// Opens this process's stdin. Must be called within a tokio runtime.
pub fn stdin() -> StdinReader {
    let pipe = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd);
    match pipe {
        Ok(p) => StdinReader(StdinInner::Pipe(p)),
        Err(_) => StdinReader(StdinInner::Blocking(tokio::io::stdin())),
    }
}

/// Opens this process's stdout. Must be called within a tokio runtime.
pub fn stdout() -> StdoutWriter {
    let pipe = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd);
    match pipe {
        Ok(p) => StdoutWriter(StdoutInner::Pipe(p)),
        Err(_) => StdoutWriter(StdoutInner::Blocking(tokio::io::stdout())),
    }
}

impl StdinReader {
    /// Whether stdin is a pipe driven without a helper thread.
    pub fn is_pipe(&self) -> bool {
        matches!(self.0, StdinInner::Pipe(_))
    }
}

impl StdoutWriter {
    /// Whether stdout is a pipe driven without a helper thread.
    pub fn is_pipe(&self) -> bool {
        matches!(self.0, StdoutInner::Pipe(_))
    }
}

impl AsyncRead for StdinReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            StdinInner::Pipe(p) => Pin::new(p).poll_read(cx, buf),
            StdinInner::Blocking(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for StdoutWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            StdoutInner::Pipe(p) => Pin::new(p).poll_write(cx, buf),
            StdoutInner::Blocking(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            StdoutInner::Pipe(p) => Pin::new(p).poll_flush(cx),
            StdoutInner::Blocking(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            StdoutInner::Pipe(p) => Pin::new(p).poll_shutdown(cx),
            StdoutInner::Blocking(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
