//! Running a child process with a time limit and capturing what it wrote.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// How long the output pipes may stay open after the process itself has ended, before the
/// rest of its process group is killed.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// How often the process is polled for its exit.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// What a process run by [`run_with_timeout`] did.
#[derive(Debug)]
pub struct ProcessOutput {
    /// The program and its arguments, for messages.
    pub command_line: String,
    /// How the process ended (a kill signal when it ran into the time limit).
    pub status: ExitStatus,
    /// Everything it wrote to stdout, decoded lossily as UTF-8.
    pub stdout: String,
    /// Everything it wrote to stderr, decoded lossily as UTF-8.
    pub stderr: String,
    /// From the start until the process ended.
    pub elapsed: Duration,
    /// Whether the process was killed because it ran into the time limit.
    pub timed_out: bool,
    /// Whether processes it started were still running in its process group after it
    /// ended (holding its output open or not); they were then killed.
    pub left_processes_behind: bool,
}

impl ProcessOutput {
    /// Whether the process ended by itself, in time, with exit status 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// The non-empty lines of stdout, trimmed.
    pub fn stdout_lines(&self) -> impl Iterator<Item = &str> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
    }
}

impl fmt::Display for ProcessOutput {
    /// A report for assertion messages: the command, how it ended, and both outputs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ", self.command_line)?;
        if self.timed_out {
            write!(f, "was killed at the time limit after {:.1?}", self.elapsed)?;
        } else {
            write!(f, "ended with {} after {:.1?}", self.status, self.elapsed)?;
        }
        if self.left_processes_behind {
            write!(f, " (processes it started outlived it and were killed)")?;
        }
        write!(
            f,
            "\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
            abbreviated(self.stdout.trim_end()),
            abbreviated(self.stderr.trim_end())
        )
    }
}

/// How much of each output a report shows, half from the start and half from the end.
const REPORT_LIMIT: usize = 8 * 1024;

/// `text`, or its start and end with the middle left out when it is longer than the limit.
fn abbreviated(text: &str) -> Cow<'_, str> {
    if text.len() <= REPORT_LIMIT {
        return Cow::Borrowed(text);
    }
    let head = text.floor_char_boundary(REPORT_LIMIT / 2);
    let tail = text.ceil_char_boundary(text.len() - REPORT_LIMIT / 2);
    Cow::Owned(format!(
        "{}\n[… {} bytes left out …]\n{}",
        &text[..head],
        tail - head,
        &text[tail..]
    ))
}

/// The environment variable that marks the processes of one run, so that those that left
/// its process group (a proxy that starts its server in a group of its own) are found too.
pub(crate) const RUN_MARKER: &str = "SHADOWCAT_TEST_RUN";

/// A value of [`RUN_MARKER`] that no other run uses.
pub(crate) fn new_run_marker() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `command` until it ends or `timeout` passes, and returns what it did.
///
/// Stdin is the null device; stdout and stderr are captured. The process leads a process
/// group of its own and gets the environment variable `SHADOWCAT_TEST_RUN` (unless the
/// command already sets it), which its descendants inherit unless they clear their
/// environment. At the time limit the group and every process carrying that variable are
/// killed (SIGKILL). Such processes still running after it ended by itself are killed too,
/// and reported in [`ProcessOutput::left_processes_behind`]. Output written before a kill
/// is kept.
///
/// # Panics
///
/// When the program cannot be started.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
///
/// let out = shadowcat_test_support::run_with_timeout(
///     Command::new("sh").args(["-c", "echo hi; echo oops >&2"]),
///     Duration::from_secs(10),
/// );
/// assert!(out.success(), "{out}");
/// assert_eq!(out.stdout, "hi\n");
/// assert_eq!(out.stderr, "oops\n");
/// ```
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> ProcessOutput {
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
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start `{command_line}`: {error}"));
    let run = Run {
        group: i32::try_from(child.id())
            .map(Pid::from_raw)
            .expect("process ids fit in pid_t"),
        marker,
    };

    let (closed_tx, closed_rx) = mpsc::channel();
    let stdout = Captured::start(child.stdout.take(), closed_tx.clone());
    let stderr = Captured::start(child.stderr.take(), closed_tx);

    let deadline = started + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                run.kill(&run.leftovers());
                break child.wait().expect("waiting for a killed child");
            }
            Ok(None) => thread::sleep(POLL_INTERVAL),
            Err(error) => panic!("cannot wait for `{command_line}`: {error}"),
        }
    };
    let elapsed = started.elapsed();

    let mut open_pipes = 2;
    let pipes_closed = wait_closed(&closed_rx, &mut open_pipes, PIPE_GRACE);
    let leftovers = run.leftovers();
    let left_processes_behind = !timed_out && (!pipes_closed || !leftovers.is_empty());
    run.kill(&leftovers);
    if !pipes_closed {
        // Whatever still holds the pipes escaped both marks; keep what arrived.
        wait_closed(&closed_rx, &mut open_pipes, Duration::from_secs(1));
    }

    ProcessOutput {
        command_line,
        status,
        stdout: stdout.text(),
        stderr: stderr.text(),
        elapsed,
        timed_out,
        left_processes_behind,
    }
}

/// The marks of one run's processes: its process group and its [`RUN_MARKER`] value.
pub(crate) struct Run {
    pub(crate) group: Pid,
    pub(crate) marker: String,
}

impl Run {
    /// The running processes (zombies excluded) in the group or carrying the marker.
    pub(crate) fn leftovers(&self) -> Vec<Pid> {
        let Ok(entries) = fs::read_dir("/proc") else {
            // No procfs: signal 0 tells whether anything of the group is left.
            return if killpg(self.group, None).is_ok() {
                vec![self.group]
            } else {
                Vec::new()
            };
        };
        let marker = format!("{RUN_MARKER}={}", self.marker);
        let own = std::process::id().to_string();
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| pid.to_string() != own)
            .filter(|&pid| {
                let dir = format!("/proc/{pid}");
                let stat = fs::read_to_string(format!("{dir}/stat")).unwrap_or_default();
                // `pid (comm) state ppid pgrp …`, where comm may hold spaces and parentheses.
                let mut fields = stat
                    .rsplit_once(')')
                    .map_or("", |(_, rest)| rest)
                    .split_whitespace();
                let running = fields
                    .next()
                    .is_some_and(|state| state != "Z" && state != "X");
                let in_group = fields.nth(1) == Some(self.group.as_raw().to_string().as_str());
                running
                    && (in_group
                        || fs::read(format!("{dir}/environ"))
                            .unwrap_or_default()
                            .split(|&byte| byte == 0)
                            .any(|entry| entry == marker.as_bytes()))
            })
            .map(Pid::from_raw)
            .collect()
    }

    /// Kills the group and `processes` (SIGKILL); those already gone are fine.
    pub(crate) fn kill(&self, processes: &[Pid]) {
        let _ = killpg(self.group, Signal::SIGKILL);
        for &pid in processes {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

/// The bytes read so far from one output pipe, filled by a reader thread.
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Reads `pipe` on a thread until end of file, then sends on `closed`.
    pub(crate) fn start<R: Read + Send + 'static>(
        pipe: Option<R>,
        closed: mpsc::Sender<()>,
    ) -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&chunk[..n]);
                }
            }
            // The receiver may be gone when the caller gave up waiting.
            let _ = closed.send(());
        });
        Self(buffer)
    }

    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Waits until the `open` pipes reported end of file, counting them down; false when
/// `limit` passed first.
fn wait_closed(closed: &Receiver<()>, open: &mut usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while *open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if closed.recv_timeout(left).is_err() {
            return false;
        }
        *open -= 1;
    }
    true
}

pub(crate) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> ProcessOutput {
        run_with_timeout(Command::new("sh").args(["-c", script]), timeout)
    }

    #[test]
    fn captures_both_outputs_and_the_status() {
        let out = sh("echo out; echo err >&2; exit 3", Duration::from_secs(10));
        assert!(!out.success());
        assert!(!out.timed_out);
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert!(out.to_string().contains("--- stderr ---\nerr"), "{out}");
    }

    #[test]
    fn a_report_leaves_out_the_middle_of_a_long_output() {
        let out = sh(
            "printf 'é%.0s' $(seq 10000); echo end",
            Duration::from_secs(10),
        );
        assert!(out.success(), "{out}");
        assert_eq!(out.stdout.len(), 20_004);
        let report = out.to_string();
        assert!(report.contains("bytes left out"), "{report}");
        assert!(report.contains("end\n--- stderr ---"), "{report}");
        assert!(report.len() < 9 * 1024, "{}", report.len());
    }

    #[test]
    fn stdin_is_empty() {
        let out = run_with_timeout(&mut Command::new("cat"), Duration::from_secs(10));
        assert!(out.success(), "{out}");
        assert_eq!(out.stdout, "");
    }

    #[test]
    fn kills_the_whole_group_at_the_time_limit_and_keeps_earlier_output() {
        let out = sh(
            "echo before; sleep 30 & sleep 30",
            Duration::from_millis(300),
        );
        assert!(out.timed_out, "{out}");
        assert!(!out.success());
        assert!(!out.left_processes_behind, "{out}");
        assert!(out.elapsed < Duration::from_secs(5), "{out}");
        assert_eq!(out.stdout, "before\n");
    }

    #[test]
    fn kills_a_grandchild_that_holds_the_pipes_after_the_process_ended() {
        let started = Instant::now();
        let out = sh("sleep 30 & echo done", Duration::from_secs(10));
        assert!(out.success(), "{out}");
        assert!(out.left_processes_behind, "{out}");
        assert_eq!(out.stdout, "done\n");
        assert!(started.elapsed() < Duration::from_secs(10), "{out}");
    }

    #[test]
    fn kills_a_grandchild_left_behind_without_the_pipes() {
        let out = sh(
            "sleep 30 >/dev/null 2>&1 & echo done",
            Duration::from_secs(10),
        );
        assert!(out.left_processes_behind, "{out}");
        assert!(out.elapsed < Duration::from_secs(5), "{out}");
        assert_eq!(out.stdout, "done\n");
    }

    #[test]
    fn finds_a_grandchild_that_left_the_process_group() {
        // `setsid` puts the sleep in a session and group of its own.
        let out = sh(
            "setsid sleep 30 >/dev/null 2>&1 </dev/null & sleep 0.2; echo done",
            Duration::from_secs(10),
        );
        assert!(out.left_processes_behind, "{out}");
        assert!(out.elapsed < Duration::from_secs(5), "{out}");
    }

    #[test]
    fn a_process_that_waits_for_its_children_leaves_nothing_behind() {
        let out = sh("sleep 0.1 & wait; echo done", Duration::from_secs(10));
        assert!(out.success(), "{out}");
        assert!(!out.left_processes_behind, "{out}");
    }

    #[test]
    fn names_the_program_that_cannot_start() {
        let panic = std::panic::catch_unwind(|| {
            run_with_timeout(
                &mut Command::new("/nonexistent/shadowcat-test-program"),
                Duration::from_secs(1),
            )
        })
        .expect_err("spawning a missing program panics");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("/nonexistent/shadowcat-test-program"),
            "{message}"
        );
    }
}
