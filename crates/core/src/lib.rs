#![doc = include_str!("../README.md")]

pub mod demo;
mod error;
mod forward;

pub use error::{Error, Result};
pub use forward::{EndedBy, ForwardConfig, ForwardProxy, ForwardReport};

/// The sans-IO protocol layer (`shadowcat-mcp`).
pub use shadowcat_mcp as mcp;
/// Bytes-only I/O: stdio and child processes (`shadowcat-raw-transport`).
pub use shadowcat_raw_transport as raw;
/// Incoming and outgoing MCP transports (`shadowcat-transport`).
pub use shadowcat_transport as transport;
