//! MCP transports by direction.
//!
//! An [`Incoming`] transport is the side where the proxy *accepts* a client (the proxy's own
//! stdio, later an HTTP listener); an [`Outgoing`] transport is the side where the proxy
//! *connects* to a server (a child process, later an HTTP upstream). Both hand out a
//! [`FrameReader`] and a [`FrameWriter`] that move whole frames (one JSON-RPC message or
//! batch each) so the two directions run independently (full duplex).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> shadowcat_transport::Result<()> {
//! use shadowcat_transport::{FrameReader, FrameWriter, LineReader, LineWriter};
//!
//! let (a, b) = tokio::io::duplex(1024);
//! let mut writer = LineWriter::new(a);
//! let mut reader = LineReader::new(b, 1 << 20);
//! writer.send(br#"{"jsonrpc":"2.0","method":"ping","id":1}"#).await?;
//! writer.flush().await?;
//! let frame = reader.recv().await?.expect("a frame").expect("within limits");
//! assert_eq!(frame.line, Some(1));
//! # Ok(()) }
//! ```

mod error;
mod frame;
mod http_in;
mod http_out;
mod line;
mod stdio;
mod subprocess;

pub use error::{Error, Result};
pub use frame::{
    Connection, Delivered, Frame, FrameReader, FrameWriter, Incoming, Outgoing, Received,
    StreamFault, TransportKind, Upstream,
};
pub use http_in::{
    AdmissionContext, Admitted, AnswerFilter, Grant, HttpHandler, HttpIncoming, HttpIncomingConfig,
    HttpObserver, MessageAdmission, NoObserver, SessionEnd, SessionGrant,
};
pub use http_out::{
    ChallengeAction, HttpMode, HttpOutgoing, HttpOutgoingConfig, UpstreamAuthorizer,
    UpstreamChallenge,
};
pub use line::{LineReader, LineWriter, WRITE_HIGH_WATER};
pub use stdio::StdioIncoming;
pub use subprocess::SubprocessOutgoing;
