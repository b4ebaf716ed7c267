//! Shared helpers for Shadowcat's tests.
//!
//! - The pinned real MCP peers under `interop/` (installed by `scripts/install-interop.sh`):
//!   [`server_everything_stdio`], [`python_mcp1`] with [`stdio_client_mcp1`], and
//!   [`inspector_cli`]. They panic when a peer is missing, so tests fail instead of skipping.
//! - [`CommandLine`]: a program and its arguments, to nest a server inside a proxy's command.
//! - [`run_with_timeout`]: runs a process with a time limit and captures its output.
//!
//! ```
//! use std::time::Duration;
//! use shadowcat_test_support::{CommandLine, run_with_timeout};
//!
//! let inner = CommandLine::new("echo").arg("through");
//! let outer = CommandLine::new("env").args(inner.argv());
//! let out = run_with_timeout(&mut outer.command(), Duration::from_secs(10));
//! assert!(out.success(), "{out}");
//! assert_eq!(out.stdout_lines().collect::<Vec<_>>(), ["through"]);
//! ```

mod command_line;
mod interop;
mod process;

pub use command_line::CommandLine;
pub use interop::{
    INSTALL_HINT, InspectorCli, inspector_cli, interop_dir, node, python_mcp1, repo_root,
    server_everything_stdio, stdio_client_mcp1,
};
pub use process::{ProcessOutput, run_with_timeout};
