//! The writer thread: takes frames off the queue, redacts them, and writes them to their
//! tapes in batches.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shadowcat_tape::{Redactor, TapeFrame, TapeHeader, TapeWriter};

use super::{Counters, Item, Queue, RecordConfig, SessionInfo, TapePer};

/// One open tape.
struct OpenTape {
    writer: TapeWriter,
    path: PathBuf,
    dirty: bool,
    failed: bool,
    /// The session whose frames it holds last (its unmarked drops are marked at the end).
    info: Arc<SessionInfo>,
    last_offset: u64,
}

impl OpenTape {
    /// Marks frames dropped after the last one written, flushes, and closes.
    fn finish(mut self, counters: &Counters) {
        let drops = self.info.unmarked_drops.swap(0, Ordering::Relaxed);
        if drops > 0 {
            let at = self.last_offset;
            mark_dropped(&mut self, drops, at, counters);
        }
        if !self.failed && self.writer.finish().is_err() {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(super) struct TapeWriterLoop {
    config: RecordConfig,
    redactor: Redactor,
    counters: Arc<Counters>,
    /// Open tapes by session id (one per session), or the run's tape under "".
    tapes: HashMap<Arc<str>, OpenTape>,
    unflushed: usize,
    first_unflushed: Option<Instant>,
}

impl TapeWriterLoop {
    pub(super) fn new(config: RecordConfig, redactor: Redactor, counters: Arc<Counters>) -> Self {
        Self {
            config,
            redactor,
            counters,
            tapes: HashMap::new(),
            unflushed: 0,
            first_unflushed: None,
        }
    }

    /// Runs until `stop` is set, then drains the queue, flushes and closes every tape.
    pub(super) fn run(mut self, queue: &Queue, stop: &AtomicBool) {
        // How often the queue is looked at; frames reach the file within about this plus
        // the flush interval.
        let poll = self
            .config
            .flush_interval
            .clamp(Duration::from_millis(1), Duration::from_millis(10));
        let mut spare = Vec::new();
        loop {
            let stopping = stop.load(Ordering::Acquire);
            let mut batch = queue.take(spare);
            for item in batch.drain(..) {
                self.handle(item);
                if self.unflushed >= self.config.batch_frames {
                    self.flush_all();
                }
            }
            spare = batch;
            let due = self
                .first_unflushed
                .is_some_and(|at| at.elapsed() >= self.config.flush_interval);
            if due || stopping {
                self.flush_all();
            }
            if stopping {
                break;
            }
            std::thread::sleep(poll);
        }
        for (_, tape) in self.tapes.drain() {
            tape.finish(&self.counters);
        }
    }

    fn key(&self, info: &SessionInfo) -> Arc<str> {
        match self.config.tape_per {
            TapePer::Session => info.id.clone(),
            _ => Arc::from(""),
        }
    }

    fn handle(&mut self, item: Item) {
        match item {
            Item::Frame(info, mut frame) => {
                let key = self.key(&info);
                let drops = info.unmarked_drops.swap(0, Ordering::Relaxed);
                if frame.session_id.is_none() {
                    frame.session_id = Some(info.id.to_string());
                }
                self.redactor.redact_frame(&mut frame);
                let counters = self.counters.clone();
                let Some(tape) = self.tape_for(key, &info) else {
                    return;
                };
                tape.info = info.clone();
                // Taps on different threads may hand frames over slightly out of order:
                // offsets never go backwards within a tape.
                frame.offset_ns = frame.offset_ns.max(tape.last_offset);
                tape.last_offset = frame.offset_ns;
                if drops > 0 {
                    mark_dropped(tape, drops, frame.offset_ns, &counters);
                }
                write(tape, &frame, &counters);
                self.unflushed += 1;
                self.first_unflushed.get_or_insert_with(Instant::now);
            }
            Item::Close(info) => {
                let key = self.key(&info);
                if let Some(tape) = self.tapes.remove(&key) {
                    tape.finish(&self.counters);
                }
            }
        }
    }

    /// The tape for `key`, created on first use.
    fn tape_for(&mut self, key: Arc<str>, info: &Arc<SessionInfo>) -> Option<&mut OpenTape> {
        if !self.tapes.contains_key(&key) {
            let tape = match self.create(info) {
                Ok(t) => t,
                Err(e) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("recording: {e}");
                    // Remember the failure so each frame does not retry.
                    return None;
                }
            };
            tracing::info!(tape = %tape.path.display(), "recording");
            self.counters.tapes.fetch_add(1, Ordering::Relaxed);
            self.tapes.insert(key.clone(), tape);
        }
        self.tapes.get_mut(&key).filter(|t| !t.failed)
    }

    fn create(&self, info: &Arc<SessionInfo>) -> Result<OpenTape, String> {
        let unix_ns = info
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let per_session = self.config.tape_per == TapePer::Session;
        let short: String = if per_session {
            info.id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(8)
                .collect()
        } else {
            "run".to_owned()
        };
        let stamp = file_stamp(info.started);
        let ext = self.config.format.extension();
        // The name is taken with `create_new`, so two tapes never share a file.
        let (path, tape_id) = (0..100)
            .find_map(|n| {
                let suffix = if n == 0 {
                    String::new()
                } else {
                    format!("-{n}")
                };
                let stem = format!("{stamp}-{short}{suffix}");
                let path = self.config.dir.join(format!("{stem}.{ext}"));
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .ok()
                    .map(|_| (path, stem))
            })
            .ok_or_else(|| format!("cannot create a tape in {}", self.config.dir.display()))?;
        let mut header = TapeHeader::from_unix_ns(tape_id, unix_ns);
        if self.config.edges == super::RecordEdges::Client {
            header = header.with_metadata("edges", "client".into());
        }
        for (k, v) in &self.config.metadata {
            header = header.with_metadata(k.clone(), v.clone());
        }
        header = header
            .with_metadata("transport", info.transport.into())
            .with_metadata("upstream", info.upstream.clone().into())
            .with_metadata(
                "tape_per",
                if per_session { "session" } else { "run" }.into(),
            );
        if per_session {
            header = header.with_metadata("session_id", info.id.to_string().into());
        }
        let writer =
            TapeWriter::create(&path, self.config.format, &header).map_err(|e| e.to_string())?;
        Ok(OpenTape {
            writer,
            path,
            dirty: false,
            failed: false,
            info: info.clone(),
            last_offset: 0,
        })
    }

    fn flush_all(&mut self) {
        for tape in self.tapes.values_mut() {
            if tape.dirty && !tape.failed {
                if let Err(e) = tape.writer.flush() {
                    tracing::warn!("recording stopped for {}: {e}", tape.path.display());
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    tape.failed = true;
                }
                tape.dirty = false;
            }
        }
        self.unflushed = 0;
        self.first_unflushed = None;
    }
}

fn write(tape: &mut OpenTape, frame: &TapeFrame, counters: &Counters) {
    if tape.failed {
        return;
    }
    let written = tape.writer.write_frame(frame);
    outcome(tape, written, counters);
    if !tape.failed {
        counters.written.fetch_add(1, Ordering::Relaxed);
    }
}

/// Marks `count` frames dropped at `offset_ns` in the tape.
fn mark_dropped(tape: &mut OpenTape, count: u64, offset_ns: u64, counters: &Counters) {
    if tape.failed {
        return;
    }
    let written = tape.writer.write_dropped(count, offset_ns);
    outcome(tape, written, counters);
}

fn outcome(tape: &mut OpenTape, written: shadowcat_tape::Result<()>, counters: &Counters) {
    match written {
        Ok(()) => tape.dirty = true,
        Err(e) => {
            tracing::warn!("recording stopped for {}: {e}", tape.path.display());
            counters.errors.fetch_add(1, Ordering::Relaxed);
            tape.failed = true;
        }
    }
}

/// `20250618T093000Z`-style UTC stamp for file names.
fn file_stamp(at: SystemTime) -> String {
    let unix_ns = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let full = shadowcat_tape::format_rfc3339(unix_ns); // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    let compact: String = full[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{compact}Z")
}
