//! Benchmarks for Shadowcat: shared message fixtures for the criterion micro-benchmarks, the
//! echo MCP server that is the "direct" baseline, and the stdio load generator that measures a
//! target (the echo server alone, or Shadowcat in front of it) under a fixed number of requests
//! in flight.
//!
//! ```
//! use shadowcat_benches::{echo_message, fixtures};
//! use shadowcat_mcp::Message;
//!
//! let request = Message::parse(fixtures::echo_call(7, &echo_message(7))).unwrap();
//! assert_eq!(request.method(), Some("tools/call"));
//! ```

mod admission_load;
mod answer;
mod compare;
mod echo;
mod error;
pub mod fixtures;
mod http_compare;
mod http_echo;
mod http_load;
mod load;
mod stats;

pub use admission_load::AdmissionFixture;
pub use compare::{
    CompareConfig, Comparison, Scenario, TARGET_ADDED_P50_US, TARGET_RATIO, TARGET_RECORD_COST,
    TARGET_RULES_COST,
};
pub use echo::{serve, serve_stdio};
pub use error::{Error, Result};
pub use http_compare::{
    HttpCompareConfig, HttpComparison, HttpScenario, Mode, TARGET_ADMISSION_COST,
    TARGET_HTTP_RATIO, TARGET_IDLE_SESSION_BYTES,
};
pub use http_echo::serve_http;
pub use http_load::{HttpLoadConfig, open_idle_sessions};
pub use load::{LoadConfig, LoadReport, echo_message, pin_current_process};
pub use stats::LatencySummary;
