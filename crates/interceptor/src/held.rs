//! Manual intercept: messages held for a person, who resumes, edits or drops them.
//!
//! The pipeline calls [`HeldMessages::hold`] when the chain answers [`Outcome::Pause`] and
//! waits for the [`Decision`]; the control API lists held messages and carries out a
//! person's decision with [`HeldMessages::resume`], [`HeldMessages::edit`] and
//! [`HeldMessages::drop_message`].
//!
//! [`Outcome::Pause`]: crate::Outcome::Pause

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde::{Serialize, Serializer};
use shadowcat_mcp::Message;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::Direction;

/// How many messages may be held at once unless told otherwise.
pub const DEFAULT_MAX_HELD: usize = 1024;

/// What a person decided about a held message (or that nobody did in time).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Forward the message as it is.
    Resume,
    /// Forward this message instead.
    ResumeEdited(Message),
    /// Do not forward the message.
    Drop,
    /// Nobody decided in time, or there was no room to hold the message: carry out the
    /// pause's `on_timeout` outcome.
    TimedOut,
}

/// A message to hold and what to show about it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HeldInfo {
    /// The session it belongs to.
    pub session: String,
    /// Which way it travels.
    pub direction: Direction,
    /// The client-side transport (`stdio`, `streamable-http`, `legacy-sse`).
    pub transport: String,
    /// The message's bytes.
    pub message: Bytes,
    /// The rule or interceptor that held it.
    pub by: String,
    /// Its method (for a response: the method of the request it answers, when known).
    pub method: Option<String>,
    /// Its JSON-RPC id, as JSON text (`1`, `"a"`).
    pub request_id: Option<String>,
}

impl HeldInfo {
    /// What to hold for `message`, held by `by`; the method and id come from the message.
    pub fn new(
        session: impl Into<String>,
        direction: Direction,
        transport: impl Into<String>,
        by: impl Into<String>,
        message: &Message,
    ) -> Self {
        Self {
            session: session.into(),
            direction,
            transport: transport.into(),
            message: message.as_bytes().clone(),
            by: by.into(),
            method: message.method().map(str::to_owned),
            request_id: message.id().map(|id| id.to_json()),
        }
    }

    /// The same with the method to show (for a response, the answered request's method).
    pub fn with_method(mut self, method: Option<String>) -> Self {
        if method.is_some() {
            self.method = method;
        }
        self
    }
}

/// One held message, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HeldSummary {
    /// Its id in the control API (`h1`, `h2`, …).
    pub id: String,
    /// The session it belongs to.
    pub session: String,
    /// Which way it travels (`client_to_server` or `server_to_client`).
    #[serde(serialize_with = "direction_str")]
    pub direction: Direction,
    /// The client-side transport.
    pub transport: String,
    /// Its method, when known.
    pub method: Option<String>,
    /// Its JSON-RPC id as JSON text; serialized as that JSON value.
    #[serde(serialize_with = "raw_json_opt")]
    pub request_id: Option<String>,
    /// The rule or interceptor that held it.
    pub by: String,
    /// How long it has been held; serialized as `held_ms`.
    #[serde(rename = "held_ms", serialize_with = "millis")]
    pub held_for: Duration,
    /// How long until it times out; serialized as `remaining_ms`.
    #[serde(rename = "remaining_ms", serialize_with = "millis")]
    pub time_left: Duration,
}

/// One held message with its full text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HeldDetail {
    /// What the listing shows.
    #[serde(flatten)]
    pub summary: HeldSummary,
    /// The message; serialized as its JSON (exactly its bytes).
    #[serde(serialize_with = "raw_json")]
    pub message: Bytes,
}

/// Why a decision about a held message could not be carried out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HeldError {
    /// No message is held under this id (never was, or it was already decided or timed out).
    #[error("no held message {id}")]
    UnknownId {
        /// The id asked for.
        id: String,
    },
    /// The edited message is not a JSON-RPC message; it stays held, unchanged.
    #[error("invalid edit of {id}: {reason}")]
    InvalidEdit {
        /// The held message's id.
        id: String,
        /// For invalid JSON, the byte offset of the first error in the edited text.
        offset: Option<usize>,
        /// What is wrong (with the offset, or the field at fault).
        reason: String,
    },
}

impl HeldError {
    /// Whether the id is unknown.
    pub fn is_unknown_id(&self) -> bool {
        matches!(self, Self::UnknownId { .. })
    }
}

struct Entry {
    info: HeldInfo,
    held_at: Instant,
    deadline: Instant,
    decide: oneshot::Sender<Decision>,
}

#[derive(Default)]
struct Table {
    entries: BTreeMap<u64, Entry>,
}

struct Inner {
    max_held: usize,
    next: AtomicU64,
    table: Mutex<Table>,
}

/// The messages held for a person; clones share them.
///
/// At most `max_held` are held at once: a pause beyond that is not held (its
/// `on_timeout` outcome applies at once, [`Decision::TimedOut`]) and a warning is logged.
#[derive(Clone)]
pub struct HeldMessages {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HeldMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldMessages")
            .field("max_held", &self.inner.max_held)
            .field("held", &self.lock().entries.len())
            .finish()
    }
}

impl Default for HeldMessages {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_HELD)
    }
}

/// Removes its entry when the `hold` future ends or is dropped.
struct Release<'a> {
    held: &'a HeldMessages,
    key: u64,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.held.lock().entries.remove(&self.key);
    }
}

impl HeldMessages {
    /// An empty set that holds at most `max_held` messages at once.
    pub fn new(max_held: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_held,
                next: AtomicU64::new(1),
                table: Mutex::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves the map consistent: every change is one
        // insert or remove.
        self.inner
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds a message until a person decides or `timeout` passes.
    ///
    /// Cancellation-safe: when the returned future is dropped, the message is no longer held.
    pub async fn hold(&self, held: HeldInfo, timeout: Duration) -> Decision {
        let (decide, mut decided) = oneshot::channel();
        let now = Instant::now();
        let key = {
            let mut table = self.lock();
            if table.entries.len() >= self.inner.max_held {
                tracing::warn!(
                    session = %held.session,
                    method = held.method.as_deref().unwrap_or("-"),
                    by = %held.by,
                    "cannot hold the message: {} already held; applying the timeout outcome",
                    self.inner.max_held
                );
                return Decision::TimedOut;
            }
            let key = self.inner.next.fetch_add(1, Relaxed);
            tracing::info!(
                id = %format_args!("h{key}"),
                session = %held.session,
                direction = held.direction.as_str(),
                method = held.method.as_deref().unwrap_or("-"),
                by = %held.by,
                "message held for {timeout:?}"
            );
            table.entries.insert(
                key,
                Entry {
                    info: held,
                    held_at: now,
                    deadline: now.checked_add(timeout).unwrap_or(now + FAR_FUTURE),
                    decide,
                },
            );
            key
        };
        let release = Release { held: self, key };
        let decision = match tokio::time::timeout(timeout, &mut decided).await {
            Ok(Ok(decision)) => decision,
            // The sender went away without deciding: only when the set is dropped.
            Ok(Err(_)) => Decision::TimedOut,
            Err(_) => {
                let removed = self.lock().entries.remove(&key);
                match removed {
                    Some(_) => {
                        tracing::info!(id = %format_args!("h{key}"), "held message timed out");
                        Decision::TimedOut
                    }
                    // Decided just as the time ran out: the decision is in the channel.
                    None => decided.try_recv().unwrap_or(Decision::TimedOut),
                }
            }
        };
        drop(release);
        decision
    }

    /// The held messages, oldest first.
    pub fn list(&self) -> Vec<HeldSummary> {
        let now = Instant::now();
        self.lock()
            .entries
            .iter()
            .map(|(key, entry)| summary(*key, entry, now))
            .collect()
    }

    /// How many messages are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One held message with its text, or `None` for an unknown id.
    pub fn get(&self, id: &str) -> Option<HeldDetail> {
        let key = parse_id(id)?;
        let now = Instant::now();
        let table = self.lock();
        let entry = table.entries.get(&key)?;
        Some(HeldDetail {
            summary: summary(key, entry, now),
            message: entry.info.message.clone(),
        })
    }

    /// Forwards a held message as it is.
    pub fn resume(&self, id: &str) -> Result<(), HeldError> {
        self.decide(id, Decision::Resume)
    }

    /// Forwards `new_bytes` in place of a held message. They must parse as a JSON-RPC
    /// message; when they do not, the message stays held and the error says why (for
    /// invalid JSON, at which byte offset).
    pub fn edit(&self, id: &str, new_bytes: impl Into<Bytes>) -> Result<(), HeldError> {
        // Check the id first, so an unknown id is reported as such whatever the edit.
        if self.get(id).is_none() {
            return Err(unknown(id));
        }
        let bytes = new_bytes.into();
        let message = Message::parse(bytes.clone()).map_err(|e| invalid_edit(id, &bytes, &e))?;
        self.decide(id, Decision::ResumeEdited(message))
    }

    /// Drops a held message: it is not forwarded.
    pub fn drop_message(&self, id: &str) -> Result<(), HeldError> {
        self.decide(id, Decision::Drop)
    }

    fn decide(&self, id: &str, decision: Decision) -> Result<(), HeldError> {
        let key = parse_id(id).ok_or_else(|| unknown(id))?;
        let entry = self
            .lock()
            .entries
            .remove(&key)
            .ok_or_else(|| unknown(id))?;
        tracing::info!(
            id,
            decision = decision_name(&decision),
            "held message decided"
        );
        // The receiver is gone only if its `hold` was dropped at this very moment.
        entry.decide.send(decision).map_err(|_| unknown(id))
    }
}

/// Stands in for a deadline beyond what `Instant` can represent.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn decision_name(decision: &Decision) -> &'static str {
    match decision {
        Decision::Resume => "resume",
        Decision::ResumeEdited(_) => "resume edited",
        Decision::Drop => "drop",
        Decision::TimedOut => "timed out",
    }
}

fn summary(key: u64, entry: &Entry, now: Instant) -> HeldSummary {
    let info = &entry.info;
    HeldSummary {
        id: format!("h{key}"),
        session: info.session.clone(),
        direction: info.direction,
        transport: info.transport.clone(),
        method: info.method.clone(),
        request_id: info.request_id.clone(),
        by: info.by.clone(),
        held_for: now.saturating_duration_since(entry.held_at),
        time_left: entry.deadline.saturating_duration_since(now),
    }
}

fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix('h')?.parse().ok()
}

fn unknown(id: &str) -> HeldError {
    HeldError::UnknownId { id: id.to_owned() }
}

fn invalid_edit(id: &str, bytes: &[u8], error: &shadowcat_mcp::Error) -> HeldError {
    let offset = match error {
        shadowcat_mcp::Error::Json { line, column, .. } => Some(byte_offset(bytes, *line, *column)),
        _ => None,
    };
    let reason = match offset {
        Some(offset) => format!("{error} (byte offset {offset})"),
        None => error.to_string(),
    };
    HeldError::InvalidEdit {
        id: id.to_owned(),
        offset,
        reason,
    }
}

/// The byte offset of a 1-based line and (byte) column.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(bytes.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

fn direction_str<S: Serializer>(direction: &Direction, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(direction.as_str())
}

fn millis<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

fn raw_json<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    let text = std::str::from_utf8(bytes).map_err(S::Error::custom)?;
    let raw: &serde_json::value::RawValue =
        serde_json::from_str(text.trim()).map_err(S::Error::custom)?;
    raw.serialize(s)
}

fn raw_json_opt<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    match text {
        Some(text) => {
            let raw: &serde_json::value::RawValue =
                serde_json::from_str(text).map_err(S::Error::custom)?;
            raw.serialize(s)
        }
        None => s.serialize_none(),
    }
}

#[cfg(test)]
#[path = "held_tests.rs"]
mod tests;
