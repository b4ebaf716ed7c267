//! Direct vs proxied over HTTP: the HTTP echo server alone, and behind Shadowcat in three
//! bridging modes (HTTP → stdio, HTTP → HTTP, stdio → HTTP), at given numbers of concurrent
//! sessions, in alternating rounds; plus the memory an idle session costs the gateway.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::admission_load::AdmissionFixture;
use crate::http_load::{HttpLoadConfig, open_idle_sessions};
use crate::stats::median;
use crate::{Error, LoadConfig, LoadReport, Result};

/// Target: each bridging mode reaches at least this fraction of the direct HTTP rate.
pub const TARGET_HTTP_RATIO: f64 = 0.40;
/// Target: authentication, rate limits, policy and audit cost at most this fraction of the
/// HTTP → HTTP rate.
pub const TARGET_ADMISSION_COST: f64 = 0.05;
/// Target: an idle gateway session costs less than this many bytes.
pub const TARGET_IDLE_SESSION_BYTES: f64 = 100.0 * 1024.0;

/// The bridging modes measured against the direct HTTP baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP clients → `shadowcat reverse -- bench-echo-server` (a child per session).
    HttpToStdio,
    /// HTTP clients → `shadowcat reverse --upstream <HTTP echo server>`.
    HttpToHttp,
    /// A stdio client → `shadowcat forward stdio --to <HTTP echo server>`.
    StdioToHttp,
    /// HTTP → HTTP with the admission step on: every request authenticated (a JWT), rate
    /// limited, put to a policy and audited (`--admission`).
    HttpToHttpAdmitted,
}

impl Mode {
    /// Every mode, in table order.
    pub const ALL: [Mode; 3] = [Mode::HttpToStdio, Mode::HttpToHttp, Mode::StdioToHttp];

    /// The mode's name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::HttpToStdio => "HTTP → stdio",
            Mode::HttpToHttp => "HTTP → HTTP",
            Mode::StdioToHttp => "stdio → HTTP",
            Mode::HttpToHttpAdmitted => "HTTP → HTTP + auth",
        }
    }
}

/// What to compare and how.
#[derive(Debug, Clone)]
pub struct HttpCompareConfig {
    /// The `shadowcat` binary.
    pub shadowcat: PathBuf,
    /// The stdio `bench-echo-server` binary.
    pub echo_server: PathBuf,
    /// The `bench-http` binary (its `serve` command is the HTTP echo server).
    pub bench_http: PathBuf,
    /// One scenario per value: concurrent sessions (in flight, for stdio → HTTP).
    pub sessions: Vec<usize>,
    /// Runs of each mode per scenario, alternating.
    pub rounds: usize,
    /// Measured requests per run.
    pub requests: u64,
    /// Warm-up requests per run.
    pub warmup: u64,
    /// Pin the load generator to CPU 0 and the targets to CPU 1.
    pub pin: bool,
    /// How long one request may take.
    pub timeout: Duration,
    /// Idle sessions for the memory measurement; 0 skips it.
    pub idle_sessions: usize,
    /// Also measure HTTP → HTTP with authentication, rate limits, policy and audit on.
    pub admission: bool,
}

/// One scenario's runs.
#[derive(Debug, Clone)]
pub struct HttpScenario {
    /// Concurrent sessions.
    pub sessions: usize,
    /// The direct HTTP runs.
    pub direct: Vec<LoadReport>,
    /// The runs of each mode, in [`Mode::ALL`] order.
    pub modes: Vec<(Mode, Vec<LoadReport>)>,
}

/// The whole comparison.
#[derive(Debug, Clone)]
pub struct HttpComparison {
    /// One per session count.
    pub scenarios: Vec<HttpScenario>,
    /// Gateway memory per idle session, when measured: (sessions, bytes per session).
    pub idle: Option<(usize, f64)>,
}

/// A started target process, killed when dropped.
struct Target {
    child: Child,
    url: String,
    _readers: Vec<thread::JoinHandle<()>>,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Target {
    /// Starts `argv` (pinned when asked) and waits for the first `http://…` URL on its
    /// stderr (or stdout for the echo server), which must appear within 10 s.
    fn start(argv: &[OsString], cpu: Option<usize>, url_on_stdout: bool) -> Result<Self> {
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).args(argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("SHADOWCAT_LOG", "info");
        let shown = argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            command: shown.clone(),
            source,
        })?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (tx, rx) = mpsc::channel();
        // Reads the chosen stream to the end, so the target never blocks on a full pipe.
        let watch = move |stream: Box<dyn std::io::Read + Send>, tx: mpsc::Sender<String>| {
            thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                    if !sent && let Some(at) = line.find("http://") {
                        let url: String = line[at..]
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != '"')
                            .collect();
                        sent = tx.send(url).is_ok();
                    }
                }
            })
        };
        type Stream = Box<dyn std::io::Read + Send>;
        let (watched, other): (Stream, Option<Stream>) = match (stdout, stderr) {
            (Some(out), Some(err)) if url_on_stdout => (Box::new(out), Some(Box::new(err))),
            (Some(out), Some(err)) => (Box::new(err), Some(Box::new(out))),
            _ => return Err(Error::Internal("no pipes to the target".into())),
        };
        // The readers end when the target exits (its pipes close).
        let mut readers = vec![watch(watched, tx)];
        if let Some(other) = other {
            readers.push(watch(other, mpsc::channel().0));
        }
        let mut target = Self {
            child,
            url: String::new(),
            _readers: readers,
        };
        target.url = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| {
            Error::TargetGone(format!("{shown} printed no http:// URL within 10 s"))
        })?;
        Ok(target)
    }

    /// The target's resident memory, in bytes.
    fn rss(&self) -> Result<u64> {
        // With taskset in front, the target is taskset's image after exec: same pid.
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).map_err(
            |source| Error::Io {
                context: "reading the target's memory use".into(),
                source,
            },
        )?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| Error::Internal("no VmRSS in /proc status".into()))
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

impl HttpCompareConfig {
    fn cpu(&self) -> Option<usize> {
        self.pin.then_some(1)
    }

    fn echo_http(&self) -> Result<Target> {
        let mut argv = vec![self.bench_http.clone().into_os_string()];
        argv.extend(os(&["serve", "--listen", "127.0.0.1:0"]));
        Target::start(&argv, self.cpu(), true)
    }

    fn reverse(&self, upstream: &[OsString], extra: &[&str]) -> Result<Target> {
        let mut argv = vec![self.shadowcat.clone().into_os_string()];
        argv.extend(os(&["reverse", "--listen", "127.0.0.1:0"]));
        argv.extend(os(extra));
        argv.extend(upstream.iter().cloned());
        Target::start(&argv, self.cpu(), false)
    }

    fn http_load(&self, url: &str, sessions: usize) -> Result<LoadReport> {
        self.http_load_as(url, sessions, None)
    }

    fn http_load_as(
        &self,
        url: &str,
        sessions: usize,
        authorization: Option<&str>,
    ) -> Result<LoadReport> {
        let mut load = HttpLoadConfig::new(url);
        load.authorization = authorization.map(str::to_owned);
        load.sessions = sessions;
        load.requests = self.requests;
        load.warmup = self.warmup;
        load.timeout = self.timeout;
        load.run()
    }

    fn run_mode(&self, mode: Mode, sessions: usize, direct_url: &str) -> Result<LoadReport> {
        match mode {
            Mode::HttpToStdio => {
                let upstream = vec!["--".into(), self.echo_server.clone().into_os_string()];
                let proxy = self.reverse(&upstream, &[])?;
                self.http_load(&proxy.url, sessions)
            }
            Mode::HttpToHttp => {
                let proxy = self.reverse(&os(&["--upstream", direct_url]), &[])?;
                self.http_load(&proxy.url, sessions)
            }
            Mode::HttpToHttpAdmitted => {
                let fixture = AdmissionFixture::start()?;
                let config = fixture.config.to_string_lossy().into_owned();
                let proxy =
                    self.reverse(&os(&["--upstream", direct_url]), &["--config", &config])?;
                self.http_load_as(&proxy.url, sessions, Some(&fixture.authorization))
            }
            Mode::StdioToHttp => {
                let mut command = vec![self.shadowcat.clone().into_os_string()];
                command.extend(os(&["forward", "stdio", "--to", direct_url]));
                let mut load = LoadConfig::new(command);
                load.in_flight = sessions;
                load.requests = self.requests;
                load.warmup = self.warmup;
                load.timeout = self.timeout;
                load.target_cpu = self.cpu();
                load.env = vec![("SHADOWCAT_LOG".into(), "warn".into())];
                load.run()
            }
        }
    }

    /// Runs every scenario; `progress` gets a line before each run.
    pub fn run(&self, mut progress: impl FnMut(&str)) -> Result<HttpComparison> {
        let mut scenarios = Vec::new();
        for &sessions in &self.sessions {
            let mut scenario = HttpScenario {
                sessions,
                direct: Vec::new(),
                modes: Mode::ALL
                    .iter()
                    .chain(self.admission.then_some(&Mode::HttpToHttpAdmitted))
                    .map(|&m| (m, Vec::new()))
                    .collect(),
            };
            for round in 1..=self.rounds {
                let label = |what: &str| format!("{what}, {sessions} sessions, round {round}");
                let wrap = |what: &str, e: Error| Error::Run {
                    run: label(what),
                    source: Box::new(e),
                };
                let server = self.echo_http().map_err(|e| wrap("HTTP echo server", e))?;
                progress(&label("direct HTTP"));
                let report = self
                    .http_load(&server.url, sessions)
                    .map_err(|e| wrap("direct HTTP", e))?;
                scenario.direct.push(report);
                for (mode, reports) in &mut scenario.modes {
                    progress(&label(mode.name()));
                    let report = self
                        .run_mode(*mode, sessions, &server.url)
                        .map_err(|e| wrap(mode.name(), e))?;
                    reports.push(report);
                }
            }
            scenarios.push(scenario);
        }
        let idle = match self.idle_sessions {
            0 => None,
            n => {
                progress(&format!("memory: {n} idle sessions through HTTP → HTTP"));
                Some((n, self.idle_memory(n)?))
            }
        };
        Ok(HttpComparison { scenarios, idle })
    }

    /// Bytes of gateway memory per idle session: resident memory after `count` more
    /// sessions, minus before, divided by `count`.
    fn idle_memory(&self, count: usize) -> Result<f64> {
        let server = self.echo_http()?;
        let max = (count + 100).to_string();
        let proxy = self.reverse(
            &os(&["--upstream", &server.url]),
            &["--max-sessions", &max, "--idle-timeout", "3600"],
        )?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start a runtime: {e}")))?;
        // Warm the gateway up first, so the baseline includes its pools and buffers.
        runtime.block_on(open_idle_sessions(&proxy.url, 64))?;
        thread::sleep(Duration::from_millis(200));
        let before = proxy.rss()?;
        runtime.block_on(open_idle_sessions(&proxy.url, count))?;
        thread::sleep(Duration::from_millis(200));
        let after = proxy.rss()?;
        Ok(after.saturating_sub(before) as f64 / count as f64)
    }
}

impl HttpScenario {
    fn rate(reports: &[LoadReport]) -> f64 {
        median(reports.iter().map(|r| r.rate))
    }

    /// The median direct rate.
    pub fn direct_rate(&self) -> f64 {
        Self::rate(&self.direct)
    }

    /// A mode's median rate as a fraction of the direct rate.
    pub fn ratio(&self, mode: Mode) -> f64 {
        let direct = self.direct_rate();
        let rate = self
            .modes
            .iter()
            .find(|(m, _)| *m == mode)
            .map_or(0.0, |(_, r)| Self::rate(r));
        if direct > 0.0 { rate / direct } else { 0.0 }
    }
}

impl HttpComparison {
    /// The results as a text table (medians over the rounds).
    pub fn table(&self) -> String {
        let mut out = String::from("scenario                    req/s   ratio   p50 µs   p99 µs\n");
        for s in &self.scenarios {
            let p = |r: &[LoadReport], f: fn(&LoadReport) -> f64| median(r.iter().map(f));
            let mut row = |name: String, reports: &[LoadReport], ratio: Option<f64>| {
                let ratio = ratio.map_or_else(|| "    -".to_owned(), |r| format!("{r:5.2}"));
                writeln!(
                    out,
                    "{name:<24} {:>9.0}   {ratio}  {:>7.1}  {:>7.1}",
                    p(reports, |r| r.rate),
                    p(reports, |r| r.latency.p50_us),
                    p(reports, |r| r.latency.p99_us),
                )
                .expect("writing to a String cannot fail");
            };
            row(format!("direct HTTP, {}", s.sessions), &s.direct, None);
            for (mode, reports) in &s.modes {
                row(
                    format!("{}, {}", mode.name(), s.sessions),
                    reports,
                    Some(s.ratio(*mode)),
                );
            }
        }
        if let Some((n, bytes)) = self.idle {
            writeln!(
                out,
                "memory: {n} idle HTTP → HTTP sessions cost {:.1} KiB each",
                bytes / 1024.0
            )
            .expect("writing to a String cannot fail");
        }
        out
    }

    /// One line per target and whether it was met: each mode at 16 sessions (or the
    /// largest count run), and idle memory.
    pub fn verdict(&self) -> Vec<(String, bool)> {
        let mut lines = Vec::new();
        if let Some(s) = self.scenarios.iter().max_by_key(|s| s.sessions) {
            for mode in Mode::ALL {
                let ratio = s.ratio(mode);
                let ok = ratio >= TARGET_HTTP_RATIO;
                lines.push((
                    format!(
                        "{}, {} sessions: {:.0}% of direct HTTP (target >= {:.0}%): {}",
                        mode.name(),
                        s.sessions,
                        ratio * 100.0,
                        TARGET_HTTP_RATIO * 100.0,
                        if ok { "PASS" } else { "FAIL" }
                    ),
                    ok,
                ));
            }
        }
        if let Some(s) = self.scenarios.iter().max_by_key(|s| s.sessions)
            && s.modes.iter().any(|(m, _)| *m == Mode::HttpToHttpAdmitted)
        {
            let cost = 1.0 - s.ratio(Mode::HttpToHttpAdmitted) / s.ratio(Mode::HttpToHttp);
            let ok = cost <= TARGET_ADMISSION_COST;
            lines.push((
                format!(
                    "admission, {} sessions: costs {:.1}% of HTTP → HTTP (target <= {:.0}%): {}",
                    s.sessions,
                    cost * 100.0,
                    TARGET_ADMISSION_COST * 100.0,
                    if ok { "PASS" } else { "FAIL" }
                ),
                ok,
            ));
        }
        if let Some((n, bytes)) = self.idle {
            let ok = bytes < TARGET_IDLE_SESSION_BYTES;
            lines.push((
                format!(
                    "{n} idle sessions: {:.1} KiB each (target < 100 KiB): {}",
                    bytes / 1024.0,
                    if ok { "PASS" } else { "FAIL" }
                ),
                ok,
            ));
        }
        lines
    }
}
