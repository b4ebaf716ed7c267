//! Bytes-only I/O for Shadowcat: the process's own stdin and stdout, child processes, and
//! an HTTP client ([`HttpClient`]).
//!
//! Nothing here knows about MCP; higher layers frame the bytes.
//!
//! ```no_run
//! # async fn demo() -> shadowcat_raw_transport::Result<()> {
//! use shadowcat_raw_transport::{ChildProcess, CommandSpec};
//! use std::time::Duration;
//!
//! let spec = CommandSpec::new("cat");
//! let (mut child, stdin, _stdout) = ChildProcess::spawn(&spec)?;
//! drop(stdin); // EOF: `cat` exits on its own
//! let exit = child
//!     .shutdown(Duration::from_secs(2), Duration::from_secs(1), std::future::pending())
//!     .await?;
//! assert!(exit.success());
//! # Ok(()) }
//! ```

mod error;
mod http_client;
mod http_server;
mod process;
mod stdio;

pub use error::{Error, Result};
pub use http_client::{HttpClient, HttpClientConfig, HttpRequestBody};
pub use http_server::tls_server_config;
pub use http_server::{ChannelBody, HttpBody, HttpServer, HttpServerConfig, empty_body, full_body};
pub use process::{ChildExit, ChildProcess, ChildStdin, ChildStdout, CommandSpec};
pub use stdio::{StdinReader, StdoutWriter, stdin, stdout};
