//! The resumable event store: a session's recent server-sent events, for `Last-Event-ID`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use bytes::Bytes;

/// One SSE stream of a session (a POST's response stream, or the GET stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(u64);

impl StreamId {
    /// The stream's number, unique within its [`EventStore`].
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of one event, written `<stream>-<sequence>` (e.g. `3-17`) in the SSE `id:` field.
///
/// Sequence numbers count every event of the store, so ids are unique within a session even
/// across streams that have been forgotten, and a `Last-Event-ID` names its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    stream: StreamId,
    seq: u64,
}

impl EventId {
    /// The stream the event belongs to.
    pub const fn stream(self) -> StreamId {
        self.stream
    }

    /// The event's sequence number within the store.
    pub const fn seq(self) -> u64 {
        self.seq
    }

    /// Reads an id as this store writes it: two decimal numbers without leading zeros,
    /// joined by `-`. `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (stream, seq) = text.split_once('-')?;
        Some(Self {
            stream: StreamId(number(stream)?),
            seq: number(seq)?,
        })
    }
}

fn number(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.stream.0, self.seq)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.to_string()
    }
}

/// What to send a client that reconnected with `Last-Event-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The stream the client is resuming.
    pub stream: StreamId,
    /// Every kept event of that stream after the one the client last saw, in order, with its
    /// id.
    pub events: Vec<(String, Bytes)>,
    /// Whether the stream has ended: after replaying, close the response.
    pub closed: bool,
}

/// Why a `Last-Event-ID` cannot be resumed; either way the gateway answers 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayError {
    /// The id is malformed, was never issued, or its stream has been forgotten.
    Unknown,
    /// Events after the id have already been dropped to honour the per-stream bound.
    Gap,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unknown => "unknown Last-Event-ID",
            Self::Gap => "events after this Last-Event-ID are no longer kept",
        })
    }
}

impl std::error::Error for ReplayError {}

#[derive(Debug)]
struct Stream {
    /// Kept events, oldest first; sequence numbers increase.
    events: VecDeque<(u64, Bytes)>,
    /// The sequence number of the newest event dropped for the bound (0: none).
    dropped_up_to: u64,
    closed: bool,
}

/// A session's recent server-sent events, per stream, so a client reconnecting with
/// `Last-Event-ID` receives what it missed on that stream.
///
/// Bounded: each stream keeps its newest `max_events_per_stream` events, and at most
/// `max_streams` streams are remembered (the oldest closed streams are forgotten first, then
/// the oldest). Not synchronized: a session keeps its store behind its own lock.
///
/// ```
/// use bytes::Bytes;
/// use shadowcat_session::EventStore;
///
/// let mut store = EventStore::new(16, 4);
/// let stream = store.open_stream();
/// let first = store.push(stream, Bytes::from_static(b"{\"a\":1}"));
/// let second = store.push(stream, Bytes::from_static(b"{\"b\":2}"));
/// let replay = store.replay_after(&first.to_string()).unwrap();
/// assert_eq!(replay.events, vec![(second.to_string(), Bytes::from_static(b"{\"b\":2}"))]);
/// ```
#[derive(Debug)]
pub struct EventStore {
    max_events: usize,
    max_streams: usize,
    streams: BTreeMap<u64, Stream>,
    next_stream: u64,
    next_seq: u64,
    bytes: usize,
}

impl EventStore {
    /// An empty store keeping up to `max_events_per_stream` events in each of up to
    /// `max_streams` streams (at least one).
    pub fn new(max_events_per_stream: usize, max_streams: usize) -> Self {
        Self {
            max_events: max_events_per_stream,
            max_streams: max_streams.max(1),
            streams: BTreeMap::new(),
            next_stream: 0,
            next_seq: 1,
            bytes: 0,
        }
    }

    /// Starts a new stream, forgetting old ones beyond the bound.
    pub fn open_stream(&mut self) -> StreamId {
        let id = self.next_stream;
        self.next_stream += 1;
        self.streams.insert(
            id,
            Stream {
                events: VecDeque::new(),
                dropped_up_to: 0,
                closed: false,
            },
        );
        while self.streams.len() > self.max_streams {
            let victim = self
                .streams
                .iter()
                .find(|(_, s)| s.closed)
                .or_else(|| self.streams.iter().next())
                .map(|(&k, _)| k);
            let Some(victim) = victim else { break };
            if let Some(gone) = self.streams.remove(&victim) {
                self.bytes -= gone.events.iter().map(|(_, d)| d.len()).sum::<usize>();
            }
        }
        StreamId(id)
    }

    /// Records an event sent on `stream` and returns its id (for the SSE `id:` field).
    /// Events for a closed or forgotten stream still get a unique id but are not kept.
    pub fn push(&mut self, stream: StreamId, data: Bytes) -> EventId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = EventId { stream, seq };
        let Some(s) = self.streams.get_mut(&stream.0) else {
            return id;
        };
        if s.closed {
            return id;
        }
        self.bytes += data.len();
        s.events.push_back((seq, data));
        while s.events.len() > self.max_events {
            if let Some((dropped, data)) = s.events.pop_front() {
                s.dropped_up_to = dropped;
                self.bytes -= data.len();
            }
        }
        id
    }

    /// Marks the stream ended; its kept events can still be replayed.
    pub fn close_stream(&mut self, stream: StreamId) {
        if let Some(s) = self.streams.get_mut(&stream.0) {
            s.closed = true;
        }
    }

    /// Whether the stream has ended (or has been forgotten): no more events are kept for it.
    pub fn is_closed(&self, stream: StreamId) -> bool {
        self.streams.get(&stream.0).is_none_or(|s| s.closed)
    }

    /// The events of the `Last-Event-ID`'s stream after it.
    ///
    /// # Errors
    ///
    /// [`ReplayError::Unknown`] when the id is malformed, was never issued for a kept event of
    /// its stream, or the stream was forgotten; [`ReplayError::Gap`] when some events after
    /// it are no longer kept.
    pub fn replay_after(&self, last_event_id: &str) -> Result<Replay, ReplayError> {
        let last = EventId::parse(last_event_id).ok_or(ReplayError::Unknown)?;
        let s = self
            .streams
            .get(&last.stream.0)
            .ok_or(ReplayError::Unknown)?;
        let from = match s.events.binary_search_by_key(&last.seq, |(seq, _)| *seq) {
            Ok(index) => index + 1,
            Err(_) if last.seq == s.dropped_up_to && last.seq != 0 => 0,
            Err(_) if last.seq < s.dropped_up_to => return Err(ReplayError::Gap),
            Err(_) => return Err(ReplayError::Unknown),
        };
        let events = s
            .events
            .range(from..)
            .map(|(seq, data)| {
                let id = EventId {
                    stream: last.stream,
                    seq: *seq,
                };
                (id.to_string(), data.clone())
            })
            .collect();
        Ok(Replay {
            stream: last.stream,
            events,
            closed: s.closed,
        })
    }

    /// The bytes of event data held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many streams are remembered.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// How many events are held, over all streams.
    pub fn events(&self) -> usize {
        self.streams.values().map(|s| s.events.len()).sum()
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
