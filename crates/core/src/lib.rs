#![doc = include_str!("../README.md")]

mod control;
pub mod demo;
mod error;
mod forward;
mod intercept;
mod metrics;
mod record;
mod replay;
mod reverse;

pub use control::ControlServer;
pub use error::{Error, Result};
pub use forward::{EndedBy, ForwardConfig, ForwardProxy, ForwardReport};
pub use intercept::Interception;
pub use metrics::{CloseReason, Metrics, Outcome};
pub use record::{RecordConfig, RecordHandle, RecordStats, Recorder, SessionTap, TapePer};
pub use replay::{
    CallOutcome, CallReport, FallbackFactory, REPLAY_NO_MATCH, ReplayConfig, ReplayControl,
    ReplayOutgoing, VerifyConfig, VerifyReport, verify,
};
pub use reverse::{ReverseConfig, ReverseProxy, UpstreamFactory};

/// Interception: the interceptor chain, rules, held messages (`shadowcat-interceptor`).
pub use shadowcat_interceptor as interceptor;
/// The sans-IO protocol layer (`shadowcat-mcp`).
pub use shadowcat_mcp as mcp;
/// Bytes-only I/O: stdio and child processes (`shadowcat-raw-transport`).
pub use shadowcat_raw_transport as raw;
/// Sessions: ids, the registry and its limits, the event store (`shadowcat-session`).
pub use shadowcat_session as session;
/// Tapes: the frame model and tape formats (`shadowcat-tape`).
pub use shadowcat_tape as tape;
/// Incoming and outgoing MCP transports (`shadowcat-transport`).
pub use shadowcat_transport as transport;
