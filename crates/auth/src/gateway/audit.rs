//! The audit log: one JSON line per authentication decision, policy denial and rate-limit
//! refusal, written by a thread of its own so that recording never waits for the disk.

mod event;

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use self::event::{AuditEvent, AuditKind, AuditOutcome};
use super::policy::config_error;
use crate::{Error, Result};

/// How many records wait for the writer when `queue` is not given.
pub const DEFAULT_AUDIT_QUEUE: usize = 4096;

/// How often the writer writes what was recorded.
const WRITE_INTERVAL: Duration = Duration::from_millis(5);

/// The `audit` section.
///
/// ```yaml
/// path: /var/log/shadowcat/audit.jsonl   # or "-" for standard error
/// queue: 4096
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The JSON-lines file, appended to and created readable and writable by its owner only
    /// (mode 0600); `-` writes to standard error.
    pub path: String,
    /// How many records may wait for the writer; when it is full, records are dropped and
    /// counted. Absent: [`DEFAULT_AUDIT_QUEUE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<usize>,
}

enum Command {
    Record(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// The writer thread's owner: closing the queue stops it, and it is joined (after writing
/// what was queued) when the last [`AuditLog`] clone goes.
struct Writer {
    queue: Option<mpsc::Sender<Command>>,
    /// To wake the writer for a flush.
    wake: Thread,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue = None;
        self.wake.unpark();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The audit log. Clones share one writer.
///
/// [`AuditLog::record`] never blocks and never makes a system call: it puts the record in a
/// bounded queue, and a dedicated thread turns the queued records into JSON lines every 5 ms,
/// writes them through a buffer and flushes, so each batch costs one write. When the queue is full the record is dropped and counted ([`AuditLog::dropped`]),
/// and the writer notes the count in the log (`"kind":"audit_dropped"`) when it catches
/// up.
#[derive(Clone)]
pub struct AuditLog {
    writer: Arc<Writer>,
    dropped: Arc<AtomicU64>,
    target: Arc<str>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("target", &self.target)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the log (creating the file with mode 0600) and starts its writer thread.
    pub fn open(config: &AuditConfig) -> Result<Self> {
        let capacity = config.queue.unwrap_or(DEFAULT_AUDIT_QUEUE);
        if capacity == 0 {
            return Err(config_error("audit.queue", "must be at least 1"));
        }
        if config.path.trim().is_empty() {
            return Err(config_error(
                "audit.path",
                "must be a file path or \"-\" for standard error",
            ));
        }
        let out: Box<dyn Write + Send> = if config.path == "-" {
            Box::new(std::io::stderr())
        } else {
            let path = PathBuf::from(&config.path);
            let mut options = OpenOptions::new();
            options.append(true).create(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            Box::new(file)
        };
        let (tx, rx) = mpsc::channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&dropped);
        let target: Arc<str> = config.path.as_str().into();
        let name = Arc::clone(&target);
        let thread = std::thread::Builder::new()
            .name("shadowcat-audit".into())
            .spawn(move || write_records(rx, BufWriter::new(out), &counter, &name))
            .map_err(|source| Error::Io {
                path: PathBuf::from(&config.path),
                source,
            })?;
        Ok(Self {
            writer: Arc::new(Writer {
                queue: Some(tx),
                wake: thread.thread().clone(),
                thread: Mutex::new(Some(thread)),
            }),
            dropped,
            target,
        })
    }

    /// Queues `event` for writing; drops (and counts) it when the queue is full.
    pub fn record(&self, event: AuditEvent) {
        let sent = self
            .writer
            .queue
            .as_ref()
            .is_some_and(|q| q.try_send(Command::Record(Box::new(event))).is_ok());
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until everything recorded before the call is written and flushed.
    pub async fn flush(&self) {
        let Some(queue) = &self.writer.queue else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        if queue.send(Command::Flush(tx)).await.is_ok() {
            self.writer.wake.unpark();
            let _ = rx.await;
        }
    }

    /// How many records were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread: every [`WRITE_INTERVAL`] (or at once when woken for a flush), writes
/// what is queued and flushes; stops when every sender is gone.
///
/// Recording never wakes it: a sender that had to wake a sleeping thread would pay a system
/// call per record.
fn write_records(
    mut rx: mpsc::Receiver<Command>,
    mut out: BufWriter<Box<dyn Write + Send>>,
    dropped: &AtomicU64,
    target: &str,
) {
    let mut reported = 0u64;
    let mut failing = false;
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let mut result = Ok(());
        let mut written = false;
        let closed = loop {
            match rx.try_recv() {
                Ok(Command::Record(event)) => {
                    if result.is_ok() {
                        result = write_line(&mut out, &event);
                    }
                    written = true;
                }
                Ok(Command::Flush(done)) => waiting.push(done),
                Err(mpsc::error::TryRecvError::Empty) => break false,
                Err(mpsc::error::TryRecvError::Disconnected) => break true,
            }
        };
        let lost = dropped.load(Ordering::Relaxed);
        if lost > reported && result.is_ok() {
            let line = serde_json::json!({
                "time": event::format_rfc3339(std::time::SystemTime::now()),
                "kind": "audit_dropped",
                "count": lost - reported,
            });
            result = writeln!(out, "{line}");
            reported = lost;
            written = true;
        }
        if written {
            let result = result.and_then(|()| out.flush());
            match (result, failing) {
                (Err(e), false) => {
                    tracing::error!(target: "shadowcat::audit", "writing the audit log {target} failed: {e}");
                    failing = true;
                }
                (Ok(()), true) => {
                    tracing::info!(target: "shadowcat::audit", "writing the audit log {target} works again");
                    failing = false;
                }
                _ => {}
            }
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
        if closed {
            break;
        }
        std::thread::park_timeout(WRITE_INTERVAL);
    }
    let _ = out.flush();
}

fn write_line(out: &mut impl Write, event: &AuditEvent) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")
}
