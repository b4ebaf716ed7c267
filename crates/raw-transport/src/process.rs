//! Child processes: spawned in their own process group, stderr forwarded to the log, the
//! whole group stopped on shutdown, the exit status reported.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// The write end of a child's stdin.
pub type ChildStdin = tokio::process::ChildStdin;
/// The read end of a child's stdout.
pub type ChildStdout = tokio::process::ChildStdout;

/// A command to run: program, arguments, extra environment and working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandSpec {
    /// The program (looked up in `PATH` when it has no slash).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Variables added to the inherited environment.
    pub env: Vec<(OsString, OsString)>,
    /// The working directory, when not the current one.
    pub cwd: Option<std::path::PathBuf>,
}

impl CommandSpec {
    /// A command with no arguments.
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command line, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildExit {
    status: ExitStatus,
    /// Whether we had to stop it with a signal.
    forced: bool,
}

impl ChildExit {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Its exit code, when it exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that ended it, when one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Whether Shadowcat stopped it with SIGTERM or SIGKILL after the grace period.
    pub fn forced(&self) -> bool {
        self.forced
    }

    /// The raw status.
    pub fn status(&self) -> ExitStatus {
        self.status
    }
}

impl fmt::Display for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => write!(f, "exited with status {code}"),
            (None, Some(sig)) => {
                let name = Signal::try_from(sig).map_or("unknown signal", Signal::as_str);
                write!(f, "was killed by signal {sig} ({name})")
            }
            (None, None) => write!(f, "ended ({})", self.status),
        }
    }
}

/// A running child process in its own process group.
///
/// Dropping it kills the whole group (SIGKILL) if the child has not been waited for, so no
/// process outlives its owner.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    pgid: Option<Pid>,
    command: String,
    stderr: Option<JoinHandle<()>>,
    exit: Option<ChildExit>,
}

impl ChildProcess {
    /// Starts `spec` with piped stdin and stdout; each line it writes to stderr is logged
    /// (target `shadowcat::server_stderr`, level info).
    pub fn spawn(spec: &CommandSpec) -> Result<(Self, ChildStdin, ChildStdout)> {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        let command = spec.display();
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().map(|err| {
            let pid = pgid.map_or(0, Pid::as_raw);
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(target: "shadowcat::server_stderr", pid, "{line}");
                }
            })
        });
        tracing::debug!(pid = pgid.map(Pid::as_raw), %command, "started server process");
        Ok((
            Self {
                child,
                pgid,
                command,
                stderr,
                exit: None,
            },
            stdin,
            stdout,
        ))
    }

    /// The command line it runs.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its process id (also its process group id), while it runs.
    pub fn id(&self) -> Option<u32> {
        self.pgid.map(|p| p.as_raw().unsigned_abs())
    }

    /// Waits for it to exit by itself.
    pub async fn wait(&mut self) -> Result<ChildExit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let status = self
            .child
            .wait()
            .await
            .map_err(Error::io("waiting for the server process"))?;
        Ok(self.finished(status, false).await)
    }

    /// Stops it: waits up to `grace` for it to exit by itself (its stdin should be closed
    /// first), then sends SIGTERM to its process group and waits `term_grace`, then SIGKILL.
    /// When `hurry` completes (the proxy itself is being terminated), the wait under way is
    /// cut short: during the first, SIGTERM goes out at once (and `term_grace` still
    /// applies); during the second, SIGKILL does. The rest of the process group is killed in
    /// any case.
    pub async fn shutdown(
        &mut self,
        grace: Duration,
        term_grace: Duration,
        hurry: impl Future<Output = ()>,
    ) -> Result<ChildExit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        tokio::pin!(hurry);
        let mut hurried = false;
        let waited = tokio::select! {
            status = self.child.wait() => Some(status),
            () = tokio::time::sleep(grace) => None,
            () = &mut hurry => { hurried = true; None }
        };
        if let Some(status) = waited {
            let status = status.map_err(Error::io("waiting for the server process"))?;
            return Ok(self.finished(status, false).await);
        }
        tracing::debug!(command = %self.command, "server did not exit; sending SIGTERM");
        self.signal_group(Signal::SIGTERM);
        let waited = tokio::select! {
            status = self.child.wait() => Some(status),
            () = tokio::time::sleep(term_grace) => None,
            () = &mut hurry, if !hurried => None,
        };
        if let Some(status) = waited {
            let status = status.map_err(Error::io("waiting for the server process"))?;
            return Ok(self.finished(status, true).await);
        }
        tracing::warn!(command = %self.command, "server did not stop on SIGTERM; sending SIGKILL");
        self.signal_group(Signal::SIGKILL);
        let status = self
            .child
            .wait()
            .await
            .map_err(Error::io("waiting for the server process"))?;
        Ok(self.finished(status, true).await)
    }

    async fn finished(&mut self, status: ExitStatus, forced: bool) -> ChildExit {
        // Leftover members of the group (a shell's children, say) go with their leader.
        self.signal_group(Signal::SIGKILL);
        self.pgid = None;
        if let Some(task) = self.stderr.take() {
            // Let the last stderr lines reach the log, but never hang on a grandchild that
            // kept the pipe open.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_millis(500), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let exit = ChildExit { status, forced };
        self.exit = Some(exit);
        exit
    }

    fn signal_group(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (the group is already gone) is fine.
            let _ = killpg(pgid, signal);
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.signal_group(Signal::SIGKILL);
        if let Some(task) = self.stderr.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn pipes_and_clean_exit() {
        let (mut child, mut stdin, mut stdout) =
            ChildProcess::spawn(&CommandSpec::new("cat")).unwrap();
        stdin.write_all(b"hello\n").await.unwrap();
        drop(stdin);
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello\n");
        let exit = child
            .shutdown(
                Duration::from_secs(5),
                Duration::from_secs(1),
                std::future::pending(),
            )
            .await
            .unwrap();
        assert!(exit.success() && !exit.forced());
        assert_eq!(exit.to_string(), "exited with status 0");
    }

    #[tokio::test]
    async fn reports_exit_codes_and_signals() {
        let spec = CommandSpec::new("sh").args(["-c", "exit 3"]);
        let (mut child, _i, _o) = ChildProcess::spawn(&spec).unwrap();
        let exit = child.wait().await.unwrap();
        assert_eq!(exit.code(), Some(3));
        let spec = CommandSpec::new("sh").args(["-c", "kill -9 $$"]);
        let (mut child, _i, _o) = ChildProcess::spawn(&spec).unwrap();
        let exit = child.wait().await.unwrap();
        assert_eq!(exit.signal(), Some(9));
        assert_eq!(exit.to_string(), "was killed by signal 9 (SIGKILL)");
    }

    #[tokio::test]
    async fn shutdown_escalates_and_kills_the_whole_group() {
        // A shell that ignores SIGTERM and has a grandchild holding on.
        let spec = CommandSpec::new("sh").args(["-c", "trap '' TERM; sleep 300 & echo $!; wait"]);
        let (mut child, _stdin, mut stdout) = ChildProcess::spawn(&spec).unwrap();
        let mut line = String::new();
        let mut reader = BufReader::new(&mut stdout);
        reader.read_line(&mut line).await.unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        let exit = child
            .shutdown(
                Duration::from_millis(200),
                Duration::from_millis(200),
                std::future::pending(),
            )
            .await
            .unwrap();
        assert!(exit.forced());
        assert_eq!(exit.signal(), Some(9));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let alive = nix::sys::signal::kill(Pid::from_raw(grandchild), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "grandchild {grandchild} survived");
    }

    #[tokio::test]
    async fn hurry_cuts_the_grace_short() {
        let spec = CommandSpec::new("sh").args(["-c", "trap '' TERM; while :; do sleep 1; done"]);
        let (mut child, _stdin, _stdout) = ChildProcess::spawn(&spec).unwrap();
        let started = std::time::Instant::now();
        let hurry = tokio::time::sleep(Duration::from_millis(100));
        let exit = child
            .shutdown(Duration::from_secs(30), Duration::from_millis(200), hurry)
            .await
            .unwrap();
        assert_eq!(exit.signal(), Some(9));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn spawn_failure_names_the_command() {
        let err = ChildProcess::spawn(&CommandSpec::new("/nonexistent/server")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot start `/nonexistent/server`"),
            "{err}"
        );
    }
}
