#![doc = include_str!("../README.md")]

mod admission;
mod control;
pub mod demo;
mod error;
mod forward;
mod intercept;
mod metrics;
mod record;
mod replay;
mod reverse;
mod upstream_auth;

pub use admission::{Admission, AdmissionConfig};
pub use control::ControlServer;
pub use error::{Error, Result};
pub use forward::{EndedBy, ForwardConfig, ForwardProxy, ForwardReport};
pub use intercept::Interception;
pub use metrics::{AuthOutcome, CloseReason, Metrics, Outcome};
pub use record::{
    RecordConfig, RecordEdges, RecordHandle, RecordStats, Recorder, SessionTap, TapePer,
};
pub use replay::{
    CallOutcome, CallReport, FallbackFactory, REPLAY_NO_MATCH, ReplayConfig, ReplayControl,
    ReplayOutgoing, VerifyConfig, VerifyReport, verify,
};
pub use reverse::{ReverseConfig, ReverseProxy, UpstreamFactory};
pub use upstream_auth::UpstreamCredentialSource;

/// Security: the resource server, policy, rate limits, audit, the OAuth client (`shadowcat-auth`).
pub use shadowcat_auth as auth;
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
