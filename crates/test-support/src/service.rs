//! Long-running processes a test starts in the background (servers, proxies), stopped when the
//! test is done with them, whether it passed or not.

use std::fmt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::process::{Captured, RUN_MARKER, Run, describe, new_run_marker};

/// How often a background process is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a dropped [`Service`] gets between SIGTERM and SIGKILL.
const DROP_GRACE: Duration = Duration::from_secs(5);

/// How long the processes a service started may outlive it before they count as left behind.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// A process running in the background: a server or a proxy that tests talk to.
///
/// Stdin is the null device; stdout and stderr are captured and can be read at any time. The
/// process leads a process group of its own and carries the environment variable
/// `SHADOWCAT_TEST_RUN`, so that everything it starts is found and killed when it stops.
/// Dropping a `Service` stops it (SIGTERM, then SIGKILL after 5 s), so a failing test leaves
/// nothing running.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// use shadowcat_test_support::Service;
///
/// let script = "echo ready >&2; exec sleep 30";
/// let mut service = Service::start(Command::new("sh").args(["-c", script]));
/// service
///     .wait_for_stderr(Duration::from_secs(10), |line| (line == "ready").then_some(()))
///     .unwrap();
/// let stopped = service.stop(Duration::from_secs(5));
/// assert!(!stopped.forced, "sleep stops on SIGTERM");
/// assert!(!stopped.left_processes_behind);
/// ```
pub struct Service {
    command_line: String,
    child: Child,
    run: Run,
    stdout: Captured,
    stderr: Captured,
    stopped: Option<Stopped>,
}

/// How a [`Service`] ended when it was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Its exit status.
    pub status: ExitStatus,
    /// Whether it had ended by itself before it was asked to stop.
    pub exited_early: bool,
    /// Whether it ignored SIGTERM for the whole grace period and was killed.
    pub forced: bool,
    /// Whether processes it started were still running after it ended (they were killed).
    pub left_processes_behind: bool,
}

impl Service {
    /// Starts `command` in the background.
    ///
    /// # Panics
    ///
    /// When the program cannot be started.
    pub fn start(command: &mut Command) -> Self {
        let command_line = describe(command);
        let marker = command
            .get_envs()
            .find(|(key, _)| *key == RUN_MARKER)
            .and_then(|(_, value)| value)
            .map(|value| value.to_string_lossy().into_owned())
            .unwrap_or_else(new_run_marker);
        command
            .env(RUN_MARKER, &marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start `{command_line}`: {error}"));
        let run = Run {
            group: pid_of(&child),
            marker,
        };
        // Nothing waits for the pipes to close: the stop logic looks for processes instead.
        let (closed, _) = mpsc::channel();
        let stdout = Captured::start(child.stdout.take(), closed.clone());
        let stderr = Captured::start(child.stderr.take(), closed);
        Self {
            command_line,
            child,
            run,
            stdout,
            stderr,
            stopped: None,
        }
    }

    /// Waits until `find` returns `Some` for a line the process wrote to stderr (complete
    /// lines only, from the first one on), and returns that.
    ///
    /// # Errors
    ///
    /// A report with the process's output when it ended, or `timeout` passed, first.
    pub fn wait_for_stderr<T>(
        &mut self,
        timeout: Duration,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.stderr.text();
            let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
            if let Some(found) = complete.lines().find_map(|line| find(line.trim_end())) {
                return Ok(found);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads catch up with what it wrote last.
                thread::sleep(Duration::from_millis(100));
                let text = self.stderr.text();
                if let Some(found) = text.lines().find_map(|line| find(line.trim_end())) {
                    return Ok(found);
                }
                return Err(format!("{self} ended with {status} before it was ready"));
            }
            if Instant::now() >= deadline {
                return Err(format!("{self} was not ready after {timeout:.1?}"));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Everything it wrote to stderr so far, decoded lossily as UTF-8.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Everything it wrote to stdout so far, decoded lossily as UTF-8.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// The last `lines` lines it wrote to stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr.text(), lines)
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status when it has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The processes it started (children and their descendants) that are running now.
    pub fn descendants(&self) -> Vec<u32> {
        let own = self.child.id();
        self.run
            .leftovers()
            .into_iter()
            .filter_map(|pid| u32::try_from(pid.as_raw()).ok())
            .filter(|&pid| pid != own)
            .collect()
    }

    /// Stops it: SIGTERM to the process itself (not its group: taking down what it started
    /// is its own job), then SIGKILL to its process group and everything carrying its mark
    /// when it is still running after `grace`. Whatever it started and is still running 2 s after it ended is killed too.
    /// Stopping again returns the first answer.
    pub fn stop(&mut self, grace: Duration) -> Stopped {
        if let Some(stopped) = self.stopped {
            return stopped;
        }
        let exited_early = matches!(self.child.try_wait(), Ok(Some(_)));
        let mut forced = false;
        if !exited_early {
            let _ = kill(self.run.group, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(POLL_INTERVAL);
            }
            if matches!(self.child.try_wait(), Ok(None)) {
                forced = true;
                self.run.kill(&self.run.leftovers());
            }
        }
        let status = self.child.wait().expect("waiting for a background process");
        let deadline = Instant::now() + LEFTOVER_GRACE;
        let mut leftovers = self.run.leftovers();
        while !leftovers.is_empty() && Instant::now() < deadline {
            thread::sleep(POLL_INTERVAL);
            leftovers = self.run.leftovers();
        }
        self.run.kill(&leftovers);
        let stopped = Stopped {
            status,
            exited_early,
            forced,
            left_processes_behind: !leftovers.is_empty(),
        };
        self.stopped = Some(stopped);
        stopped
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop(DROP_GRACE);
    }
}

impl fmt::Display for Service {
    /// The command line and the end of its stderr, for assertion messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {})\n--- last lines of its stderr ---\n{}\n--- end ---",
            self.command_line,
            self.child.id(),
            self.stderr_tail(40)
        )
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("command_line", &self.command_line)
            .field("pid", &self.child.id())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn pid_of(child: &Child) -> Pid {
    i32::try_from(child.id())
        .map(Pid::from_raw)
        .expect("process ids fit in pid_t")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Service {
        Service::start(Command::new("sh").args(["-c", script]))
    }

    #[test]
    fn finds_a_line_on_stderr_and_stops_on_sigterm() {
        let mut service = sh("echo one >&2; echo 'port 42' >&2; exec sleep 30");
        let port = service
            .wait_for_stderr(Duration::from_secs(10), |line| {
                line.strip_prefix("port ").map(str::to_owned)
            })
            .unwrap();
        assert_eq!(port, "42");
        let stopped = service.stop(Duration::from_secs(5));
        assert!(!stopped.exited_early && !stopped.forced, "{stopped:?}");
        assert!(!stopped.left_processes_behind, "{stopped:?}");
        assert_eq!(service.stop(Duration::ZERO), stopped);
    }

    #[test]
    fn reports_a_process_that_ends_before_it_is_ready() {
        let mut service = sh("echo 'cannot bind' >&2; exit 3");
        let error = service
            .wait_for_stderr(Duration::from_secs(10), |line| {
                line.contains("listening").then_some(())
            })
            .unwrap_err();
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("cannot bind"), "{error}");
        assert!(service.stop(Duration::from_secs(1)).exited_early);
    }

    #[test]
    fn times_out_waiting_for_a_line() {
        let mut service = sh("echo partial >&2; exec sleep 30");
        let error = service
            .wait_for_stderr(Duration::from_millis(200), |_| None::<()>)
            .unwrap_err();
        assert!(error.contains("not ready"), "{error}");
        assert!(error.contains("partial"), "{error}");
    }

    #[test]
    fn kills_what_ignores_sigterm() {
        let mut service = sh("trap '' TERM; echo started >&2; while :; do sleep 0.1; done");
        service
            .wait_for_stderr(Duration::from_secs(10), |line| {
                (line == "started").then_some(())
            })
            .unwrap();
        let stopped = service.stop(Duration::from_millis(300));
        assert!(stopped.forced, "{stopped:?}");
        assert_gone(&service);
    }

    #[test]
    fn kills_and_reports_what_it_left_behind() {
        // `setsid` takes the sleep out of the process group: only the mark finds it.
        let mut service = sh("setsid sleep 30 >/dev/null 2>&1 </dev/null & \
             echo started >&2; exec sleep 30");
        service
            .wait_for_stderr(Duration::from_secs(10), |line| {
                (line == "started").then_some(())
            })
            .unwrap();
        assert_eq!(service.descendants().len(), 1, "{service}");
        let stopped = service.stop(Duration::from_secs(5));
        assert!(!stopped.forced, "{stopped:?}");
        assert!(stopped.left_processes_behind, "{stopped:?}");
        assert_gone(&service);
    }

    /// A killed process leaves `/proc` a moment after the signal: wait for that (bounded).
    fn assert_gone(service: &Service) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !service.descendants().is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(service.descendants(), Vec::<u32>::new(), "{service}");
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a");
        assert_eq!(tail("", 5), "");
    }
}
