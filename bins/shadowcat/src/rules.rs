//! `shadowcat rules validate|test`, and the interception a proxy runs with (`--rules`,
//! `--control`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use shadowcat_core::interceptor::{
    DEFAULT_MAX_HELD, Direction, HeldMessages, InterceptorChain, RuleSet, RulesInterceptor,
    RulesWatcher, test_rules,
};
use shadowcat_core::mcp::Message;
use shadowcat_core::{ControlServer, Interception};

/// Work with rule files.
#[derive(Debug, Subcommand)]
pub(crate) enum Rules {
    /// Check a rule file and list its rules; exit status 1 with the precise error when it
    /// is invalid.
    Validate(Validate),
    /// Show which rules would fire on a recorded tape, and what they would do.
    Test(Test),
}

#[derive(Debug, Args)]
pub(crate) struct Validate {
    /// The rule file (YAML or JSON).
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Test {
    /// The rule file (YAML or JSON).
    file: PathBuf,
    /// The tape to run the rules over (JSONL tape format).
    #[arg(long)]
    tape: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Options that turn interception on in a proxy.
#[derive(Debug, Args)]
pub(crate) struct InterceptOptions {
    /// A rule file (YAML or JSON) run on every message; watched, and reloaded when it
    /// changes (an invalid change keeps the running rules).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Serve the manual intercept control API on this loopback address (for rules whose
    /// action is `pause`, and `shadowcat intercept …`).
    #[arg(long, value_name = "ADDR")]
    control: Option<SocketAddr>,
}

/// Interception as set up for one proxy run; dropping it stops watching and serving.
pub(crate) struct Running {
    pub(crate) interception: Option<Interception>,
    pub(crate) rules: Option<Arc<RulesInterceptor>>,
    _watcher: Option<RulesWatcher>,
    _control: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self._control {
            task.abort();
        }
    }
}

impl InterceptOptions {
    /// Loads the rules, starts watching them and serves the control API, as asked.
    pub(crate) async fn start(&self) -> Result<Running, String> {
        let mut chain = InterceptorChain::new();
        let mut rules = None;
        let mut watcher = None;
        if let Some(path) = &self.rules {
            let set = RuleSet::load(path).map_err(|e| e.to_string())?;
            tracing::info!(rules = set.len(), file = %path.display(), "interception rules loaded");
            let interceptor = Arc::new(RulesInterceptor::new(set));
            watcher = Some(RulesWatcher::spawn(interceptor.clone(), path.clone()));
            chain.add(interceptor.clone());
            rules = Some(interceptor);
        }
        let mut control = None;
        let mut held = None;
        if let Some(addr) = self.control {
            let messages = HeldMessages::new(DEFAULT_MAX_HELD);
            let server = ControlServer::bind(addr, messages.clone())
                .await
                .map_err(|e| e.to_string())?;
            let _ = writeln!(
                std::io::stderr(),
                "shadowcat: control API on http://{}",
                server.local_addr()
            );
            control = Some(tokio::spawn(async move {
                if let Err(e) = server.run(std::future::pending()).await {
                    tracing::warn!("control API: {e}");
                }
            }));
            held = Some(messages);
        }
        let interception = if chain.is_empty() && held.is_none() {
            None
        } else {
            let mut i = Interception::new(Arc::new(chain));
            if let Some(held) = held {
                i = i.with_held(held);
            }
            Some(i)
        };
        Ok(Running {
            interception,
            rules,
            _watcher: watcher,
            _control: control,
        })
    }
}

pub(crate) fn run(command: Rules) -> ExitCode {
    match command {
        Rules::Validate(args) => validate(&args),
        Rules::Test(args) => test(&args),
    }
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "shadowcat: {message}");
    ExitCode::FAILURE
}

fn validate(args: &Validate) -> ExitCode {
    let set = match RuleSet::load(&args.file) {
        Ok(set) => set,
        Err(e) if args.json => {
            let error = match &e {
                shadowcat_core::interceptor::Error::Rules(rule) => {
                    serde_json::to_value(rule).unwrap_or_else(|_| serde_json::json!({}))
                }
                other => serde_json::json!({ "message": other.to_string() }),
            };
            let value = serde_json::json!({
                "file": args.file.display().to_string(),
                "valid": false,
                "error": error,
                "message": e.to_string(),
            });
            let _ = writeln!(std::io::stdout().lock(), "{value}");
            return ExitCode::FAILURE;
        }
        Err(e) => return fail(&e.to_string()),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "file": args.file.display().to_string(),
            "valid": true,
            "seed": set.seed(),
            "rules": set.rules(),
        });
        let _ = writeln!(out, "{value}");
    } else {
        let _ = writeln!(
            out,
            "{}: {} rules, seed {}",
            args.file.display(),
            set.len(),
            set.seed()
        );
        for rule in set.rules() {
            let state = if rule.enabled { "" } else { " (disabled)" };
            let about = rule.description.as_deref().unwrap_or("");
            let _ = writeln!(out, "  {}{state}  {about}", rule.id);
        }
    }
    ExitCode::SUCCESS
}

/// The frames an interceptor would see: each message as it reached the proxy (the client
/// edge for what the client sent, the server edge for what the server sent); a tape that
/// holds one edge only is taken as it is.
fn tape_messages(path: &Path) -> Result<Vec<(Direction, String, String, Message)>, String> {
    use shadowcat_core::tape::{Direction as TapeDirection, Edge, JsonlReader};
    let reader = JsonlReader::open(path).map_err(|e| e.to_string())?;
    let mut frames = Vec::new();
    for frame in reader {
        frames.push(frame.map_err(|e| e.to_string())?);
    }
    let both_edges = frames.iter().any(|f| f.edge == Edge::Client)
        && frames.iter().any(|f| f.edge == Edge::Server);
    let mut out = Vec::new();
    for frame in frames {
        let (direction, source) = match frame.direction {
            TapeDirection::ClientToServer => (Direction::ClientToServer, Edge::Client),
            _ => (Direction::ServerToClient, Edge::Server),
        };
        if both_edges && frame.edge != source {
            continue;
        }
        let transport = if frame.http.is_some() {
            "streamable-http"
        } else {
            "stdio"
        };
        // A recorded bad input is not a message: no rule sees it in a proxy either.
        if let Ok(message) = Message::parse(frame.message) {
            let session = frame.session_id.unwrap_or_else(|| "stdio".into());
            out.push((direction, session, transport.to_owned(), message));
        }
    }
    Ok(out)
}

fn test(args: &Test) -> ExitCode {
    let set = match RuleSet::load(&args.file) {
        Ok(set) => set,
        Err(e) => return fail(&e.to_string()),
    };
    let messages = match tape_messages(&args.tape) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let report = test_rules(
        &set,
        messages
            .iter()
            .map(|(d, s, t, m)| (*d, s.as_str(), t.as_str(), m.clone())),
    );
    let mut out = std::io::stdout().lock();
    if args.json {
        match serde_json::to_string(&report) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(e) => return fail(&format!("cannot write the report: {e}")),
        }
    } else {
        let _ = write!(out, "{report}");
    }
    ExitCode::SUCCESS
}
