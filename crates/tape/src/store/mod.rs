//! A directory of tapes and its index.

mod entry;
mod retention;
mod source;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use entry::{FrameCounts, TapeEntry, TapeFilter};
pub use retention::{PruneReport, RetentionPolicy};

use crate::{Error, Result};

/// The index file's name inside a store's directory.
pub const INDEX_FILE_NAME: &str = "index.json";

/// The index file's format version.
const INDEX_VERSION: u32 = 1;

/// The index file: a version and one entry per tape.
#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    tapes: Vec<TapeEntry>,
}

/// What [`TapeStore::scan`] changed in the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ScanReport {
    /// Tapes found that the index did not know.
    pub added: usize,
    /// Tapes whose file changed since they were indexed, read again.
    pub updated: usize,
    /// Entries whose file is gone.
    pub removed: usize,
    /// Files that look like tapes but cannot be read as one (no header), skipped.
    pub unreadable: usize,
}

impl ScanReport {
    /// Whether the index changed.
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.removed > 0
    }
}

/// A directory of tapes with an index (`index.json`) of what each holds: id, name, tags,
/// times, sessions, frame counts, methods, tools and size.
///
/// The index is rewritten whole and atomically (a temporary file, `fsync`, then a rename
/// over `index.json`), so a crash in the middle leaves the old index or the new one, never
/// a broken one; a stray temporary file is ignored. The tape files are the truth: opening a
/// store [scans](Self::scan) the directory and brings the index up to date (a tape is read
/// again only when its size or modification time changed), so tapes written by a recorder
/// that crashed are indexed from what reads back.
///
/// ```
/// use shadowcat_tape::{Direction, Edge, JsonlWriter, TapeFilter, TapeFrame, TapeHeader, TapeStore};
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = JsonlWriter::create(dir.path().join("t1.jsonl"))?;
/// writer.write_header(&TapeHeader::from_unix_ns("t1", 1_000).with_tag("smoke"))?;
/// let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
/// writer.write_frame(&TapeFrame::new(5, Direction::ClientToServer, Edge::Client, &call[..]))?;
/// writer.flush()?;
///
/// let store = TapeStore::open(dir.path())?;
/// let found = store.list(&TapeFilter::new().with_tool("echo"));
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].tags, ["smoke"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TapeStore {
    dir: PathBuf,
    /// Sorted oldest first.
    entries: Vec<TapeEntry>,
}

impl TapeStore {
    /// Opens (creating it if needed) the store in `dir`, reads its index and scans the
    /// directory for changes, writing the index when it changed. An index that cannot be
    /// read is rebuilt from the tapes.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)
            .map_err(|source| io(format!("creating {}", dir.display()), source))?;
        let entries = read_index(&dir.join(INDEX_FILE_NAME)).unwrap_or_default();
        let mut store = Self { dir, entries };
        store.scan()?;
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the index file.
    pub fn index_path(&self) -> PathBuf {
        self.dir.join(INDEX_FILE_NAME)
    }

    /// The path of a tape's file.
    pub fn path_of(&self, entry: &TapeEntry) -> PathBuf {
        self.dir.join(&entry.file)
    }

    /// Brings the index up to date with the directory: tapes added or changed since they
    /// were indexed are read (one frame at a time), entries whose file is gone are dropped;
    /// the index file is rewritten when anything changed.
    pub fn scan(&mut self) -> Result<ScanReport> {
        let listing = fs::read_dir(&self.dir)
            .map_err(|source| io(format!("reading {}", self.dir.display()), source))?;
        let mut known: HashMap<String, TapeEntry> = self
            .entries
            .drain(..)
            .map(|e| (e.file.clone(), e))
            .collect();
        let mut report = ScanReport::default();
        let mut entries = Vec::new();
        for item in listing {
            let item =
                item.map_err(|source| io(format!("reading {}", self.dir.display()), source))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if !source::is_tape_file_name(&name) || !item.path().is_file() {
                continue;
            }
            let path = item.path();
            let old = known.remove(&name);
            if let Some(old) = &old
                && let Ok((bytes, modified)) = entry::file_stamp(&path)
                && (bytes, modified) == (old.bytes, old.modified_unix_ns)
            {
                entries.push(old.clone());
                continue;
            }
            match TapeEntry::from_file(&path) {
                Ok(entry) => {
                    if old.is_some() {
                        report.updated += 1;
                    } else {
                        report.added += 1;
                    }
                    entries.push(entry);
                }
                Err(_) => {
                    report.unreadable += 1;
                    if old.is_some() {
                        report.removed += 1;
                    }
                }
            }
        }
        report.removed += known.len();
        retention::oldest_first(&mut entries);
        self.entries = entries;
        if report.changed() || !self.index_path().exists() {
            self.write_index()?;
        }
        Ok(report)
    }

    /// Every indexed tape, oldest first.
    pub fn entries(&self) -> &[TapeEntry] {
        &self.entries
    }

    /// The tapes the filter selects, oldest first.
    pub fn list(&self, filter: &TapeFilter) -> Vec<&TapeEntry> {
        self.entries.iter().filter(|e| filter.matches(e)).collect()
    }

    /// The tapes the filter selects (the same as [`list`](Self::list)).
    pub fn search(&self, filter: &TapeFilter) -> Vec<&TapeEntry> {
        self.list(filter)
    }

    /// The tape with this id.
    pub fn get(&self, id: &str) -> Option<&TapeEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The tape a user means by `key`: its id, its file name, its name, or a prefix of
    /// exactly one id; in that order.
    pub fn resolve(&self, key: &str) -> Option<&TapeEntry> {
        if let Some(e) = self.get(key) {
            return Some(e);
        }
        if let Some(e) = self.entries.iter().find(|e| e.file == key) {
            return Some(e);
        }
        let named: Vec<_> = self
            .entries
            .iter()
            .filter(|e| e.name.as_deref() == Some(key))
            .collect();
        if let [only] = named[..] {
            return Some(only);
        }
        let prefixed: Vec<_> = self
            .entries
            .iter()
            .filter(|e| e.id.starts_with(key))
            .collect();
        match prefixed[..] {
            [only] if !key.is_empty() => Some(only),
            _ => None,
        }
    }

    /// Deletes the tape with this id (its file, then its index entry) and returns its entry.
    pub fn remove(&mut self, id: &str) -> Result<TapeEntry> {
        let at = self
            .entries
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| Error::UnknownTape(id.to_owned()))?;
        let path = self.path_of(&self.entries[at]);
        remove_file(&path)?;
        let entry = self.entries.remove(at);
        self.write_index()?;
        Ok(entry)
    }

    /// Applies the retention policy now; see [`prune_at`](Self::prune_at).
    pub fn prune(&mut self, policy: &RetentionPolicy, dry_run: bool) -> Result<PruneReport> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.prune_at(policy, now, dry_run)
    }

    /// Removes the tapes the policy does not keep at `now_unix_ns`, oldest first: those
    /// older than `max_age`, then the oldest until at most `max_count` are left, then the
    /// oldest until the rest take at most `max_total_bytes`. With `dry_run`, only reports
    /// what it would remove.
    pub fn prune_at(
        &mut self,
        policy: &RetentionPolicy,
        now_unix_ns: u64,
        dry_run: bool,
    ) -> Result<PruneReport> {
        let chosen = retention::select(&self.entries, policy, now_unix_ns);
        let removed: Vec<TapeEntry> = chosen.iter().map(|&i| self.entries[i].clone()).collect();
        let freed_bytes = removed.iter().map(|e| e.bytes).sum();
        if !dry_run && !removed.is_empty() {
            let mut failed = None;
            let mut gone = Vec::new();
            for entry in &removed {
                match remove_file(&self.path_of(entry)) {
                    Ok(()) => gone.push(entry.file.clone()),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            self.entries.retain(|e| !gone.contains(&e.file));
            self.write_index()?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(PruneReport {
            kept: self.entries.len() - if dry_run { removed.len() } else { 0 },
            removed,
            freed_bytes,
            dry_run,
        })
    }

    /// Writes the index atomically: a temporary file in the same directory, `fsync`, a
    /// rename over the index, and an `fsync` of the directory.
    fn write_index(&self) -> Result<()> {
        let index = IndexFile {
            version: INDEX_VERSION,
            tapes: self.entries.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&index)
            .map_err(|e| io("encoding the index".to_owned(), e.into()))?;
        json.push(b'\n');
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = self.dir.join(format!(
            ".{INDEX_FILE_NAME}.{}.{nanos}.tmp",
            std::process::id()
        ));
        let written = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            fs::rename(&tmp, self.index_path())?;
            // Make the rename itself durable.
            File::open(&self.dir)?.sync_all()
        })();
        written.map_err(|source| {
            let _ = fs::remove_file(&tmp);
            io(format!("writing {}", self.index_path().display()), source)
        })
    }
}

fn read_index(path: &Path) -> Option<Vec<TapeEntry>> {
    let bytes = fs::read(path).ok()?;
    let index: IndexFile = serde_json::from_slice(&bytes).ok()?;
    (index.version == INDEX_VERSION).then_some(index.tapes)
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io(format!("removing {}", path.display()), source)),
    }
}

fn io(context: String, source: std::io::Error) -> Error {
    Error::Io { context, source }
}
