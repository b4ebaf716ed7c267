//! Newline-delimited JSON over any byte stream.

use async_trait::async_trait;
use bytes::BytesMut;
use shadowcat_mcp::{Line, LineDecoder, encode_line};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Error, Frame, FrameReader, FrameWriter, Received, Result};

const READ_CHUNK: usize = 64 * 1024;
/// A writer's buffer is written out once it holds this much.
pub const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Which peer a stream belongs to, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

fn io_error(side: Side, context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| match side {
        Side::Client => Error::Client { context, source },
        Side::Server => Error::Upstream { context, source },
    }
}

fn frame(line: Line) -> Frame {
    Frame {
        bytes: line.bytes,
        line: Some(line.number),
        offset: Some(line.offset),
        related: None,
        headers: None,
        parsed: None,
        status: None,
        event_id: None,
    }
}

/// Reads newline-delimited frames from a byte stream.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    decoder: LineDecoder,
    eof: bool,
    side: Side,
}

impl<R: AsyncRead + Unpin + Send> LineReader<R> {
    /// Reads from a client's stream; lines over `max_line` bytes are reported and skipped.
    pub fn new(inner: R, max_line: usize) -> Self {
        Self {
            inner,
            decoder: LineDecoder::new(max_line),
            eof: false,
            side: Side::Client,
        }
    }

    /// Reads from a server's stream (errors name the server).
    pub fn server(inner: R, max_line: usize) -> Self {
        Self {
            side: Side::Server,
            ..Self::new(inner, max_line)
        }
    }
}

#[async_trait]
impl<R: AsyncRead + Unpin + Send> FrameReader for LineReader<R> {
    async fn recv(&mut self) -> Result<Option<Received>> {
        loop {
            let next = if self.eof {
                self.decoder.finish()
            } else {
                self.decoder.next_line()
            };
            if let Some(line) = next {
                return Ok(Some(line.map(frame)));
            }
            if self.eof {
                return Ok(None);
            }
            let n = self
                .inner
                .read_buf(self.decoder.buffer(READ_CHUNK))
                .await
                .map_err(io_error(self.side, "read failed"))?;
            if n == 0 {
                self.eof = true;
            }
        }
    }

    fn next_buffered(&mut self) -> Option<Received> {
        if self.eof {
            return None;
        }
        self.decoder.next_line().map(|line| line.map(frame))
    }

    fn has_buffered(&self) -> bool {
        self.decoder.has_buffered()
    }
}

/// Writes frames to a byte stream, one per line.
#[derive(Debug)]
pub struct LineWriter<W> {
    inner: W,
    buf: BytesMut,
    side: Side,
    closed: bool,
}

impl<W: AsyncWrite + Unpin + Send> LineWriter<W> {
    /// Writes to a client's stream.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(WRITE_HIGH_WATER),
            side: Side::Client,
            closed: false,
        }
    }

    /// Writes to a server's stream (errors name the server).
    pub fn server(inner: W) -> Self {
        Self {
            side: Side::Server,
            ..Self::new(inner)
        }
    }

    async fn write_out(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.inner
                .write_all(&self.buf)
                .await
                .map_err(io_error(self.side, "write failed"))?;
            self.buf.clear();
        }
        Ok(())
    }
}

#[async_trait]
impl<W: AsyncWrite + Unpin + Send> FrameWriter for LineWriter<W> {
    fn enqueue(&mut self, message: &[u8]) {
        encode_line(message, &mut self.buf);
    }

    fn buffered(&self) -> usize {
        self.buf.len()
    }

    async fn send(&mut self, message: &[u8]) -> Result<()> {
        encode_line(message, &mut self.buf);
        if self.buf.len() >= WRITE_HIGH_WATER {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.write_out().await?;
        self.inner
            .flush()
            .await
            .map_err(io_error(self.side, "flush failed"))
    }

    async fn close(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        self.flush().await?;
        self.inner
            .shutdown()
            .await
            .map_err(io_error(self.side, "close failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_cross_a_pipe_in_order_and_oversize_is_skipped() {
        let (a, b) = tokio::io::duplex(64);
        let mut writer = LineWriter::new(a);
        let mut reader = LineReader::new(b, 40);
        let sender = tokio::spawn(async move {
            for i in 0..100 {
                writer
                    .send(format!("{{\"n\":{i}}}").as_bytes())
                    .await
                    .unwrap();
                if i == 50 {
                    writer.send(&[b'x'; 100]).await.unwrap();
                }
            }
            writer.close().await.unwrap();
        });
        let mut seen = Vec::new();
        let mut errors = 0;
        while let Some(item) = reader.recv().await.unwrap() {
            match item {
                Ok(frame) => seen.push(String::from_utf8(frame.bytes.to_vec()).unwrap()),
                Err(e) => {
                    assert!(e.to_string().contains("line 52"), "{e}");
                    errors += 1;
                }
            }
        }
        sender.await.unwrap();
        assert_eq!(errors, 1);
        let expected: Vec<String> = (0..100).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(seen, expected);
    }
}
