//! The matcher: one live conversation played against a [`ReplayScript`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::diff::{Difference, diff_values};
use super::key::{CanonicalKey, canonical_params};
use super::script::{Output, ReplayScript, Step, Trigger};

/// A server message to send, with the recorded gap before it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Emit {
    /// Nanoseconds recorded between the previous message (the triggering client message,
    /// or the previous output) and this one.
    pub gap_ns: u64,
    /// The message, with ids and progress tokens already remapped to the live ones.
    pub message: Value,
    /// The live request it belongs to, when it was sent while that request was open (HTTP
    /// transports send it on that request's response stream).
    pub related: Option<Value>,
}

/// The closest recorded request to one that matched nothing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Closest {
    /// Its canonical key.
    pub key: CanonicalKey,
    /// Its recorded session's index on the tape (0-based).
    pub session: usize,
    /// The recorded request.
    pub request: Value,
    /// How the live request differs from it (paths start at `method` or `params`).
    pub differences: Vec<Difference>,
}

/// A live request that matched no recorded request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Miss {
    /// The live request's key.
    pub key: CanonicalKey,
    /// The closest recorded request, when the tape has any.
    pub closest: Option<Closest>,
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replay: no recorded request matches {}", self.key)?;
        match &self.closest {
            None => write!(f, "; the tape holds no requests"),
            Some(c) => {
                write!(
                    f,
                    "; closest recorded: {} (session {})",
                    c.key,
                    c.session + 1
                )?;
                let shown: Vec<String> = c
                    .differences
                    .iter()
                    .take(5)
                    .map(ToString::to_string)
                    .collect();
                if !shown.is_empty() {
                    write!(f, ": {}", shown.join("; "))?;
                }
                if c.differences.len() > 5 {
                    write!(f, "; and {} more differences", c.differences.len() - 5)?;
                }
                Ok(())
            }
        }
    }
}

/// What the matcher makes of a live client message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reaction {
    /// Send these, in order.
    Emit(Vec<Emit>),
    /// A request that matches nothing on the tape.
    Unmatched(Miss),
    /// Nothing to send (a notification or answer the tape has nothing after, or a message
    /// that is not JSON-RPC).
    Nothing,
}

/// Plays one live conversation against a script.
///
/// Requests are matched by [`CanonicalKey`], first come first served per key: the n-th live
/// request with key K gets the answer of the n-th recorded one; when the recorded ones are
/// used up, the last is answered again (its answer only). The conversation starts in
/// recorded session `start` and walks the sessions in order: a request is looked for in the
/// current session first, then in the following ones (wrapping around), and the session
/// where it was found becomes the current one. Notifications and answers to server requests
/// release what the server sent after them in the current session (matched by method, or by
/// the server request's id, which replay keeps as recorded).
#[derive(Debug)]
pub struct Matcher {
    script: Arc<ReplayScript>,
    current: usize,
    used: Vec<Vec<bool>>,
    last: HashMap<(usize, CanonicalKey), usize>,
    ids: HashMap<String, Value>,
    tokens: HashMap<String, Value>,
}

impl Matcher {
    /// A conversation starting in recorded session `start` (taken modulo the count).
    pub fn new(script: Arc<ReplayScript>, start: usize) -> Self {
        let used = script
            .sessions
            .iter()
            .map(|s| vec![false; s.steps.len()])
            .collect();
        let current = start.checked_rem(script.sessions.len()).unwrap_or(0);
        Self {
            script,
            current,
            used,
            last: HashMap::new(),
            ids: HashMap::new(),
            tokens: HashMap::new(),
        }
    }

    /// The recorded session currently played (0-based).
    pub fn current_session(&self) -> usize {
        self.current
    }

    /// What the server sent before the client's first message in the starting session.
    pub fn startup(&self) -> Vec<Emit> {
        let Some(session) = self.script.sessions.get(self.current) else {
            return Vec::new();
        };
        let mut prev = session.start_ns;
        session
            .startup
            .iter()
            .map(|o| {
                let gap_ns = o.offset_ns.saturating_sub(prev);
                prev = o.offset_ns;
                Emit {
                    gap_ns,
                    message: o.message.clone(),
                    related: None,
                }
            })
            .collect()
    }

    /// Reacts to one live client message (not a batch: pass each element).
    pub fn on_client(&mut self, message: &Value) -> Reaction {
        let method = message.get("method").and_then(Value::as_str);
        let id = message.get("id").filter(|i| !i.is_null());
        match (method, id) {
            (Some(method), Some(id)) => self.on_request(method, id, message),
            (Some(method), None) => {
                self.release(|t| matches!(t, Trigger::Notification { method: m } if m == method))
            }
            (None, Some(id)) => {
                self.release(|t| matches!(t, Trigger::Response { id: r } if r == id))
            }
            (None, None) => Reaction::Nothing,
        }
    }

    fn release(&mut self, wanted: impl Fn(&Trigger) -> bool) -> Reaction {
        let script = self.script.clone();
        let Some(session) = script.sessions.get(self.current) else {
            return Reaction::Nothing;
        };
        let found = session
            .steps
            .iter()
            .enumerate()
            .find(|(i, s)| !self.used[self.current][*i] && wanted(&s.trigger));
        match found {
            Some((i, step)) => {
                self.used[self.current][i] = true;
                Reaction::Emit(self.outputs(step, None, None, false))
            }
            None => Reaction::Nothing,
        }
    }

    fn on_request(&mut self, method: &str, id: &Value, message: &Value) -> Reaction {
        let key = CanonicalKey::new(method, message.get("params"));
        let live_token = message
            .pointer("/params/_meta/progressToken")
            .filter(|t| !t.is_null());
        let count = self.script.sessions.len();
        let order: Vec<usize> = (0..count).map(|k| (self.current + k) % count).collect();
        let script = self.script.clone();
        let is_key = |s: &Step| matches!(&s.trigger, Trigger::Request { key: k, .. } if *k == key);
        // First unused, in the current session and then the following ones.
        for &si in &order {
            let steps = &script.sessions[si].steps;
            if let Some(i) = (0..steps.len()).find(|&i| !self.used[si][i] && is_key(&steps[i])) {
                self.used[si][i] = true;
                self.current = si;
                self.last.insert((si, key), i);
                return Reaction::Emit(self.outputs(&steps[i], Some(id), live_token, false));
            }
        }
        // All used: the last one again.
        for &si in &order {
            if let Some(&i) = self.last.get(&(si, key.clone())) {
                let step = &script.sessions[si].steps[i];
                return Reaction::Emit(self.outputs(step, Some(id), live_token, true));
            }
        }
        Reaction::Unmatched(self.closest(key, message))
    }

    /// The step's outputs, remapped to the live request.
    fn outputs(
        &mut self,
        step: &Step,
        live_id: Option<&Value>,
        live_token: Option<&Value>,
        answer_only: bool,
    ) -> Vec<Emit> {
        if let (
            Trigger::Request {
                id, progress_token, ..
            },
            Some(live),
        ) = (&step.trigger, live_id)
        {
            self.ids.insert(id.to_string(), live.clone());
            if let (Some(rec), Some(live)) = (progress_token, live_token) {
                self.tokens.insert(rec.to_string(), live.clone());
            }
        }
        let mut prev = step.offset_ns;
        let mut out = Vec::new();
        for Output {
            offset_ns,
            message,
            is_answer,
        } in &step.outputs
        {
            if answer_only && !is_answer {
                continue;
            }
            let gap_ns = offset_ns.saturating_sub(prev);
            prev = *offset_ns;
            let mut message = message.clone();
            if *is_answer && let (Some(live), Some(obj)) = (live_id, message.as_object_mut()) {
                obj.insert("id".into(), live.clone());
            }
            self.remap(&mut message);
            out.push(Emit {
                gap_ns,
                message,
                related: live_id.cloned(),
            });
        }
        out
    }

    fn remap(&self, message: &mut Value) {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (field, map) = match method.as_deref() {
            Some("notifications/progress") => ("progressToken", &self.tokens),
            Some("notifications/cancelled") => ("requestId", &self.ids),
            _ => return,
        };
        if let Some(slot) = message.get_mut("params").and_then(|p| p.get_mut(field))
            && let Some(live) = map.get(&slot.to_string())
        {
            *slot = live.clone();
        }
    }

    fn closest(&self, key: CanonicalKey, message: &Value) -> Miss {
        let live_params = message
            .get("params")
            .map(canonical_params)
            .unwrap_or(Value::Null);
        let mut best: Option<((u8, u8, usize, usize), Closest)> = None;
        let count = self.script.sessions.len();
        for k in 0..count {
            let si = (self.current + k) % count;
            for step in &self.script.sessions[si].steps {
                let Trigger::Request { key: rec, .. } = &step.trigger else {
                    continue;
                };
                let rec_params = step
                    .message
                    .get("params")
                    .map(canonical_params)
                    .unwrap_or(Value::Null);
                let mut differences = Vec::new();
                if rec.method() != key.method() {
                    differences.push(Difference {
                        path: "method".into(),
                        recorded: Some(Value::String(rec.method().to_owned())),
                        live: Some(Value::String(key.method().to_owned())),
                    });
                }
                differences.extend(diff_values("params", &rec_params, &live_params));
                let score = (
                    u8::from(rec.method() != key.method()),
                    u8::from(rec.tool() != key.tool()),
                    differences.len(),
                    k,
                );
                if best.as_ref().is_none_or(|(s, _)| score < *s) {
                    best = Some((
                        score,
                        Closest {
                            key: rec.clone(),
                            session: si,
                            request: step.message.clone(),
                            differences,
                        },
                    ));
                }
            }
        }
        Miss {
            key,
            closest: best.map(|(_, c)| c),
        }
    }
}
