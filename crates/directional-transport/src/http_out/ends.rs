//! The two ends the pipeline holds: the writer queues messages for the dispatcher, the
//! reader takes frames from the request tasks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use shadowcat_mcp::{Message, RequestId};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::dispatch::Outbound;
use crate::{Error, FrameReader, FrameWriter, Received, Result, WRITE_HIGH_WATER};

/// Frames from the upstream, in the order they arrived.
#[derive(Debug)]
pub(super) struct HttpReader {
    frames: mpsc::Receiver<Received>,
}

impl HttpReader {
    pub(super) fn new(frames: mpsc::Receiver<Received>) -> Self {
        Self { frames }
    }
}

#[async_trait]
impl FrameReader for HttpReader {
    async fn recv(&mut self) -> Result<Option<Received>> {
        Ok(self.frames.recv().await)
    }

    fn next_buffered(&mut self) -> Option<Received> {
        self.frames.try_recv().ok()
    }

    fn has_buffered(&self) -> bool {
        !self.frames.is_empty()
    }
}

/// A task that is aborted when its owner drops it.
#[derive(Debug)]
struct OwnedTask(JoinHandle<()>);

impl Drop for OwnedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Messages to the upstream: each flushed message becomes one POST, made by the
/// dispatcher's tasks; flushing waits only for a free slot among the POSTs in flight.
#[derive(Debug)]
pub(super) struct HttpWriter {
    queue: Vec<(Message, Option<HeaderMap>)>,
    queued_bytes: usize,
    commands: Option<mpsc::Sender<Outbound>>,
    permits: Arc<Semaphore>,
    /// How long `close` waits for the dispatcher to finish.
    close_bound: Duration,
    dispatcher: OwnedTask,
}

impl HttpWriter {
    pub(super) fn new(
        commands: mpsc::Sender<Outbound>,
        permits: Arc<Semaphore>,
        close_bound: Duration,
        dispatcher: JoinHandle<()>,
    ) -> Self {
        Self {
            queue: Vec::new(),
            queued_bytes: 0,
            commands: Some(commands),
            permits,
            close_bound,
            dispatcher: OwnedTask(dispatcher),
        }
    }

    fn push(&mut self, message: Message, headers: Option<HeaderMap>) {
        self.queued_bytes += message.as_bytes().len();
        self.queue.push((message, headers));
    }
}

fn session_over() -> Error {
    Error::Upstream {
        context: "sending",
        source: std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "the upstream HTTP session has ended",
        ),
    }
}

#[async_trait]
impl FrameWriter for HttpWriter {
    fn enqueue(&mut self, message: &[u8]) {
        match Message::parse(bytes::Bytes::copy_from_slice(message)) {
            Ok(message) => self.push(message, None),
            Err(e) => tracing::warn!("not sending an invalid message upstream: {e}"),
        }
    }

    fn enqueue_message(
        &mut self,
        message: &Message,
        _related: Option<&RequestId>,
        headers: Option<&HeaderMap>,
    ) {
        self.push(message.clone(), headers.cloned());
    }

    fn buffered(&self) -> usize {
        self.queued_bytes
    }

    async fn send(&mut self, message: &[u8]) -> Result<()> {
        self.enqueue(message);
        if self.queued_bytes >= WRITE_HIGH_WATER {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.queued_bytes = 0;
        let queue = std::mem::take(&mut self.queue);
        let Some(commands) = &self.commands else {
            return Err(session_over());
        };
        for (message, headers) in queue {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| session_over())?;
            let outbound = Outbound {
                message,
                headers,
                permit,
            };
            commands.send(outbound).await.map_err(|_| session_over())?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        let flushed = self.flush().await;
        // The dispatcher sees the end of its queue, lets the requests in flight finish
        // (bounded), ends the session and stops.
        if self.commands.take().is_some() {
            let _ = tokio::time::timeout(self.close_bound, &mut self.dispatcher.0).await;
        }
        flushed
    }
}
