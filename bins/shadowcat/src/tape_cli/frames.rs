//! Reading a tape frame by frame, what a frame's message is, and pairing requests with
//! their responses.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;

use serde_json::Value;
use shadowcat_core::tape::{Direction, Edge, TapeFrame, TapeHeader};

use super::Out;

/// Reads the tape at `path` one frame at a time, with a progress bar for big tapes; a
/// damaged frame or a torn tail is reported on stderr and reading goes on (or ends, for a
/// torn tail). Returns the header.
pub(crate) fn read_tape(
    out: &Out,
    path: &Path,
    label: &str,
    mut each: impl FnMut(&TapeHeader, TapeFrame) -> ControlFlow<()>,
) -> Result<TapeHeader, String> {
    let mut reader = shadowcat_core::tape::open(path).map_err(|e| e.to_string())?;
    let header = reader.header().clone();
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let mut progress = out.progress(label, size);
    let mut count = 0u64;
    while let Some(frame) = reader.next() {
        match frame {
            Ok(frame) => {
                if each(&header, frame).is_break() {
                    break;
                }
            }
            Err(e) => out.error(&format!("warning: {e}")),
        }
        count += 1;
        if count.is_multiple_of(1024) {
            progress.set(reader.next_offset());
        }
    }
    progress.finish();
    Ok(header)
}

/// What kind of JSON-RPC message a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Notification,
    Result,
    Error,
    /// Not a JSON-RPC message (or not JSON at all).
    Other,
}

/// A frame's message, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) value: Option<Value>,
    pub(crate) kind: Kind,
    pub(crate) method: Option<String>,
    pub(crate) tool: Option<String>,
}

impl Msg {
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        let value: Option<Value> = serde_json::from_slice(bytes).ok();
        let Some(obj) = value.as_ref().and_then(Value::as_object) else {
            return Self {
                value,
                kind: Kind::Other,
                method: None,
                tool: None,
            };
        };
        let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
        let has_id = obj.get("id").is_some_and(|id| !id.is_null());
        let kind = match (&method, has_id) {
            (Some(_), true) => Kind::Request,
            (Some(_), false) => Kind::Notification,
            (None, _) if obj.contains_key("error") => Kind::Error,
            (None, _) if obj.contains_key("result") => Kind::Result,
            _ => Kind::Other,
        };
        let tool = (method.as_deref() == Some("tools/call"))
            .then(|| obj.get("params")?.get("name")?.as_str().map(str::to_owned))
            .flatten();
        Self {
            value,
            kind,
            method,
            tool,
        }
    }

    pub(crate) fn id(&self) -> Option<&Value> {
        self.value.as_ref()?.get("id").filter(|id| !id.is_null())
    }

    /// The id as a short display string: `1`, `"abc"`.
    pub(crate) fn id_text(&self) -> Option<String> {
        self.id().map(Value::to_string)
    }
}

/// The key that pairs a response with its request: session, edge, the request's direction
/// and its id.
pub(crate) fn pair_key(frame: &TapeFrame, request_direction: Direction, id: &Value) -> String {
    format!(
        "{}\u{0}{}\u{0}{}\u{0}{id}",
        frame.session_id.as_deref().unwrap_or(""),
        frame.edge,
        request_direction
    )
}

/// The direction of the request a response in `direction` answers.
pub(crate) fn opposite(direction: Direction) -> Direction {
    match direction {
        Direction::ClientToServer => Direction::ServerToClient,
        _ => Direction::ClientToServer,
    }
}

/// Requests waiting for their responses (only those: memory stays bounded by what is in
/// flight, not by the tape's length).
#[derive(Debug)]
pub(crate) struct Pending<T> {
    waiting: HashMap<String, T>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            waiting: HashMap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// Remembers a request frame.
    pub(crate) fn request(&mut self, frame: &TapeFrame, msg: &Msg, data: T) {
        if let Some(id) = msg.id() {
            self.waiting
                .insert(pair_key(frame, frame.direction, id), data);
        }
    }

    /// The request a response frame answers, removed from the waiting set.
    pub(crate) fn response(&mut self, frame: &TapeFrame, msg: &Msg) -> Option<T> {
        let id = msg.id()?;
        self.waiting
            .remove(&pair_key(frame, opposite(frame.direction), id))
    }

    /// The requests never answered.
    pub(crate) fn into_unanswered(self) -> impl Iterator<Item = T> {
        self.waiting.into_values()
    }
}

/// Which edge to pair on: the client edge when the tape has client-edge frames (what the
/// client saw), else the server edge.
pub(crate) fn preferred_edge(client_edge_frames: u64) -> Edge {
    if client_edge_frames > 0 {
        Edge::Client
    } else {
        Edge::Server
    }
}

/// A direction's arrow: `→` towards the server, `←` towards the client.
pub(crate) fn arrow(direction: Direction) -> &'static str {
    match direction {
        Direction::ClientToServer => "→",
        _ => "←",
    }
}

/// Parses a direction as given on the command line.
pub(crate) fn parse_direction(text: &str) -> Result<Direction, String> {
    match text {
        "client_to_server" | "c2s" | "to-server" | "request" | "out" => {
            Ok(Direction::ClientToServer)
        }
        "server_to_client" | "s2c" | "to-client" | "response" | "in" => {
            Ok(Direction::ServerToClient)
        }
        _ => Err(format!("{text:?} is not a direction (c2s or s2c)")),
    }
}

/// Parses an edge as given on the command line.
pub(crate) fn parse_edge(text: &str) -> Result<Edge, String> {
    Edge::from_name(text).ok_or_else(|| format!("{text:?} is not an edge (client or server)"))
}

/// Whether `text` matches the glob `pattern` (`*` any run, `?` one character).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("tools/*", "tools/call"));
        assert!(glob("*", ""));
        assert!(glob("t?ols/c*l", "tools/call"));
        assert!(!glob("tools/*", "resources/list"));
        assert!(!glob("tools", "tools/call"));
    }
}
