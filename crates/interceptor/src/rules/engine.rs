//! Running a rule set on one message.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use shadowcat_mcp::Message;

use super::actions::{finish, is_initialize, sample_delay};
use super::matcher::Subject;
use super::model::{ActionKind, DelaySpec};
use super::ruleset::{Rule, RuleSet};
use super::template::TemplateEnv;
use crate::{InterceptContext, Outcome};

/// Sessions whose back-off counts a rule keeps before it starts over.
const MAX_BACKOFF_SESSIONS: usize = 10_000;

/// What a rule set did with one message, and why.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Evaluation {
    /// What the pipeline is to do.
    pub outcome: Outcome,
    /// The enabled rules whose `match` held, in running order (up to the deciding one).
    pub matched: Vec<String>,
    /// The rules that acted, each with the actions that fired (after probabilities).
    pub fired: Vec<(String, Vec<&'static str>)>,
    /// The rule that decided the outcome; `None` when no rule did (nothing matched, or the
    /// rules that acted only modified, delayed or continued).
    pub decided_by: Option<String>,
}

#[derive(Default)]
struct Trace {
    matched: Vec<String>,
    fired: Vec<(String, Vec<&'static str>)>,
    decided_by: Option<String>,
}

enum Step {
    Decided(Outcome),
    /// A rule changed the message; `stop`: and ended the evaluation (`forward`).
    Modified(Message, bool),
    End,
}

/// What one rule did.
struct Applied {
    fired: Vec<&'static str>,
    delay: Duration,
    /// The message as its `modify` steps left it, when they changed it: a valid message,
    /// or bytes that no longer are one.
    modified: Option<Result<Message, Bytes>>,
    /// The outcome of its final action, when that decides.
    terminal: Option<Outcome>,
    /// It ended in `forward`.
    stop: bool,
}

fn with_delay(delay: Duration, outcome: Outcome) -> Outcome {
    if delay.is_zero() {
        outcome
    } else {
        Outcome::Delay(delay, Box::new(outcome))
    }
}

impl RuleSet {
    /// What to do with one message.
    ///
    /// Rules run in order over the message. A matching rule's `modify` and `delay` steps
    /// apply and evaluation goes on: later rules see the modified message, and delays add
    /// up. The first matching rule whose final action decides (block, mock, a fault, pause)
    /// ends the evaluation with that action's outcome; `forward` ends it with the message as
    /// it is now; `continue` does nothing. Each action fires only if its probability roll
    /// succeeds. Without a deciding rule the message is forwarded, modified if a rule
    /// changed it, after the delays that fired.
    pub fn evaluate(&self, ctx: &InterceptContext<'_>) -> Outcome {
        self.run(ctx, None)
    }

    /// [`RuleSet::evaluate`], also telling which rules matched and acted.
    pub fn evaluate_traced(&self, ctx: &InterceptContext<'_>) -> Evaluation {
        let mut trace = Trace::default();
        let outcome = self.run(ctx, Some(&mut trace));
        Evaluation {
            outcome,
            matched: trace.matched,
            fired: trace.fired,
            decided_by: trace.decided_by,
        }
    }

    /// The ids of the enabled rules whose `match` holds for the message, in running order;
    /// no action runs and no counter moves.
    pub fn matching_rules(&self, ctx: &InterceptContext<'_>) -> Vec<&str> {
        let subject = Subject::with_paths(ctx, &self.paths);
        let plan = self.plans.get(&self.rules, &self.index, &subject);
        plan.iter()
            .map(|step| (step, &self.rules[step.rule]))
            .filter(|(step, r)| !step.check || r.matcher.matches_late(&subject))
            .map(|(_, r)| r.id.as_str())
            .collect()
    }

    fn run(&self, ctx: &InterceptContext<'_>, mut trace: Option<&mut Trace>) -> Outcome {
        let mut owned: Option<Message> = None;
        let mut delay = Duration::ZERO;
        let mut next = 0;
        loop {
            let step = {
                let here = match &owned {
                    // The tool read from the original message may not be the modified one's.
                    Some(message) => InterceptContext {
                        message,
                        tool: None,
                        ..*ctx
                    },
                    None => *ctx,
                };
                let subject = Subject::with_paths(&here, &self.paths);
                self.scan(&subject, &mut next, &mut delay, trace.as_deref_mut())
            };
            match step {
                Step::Decided(outcome) => return with_delay(delay, outcome),
                Step::Modified(message, stop) => {
                    owned = Some(message);
                    if stop {
                        return with_delay(delay, owned.map_or(Outcome::Forward, Outcome::Replace));
                    }
                }
                Step::End => {
                    return with_delay(delay, owned.map_or(Outcome::Forward, Outcome::Replace));
                }
            }
        }
    }

    fn scan(
        &self,
        s: &Subject<'_, '_>,
        next: &mut usize,
        delay: &mut Duration,
        mut trace: Option<&mut Trace>,
    ) -> Step {
        let plan = self.plans.get(&self.rules, &self.index, s);
        let from = *next;
        for step in plan.iter().filter(|step| step.rule >= from) {
            *next = step.rule + 1;
            let rule = &self.rules[step.rule];
            if step.check && !rule.matcher.matches_late(s) {
                continue;
            }
            let counters = &rule.counters;
            counters.matches.fetch_add(1, Relaxed);
            if let Some(t) = trace.as_deref_mut() {
                t.matched.push(rule.id.clone());
            }
            if rule.only_continues {
                // Every action fires and none does anything.
                counters.actions.fetch_add(1, Relaxed);
                if let Some(t) = trace.as_deref_mut() {
                    let names = rule.actions.iter().map(|a| a.kind.name()).collect();
                    t.fired.push((rule.id.clone(), names));
                }
                continue;
            }
            // Rules that only continue or forward take no time worth a clock reading.
            let started = rule.timed.then(Instant::now);
            let applied = self.apply(rule, s, trace.is_some());
            if let Some(started) = started {
                counters
                    .nanos
                    .fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
            }
            let Some(applied) = applied else { continue };
            counters.actions.fetch_add(1, Relaxed);
            *delay += applied.delay;
            if let Some(t) = trace.as_deref_mut() {
                t.fired.push((rule.id.clone(), applied.fired));
            }
            let decides = applied.terminal.is_some()
                || applied.stop
                || matches!(applied.modified, Some(Err(_)));
            if decides && let Some(t) = trace.as_deref_mut() {
                t.decided_by = Some(rule.id.clone());
            }
            if let Some(outcome) = applied.terminal {
                return Step::Decided(outcome);
            }
            match applied.modified {
                // A modify that leaves no valid JSON-RPC message sends it as it is.
                Some(Err(bytes)) => return Step::Decided(Outcome::Malformed(bytes)),
                Some(Ok(message)) => return Step::Modified(message, applied.stop),
                None if applied.stop => return Step::End,
                None => {}
            }
        }
        Step::End
    }

    /// Whether an action with this probability fires. Only probabilities strictly between
    /// 0 and 1 draw a number.
    fn roll(&self, p: Option<f64>) -> bool {
        match p {
            None => true,
            Some(p) if p >= 1.0 => true,
            Some(p) if p <= 0.0 => false,
            Some(p) => {
                self.rng
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .next_f64()
                    < p
            }
        }
    }

    fn delay_for(&self, rule: &Rule, spec: &DelaySpec, session: &str) -> Duration {
        let nth = match (&rule.backoff, spec) {
            (Some(counts), DelaySpec::Backoff { .. }) => {
                let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
                if counts.len() >= MAX_BACKOFF_SESSIONS && !counts.contains_key(session) {
                    counts.clear();
                }
                let n = counts.entry(session.to_owned()).or_insert(0);
                let nth = *n;
                *n = n.saturating_add(1);
                nth
            }
            _ => 0,
        };
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        sample_delay(spec, &mut rng, nth)
    }

    /// Carries out a matching rule's actions; `None` when none fired. The names of those
    /// that fired are kept when `names`.
    fn apply(&self, rule: &Rule, s: &Subject<'_, '_>, names: bool) -> Option<Applied> {
        let ctx = s.ctx;
        let mut fired = Vec::new();
        let mut any_fired = false;
        let mut delay = Duration::ZERO;
        let mut value: Option<Value> = None;
        let mut terminal = None;
        let mut stop = false;
        for action in &rule.actions {
            if !self.roll(action.probability) {
                continue;
            }
            match &action.kind {
                ActionKind::Modify(m) => {
                    let Some(original) = s.value() else { continue };
                    let env = TemplateEnv {
                        request: Some(original),
                        session: ctx.session,
                        transport: ctx.transport,
                        direction: ctx.direction.as_str(),
                        rule: &rule.id,
                    };
                    m.apply(value.get_or_insert_with(|| original.clone()), &env);
                }
                ActionKind::Delay(spec) => delay += self.delay_for(rule, spec, ctx.session),
                ActionKind::SlowInitialize(ms) => {
                    if !is_initialize(s) {
                        continue;
                    }
                    delay += Duration::from_millis(*ms);
                }
                ActionKind::Continue => {}
                ActionKind::Forward => stop = true,
                other => {
                    let changed = changed(value.as_ref(), s).map(|v| {
                        Bytes::from(serde_json::to_vec(v).expect("a JSON value serializes"))
                    });
                    match finish(other, &rule.id, s, value.as_ref(), changed.as_ref()) {
                        Some(outcome) => terminal = Some(outcome),
                        None => continue,
                    }
                }
            }
            any_fired = true;
            if names {
                fired.push(action.kind.name());
            }
        }
        if !any_fired {
            return None;
        }
        let modified = match terminal {
            Some(_) => None,
            None => changed(value.as_ref(), s).map(|v| {
                let bytes = Bytes::from(serde_json::to_vec(v).expect("a JSON value serializes"));
                Message::parse(bytes.clone()).map_err(|_| bytes)
            }),
        };
        Some(Applied {
            fired,
            delay,
            modified,
            terminal,
            stop,
        })
    }
}

/// The modified message, when it differs from the original.
fn changed<'v>(value: Option<&'v Value>, s: &Subject<'_, '_>) -> Option<&'v Value> {
    value.filter(|v| Some(*v) != s.value())
}
