//! Verify mode: a tape's client side re-sent to a live server, its answers compared with
//! the recorded ones.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Map, Value, json};
use shadowcat_tape::{Difference, ReplayScript, Trigger, diff_values, path_matches};
use shadowcat_transport::{Outgoing, Upstream};
use tokio::time::Instant;

use crate::{Error, Result};

/// How verification behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyConfig {
    /// How long the live server gets for each answer.
    pub answer_timeout: Duration,
    /// Paths whose differences do not count (timestamps, generated ids), in the syntax of
    /// [`path_matches`](shadowcat_tape::path_matches): `result.content[*].text`.
    pub ignore: Vec<String>,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            answer_timeout: Duration::from_secs(10),
            ignore: Vec::new(),
        }
    }
}

impl VerifyConfig {
    /// Sets how long the live server gets for each answer.
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = timeout;
        self
    }

    /// Sets the paths whose differences do not count.
    pub fn with_ignore(mut self, paths: Vec<String>) -> Self {
        self.ignore = paths;
        self
    }
}

/// How one call's live answer compares with the recorded one.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// Structurally the same (ids aside).
    Same,
    /// Different at these paths (`result.content[0].text`, `error.code`).
    Differs(Vec<Difference>),
    /// The live server did not answer (or the recording has no answer).
    Missing(String),
}

/// One recorded request and how its live answer compared.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallReport {
    /// The recorded session (0-based).
    pub session: usize,
    /// The request's method.
    pub method: String,
    /// The tool's name, for `tools/call`.
    pub tool: Option<String>,
    /// The recorded request id.
    pub id: Value,
    /// The comparison.
    pub outcome: CallOutcome,
}

impl CallReport {
    /// The call as people name it: `tools/call "echo"`.
    pub fn name(&self) -> String {
        match &self.tool {
            Some(tool) => format!("{} {tool:?}", self.method),
            None => self.method.clone(),
        }
    }
}

/// What verification found, call by call.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Every recorded request, in order.
    pub calls: Vec<CallReport>,
}

impl VerifyReport {
    /// Whether every call got the same answer as recorded.
    pub fn is_clean(&self) -> bool {
        self.calls.iter().all(|c| c.outcome == CallOutcome::Same)
    }

    /// How many calls were the same, differed, and got no answer.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for call in &self.calls {
            match call.outcome {
                CallOutcome::Same => counts.0 += 1,
                CallOutcome::Differs(_) => counts.1 += 1,
                CallOutcome::Missing(_) => counts.2 += 1,
            }
        }
        counts
    }

    /// The report as JSON: `{"ok", "same", "differs", "missing", "calls": [{"session",
    /// "method", "tool", "id", "outcome", "differences": [{"path", "recorded", "got"}],
    /// "reason"}]}`.
    pub fn to_json(&self) -> Value {
        let (same, differs, missing) = self.counts();
        let calls: Vec<Value> = self
            .calls
            .iter()
            .map(|c| {
                let mut call = json!({
                    "session": c.session + 1,
                    "method": c.method,
                    "tool": c.tool,
                    "id": c.id,
                });
                let (outcome, extra) = match &c.outcome {
                    CallOutcome::Same => ("same", None),
                    CallOutcome::Differs(d) => (
                        "differs",
                        Some((
                            "differences",
                            Value::Array(
                                d.iter()
                                    .map(|d| json!({"path": d.path, "recorded": d.recorded, "got": d.live}))
                                    .collect(),
                            ),
                        )),
                    ),
                    CallOutcome::Missing(why) => ("missing", Some(("reason", json!(why)))),
                };
                call["outcome"] = json!(outcome);
                if let Some((k, v)) = extra {
                    call[k] = v;
                }
                call
            })
            .collect();
        json!({
            "ok": self.is_clean(),
            "same": same,
            "differs": differs,
            "missing": missing,
            "calls": calls,
        })
    }
}

/// The live connection of one session, with what it has answered so far.
struct Live {
    upstream: Upstream,
    answers: HashMap<String, Value>,
    server_requests: HashSet<String>,
    ended: bool,
}

impl Live {
    /// Reads until `done` holds, the server ends, or `timeout` passes; whether `done` held.
    async fn until(&mut self, done: impl Fn(&Self) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            if self.ended {
                return false;
            }
            match tokio::time::timeout_at(deadline, self.upstream.reader.recv()).await {
                Err(_) => return false,
                Ok(Ok(Some(Ok(frame)))) => {
                    let Ok(value) = serde_json::from_slice::<Value>(&frame.bytes) else {
                        continue;
                    };
                    let items = match value {
                        Value::Array(items) => items,
                        one => vec![one],
                    };
                    for item in items {
                        let Some(id) = item.get("id").filter(|i| !i.is_null()) else {
                            continue;
                        };
                        if item.get("method").is_some() {
                            self.server_requests.insert(id.to_string());
                        } else {
                            self.answers.insert(id.to_string(), item);
                        }
                    }
                }
                Ok(Ok(Some(Err(_)))) => {}
                Ok(Ok(None) | Err(_)) => self.ended = true,
            }
        }
        true
    }

    async fn send(&mut self, message: &Value) -> bool {
        self.upstream
            .writer
            .send(message.to_string().as_bytes())
            .await
            .is_ok()
            && self.upstream.writer.flush().await.is_ok()
    }
}

/// The part of an answer that is compared: `result` or `error`.
fn payload(answer: &Value) -> Value {
    let mut out = Map::new();
    for key in ["result", "error"] {
        if let Some(v) = answer.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// Re-sends each recorded session's client messages, in order, over a fresh connection
/// made by `outgoing` (one per session), and compares each live answer with the recorded
/// one, ids aside. A client message is sent once the live answers to every earlier request
/// whose recorded answer came before it have arrived; a recorded answer to a server request
/// waits (briefly) for the live server to send that request.
pub async fn verify(
    script: &ReplayScript,
    outgoing: &mut dyn Outgoing,
    config: &VerifyConfig,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for (si, session) in script.sessions.iter().enumerate() {
        if !session
            .steps
            .iter()
            .any(|s| matches!(s.trigger, Trigger::Request { .. }))
        {
            continue;
        }
        let upstream = outgoing.connect().await.map_err(Error::Upstream)?;
        let mut live = Live {
            upstream,
            answers: HashMap::new(),
            server_requests: HashSet::new(),
            ended: false,
        };
        // Sent requests: (recorded id as JSON, offset of the recorded answer, report index,
        // step index).
        let mut open: Vec<(String, Option<u64>, usize, usize)> = Vec::new();
        for (step_index, step) in session.steps.iter().enumerate() {
            // Wait for the answers the recording had before this message.
            let due: Vec<String> = open
                .iter()
                .filter(|(_, at, _, _)| at.is_some_and(|at| at <= step.offset_ns))
                .map(|(id, _, _, _)| id.clone())
                .collect();
            for id in due {
                live.until(|l| l.answers.contains_key(&id), config.answer_timeout)
                    .await;
            }
            if let Trigger::Response { id } = &step.trigger {
                let id = id.to_string();
                live.until(
                    |l| l.server_requests.contains(&id),
                    config.answer_timeout.min(Duration::from_secs(2)),
                )
                .await;
            }
            if let Trigger::Request { key, id, .. } = &step.trigger {
                open.push((
                    id.to_string(),
                    step.answer().map(|a| a.offset_ns),
                    report.calls.len(),
                    step_index,
                ));
                report.calls.push(CallReport {
                    session: si,
                    method: key.method().to_owned(),
                    tool: key.tool().map(str::to_owned),
                    id: id.clone(),
                    outcome: CallOutcome::Missing("not sent".into()),
                });
            }
            if !live.send(&step.message).await {
                live.ended = true;
            }
        }
        for (id, _, _, _) in &open {
            live.until(|l| l.answers.contains_key(id), config.answer_timeout)
                .await;
        }
        for (id, _, index, step_index) in &open {
            let recorded = session.steps[*step_index].answer();
            let outcome = match (recorded, live.answers.get(id)) {
                (None, _) => CallOutcome::Missing("the recording has no answer".into()),
                (Some(_), None) if live.ended => {
                    CallOutcome::Missing("the live server closed the connection".into())
                }
                (Some(_), None) => CallOutcome::Missing(format!(
                    "no answer within {:.1} s",
                    config.answer_timeout.as_secs_f64()
                )),
                (Some(rec), Some(got)) => {
                    let mut d = diff_values("", &payload(&rec.message), &payload(got));
                    d.retain(|d| !config.ignore.iter().any(|p| path_matches(p, &d.path)));
                    if d.is_empty() {
                        CallOutcome::Same
                    } else {
                        CallOutcome::Differs(d)
                    }
                }
            };
            report.calls[*index].outcome = outcome;
        }
        let _ = live.upstream.writer.close().await;
        if let Some(process) = live.upstream.process.as_mut() {
            let _ = process
                .shutdown(
                    Duration::from_secs(1),
                    Duration::from_millis(500),
                    std::future::pending(),
                )
                .await;
        }
    }
    Ok(report)
}
