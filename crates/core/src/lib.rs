#![doc = include_str!("../README.md")]

pub mod demo;
mod error;
mod forward;
mod metrics;
mod reverse;

pub use error::{Error, Result};
pub use forward::{EndedBy, ForwardConfig, ForwardProxy, ForwardReport};
pub use metrics::{CloseReason, Metrics, Outcome};
pub use reverse::{ReverseConfig, ReverseProxy, UpstreamFactory};

/// The sans-IO protocol layer (`shadowcat-mcp`).
pub use shadowcat_mcp as mcp;
/// Bytes-only I/O: stdio and child processes (`shadowcat-raw-transport`).
pub use shadowcat_raw_transport as raw;
/// Sessions: ids, the registry and its limits, the event store (`shadowcat-session`).
pub use shadowcat_session as session;
/// Incoming and outgoing MCP transports (`shadowcat-transport`).
pub use shadowcat_transport as transport;
