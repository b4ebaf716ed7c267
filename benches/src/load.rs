//! The stdio load generator: spawns a target MCP server (or a proxy in front of one), does the
//! handshake, then keeps exactly `in_flight` echo `tools/call` requests outstanding until a
//! fixed number has been answered, checking every answer and timing every request.
//!
//! A writer thread sends a request for every credit; a reader thread checks each answer,
//! records its latency (send to receipt) and returns the credit. The calling thread watches
//! for progress, a failed thread or a dead target.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use shadowcat_mcp::{DEFAULT_MAX_LINE, LineDecoder, Message, MessageKind, ProtocolVersion};

use crate::answer::{check_answer, check_initialize};
use crate::fixtures;
use crate::{Error, LatencySummary, Result};

/// `sent_at` value of an answered request.
const ANSWERED: u64 = u64::MAX;
/// How long a target may take to exit once its stdin is closed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// One load run: what to start and how hard to drive it.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The target: program and arguments.
    pub command: Vec<OsString>,
    /// Requests kept outstanding at all times.
    pub in_flight: usize,
    /// Requests measured, after the warm-up.
    pub requests: u64,
    /// Requests sent and checked but not measured.
    pub warmup: u64,
    /// The CPU to pin the target to (with `taskset`), if any.
    pub target_cpu: Option<usize>,
    /// How long without any answer before the run fails.
    pub timeout: Duration,
    /// Environment variables set for the target, on top of this process's.
    pub env: Vec<(OsString, OsString)>,
}

impl LoadConfig {
    /// A run of `command` with 16 in flight, 200,000 requests after 20,000 of warm-up, a 10 s
    /// timeout and no pinning.
    pub fn new(command: Vec<OsString>) -> Self {
        Self {
            command,
            in_flight: 16,
            requests: 200_000,
            warmup: 20_000,
            target_cpu: None,
            timeout: Duration::from_secs(10),
            env: Vec::new(),
        }
    }
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Requests kept outstanding.
    pub in_flight: usize,
    /// Requests measured.
    pub requests: u64,
    /// Requests in the warm-up.
    pub warmup: u64,
    /// From the last warm-up answer to the last answer.
    pub elapsed: Duration,
    /// Measured requests per second.
    pub rate: f64,
    /// Per-request latency of the measured requests.
    pub latency: LatencySummary,
}

impl LoadReport {
    /// The report as one JSON object, labelled with `target`.
    pub fn to_json(&self, target: &str) -> String {
        let mut out = String::from("{\"target\":");
        out.push_str(&serde_json::to_string(target).expect("a string always serializes"));
        write!(
            out,
            r#","in_flight":{},"requests":{},"warmup":{},"elapsed_s":{:.3},"rate":{:.0},{}}}"#,
            self.in_flight,
            self.requests,
            self.warmup,
            self.elapsed.as_secs_f64(),
            self.rate,
            self.latency.json_members()
        )
        .expect("writing to a String cannot fail");
        out
    }
}

/// The 16-byte message sent to the echo tool in request `id`.
pub fn echo_message(id: u64) -> String {
    String::from_utf8(message_bytes(id).to_vec()).expect("the message is ASCII")
}

/// `echo-` and the id as 11 digits.
pub(crate) fn message_bytes(id: u64) -> [u8; 16] {
    let mut message = *b"echo-00000000000";
    let mut n = id;
    for digit in message[5..].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    message
}

/// Pins this process (all its threads) to one CPU with `taskset`.
pub fn pin_current_process(cpu: usize) -> Result<()> {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-c",
            "-p",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .map_err(|source| Error::Spawn {
            command: "taskset".into(),
            source,
        })?;
    if !status.success() {
        return Err(Error::Usage(format!(
            "taskset failed to pin to CPU {cpu}: {status}"
        )));
    }
    Ok(())
}

/// State shared by the writer, the reader and the watchdog.
struct Shared {
    epoch: Instant,
    /// Per id: when the request was sent (ns since `epoch`, plus one), 0 before, or ANSWERED.
    sent_at: Box<[AtomicU64]>,
    /// Requests that may be sent now.
    credits: Mutex<u64>,
    credit_returned: Condvar,
    /// Answers received, the handshake included.
    answered: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _credits = self.credits.lock().unwrap_or_else(PoisonError::into_inner);
        self.credit_returned.notify_all();
    }
}

/// What the threads report to the watchdog.
enum Event {
    Handshake(Result<()>),
    Answers(Result<Measured>),
    Sent(Result<()>),
}

/// What the reader measured.
struct Measured {
    latencies: Vec<u64>,
    window: Duration,
}

/// A running target, killed when dropped unless it has exited.
struct Target {
    child: Child,
    name: String,
}

impl Target {
    fn spawn(config: &LoadConfig) -> Result<Self> {
        let name = config
            .command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let (program, args) = config
            .command
            .split_first()
            .ok_or_else(|| Error::Usage("no target command given".into()))?;
        let mut command = match config.target_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(program);
                c
            }
            None => Command::new(program),
        };
        let child = command
            .args(args)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| Error::Spawn {
                command: name.clone(),
                source,
            })?;
        Ok(Self { child, name })
    }

    /// How the target ended, if it has.
    fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status ({e})")),
        }
    }

    /// Waits up to `grace` for the target to exit.
    fn wait_exit(&mut self, grace: Duration) -> Option<String> {
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Adds how the target ended, if it has, to an error about it.
    fn explain(&mut self, error: Error) -> Error {
        match (error, self.wait_exit(Duration::from_millis(300))) {
            (Error::TargetGone(what), Some(status)) => {
                Error::TargetGone(format!("{what} (it exited: {status})"))
            }
            (Error::Io { context, source }, Some(status)) => {
                Error::TargetGone(format!("exited ({status}); {context}: {source}"))
            }
            (error, _) => error,
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl LoadConfig {
    /// Runs the load against a fresh instance of the target and checks every answer.
    pub fn run(&self) -> Result<LoadReport> {
        if self.in_flight == 0 {
            return Err(Error::Usage("--in-flight must be at least 1".into()));
        }
        let total = self.warmup + self.requests;
        let mut target = Target::spawn(self)?;
        let mut stdin = target.child.stdin.take().expect("stdin is piped");
        let stdout = target.child.stdout.take().expect("stdout is piped");
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            sent_at: (0..=total).map(|_| AtomicU64::new(0)).collect(),
            credits: Mutex::new(self.in_flight as u64),
            credit_returned: Condvar::new(),
            answered: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let (events, watch) = mpsc::channel();
        let reader = {
            let (shared, events, warmup) = (Arc::clone(&shared), events.clone(), self.warmup);
            thread::Builder::new()
                .name("bench-reader".into())
                .spawn(move || read_answers(&shared, stdout, warmup, &events))
                .map_err(Error::io("starting the reader thread"))?
        };
        let outcome = self.drive(&mut target, &shared, &mut stdin, events, &watch);
        shared.stop();
        let outcome = outcome.map_err(|e| target.explain(e));
        drop(stdin);
        let measured = outcome?;
        if reader.join().is_err() {
            return Err(Error::Internal("the reader thread panicked".into()));
        }
        if target.wait_exit(EXIT_GRACE).is_none() {
            eprintln!(
                "bench-load: warning: {} did not exit within {} s of its stdin closing",
                target.name,
                EXIT_GRACE.as_secs()
            );
        }
        let mut latencies = measured.latencies;
        let rate = self.requests as f64 / measured.window.as_secs_f64().max(1e-9);
        Ok(LoadReport {
            in_flight: self.in_flight,
            requests: self.requests,
            warmup: self.warmup,
            elapsed: measured.window,
            rate,
            latency: LatencySummary::from_nanos(&mut latencies),
        })
    }

    /// Handshake, then load; returns what the reader measured.
    fn drive(
        &self,
        target: &mut Target,
        shared: &Arc<Shared>,
        stdin: &mut ChildStdin,
        events: Sender<Event>,
        watch: &Receiver<Event>,
    ) -> Result<Measured> {
        let mut hello =
            fixtures::initialize_request(0, ProtocolVersion::LATEST_SESSION_ERA.as_str());
        hello.push(b'\n');
        stdin
            .write_all(&hello)
            .map_err(Error::io("sending initialize"))?;
        match self.watch(target, shared, watch)? {
            Event::Handshake(result) => result?,
            _ => return Err(Error::Mismatch("answers before the handshake".into())),
        }
        let mut initialized = fixtures::initialized_notification();
        initialized.push(b'\n');
        stdin
            .write_all(&initialized)
            .map_err(Error::io("sending notifications/initialized"))?;
        let writer = {
            let shared = Arc::clone(shared);
            let mut stdin = writer_handle(stdin)?;
            let total = self.warmup + self.requests;
            thread::Builder::new()
                .name("bench-writer".into())
                .spawn(move || {
                    let sent = send_requests(&shared, &mut stdin, total);
                    let _ = events.send(Event::Sent(sent));
                    stdin
                })
                .map_err(Error::io("starting the writer thread"))?
        };
        let measured = loop {
            match self.watch(target, shared, watch)? {
                Event::Answers(result) => break result?,
                Event::Sent(result) => result?,
                Event::Handshake(_) => {}
            }
        };
        shared.stop();
        drop(
            writer
                .join()
                .map_err(|_| Error::Internal("the writer thread panicked".into()))?,
        );
        Ok(measured)
    }

    /// Waits for the next event from the threads, failing when nothing is answered for the
    /// timeout or the target exits without its reader noticing.
    fn watch(
        &self,
        target: &mut Target,
        shared: &Shared,
        watch: &Receiver<Event>,
    ) -> Result<Event> {
        let tick = Duration::from_millis(50);
        let mut last = shared.answered.load(Ordering::Relaxed);
        let mut progress_at = Instant::now();
        let mut exited_at: Option<(Instant, String)> = None;
        loop {
            match watch.recv_timeout(tick) {
                Ok(event) => return Ok(event),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::Internal("the load threads stopped".into()));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let answered = shared.answered.load(Ordering::Relaxed);
            if answered != last {
                last = answered;
                progress_at = Instant::now();
            } else if progress_at.elapsed() >= self.timeout {
                return Err(Error::Timeout {
                    seconds: self.timeout.as_secs(),
                    answered,
                    expected: self.warmup + self.requests + 1,
                });
            }
            match &exited_at {
                None => exited_at = target.exit_status().map(|s| (Instant::now(), s)),
                Some((at, status)) if at.elapsed() >= Duration::from_secs(1) => {
                    return Err(Error::TargetGone(format!(
                        "exited ({status}) after {answered} answers"
                    )));
                }
                Some(_) => {}
            }
        }
    }
}

/// A second handle on the target's stdin for the writer thread; the first stays with the
/// caller so the target's input is closed only when the caller is done.
fn writer_handle(stdin: &ChildStdin) -> Result<File> {
    let fd = stdin
        .as_fd()
        .try_clone_to_owned()
        .map_err(Error::io("duplicating the target's stdin"))?;
    Ok(File::from(fd))
}

/// The writer: sends one request per credit, all available credits in one write.
fn send_requests(shared: &Shared, stdin: &mut File, total: u64) -> Result<()> {
    let mut next = 1;
    let mut out = Vec::with_capacity(16 * 1024);
    while next <= total {
        let n = {
            let mut credits = shared
                .credits
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            while *credits == 0 {
                if shared.stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                credits = shared
                    .credit_returned
                    .wait_timeout(credits, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let n = (*credits).min(total + 1 - next);
            *credits -= n;
            n
        };
        out.clear();
        for id in next..next + n {
            fixtures::write_echo_call(&mut out, id, &message_bytes(id));
            out.push(b'\n');
        }
        let now = shared.now();
        for id in next..next + n {
            shared.sent_at[id as usize].store(now, Ordering::Release);
        }
        stdin
            .write_all(&out)
            .map_err(Error::io("sending requests to the target"))?;
        next += n;
    }
    Ok(())
}

/// The reader: the handshake answer, then every echo answer.
fn read_answers(shared: &Shared, mut stdout: ChildStdout, warmup: u64, events: &Sender<Event>) {
    let mut lines = LineDecoder::new(DEFAULT_MAX_LINE);
    let mut chunk = vec![0; 64 * 1024];
    let mut read = |lines: &mut LineDecoder| -> Result<u64> {
        let answered = shared.answered.load(Ordering::Relaxed);
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) => {
                    return Err(Error::TargetGone(format!(
                        "closed its stdout after {answered} answers"
                    )));
                }
                Ok(n) => {
                    lines.push(&chunk[..n]);
                    return Ok(shared.now());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading from the target")(e)),
            }
        }
    };
    let handshake = (|| loop {
        read(&mut lines)?;
        while let Some(line) = lines.next_line() {
            let line = line.map_err(|e| Error::Mismatch(e.to_string()))?;
            let msg = Message::parse(line.bytes).map_err(|e| Error::Mismatch(e.to_string()))?;
            if matches!(msg.kind(), MessageKind::Response | MessageKind::Error) {
                check_initialize(&msg)?;
                shared.answered.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
    })();
    let ok = handshake.is_ok();
    if events.send(Event::Handshake(handshake)).is_err() || !ok {
        return;
    }
    let total = shared.sent_at.len() as u64 - 1;
    let mut latencies = Vec::with_capacity((total - warmup) as usize);
    let (mut answered, mut window_start, mut window_end) = (0, 0, 0);
    let measured = (|| {
        while answered < total {
            let now = read(&mut lines)?;
            let before = answered;
            while let Some(line) = lines.next_line() {
                let line = line.map_err(|e| Error::Mismatch(e.to_string()))?;
                let Some(id) = check_answer(&line.bytes, total)? else {
                    continue;
                };
                let sent = shared.sent_at[id as usize].swap(ANSWERED, Ordering::AcqRel);
                match sent {
                    0 => return Err(Error::Mismatch(format!("answer to id {id}, not yet sent"))),
                    ANSWERED => return Err(Error::Mismatch(format!("second answer to id {id}"))),
                    _ => {}
                }
                if id > warmup {
                    latencies.push(now - sent);
                }
                if answered == 0 && warmup == 0 {
                    // No warm-up: the window opens with the first request.
                    window_start = sent;
                }
                answered += 1;
                if answered == warmup {
                    window_start = now;
                }
            }
            if answered > before {
                window_end = now;
                shared
                    .answered
                    .fetch_add(answered - before, Ordering::Relaxed);
                *shared
                    .credits
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) += answered - before;
                shared.credit_returned.notify_one();
            }
        }
        Ok(())
    })();
    let measured = measured.map(|()| Measured {
        latencies,
        window: Duration::from_nanos(window_end.saturating_sub(window_start)),
    });
    let _ = events.send(Event::Answers(measured));
}
