//! A tape read for replay: its sessions, each a list of client messages (steps) with the
//! server messages that followed each.

use std::collections::HashMap;

use serde_json::Value;

use super::key::CanonicalKey;
use crate::{Direction, Edge, TapeFrame};

/// One message of a recorded session, parsed, in recorded order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedMessage {
    /// Nanoseconds from the tape's start.
    pub offset_ns: u64,
    /// Which way it travelled.
    pub direction: Direction,
    /// The message (one element of a batch is one message).
    pub message: Value,
}

/// What a step waits for: the live client message that releases its outputs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Trigger {
    /// A client request, matched by its canonical key.
    Request {
        /// The request's canonical key.
        key: CanonicalKey,
        /// The recorded request id.
        id: Value,
        /// The recorded `params._meta.progressToken`.
        progress_token: Option<Value>,
    },
    /// A client notification, matched by method.
    Notification {
        /// Its method.
        method: String,
    },
    /// The client's answer to a server request, matched by id (server request ids are
    /// replayed as recorded).
    Response {
        /// The id it answers.
        id: Value,
    },
}

/// A server message to send when a step is triggered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Output {
    /// Nanoseconds from the tape's start.
    pub offset_ns: u64,
    /// The recorded message.
    pub message: Value,
    /// Whether it is the answer to the step's request.
    pub is_answer: bool,
}

/// A client message as recorded, with the server messages that belong to it: for a
/// request, its answer and what the server sent while working on it; for any client
/// message, what the server sent after it and before the next client message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Step {
    /// Nanoseconds from the tape's start.
    pub offset_ns: u64,
    /// What releases it.
    pub trigger: Trigger,
    /// The recorded client message.
    pub message: Value,
    /// What the server sent for it, in recorded order.
    pub outputs: Vec<Output>,
}

impl Step {
    /// The recorded answer, for a request that was answered.
    pub fn answer(&self) -> Option<&Output> {
        self.outputs.iter().find(|o| o.is_answer)
    }
}

/// One recorded session.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct RecordedSession {
    /// Its session id on the tape.
    pub id: Option<String>,
    /// The edge whose frames were used (the client edge when the tape has it).
    pub edge: Option<Edge>,
    /// Every message of that edge, in order.
    pub messages: Vec<RecordedMessage>,
    /// Nanoseconds from the tape's start of its first message.
    pub start_ns: u64,
    /// Server messages sent before the client's first message.
    pub startup: Vec<Output>,
    /// The client's messages, in order.
    pub steps: Vec<Step>,
}

/// A tape prepared for replay: its sessions in order of first appearance.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ReplayScript {
    /// The sessions, in the order they first appear on the tape.
    pub sessions: Vec<RecordedSession>,
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

impl ReplayScript {
    /// Prepares `frames` (a tape's frames in order) for replay. Frames are grouped by
    /// session id; from each session the client edge is used when it was recorded,
    /// otherwise the server edge. Frames that are not JSON are skipped.
    pub fn from_frames<'a>(frames: impl IntoIterator<Item = &'a TapeFrame>) -> Self {
        let mut order: Vec<Option<String>> = Vec::new();
        let mut groups: HashMap<Option<String>, Vec<&TapeFrame>> = HashMap::new();
        for frame in frames {
            let list = groups.entry(frame.session_id.clone()).or_insert_with(|| {
                order.push(frame.session_id.clone());
                Vec::new()
            });
            list.push(frame);
        }
        let sessions = order
            .into_iter()
            .map(|id| {
                let frames = groups.remove(&id).unwrap_or_default();
                build_session(id, &frames)
            })
            .collect();
        Self { sessions }
    }

    /// How many client requests the tape holds, over all sessions.
    pub fn request_count(&self) -> usize {
        self.sessions
            .iter()
            .flat_map(|s| &s.steps)
            .filter(|s| matches!(s.trigger, Trigger::Request { .. }))
            .count()
    }
}

fn build_session(id: Option<String>, frames: &[&TapeFrame]) -> RecordedSession {
    let edge = if frames.iter().any(|f| f.edge == Edge::Client) {
        Edge::Client
    } else {
        Edge::Server
    };
    let mut messages = Vec::new();
    for frame in frames.iter().filter(|f| f.edge == edge) {
        let Ok(value) = serde_json::from_slice::<Value>(&frame.message) else {
            continue;
        };
        let items = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        messages.extend(items.into_iter().map(|message| RecordedMessage {
            offset_ns: frame.offset_ns,
            direction: frame.direction,
            message,
        }));
    }
    let start_ns = messages.first().map_or(0, |m| m.offset_ns);
    let mut session = RecordedSession {
        id,
        edge: (!frames.is_empty()).then_some(edge),
        start_ns,
        ..RecordedSession::default()
    };
    // Recorded request id -> step index, progress token -> step index.
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut by_token: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        let v = &m.message;
        let method = v.get("method").and_then(Value::as_str);
        let id = v.get("id").filter(|i| !i.is_null());
        match m.direction {
            Direction::ClientToServer => {
                let trigger = match (method, id) {
                    (Some(method), Some(id)) => {
                        let progress_token = v
                            .pointer("/params/_meta/progressToken")
                            .filter(|t| !t.is_null())
                            .cloned();
                        by_id.insert(id_key(id), session.steps.len());
                        if let Some(t) = &progress_token {
                            by_token.insert(id_key(t), session.steps.len());
                        }
                        Trigger::Request {
                            key: CanonicalKey::new(method, v.get("params")),
                            id: id.clone(),
                            progress_token,
                        }
                    }
                    (Some(method), None) => Trigger::Notification {
                        method: method.to_owned(),
                    },
                    (None, Some(id)) => Trigger::Response { id: id.clone() },
                    (None, None) => continue,
                };
                session.steps.push(Step {
                    offset_ns: m.offset_ns,
                    trigger,
                    message: v.clone(),
                    outputs: Vec::new(),
                });
            }
            Direction::ServerToClient => {
                let is_answer = method.is_none() && id.is_some();
                let owner = if is_answer {
                    id.and_then(|i| by_id.get(&id_key(i)).copied())
                } else if method == Some("notifications/progress") {
                    v.pointer("/params/progressToken")
                        .and_then(|t| by_token.get(&id_key(t)).copied())
                } else if method == Some("notifications/cancelled") {
                    v.pointer("/params/requestId")
                        .and_then(|i| by_id.get(&id_key(i)).copied())
                } else {
                    None
                };
                let owner = owner.or_else(|| session.steps.len().checked_sub(1));
                let output = Output {
                    offset_ns: m.offset_ns,
                    message: v.clone(),
                    is_answer: is_answer && owner.is_some(),
                };
                match owner.and_then(|i| session.steps.get_mut(i)) {
                    Some(step) => step.outputs.push(output),
                    None => session.startup.push(output),
                }
            }
        }
    }
    session.messages = messages;
    session
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ns: u64, dir: Direction, text: &str) -> TapeFrame {
        TapeFrame::new(ns, dir, Edge::Client, text.as_bytes().to_vec()).with_session_id("s")
    }

    #[test]
    fn attaches_server_messages_to_their_step() {
        use Direction::{ClientToServer as C, ServerToClient as S};
        let frames = [
            frame(
                1,
                S,
                r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#,
            ),
            frame(
                2,
                C,
                r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
            ),
            frame(3, S, r#"{"jsonrpc":"2.0","id":0,"result":{}}"#),
            frame(
                4,
                C,
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            ),
            frame(5, S, r#"{"jsonrpc":"2.0","id":0,"method":"roots/list"}"#),
            frame(
                6,
                C,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","_meta":{"progressToken":9}}}"#,
            ),
            frame(7, C, r#"{"jsonrpc":"2.0","id":0,"result":{"roots":[]}}"#),
            frame(
                8,
                S,
                r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":9,"progress":1}}"#,
            ),
            frame(9, S, r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#),
        ];
        let script = ReplayScript::from_frames(&frames);
        assert_eq!(script.sessions.len(), 1);
        let s = &script.sessions[0];
        assert_eq!(s.startup.len(), 1);
        assert_eq!(s.steps.len(), 4);
        assert!(s.steps[0].answer().is_some());
        assert_eq!(s.steps[1].outputs.len(), 1); // roots/list after initialized
        assert!(!s.steps[1].outputs[0].is_answer);
        assert_eq!(s.steps[2].outputs.len(), 2); // progress and answer of tools/call
        assert!(s.steps[2].outputs[1].is_answer);
        assert!(matches!(s.steps[3].trigger, Trigger::Response { .. }));
        assert_eq!(script.request_count(), 2);
    }
}
