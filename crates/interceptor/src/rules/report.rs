//! `rules test`: which rules would fire on recorded messages, and what they would do.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use shadowcat_mcp::{Message, MessageKind};

use super::ruleset::RuleSet;
use crate::{Direction, InterceptContext, Outcome, TransportFault};

/// What the rules would do with each recorded message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RulesReport {
    /// The seed the random choices used.
    pub seed: u64,
    /// One entry per message, in order.
    pub frames: Vec<FrameReport>,
    /// One entry per rule, in running order.
    pub rules: Vec<RuleCount>,
}

/// What the rules would do with one recorded message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FrameReport {
    /// Its place in the recording (0-based).
    pub index: usize,
    /// `client_to_server` or `server_to_client`.
    pub direction: &'static str,
    /// Its session.
    pub session: String,
    /// `request`, `notification`, `response`, `error` or `batch`.
    pub kind: &'static str,
    /// Its method; for a response, the method of the request it answers (when recorded).
    pub method: Option<String>,
    /// Its id, as JSON.
    pub id: Option<String>,
    /// The rules whose `match` held.
    pub matched: Vec<String>,
    /// The rules that acted, with the actions that fired.
    pub fired: Vec<FiredRule>,
    /// The rule that decided.
    pub decided_by: Option<String>,
    /// What would happen, in words (`forward`, `delay 500ms, then forward`, `reply …`).
    pub outcome: String,
}

/// A rule that acted on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FiredRule {
    /// The rule's id.
    pub rule: String,
    /// The actions that fired, in order.
    pub actions: Vec<&'static str>,
}

/// How often one rule matched, acted and decided over the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RuleCount {
    /// The rule's id.
    pub id: String,
    /// Messages its `match` held for.
    pub matched: u64,
    /// Messages it acted on.
    pub fired: u64,
    /// Messages whose outcome it decided.
    pub decided: u64,
}

/// Runs `rules` over recorded messages `(direction, session, transport, message)` as the
/// proxy would, from the start of the rule set's random sequence, and reports what each
/// rule would do. Responses are paired with the requests they answer (by session and id),
/// so `request_method` and `tool` conditions work on them.
pub fn test_rules<'a, I>(rules: &RuleSet, frames: I) -> RulesReport
where
    I: IntoIterator<Item = (Direction, &'a str, &'a str, Message)>,
{
    rules.reset_random();
    let mut counts: Vec<RuleCount> = rules
        .rules()
        .into_iter()
        .map(|r| RuleCount {
            id: r.id,
            matched: 0,
            fired: 0,
            decided: 0,
        })
        .collect();
    let mut pending: HashMap<(String, Direction, String), (String, Option<String>)> =
        HashMap::new();
    let mut reports = Vec::new();
    for (index, (direction, session, transport, message)) in frames.into_iter().enumerate() {
        let id = message.id().map(|i| i.to_json());
        let mut answered: Option<(String, Option<String>)> = None;
        if let Some(id) = &id {
            if message.is_request() {
                let method = message.method().unwrap_or_default().to_owned();
                let tool = tool_name(&message);
                pending.insert((session.to_owned(), direction, id.clone()), (method, tool));
            } else if message.is_response() {
                let asked = match direction {
                    Direction::ClientToServer => Direction::ServerToClient,
                    _ => Direction::ClientToServer,
                };
                answered = pending.remove(&(session.to_owned(), asked, id.clone()));
            }
        }
        let (request_method, request_tool) = match &answered {
            Some((m, t)) => (Some(m.as_str()), t.as_deref()),
            None => (None, None),
        };
        let ctx = InterceptContext::new(session, direction, transport, &message)
            .with_request(request_method, request_tool);
        let eval = rules.evaluate_traced(&ctx);
        for c in &mut counts {
            c.matched += u64::from(eval.matched.contains(&c.id));
            c.fired += u64::from(eval.fired.iter().any(|(r, _)| *r == c.id));
            c.decided += u64::from(eval.decided_by.as_ref() == Some(&c.id));
        }
        reports.push(FrameReport {
            index,
            direction: direction.as_str(),
            session: session.to_owned(),
            kind: message.kind().as_str(),
            method: message
                .method()
                .map(str::to_owned)
                .or_else(|| request_method.map(str::to_owned)),
            id,
            matched: eval.matched,
            fired: eval
                .fired
                .into_iter()
                .map(|(rule, actions)| FiredRule { rule, actions })
                .collect(),
            decided_by: eval.decided_by,
            outcome: describe_outcome(&eval.outcome),
        });
    }
    RulesReport {
        seed: rules.seed(),
        frames: reports,
        rules: counts,
    }
}

fn tool_name(message: &Message) -> Option<String> {
    if message.kind() != MessageKind::Request || message.method() != Some("tools/call") {
        return None;
    }
    let params: serde_json::Value = serde_json::from_str(message.params()?).ok()?;
    params.get("name")?.as_str().map(str::to_owned)
}

fn shorten(bytes: &[u8]) -> String {
    const MAX: usize = 160;
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= MAX {
        text.into_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// An outcome in words.
pub fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Forward => "forward".into(),
        Outcome::Replace(m) => format!("forward modified: {}", shorten(m.as_bytes())),
        Outcome::Reply(m) => format!("reply: {}", shorten(m.as_bytes())),
        Outcome::Drop => "drop".into(),
        Outcome::Delay(d, inner) => format!("delay {d:?}, then {}", describe_outcome(inner)),
        Outcome::Duplicate => "duplicate".into(),
        Outcome::Reorder => "reorder (send after the next message)".into(),
        Outcome::Malformed(b) => format!("send malformed JSON: {}", shorten(b)),
        Outcome::Transport(TransportFault::CutStream) => "cut the stream mid-event".into(),
        Outcome::Transport(TransportFault::ExpireSession) => "expire the session (HTTP 404)".into(),
        Outcome::Pause {
            by,
            timeout,
            on_timeout,
        } => format!(
            "pause for a person (rule {by}; after {timeout:?}: {})",
            describe_outcome(on_timeout)
        ),
    }
}

impl fmt::Display for RulesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let acted = self.frames.iter().filter(|r| !r.fired.is_empty()).count();
        writeln!(
            f,
            "{} messages, {acted} acted on (seed {})",
            self.frames.len(),
            self.seed
        )?;
        for r in self.frames.iter().filter(|r| !r.matched.is_empty()) {
            let arrow = if r.direction == "client_to_server" {
                "→"
            } else {
                "←"
            };
            let what = r.method.as_deref().unwrap_or("-");
            let id =
                r.id.as_deref()
                    .map(|i| format!(" id={i}"))
                    .unwrap_or_default();
            let rules = r
                .fired
                .iter()
                .map(|fr| format!("{} [{}]", fr.rule, fr.actions.join(", ")))
                .collect::<Vec<_>>();
            let rules = if rules.is_empty() {
                format!("matched {} (no action fired)", r.matched.join(", "))
            } else {
                rules.join("; ")
            };
            writeln!(
                f,
                "#{:<4} {arrow} {} {what}{id} ({}): {rules}: {}",
                r.index, r.kind, r.session, r.outcome
            )?;
        }
        writeln!(f, "rules:")?;
        for c in &self.rules {
            writeln!(
                f,
                "  {:<24} matched {:>5}  fired {:>5}  decided {:>5}",
                c.id, c.matched, c.fired, c.decided
            )?;
        }
        Ok(())
    }
}
