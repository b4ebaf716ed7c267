//! The pinned real MCP peers that `scripts/install-interop.sh` installs under `interop/`.
//!
//! Every function here panics, naming the install script, when a peer is missing or is not
//! the pinned version: tests that need real peers fail rather than skip.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::CommandLine;
use crate::process::{RUN_MARKER, new_run_marker};

/// What to run when a peer is missing or stale.
pub const INSTALL_HINT: &str = "run scripts/install-interop.sh";

const SERVER_EVERYTHING: &str = "@modelcontextprotocol/server-everything";
const INSPECTOR: &str = "@modelcontextprotocol/inspector";

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    // This crate lives at crates/test-support.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test-support has two ancestors")
        .to_path_buf()
}

/// The `interop/` directory: pins, installed peers and client scripts.
pub fn interop_dir() -> PathBuf {
    repo_root().join("interop")
}

/// Node.js, found on `PATH`.
///
/// # Panics
///
/// When there is no `node` on `PATH`.
pub fn node() -> PathBuf {
    find_on_path("node").unwrap_or_else(|| {
        panic!("`node` is not on PATH; the interop tests need Node.js 20 or later ({INSTALL_HINT})")
    })
}

/// The reference "everything" server on stdio: `node …/server-everything/dist/index.js stdio`.
///
/// # Panics
///
/// When it is not installed at the pinned version.
pub fn server_everything_stdio() -> CommandLine {
    let package = installed_npm_package(SERVER_EVERYTHING);
    CommandLine::new(node())
        .arg(existing(package.join("dist/index.js")))
        .arg("stdio")
}

/// The Python of the venv that holds the pinned `mcp` 1.x (`interop/.venv-mcp1`).
///
/// # Panics
///
/// When the venv is missing or holds another `mcp` version.
pub fn python_mcp1() -> PathBuf {
    let venv = interop_dir().join(".venv-mcp1");
    let python = existing(venv.join("bin/python"));
    let pin = pinned_python_version("mcp");
    let dist_info = format!("mcp-{pin}.dist-info");
    let installed = fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|lib| lib.path().join("site-packages").join(&dist_info).is_dir());
    assert!(
        installed,
        "interop/.venv-mcp1 does not hold the pinned mcp {pin}; {INSTALL_HINT}"
    );
    python
}

/// A command that runs `interop/py/stdio_client_mcp1.py` against `server`.
///
/// The script launches `server` as a stdio MCP server with the Python `mcp` 1.x client,
/// initializes, lists the tools, calls `echo`, and waits for the server's
/// `notifications/tools/list_changed` and its `roots/list` exchange. It prints one JSON
/// object on stdout (`ok`, `protocol_version`, `server_name`, `tools`, `echo_text`,
/// `tool_list_changed`, `invalid_messages`, `shutdown_seconds`, `failures`, …) and exits 0
/// only when every check passed; it gives up after `timeout`.
///
/// # Panics
///
/// When the venv or the script is missing.
pub fn stdio_client_mcp1(server: &CommandLine, timeout: Duration) -> Command {
    let script = existing(interop_dir().join("py/stdio_client_mcp1.py"));
    let mut command = Command::new(python_mcp1());
    command
        .arg(script)
        .arg("--timeout")
        .arg(timeout.as_secs_f64().to_string())
        .arg("--")
        .args(server.argv());
    command
}

/// The MCP Inspector's command-line mode, with a private home directory.
///
/// # Panics
///
/// When the Inspector is not installed at the pinned version.
pub fn inspector_cli() -> InspectorCli {
    let package = installed_npm_package(INSPECTOR);
    let launcher = existing(package.join("clients/launcher/build/index.js"));
    let home = tempfile::Builder::new()
        .prefix("shadowcat-inspector-")
        .tempdir()
        .expect("creating a temporary home for the Inspector");
    InspectorCli {
        node: node(),
        launcher,
        home,
    }
}

/// The MCP Inspector's command-line mode (`inspector --cli`), ready to run against a stdio
/// server; see [`inspector_cli`].
///
/// Its catalog and any state it keeps live in a temporary home directory that is removed
/// when this value is dropped.
#[derive(Debug)]
pub struct InspectorCli {
    node: PathBuf,
    launcher: PathBuf,
    home: TempDir,
}

impl InspectorCli {
    /// A command that runs the Inspector CLI with `options` against the stdio `server`.
    ///
    /// The command line is `node launcher --cli -e SHADOWCAT_TEST_RUN=… OPTIONS… -- SERVER…`:
    /// every Inspector option must come before the `--`, which ends its options; everything
    /// after it (a `--` of the server's own, or options such as `--log-level`) reaches the
    /// server unchanged.
    ///
    /// ```no_run
    /// use shadowcat_test_support::{inspector_cli, server_everything_stdio};
    ///
    /// let inspector = inspector_cli();
    /// let command = inspector.command(
    ///     ["--format", "json", "--method", "tools/list"],
    ///     &server_everything_stdio(),
    /// );
    /// ```
    pub fn command<I>(&self, options: I, server: &CommandLine) -> Command
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        let home = self.home.path();
        // The Inspector gives its server only a few variables of its own environment; pass
        // the run's mark on explicitly so that `run_with_timeout` finds what it leaves behind.
        let marker = new_run_marker();
        let mut command = Command::new(&self.node);
        command
            .arg(&self.launcher)
            .arg("--cli")
            .arg("-e")
            .arg(format!("{RUN_MARKER}={marker}"))
            .args(options)
            .arg("--")
            .args(server.argv())
            .env(RUN_MARKER, marker)
            .env("HOME", home)
            .env("MCP_CATALOG_PATH", home.join("mcp.json"))
            .env("MCP_CLIENT_CONFIG_PATH", home.join("client.json"))
            .env("NO_COLOR", "1");
        command
    }

    /// The temporary home directory it runs with.
    pub fn home(&self) -> &Path {
        self.home.path()
    }
}

/// The installed directory of an npm package from `interop/package.json`, checked against
/// its pinned version.
fn installed_npm_package(name: &str) -> PathBuf {
    let pin = pinned_npm_version(name);
    let dir = interop_dir().join("node_modules").join(name);
    let manifest = existing(dir.join("package.json"));
    let installed = read_json(&manifest)["version"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        installed == pin,
        "{name} {installed} is installed but {pin} is pinned; {INSTALL_HINT}"
    );
    dir
}

fn pinned_npm_version(name: &str) -> String {
    let manifest = existing(interop_dir().join("package.json"));
    read_json(&manifest)["dependencies"][name]
        .as_str()
        .unwrap_or_else(|| panic!("interop/package.json does not pin {name}"))
        .to_owned()
}

fn pinned_python_version(name: &str) -> String {
    let requirements = existing(interop_dir().join("requirements-mcp1.txt"));
    let text = fs::read_to_string(&requirements)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", requirements.display()));
    let prefix = format!("{name}==");
    text.lines()
        .find_map(|line| line.trim().strip_prefix(&prefix))
        .map(|version| version.trim().to_owned())
        .unwrap_or_else(|| panic!("interop/requirements-mcp1.txt does not pin {name}"))
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

/// `path` itself, or a panic that says the interop peers are not installed.
pub(crate) fn existing(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: the interop peers are not installed; {INSTALL_HINT}",
        path.display()
    );
    path
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_repository_and_the_pins() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(interop_dir().join("package.json").is_file());
        assert_eq!(pinned_python_version("mcp").split('.').next(), Some("1"));
        assert!(!pinned_npm_version(SERVER_EVERYTHING).is_empty());
        assert!(!pinned_npm_version(INSPECTOR).is_empty());
    }

    #[test]
    fn a_missing_file_names_the_install_script() {
        let panic = std::panic::catch_unwind(|| existing(interop_dir().join("no-such-file")))
            .expect_err("a missing file panics");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains(INSTALL_HINT), "{message}");
    }

    #[test]
    fn the_inspector_gets_options_before_the_separator() {
        let inspector = InspectorCli {
            node: PathBuf::from("node"),
            launcher: PathBuf::from("launcher.js"),
            home: TempDir::new().expect("temporary directory"),
        };
        let server = CommandLine::new("proxy").args(["forward", "stdio", "--", "server"]);
        let command = inspector.command(["--method", "tools/list"], &server);
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
        let marker = args[3].clone();
        assert!(marker.starts_with("SHADOWCAT_TEST_RUN="), "{args:?}");
        assert_eq!(
            args,
            [
                "launcher.js",
                "--cli",
                "-e",
                &marker,
                "--method",
                "tools/list",
                "--",
                "proxy",
                "forward",
                "stdio",
                "--",
                "server"
            ]
        );
    }
}
