//! Recording: every message the proxy passes, at both of its edges, into tapes.
//!
//! Off the hot path: the pipeline hands frames to a bounded queue with
//! [`SessionTap::try_record`], which never waits; a writer thread owned by the
//! [`Recorder`] batches them, redacts them and writes them to disk, flushing every
//! [`RecordConfig::flush_interval`] or [`RecordConfig::batch_frames`] frames. When the queue
//! is full the frame is dropped, counted, logged (at most once a second), and the tape gets
//! a marker saying how many frames are missing there. Tapes are written in any
//! [`TapeFormat`].

mod tap;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use shadowcat_tape::{RedactConfig, Redactor, TapeFormat, TapeFrame};
use tokio::sync::oneshot;

pub(crate) use tap::tap_both_edges;

use crate::{Error, Result};

/// How many tapes a recording makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TapePer {
    /// One tape per client session (the default).
    #[default]
    Session,
    /// One tape for the whole proxy run, every session's frames in it.
    Run,
}

/// What to record, where, and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordConfig {
    /// The directory tapes are written into (created when missing).
    pub dir: PathBuf,
    /// The tape format.
    pub format: TapeFormat,
    /// One tape per session or per run.
    pub tape_per: TapePer,
    /// How many frames may wait for the writer; more are dropped (and counted).
    pub queue: usize,
    /// The writer flushes after this many frames...
    pub batch_frames: usize,
    /// ...or this long after the first unflushed frame, whichever comes first.
    pub flush_interval: Duration,
    /// What to redact.
    pub redact: RedactConfig,
    /// Facts written into every tape's header metadata (`mode`, for instance).
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Which edges are recorded.
    pub edges: RecordEdges,
}

/// Which edges of the proxy a recording taps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecordEdges {
    /// Both: what the client sent and was sent, and what the server was sent and sent.
    #[default]
    Both,
    /// The client edge only: half the frames, for a proxy that passes messages on unchanged
    /// (no interception), where the server edge would repeat the client edge. The tape's
    /// header says `"edges": "client"`.
    Client,
}

impl RecordConfig {
    /// Records into `dir` with the defaults: JSONL, one tape per session, a queue of 65 536
    /// frames, flushed every 256 frames or 50 ms.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            format: TapeFormat::Jsonl,
            tape_per: TapePer::Session,
            queue: 64 * 1024,
            batch_frames: 256,
            flush_interval: Duration::from_millis(50),
            redact: RedactConfig::default(),
            metadata: BTreeMap::new(),
            edges: RecordEdges::Both,
        }
    }

    /// Sets which edges are recorded.
    pub fn with_edges(mut self, edges: RecordEdges) -> Self {
        self.edges = edges;
        self
    }

    /// Sets the format.
    pub fn with_format(mut self, format: TapeFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets one tape per session or per run.
    pub fn with_tape_per(mut self, per: TapePer) -> Self {
        self.tape_per = per;
        self
    }

    /// Sets the queue's capacity in frames (at least 1).
    pub fn with_queue(mut self, frames: usize) -> Self {
        self.queue = frames.max(1);
        self
    }

    /// Sets the batch size and the flush interval.
    pub fn with_flush(mut self, frames: usize, interval: Duration) -> Self {
        self.batch_frames = frames.max(1);
        self.flush_interval = interval;
        self
    }

    /// Sets what to redact.
    pub fn with_redact(mut self, redact: RedactConfig) -> Self {
        self.redact = redact;
        self
    }

    /// Adds a fact to every tape header's metadata.
    pub fn with_metadata(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }
}

/// Counters of a recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordStats {
    /// Frames handed to the queue.
    pub queued: u64,
    /// Frames dropped because the queue was full.
    pub dropped: u64,
    /// Frames written to tapes.
    pub written: u64,
    /// Tapes created.
    pub tapes: u64,
    /// Write errors (each logged; the tape concerned stops recording).
    pub errors: u64,
}

/// One session's facts, shared by its tap and the writer.
#[derive(Debug)]
pub(crate) struct SessionInfo {
    pub(crate) id: Arc<str>,
    pub(crate) upstream: String,
    pub(crate) transport: &'static str,
    pub(crate) started: SystemTime,
    /// Frames of this session dropped and not yet marked in its tape.
    pub(crate) unmarked_drops: AtomicU64,
}

/// What goes through the queue.
pub(crate) enum Item {
    /// A frame, and whether its message is a parsed `Message`'s bytes (known to be JSON).
    Frame(Arc<SessionInfo>, TapeFrame, bool),
    /// The session ended: its tape (one per session) is finished.
    Close(Arc<SessionInfo>),
}

/// The bounded queue between the taps and the writer: a buffer the taps push to under a
/// short lock and the writer swaps out whole. Nobody is woken per frame: the writer looks
/// every few milliseconds, so a frame costs the proxy a lock and a push, never a wake-up.
pub(crate) struct Queue {
    items: Mutex<Vec<Item>>,
    capacity: usize,
}

impl Queue {
    fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(Vec::with_capacity(capacity.min(4096))),
            capacity: capacity.max(1),
        }
    }

    /// Adds an item unless the queue is full; `false` when it was full.
    fn try_push(&self, item: Item) -> bool {
        let mut items = self.items.lock().expect("queue lock is never poisoned");
        if items.len() >= self.capacity {
            return false;
        }
        items.push(item);
        true
    }

    /// Takes everything queued, leaving `spare` (empty) in its place.
    pub(crate) fn take(&self, spare: Vec<Item>) -> Vec<Item> {
        let mut items = self.items.lock().expect("queue lock is never poisoned");
        std::mem::replace(&mut *items, spare)
    }
}

pub(crate) struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) tapes: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// Milliseconds since `origin` of the last drop warning.
    last_warning_ms: AtomicU64,
}

struct Inner {
    edges: RecordEdges,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    tape_per: TapePer,
    /// Monotonic origin of a per-run tape (and of drop-warning rate limits).
    origin: Instant,
    origin_wall: SystemTime,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordHandle")
            .field("tape_per", &self.tape_per)
            .finish_non_exhaustive()
    }
}

/// A cheap, cloneable handle to a running [`Recorder`]: opens session taps.
#[derive(Debug, Clone)]
pub struct RecordHandle(Arc<Inner>);

/// Records one session's frames. Cloneable; its tape (per session) is finished when the
/// last clone is dropped.
#[derive(Debug, Clone)]
pub struct SessionTap(Arc<TapeShared>);

#[derive(Debug)]
struct TapeShared {
    recorder: RecordHandle,
    info: Arc<SessionInfo>,
    /// Offset 0 of the session's frames: the session's start, or the run's.
    origin: Instant,
}

impl Drop for TapeShared {
    fn drop(&mut self) {
        if self.recorder.0.tape_per == TapePer::Session {
            // If the queue is full the tape is finished when the recorder stops.
            let _ = self
                .recorder
                .0
                .queue
                .try_push(Item::Close(self.info.clone()));
        }
    }
}

impl RecordHandle {
    /// Which edges its sessions record.
    pub fn edges(&self) -> RecordEdges {
        self.0.edges
    }

    /// Opens a tap for a session: `id` is the proxy's session id (a fresh one is made
    /// when the transport has none, as on stdio), `upstream` and `transport` describe it
    /// in the tape's header.
    pub fn open_session(&self, id: Option<&str>, upstream: &str, transport: &str) -> SessionTap {
        let id: Arc<str> = match id {
            Some(id) => id.into(),
            None => fresh_session_id().into(),
        };
        let transport = match transport {
            "streamable-http" => "streamable-http",
            "legacy-sse" => "legacy-sse",
            _ => "stdio",
        };
        let (origin, started) = match self.0.tape_per {
            TapePer::Session => (Instant::now(), SystemTime::now()),
            TapePer::Run => (self.0.origin, self.0.origin_wall),
        };
        SessionTap(Arc::new(TapeShared {
            recorder: self.clone(),
            info: Arc::new(SessionInfo {
                id,
                upstream: upstream.to_owned(),
                transport,
                started,
                unmarked_drops: AtomicU64::new(0),
            }),
            origin,
        }))
    }

    /// The recording's counters so far.
    pub fn stats(&self) -> RecordStats {
        let c = &self.0.counters;
        RecordStats {
            queued: c.queued.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            tapes: c.tapes.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }
}

impl SessionTap {
    /// The session's id, as its frames carry it.
    pub fn session_id(&self) -> &str {
        &self.0.info.id
    }

    /// Nanoseconds since this session's offset 0, from the monotonic clock.
    pub fn offset_now(&self) -> u64 {
        u64::try_from(self.0.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Hands a frame to the writer without waiting; `false` when the queue was full and the
    /// frame was dropped (counted, and marked in the tape). The tape gets it with this
    /// session's id (a session id already in the frame is kept).
    pub fn try_record(&self, frame: TapeFrame) -> bool {
        self.push(frame, false)
    }

    /// Like [`try_record`](Self::try_record), for a frame whose message is the bytes of a
    /// parsed [`shadowcat_mcp::Message`]: the writer does not check again that they are
    /// JSON.
    pub fn try_record_parsed(&self, frame: TapeFrame) -> bool {
        self.push(frame, true)
    }

    fn push(&self, frame: TapeFrame, parsed: bool) -> bool {
        let inner = &self.0.recorder.0;
        // The writer sets the frame's session id (from the session), off the hot path.
        if inner
            .queue
            .try_push(Item::Frame(self.0.info.clone(), frame, parsed))
        {
            inner.counters.queued.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.0.info.unmarked_drops.fetch_add(1, Ordering::Relaxed);
        let total = inner.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now_ms = u64::try_from(inner.origin.elapsed().as_millis()).unwrap_or(0);
        let last = inner.counters.last_warning_ms.load(Ordering::Relaxed);
        if (total == 1 || now_ms >= last + 1000)
            && inner
                .counters
                .last_warning_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped = total,
                "recording cannot keep up: frames dropped (the tape marks where)"
            );
        }
        false
    }
}

/// A recording in progress: owns the writer thread, which is stopped and flushed by
/// [`finish`](Self::finish) or on drop.
#[derive(Debug)]
pub struct Recorder {
    handle: RecordHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    done: Option<oneshot::Receiver<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Recorder {
    /// Creates the directory if needed and starts the writer thread.
    pub fn start(config: RecordConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| Error::Record(format!("cannot create {}: {e}", config.dir.display())))?;
        let redactor = Redactor::new(&config.redact).map_err(|e| Error::Record(e.to_string()))?;
        let queue = Arc::new(Queue::new(config.queue));
        let counters = Arc::new(Counters {
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            tapes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(0),
        });
        let origin = Instant::now();
        let origin_wall = SystemTime::now();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (done_tx, done_rx) = oneshot::channel();
        let writer = writer::TapeWriterLoop::new(config.clone(), redactor, counters.clone());
        let thread_stop = stop.clone();
        let rx = queue.clone();
        let thread = std::thread::Builder::new()
            .name("shadowcat-recorder".into())
            .spawn(move || {
                writer.run(&rx, &thread_stop);
                let _ = done_tx.send(());
            })
            .map_err(|e| Error::Record(format!("cannot start the tape writer: {e}")))?;
        Ok(Self {
            handle: RecordHandle(Arc::new(Inner {
                edges: config.edges,
                queue,
                counters,
                tape_per: config.tape_per,
                origin,
                origin_wall,
            })),
            thread: Some(thread),
            done: Some(done_rx),
            stop,
        })
    }

    /// A handle for the proxy (clone it freely).
    pub fn handle(&self) -> RecordHandle {
        self.handle.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> RecordStats {
        self.handle.stats()
    }

    /// Stops the writer after it has written and flushed everything queued; returns the
    /// final counters.
    pub async fn finish(mut self) -> RecordStats {
        self.stop.store(true, Ordering::Release);
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.handle.stats()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            // Bounded: the writer drains what is queued and exits.
            let _ = thread.join();
        }
    }
}

/// A fresh session id for transports without one: 32 hex digits from the clock, the
/// process id and a counter, the first 8 varying the most (they name the tape file).
fn fresh_session_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let low = nanos as u64 ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let head = (low ^ (low >> 32) ^ u64::from(std::process::id()).wrapping_mul(0x9E37_79B1)) as u32;
    format!(
        "{head:08x}{:024x}",
        (nanos & ((1 << 96) - 1)) ^ u128::from(n)
    )
}
