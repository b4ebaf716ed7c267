//! The JSONL tape format: a header line, then one JSON object per frame, each line ending
//! in a line feed. Specified in `docs/tape-format.md`.

mod message;
mod reader;
mod writer;

pub use reader::{DEFAULT_MAX_LINE_LEN, JsonlReader};
pub use writer::JsonlWriter;

/// The value of the header's `shadowcat_tape` field in JSONL tapes.
const FORMAT_NAME: &str = "jsonl";

/// The JSONL format version this build writes, and the newest it reads.
pub const VERSION: u32 = 1;
