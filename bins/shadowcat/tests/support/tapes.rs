//! Reading back the tapes a recording proxy wrote.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use shadowcat_tape::{Direction, Edge, TapeFormat, TapeFrame, TapeHeader};

/// The tapes in `dir`, sorted by name.
pub(crate) fn tapes_in(dir: &Path) -> Vec<PathBuf> {
    let mut tapes: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| TapeFormat::from_extension(p).is_some())
        .collect();
    tapes.sort();
    tapes
}

/// A tape read back: its header, its complete frames, and the error that ended reading
/// early (a torn tail), if any.
pub(crate) struct Tape {
    pub(crate) header: TapeHeader,
    pub(crate) format: TapeFormat,
    pub(crate) dropped: u64,
    pub(crate) frames: Vec<TapeFrame>,
    pub(crate) error: Option<shadowcat_tape::Error>,
}

/// Reads a whole tape.
pub(crate) fn read_tape(path: &Path) -> Tape {
    let mut reader =
        shadowcat_tape::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.header().clone();
    let mut frames = Vec::new();
    let mut error = None;
    for item in reader.by_ref() {
        match item {
            Ok(frame) => frames.push(frame),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    Tape {
        header,
        format: reader.format(),
        dropped: reader.dropped(),
        frames,
        error,
    }
}

/// The frame's message as JSON (`Null` when it is not JSON).
pub(crate) fn json(frame: &TapeFrame) -> Value {
    serde_json::from_slice(&frame.message).unwrap_or(Value::Null)
}

/// The frames at `edge` travelling `direction`.
pub(crate) fn at(frames: &[TapeFrame], direction: Direction, edge: Edge) -> Vec<&TapeFrame> {
    frames
        .iter()
        .filter(|f| f.direction == direction && f.edge == edge)
        .collect()
}

/// The methods of the requests and notifications among `frames`, in order.
pub(crate) fn methods(frames: &[&TapeFrame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| json(f)["method"].as_str().map(str::to_owned))
        .collect()
}

/// Checks offsets never go backwards.
pub(crate) fn assert_offsets_non_decreasing(frames: &[TapeFrame]) {
    for pair in frames.windows(2) {
        assert!(
            pair[0].offset_ns <= pair[1].offset_ns,
            "offsets go backwards: {} then {}",
            pair[0].offset_ns,
            pair[1].offset_ns
        );
    }
}
