//! The writer thread: takes frames off the queue, redacts them, and writes them to their
//! tapes in batches.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shadowcat_tape::{Redactor, TapeFrame, TapeHeader, TapeWriter};

use super::{Counters, Item, Queue, RecordConfig, SessionInfo, TapePer};

/// Open tapes by key; the keys are session ids the proxy or the server made, so a fast hash
/// serves.
type Tapes = HashMap<Arc<str>, Option<OpenTape>, foldhash::fast::RandomState>;

/// How often the writer looks at the queue while frames keep coming.
const BUSY_POLL: Duration = Duration::from_millis(1);

/// A batch at least this large means frames keep coming.
const BUSY_BATCH: usize = 64;

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
    /// Open tapes by session id (one per session), or the run's tape under "": `None` for
    /// a tape that could not be created (not tried again for each frame).
    tapes: Tapes,
    unflushed: usize,
    first_unflushed: Option<Instant>,
    /// The key of the run's one tape.
    run_key: Arc<str>,
    /// A buffer lent to each frame for its session id.
    spare_id: Option<String>,
}

impl TapeWriterLoop {
    pub(super) fn new(config: RecordConfig, redactor: Redactor, counters: Arc<Counters>) -> Self {
        Self {
            config,
            redactor,
            counters,
            tapes: Tapes::default(),
            unflushed: 0,
            first_unflushed: None,
            run_key: Arc::from(""),
            spare_id: None,
        }
    }

    /// Runs until `stop` is set, then drains the queue, flushes and closes every tape.
    pub(super) fn run(mut self, queue: &Queue, stop: &AtomicBool) {
        // How often the queue is looked at when traffic is light; frames reach the file
        // within about this plus the flush interval.
        let idle_poll = self
            .config
            .flush_interval
            .clamp(BUSY_POLL, Duration::from_millis(10));
        let mut spare = Vec::new();
        loop {
            let stopping = stop.load(Ordering::Acquire);
            let mut batch = queue.take(spare);
            // Under load, looking often keeps each batch small enough that the frames are
            // still in the CPU's cache when they are written (and the queue's buffer when
            // the proxy fills it again).
            let poll = if batch.len() >= BUSY_BATCH {
                BUSY_POLL
            } else {
                idle_poll
            };
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
        for tape in self.tapes.drain().filter_map(|(_, tape)| tape) {
            tape.finish(&self.counters);
        }
    }

    fn key(&self, info: &SessionInfo) -> Arc<str> {
        match self.config.tape_per {
            TapePer::Session => info.id.clone(),
            _ => self.run_key.clone(),
        }
    }

    fn handle(&mut self, item: Item) {
        match item {
            Item::Frame(info, mut frame, parsed) => {
                let key = self.key(&info);
                let drops = info.unmarked_drops.swap(0, Ordering::Relaxed);
                // The session's id goes into the frame through a reused buffer: no
                // allocation per frame.
                let lent_id = frame.session_id.is_none();
                if lent_id {
                    let mut id = self.spare_id.take().unwrap_or_default();
                    id.clear();
                    id.push_str(&info.id);
                    frame.session_id = Some(id);
                }
                self.redactor.redact_frame(&mut frame);
                let counters = &*self.counters;
                let Some(tape) = tape_for(&mut self.tapes, &self.config, key, &info, counters)
                else {
                    return;
                };
                if !Arc::ptr_eq(&tape.info, &info) {
                    tape.info = info;
                }
                // Taps on different threads may hand frames over slightly out of order:
                // offsets never go backwards within a tape.
                frame.offset_ns = frame.offset_ns.max(tape.last_offset);
                tape.last_offset = frame.offset_ns;
                if drops > 0 {
                    mark_dropped(tape, drops, frame.offset_ns, counters);
                }
                write(tape, &frame, parsed, counters);
                if lent_id {
                    self.spare_id = frame.session_id.take();
                }
                self.unflushed += 1;
                self.first_unflushed.get_or_insert_with(Instant::now);
            }
            Item::Close(info) => {
                let key = self.key(&info);
                if let Some(Some(tape)) = self.tapes.remove(&key) {
                    tape.finish(&self.counters);
                }
            }
        }
    }

    fn flush_all(&mut self) {
        for tape in self.tapes.values_mut().flatten() {
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

/// The tape for `key`, created on first use; `None` when it cannot be written.
fn tape_for<'a>(
    tapes: &'a mut Tapes,
    config: &RecordConfig,
    key: Arc<str>,
    info: &Arc<SessionInfo>,
    counters: &Counters,
) -> Option<&'a mut OpenTape> {
    let tape = match tapes.entry(key) {
        Entry::Occupied(open) => open.into_mut().as_mut(),
        Entry::Vacant(slot) => match create(config, info) {
            Ok(tape) => {
                tracing::info!(tape = %tape.path.display(), "recording");
                counters.tapes.fetch_add(1, Ordering::Relaxed);
                slot.insert(Some(tape)).as_mut()
            }
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("recording: {e}");
                slot.insert(None);
                None
            }
        },
    };
    tape.filter(|t| !t.failed)
}

/// Creates the tape for `info`'s frames.
fn create(config: &RecordConfig, info: &Arc<SessionInfo>) -> Result<OpenTape, String> {
    let unix_ns = info
        .started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let per_session = config.tape_per == TapePer::Session;
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
    let ext = config.format.extension();
    // The name is taken with `create_new`, so two tapes never share a file.
    let (path, tape_id) = (0..100)
        .find_map(|n| {
            let suffix = if n == 0 {
                String::new()
            } else {
                format!("-{n}")
            };
            let stem = format!("{stamp}-{short}{suffix}");
            let path = config.dir.join(format!("{stem}.{ext}"));
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .ok()
                .map(|_| (path, stem))
        })
        .ok_or_else(|| format!("cannot create a tape in {}", config.dir.display()))?;
    let mut header = TapeHeader::from_unix_ns(tape_id, unix_ns);
    if config.edges == super::RecordEdges::Client {
        header = header.with_metadata("edges", "client".into());
    }
    for (k, v) in &config.metadata {
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
    let writer = TapeWriter::create(&path, config.format, &header).map_err(|e| e.to_string())?;
    Ok(OpenTape {
        writer,
        path,
        dirty: false,
        failed: false,
        info: info.clone(),
        last_offset: 0,
    })
}

fn write(tape: &mut OpenTape, frame: &TapeFrame, parsed: bool, counters: &Counters) {
    if tape.failed {
        return;
    }
    let written = if parsed {
        tape.writer.write_parsed_frame(frame)
    } else {
        tape.writer.write_frame(frame)
    };
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
