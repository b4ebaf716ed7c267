//! Library functions behind the tape tools: validate, repair and convert.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::codec::TapeItem;
use crate::{Error, Result, TapeFormat, TapeHeader, TapeWriter, open};

/// What [`validate`] found, reading a tape from start to end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ValidationReport {
    /// The tape's format.
    pub format: TapeFormat,
    /// The format version it was written in.
    pub version: u32,
    /// Its header.
    pub header: TapeHeader,
    /// Frames read.
    pub frames: u64,
    /// Dropped markers read.
    pub drop_markers: u64,
    /// Frames the recorder dropped, summed over the markers.
    pub dropped: u64,
    /// The smallest and largest frame offset (ns), when there are frames.
    pub offsets_ns: Option<(u64, u64)>,
    /// The file's size in bytes.
    pub bytes: u64,
    /// Where the intact data ends: the file's size, or the start of a torn tail.
    pub valid_bytes: u64,
    /// The byte offset of a torn tail (an incomplete last line or record), if any.
    pub torn_tail: Option<u64>,
    /// Frames, markers or records that are corrupt (not counting a torn tail).
    pub errors: u64,
    /// The first such error, with its place (`tape.sctape:3 (byte 120): ...`).
    pub first_error: Option<String>,
    /// The byte offset of the first error.
    pub first_error_at: Option<u64>,
    /// Whether the tape is complete: an lz4 tape has its footer index (always true for the
    /// other formats).
    pub complete: bool,
}

impl ValidationReport {
    /// Whether nothing is wrong: no corruption, no torn tail, nothing missing.
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.torn_tail.is_none() && self.complete
    }
}

/// Reads the tape at `path` from start to end, in constant memory, and reports what is in
/// it and what is wrong. Errors only when the file cannot be read or its header is not a
/// tape's.
pub fn validate(path: impl AsRef<Path>) -> Result<ValidationReport> {
    let path = path.as_ref();
    let mut reader = open(path)?;
    let bytes = file_len(path)?;
    let mut report = ValidationReport {
        format: reader.format(),
        version: reader.version(),
        header: reader.header().clone(),
        frames: 0,
        drop_markers: 0,
        dropped: 0,
        offsets_ns: None,
        bytes,
        valid_bytes: bytes,
        torn_tail: None,
        errors: 0,
        first_error: None,
        first_error_at: None,
        complete: true,
    };
    while let Some(item) = reader.next_item() {
        match item {
            Ok(TapeItem::Frame(frame)) => {
                report.frames += 1;
                let o = frame.offset_ns;
                report.offsets_ns = Some(
                    report
                        .offsets_ns
                        .map_or((o, o), |(a, b)| (a.min(o), b.max(o))),
                );
            }
            Ok(TapeItem::Dropped { count, .. }) => {
                report.drop_markers += 1;
                report.dropped = report.dropped.saturating_add(count);
            }
            Err(Error::TornTail { at, .. }) => {
                report.torn_tail = Some(at.byte);
                report.valid_bytes = at.byte;
            }
            Err(e @ Error::Io { .. }) => return Err(e),
            Err(e) => {
                report.errors += 1;
                if report.first_error.is_none() {
                    report.first_error_at = e.position().map(|p| p.byte);
                    report.first_error = Some(e.to_string());
                }
            }
        }
    }
    report.complete = reader.is_complete();
    Ok(report)
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// Whether the tape was already clean (nothing was done).
    pub already_clean: bool,
    /// Where a torn tail was cut off, if there was one.
    pub truncated_at: Option<u64>,
    /// Bytes removed from the end by the cut.
    pub removed_bytes: u64,
    /// Whether the tape was rewritten (corrupt records dropped, or an lz4 footer rebuilt).
    pub rewritten: bool,
    /// Corrupt frames or records left out of the rewritten tape.
    pub dropped_errors: u64,
    /// Frames in the repaired tape.
    pub frames: u64,
}

/// Repairs the tape at `path` so it validates clean. A JSONL or binary tape whose only
/// fault is a torn tail is truncated where the tail starts; otherwise (corrupt records in
/// the middle, an lz4 tape without its footer) the intact items are copied, in constant
/// memory, into a new file next to it, which then replaces it by an atomic rename.
pub fn repair(path: impl AsRef<Path>) -> Result<RepairReport> {
    let path = path.as_ref();
    let report = validate(path)?;
    if report.is_clean() {
        return Ok(RepairReport {
            already_clean: true,
            frames: report.frames,
            ..RepairReport::default()
        });
    }
    let mut out = RepairReport {
        truncated_at: report.torn_tail,
        removed_bytes: report.bytes - report.valid_bytes,
        frames: report.frames,
        ..RepairReport::default()
    };
    if report.errors == 0 && report.format != TapeFormat::Lz4 {
        if let Some(at) = report.torn_tail {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| io_err("opening", path, e))?;
            file.set_len(at)
                .map_err(|e| io_err("truncating", path, e))?;
            file.sync_all().map_err(|e| io_err("syncing", path, e))?;
        }
        return Ok(out);
    }
    let copied = copy_to(path, path, report.format)?;
    out.rewritten = true;
    out.dropped_errors = copied.skipped_errors;
    out.frames = copied.frames;
    Ok(out)
}

/// What [`convert`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConvertReport {
    /// Frames copied.
    pub frames: u64,
    /// Dropped markers copied.
    pub drop_markers: u64,
    /// Corrupt frames or records in the source, left out.
    pub skipped_errors: u64,
    /// The byte offset of a torn tail in the source, left out.
    pub torn_tail: Option<u64>,
}

/// Copies the tape at `src` into a new tape at `dst` in `format` (the current version),
/// streaming: the header, every frame with its exact bytes and every dropped marker. Used
/// to compress (to lz4) and to migrate (to the same format's current version). The new
/// tape is written next to `dst` and renamed into place, so `dst` may be `src`.
pub fn convert(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
    format: TapeFormat,
) -> Result<ConvertReport> {
    copy_to(src.as_ref(), dst.as_ref(), format)
}

fn copy_to(src: &Path, dst: &Path, format: TapeFormat) -> Result<ConvertReport> {
    let mut reader = open(src)?;
    let tmp = temp_path(dst);
    let result = (|| {
        let mut writer = TapeWriter::create(&tmp, format, reader.header())?;
        let mut report = ConvertReport::default();
        while let Some(item) = reader.next_item() {
            match item {
                Ok(item) => {
                    match item {
                        TapeItem::Frame(_) => report.frames += 1,
                        TapeItem::Dropped { .. } => report.drop_markers += 1,
                    }
                    writer.write_item(&item)?;
                }
                Err(Error::TornTail { at, .. }) => report.torn_tail = Some(at.byte),
                Err(e @ Error::Io { .. }) => return Err(e),
                Err(_) => report.skipped_errors += 1,
            }
        }
        writer.sync()?;
        writer.finish()?;
        std::fs::rename(&tmp, dst).map_err(|e| io_err("renaming into", dst, e))?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A hidden file next to `path` for writing its replacement.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn file_len(path: &Path) -> Result<u64> {
    File::open(path)
        .and_then(|f| f.metadata())
        .map(|m| m.len())
        .map_err(|e| io_err("reading", path, e))
}

fn io_err(what: &str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}
