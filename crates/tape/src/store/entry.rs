//! What the index knows about one tape, and how it is worked out from the file.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::source::open_source;
use crate::{Direction, Edge, Result};

/// Frame counts of one tape, in total, per direction and per edge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FrameCounts {
    /// All frames.
    pub total: u64,
    /// Frames from the client towards the server.
    pub client_to_server: u64,
    /// Frames from the server towards the client.
    pub server_to_client: u64,
    /// Frames seen on the proxy's client edge.
    pub client_edge: u64,
    /// Frames seen on the proxy's server edge.
    pub server_edge: u64,
}

/// One tape in a [`TapeStore`](crate::TapeStore)'s index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TapeEntry {
    /// The tape's id, from its header.
    pub id: String,
    /// The file's name inside the store's directory.
    pub file: String,
    /// The format: `jsonl`, `binary` or `lz4`.
    pub format: String,
    /// The name the user gave the tape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tape's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Wall-clock start (offset 0), nanoseconds since the Unix epoch.
    pub started_at_unix_ns: u64,
    /// Wall-clock time of the last frame (the start when there is none).
    pub ended_at_unix_ns: u64,
    /// The session ids of its frames, sorted.
    #[serde(default)]
    pub sessions: Vec<String>,
    /// Frame counts.
    #[serde(default)]
    pub frames: FrameCounts,
    /// The JSON-RPC methods of its requests and notifications, sorted.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The tools called in it (`tools/call` names), sorted.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The file's size in bytes.
    pub bytes: u64,
    /// The file's modification time in nanoseconds since the Unix epoch, with `bytes` what
    /// tells a rescan that the file changed.
    #[serde(default)]
    pub modified_unix_ns: u64,
    /// What went wrong reading the tape (a torn tail, a malformed frame), when something
    /// did: the entry then describes what reads back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl TapeEntry {
    /// Reads the whole tape at `path` (one frame at a time) and describes it. A torn tail or
    /// malformed frames do not fail it: they are noted in [`problem`](Self::problem).
    pub fn from_file(path: &Path) -> Result<Self> {
        let (bytes, modified_unix_ns) = file_stamp(path)?;
        let source = open_source(path)?;
        let header = source.header;
        let (mut sessions, mut methods, mut tools) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut frames = FrameCounts::default();
        let mut last_offset = 0u64;
        let mut problem = None;
        for frame in source.frames {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    problem.get_or_insert_with(|| e.to_string());
                    continue;
                }
            };
            frames.total += 1;
            match frame.direction {
                Direction::ClientToServer => frames.client_to_server += 1,
                _ => frames.server_to_client += 1,
            }
            match frame.edge {
                Edge::Client => frames.client_edge += 1,
                _ => frames.server_edge += 1,
            }
            last_offset = last_offset.max(frame.offset_ns);
            if let Some(session) = &frame.session_id
                && !sessions.contains(session)
            {
                sessions.insert(session.clone());
            }
            if let Some((method, tool)) = method_and_tool(&frame.message) {
                if let Some(tool) = tool
                    && !tools.contains(&tool)
                {
                    tools.insert(tool);
                }
                if !methods.contains(&method) {
                    methods.insert(method);
                }
            }
        }
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            id: header.tape_id.clone(),
            file,
            format: source.format.to_owned(),
            name: header.name.clone(),
            tags: header.tags.clone(),
            started_at_unix_ns: header.started_at_unix_ns,
            ended_at_unix_ns: header.unix_ns_at(last_offset),
            sessions: sessions.into_iter().collect(),
            frames,
            methods: methods.into_iter().collect(),
            tools: tools.into_iter().collect(),
            bytes,
            modified_unix_ns,
            problem,
        })
    }
}

/// The method of a JSON-RPC request or notification, and the tool for `tools/call`.
pub(crate) fn method_and_tool(message: &[u8]) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct Head<'a> {
        method: Option<String>,
        #[serde(borrow)]
        params: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Named {
        name: Option<String>,
    }
    let head: Head<'_> = serde_json::from_slice(message).ok()?;
    let method = head.method?;
    let tool = if method == "tools/call" {
        head.params
            .and_then(|p| serde_json::from_str::<Named>(p.get()).ok())
            .and_then(|n| n.name)
    } else {
        None
    };
    Some((method, tool))
}

/// The file's size and modification time (ns since the epoch).
pub(crate) fn file_stamp(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|source| crate::Error::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Ok((meta.len(), modified))
}

/// What [`TapeStore::list`](crate::TapeStore::list) and
/// [`TapeStore::search`](crate::TapeStore::search) select: every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TapeFilter {
    /// The id, or a prefix of it.
    pub id: Option<String>,
    /// A substring of the name (case-insensitive).
    pub name: Option<String>,
    /// A tag the tape has.
    pub tag: Option<String>,
    /// A method that occurs in it.
    pub method: Option<String>,
    /// A tool called in it.
    pub tool: Option<String>,
    /// A session in it.
    pub session: Option<String>,
    /// Tapes that end at or after this time (ns since the epoch).
    pub since_unix_ns: Option<u64>,
    /// Tapes that start at or before this time (ns since the epoch).
    pub until_unix_ns: Option<u64>,
}

impl TapeFilter {
    /// A filter that selects every tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tapes whose id starts with `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Tapes whose name contains `name`, ignoring case.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Tapes with the tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Tapes in which the method occurs.
    pub fn with_method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Tapes in which the tool is called.
    pub fn with_tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }

    /// Tapes that hold the session.
    pub fn with_session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    /// Tapes that overlap the time range (ns since the epoch; either end open).
    pub fn with_time_range(mut self, since: Option<u64>, until: Option<u64>) -> Self {
        self.since_unix_ns = since;
        self.until_unix_ns = until;
        self
    }

    /// Whether the entry meets every condition.
    pub fn matches(&self, entry: &TapeEntry) -> bool {
        let has = |list: &[String], want: &Option<String>| {
            want.as_ref().is_none_or(|w| list.iter().any(|x| x == w))
        };
        self.id
            .as_ref()
            .is_none_or(|id| entry.id.starts_with(id.as_str()))
            && self.name.as_ref().is_none_or(|want| {
                entry
                    .name
                    .as_ref()
                    .is_some_and(|n| n.to_lowercase().contains(&want.to_lowercase()))
            })
            && has(&entry.tags, &self.tag)
            && has(&entry.methods, &self.method)
            && has(&entry.tools, &self.tool)
            && has(&entry.sessions, &self.session)
            && self
                .since_unix_ns
                .is_none_or(|t| entry.ended_at_unix_ns >= t)
            && self
                .until_unix_ns
                .is_none_or(|t| entry.started_at_unix_ns <= t)
    }
}
