//! Tapes for Shadowcat, the MCP proxy: recordings of MCP traffic, and the formats they are
//! stored in.
//!
//! - [`TapeFrame`]: one recorded message: its offset from the tape's start, its
//!   [`Direction`], the [`Edge`] of the proxy it was seen on, its session, its exact bytes,
//!   and [`HttpMeta`] when it travelled over HTTP.
//! - [`TapeHeader`]: what a tape is: id, wall-clock anchor of offset 0, the Shadowcat that
//!   recorded it, name, tags and free-form metadata.
//! - The JSONL format (version [`JSONL_VERSION`]): [`JsonlWriter`] and [`JsonlReader`]. One
//!   JSON object per line, the message itself a JSON value, so `jq '.message.method'` works,
//!   and the message bytes come back exactly as they were recorded.
//! - The binary framed format (version [`BINARY_VERSION`]): [`BinaryWriter`],
//!   [`BinaryReader`] and [`ReverseReader`]. CRC-checked records whose length is repeated
//!   after them, so a torn tail is detected and the tape can be read from its end.
//! - The lz4 block format (version [`LZ4_VERSION`]): [`Lz4Writer`], [`Lz4Reader`] and
//!   [`Lz4Index`]. lz4-compressed blocks of frames and a footer index saying which blocks
//!   hold which times, methods, tools and sessions.
//! - Any format: [`open`] detects a tape's format from its first bytes and returns a
//!   [`TapeReader`]; [`TapeWriter::create`] writes any [`TapeFormat`]. Recorders mark the
//!   frames they had to drop ([`TapeItem::Dropped`]).
//! - Tools: [`validate`], [`repair`] (atomic) and [`convert`] (streaming, any format to
//!   any format).
//! - Replay: [`read_tape`] and [`ReplayScript`] prepare a tape for playing back;
//!   [`Matcher`] plays one live conversation against it by [`CanonicalKey`] (method, tool,
//!   params with key order and `_meta` ignored), with [`diff_values`] naming differences by
//!   path and [`Timing`] pacing the recorded gaps.
//!
//! The formats are specified byte for byte in `docs/tape-format.md`. Readers read every
//! older version of a format; a tape from a newer version is refused with
//! [`Error::NewerVersion`]; an incomplete last line, as a crash leaves it, is reported as
//! [`Error::TornTail`], apart from corruption ([`Error::Malformed`]).
//!
//! ```
//! use shadowcat_tape::{Direction, Edge, HttpMeta, JsonlReader, JsonlWriter, TapeFrame, TapeHeader};
//!
//! let header = TapeHeader::from_unix_ns("tape-1", 1_750_239_000_000_000_000)
//!     .with_name("checkout flow")
//!     .with_metadata("mode", "forward".into());
//! let request = TapeFrame::new(
//!     1_200,
//!     Direction::ClientToServer,
//!     Edge::Client,
//!     &br#"{"jsonrpc":"2.0", "id":1, "method":"tools/list"}"#[..],
//! )
//! .with_session_id("s-1")
//! .with_http(HttpMeta::new().with_header("Content-Type", "application/json"));
//!
//! let mut writer = JsonlWriter::new(Vec::new());
//! writer.write_header(&header)?;
//! writer.write_frame(&request)?;
//! let tape = writer.into_inner()?;
//!
//! let mut reader = JsonlReader::new(&tape[..])?;
//! assert_eq!(reader.header(), &header);
//! let frame = reader.next().expect("one frame")?;
//! assert_eq!(frame, request); // the message bytes included, spaces and all
//! # Ok::<(), shadowcat_tape::Error>(())
//! ```

mod any;
mod base64;
mod binary;
mod codec;
mod crc32;
mod error;
mod frame;
mod header;
mod jsonl;
mod lz4;
mod record;
mod redact;
mod replay;
mod store;
mod tools;

#[doc(hidden)]
pub mod fuzzing;

pub use any::{TapeFormat, TapeReader, TapeWriter, open};
pub use binary::{BinaryReader, BinaryWriter, ReverseReader, VERSION as BINARY_VERSION};
pub use codec::TapeItem;
pub use error::{Error, Position, Result};
pub use frame::{Direction, Edge, HttpMeta, TapeFrame};
pub use header::{SHADOWCAT_VERSION, TapeHeader, format_rfc3339};
pub use jsonl::{DEFAULT_MAX_LINE_LEN, JsonlReader, JsonlWriter, VERSION as JSONL_VERSION};
pub use lz4::{BlockEntry, Lz4Index, Lz4Reader, Lz4Writer, VERSION as LZ4_VERSION};
pub use redact::{ALWAYS_REDACTED_HEADERS, RedactConfig, Redactor, TOKEN_PREFIX};
pub use replay::{
    CanonicalKey, Closest, Difference, Emit, Matcher, Miss, Output, Reaction, RecordedMessage,
    RecordedSession, ReplayScript, SPEED_RANGE, Step, Timing, Trigger, canonical_params,
    canonical_value, diff_values, path_matches, read_tape,
};
pub use store::{
    FrameCounts, INDEX_FILE_NAME, PruneReport, RetentionPolicy, ScanReport, TapeEntry, TapeFilter,
    TapeStore,
};
pub use tools::{ConvertReport, RepairReport, ValidationReport, convert, repair, validate};
