//! Sans-IO Model Context Protocol for Shadowcat.
//!
//! Everything here is pure: bytes go in, messages, frames and effects come out, and time is a
//! parameter. No runtime, no sockets, no clock, so it can be fuzzed and tested without I/O.
//!
//! - [`Message`]: one JSON-RPC message or batch, parsed once, with its original bytes.
//! - [`LineDecoder`] and [`encode_line`]: newline-delimited JSON (stdio).
//! - [`SseDecoder`] and [`SseEncoder`]: server-sent events (Streamable HTTP, legacy SSE).
//! - [`ProtocolVersion`], [`negotiate`], [`detect_era`]: revisions and eras.
//! - [`Session`]: the per-connection state machine that returns [`Effect`]s.
//!
//! ```
//! use shadowcat_mcp::{LineDecoder, Message, MessageKind};
//!
//! let mut lines = LineDecoder::new(1 << 20);
//! lines.push(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
//! let line = lines.next_line().unwrap().unwrap();
//! let msg = Message::parse(line.bytes).unwrap();
//! assert_eq!(msg.kind(), MessageKind::Notification);
//! ```

mod codes;
mod error;
mod id;
mod line;
mod message;
mod scan;
mod session;
mod sse;
mod version;

#[doc(hidden)]
pub mod fuzzing;

pub use codes::ErrorCode;
pub use error::{Error, Result};
pub use id::RequestId;
pub use line::{DEFAULT_MAX_LINE, Line, LineDecoder, encode_line};
pub use message::{ErrorObject, Message, MessageKind};
pub use session::{Effect, Peer, PendingRequest, Phase, Session, SessionConfig, SessionStats};
pub use sse::{SseDecoder, SseEncoder, SseEvent, SseItem};
pub use version::{
    Era, EraSignal, META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION,
    ProtocolVersion, accept, detect_era, negotiate,
};
