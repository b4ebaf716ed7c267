//! `bench-echo-server`: a minimal stdio MCP server with one tool, `echo`, which returns its
//! `message` argument as text. It is the "direct" baseline of the load benchmark.

use std::process::ExitCode;

fn main() -> ExitCode {
    match shadowcat_benches::serve_stdio() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-echo-server: {e}");
            ExitCode::FAILURE
        }
    }
}
