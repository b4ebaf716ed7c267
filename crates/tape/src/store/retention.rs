//! Retention: which tapes a policy removes, oldest first.

use std::time::Duration;

use serde::Serialize;

use super::TapeEntry;

/// How much a [`TapeStore`](crate::TapeStore) keeps; each limit is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Tapes whose last frame is older than this are removed.
    pub max_age: Option<Duration>,
    /// The newest tapes are kept while their sizes add up to at most this.
    pub max_total_bytes: Option<u64>,
    /// At most this many of the newest tapes are kept.
    pub max_count: Option<usize>,
}

impl RetentionPolicy {
    /// A policy that keeps everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes tapes older than `age`.
    pub fn with_max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Keeps at most `bytes` of tapes.
    pub fn with_max_total_bytes(mut self, bytes: u64) -> Self {
        self.max_total_bytes = Some(bytes);
        self
    }

    /// Keeps at most `count` tapes.
    pub fn with_max_count(mut self, count: usize) -> Self {
        self.max_count = Some(count);
        self
    }
}

/// What [`TapeStore::prune`](crate::TapeStore::prune) removed (or, in a dry run, would
/// remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// The tapes removed, oldest first.
    pub removed: Vec<TapeEntry>,
    /// The bytes they took.
    pub freed_bytes: u64,
    /// How many tapes are left.
    pub kept: usize,
    /// Whether nothing was deleted because it was a dry run.
    pub dry_run: bool,
}

/// The age order: oldest (earliest last frame) first.
pub(crate) fn oldest_first(entries: &mut [TapeEntry]) {
    entries.sort_by(|a, b| {
        (a.ended_at_unix_ns, a.started_at_unix_ns, &a.id).cmp(&(
            b.ended_at_unix_ns,
            b.started_at_unix_ns,
            &b.id,
        ))
    });
}

/// The indexes (into `entries`, sorted oldest first) of the tapes `policy` removes at
/// `now_unix_ns`.
pub(crate) fn select(
    entries: &[TapeEntry],
    policy: &RetentionPolicy,
    now_unix_ns: u64,
) -> Vec<usize> {
    let mut remove = vec![false; entries.len()];
    if let Some(age) = policy.max_age {
        let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        let cutoff = now_unix_ns.saturating_sub(age);
        for (i, e) in entries.iter().enumerate() {
            if e.ended_at_unix_ns < cutoff {
                remove[i] = true;
            }
        }
    }
    if let Some(max) = policy.max_count {
        let mut left = remove.iter().filter(|r| !**r).count();
        for r in &mut remove {
            if left <= max {
                break;
            }
            if !*r {
                *r = true;
                left -= 1;
            }
        }
    }
    if let Some(max) = policy.max_total_bytes {
        let mut total: u64 = entries
            .iter()
            .zip(&remove)
            .filter(|(_, r)| !**r)
            .map(|(e, _)| e.bytes)
            .sum();
        for (e, r) in entries.iter().zip(remove.iter_mut()) {
            if total <= max {
                break;
            }
            if !*r {
                *r = true;
                total -= e.bytes;
            }
        }
    }
    remove
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.then_some(i))
        .collect()
}
