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

mod base64;
mod error;
mod frame;
mod header;
mod jsonl;

#[doc(hidden)]
pub mod fuzzing;

pub use error::{Error, Position, Result};
pub use frame::{Direction, Edge, HttpMeta, TapeFrame};
pub use header::{SHADOWCAT_VERSION, TapeHeader, format_rfc3339};
pub use jsonl::{DEFAULT_MAX_LINE_LEN, JsonlReader, JsonlWriter, VERSION as JSONL_VERSION};
