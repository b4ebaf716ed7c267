//! Where session records live: the seam for sharing sessions between gateway instances.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{SessionId, SessionInfo};

/// Storage for session records, keyed by the proxy-issued id.
///
/// The in-process [`Registry`](crate::Registry) holds what only this process can use (the
/// live upstream connection, timers); a `SessionStore` holds the *record* of each session, so
/// that another gateway instance receiving a request for a session it did not create can pick
/// it up. [`MemoryStore`] is the default and keeps records in this process.
///
/// # What a shared store must hold
///
/// A shared implementation (e.g. over Redis, with the session id as key and a TTL equal to
/// the idle timeout, refreshed on activity) must keep, per session, enough to resume it
/// anywhere:
///
/// - the id, the client transport, the era and the negotiated protocol revision;
/// - client and server info and capabilities, and the original `initialize` exchange, so an
///   instance can re-initialize an upstream on the client's behalf;
/// - the upstream binding (which upstream or pool member the session is pinned to) and the
///   upstream's session id;
/// - creation and last-activity times as wall-clock time: [`SessionInfo`] carries
///   [`std::time::Instant`]s, which mean nothing outside this process, so a shared store
///   converts them when writing and reading.
///
/// Pending requests and open event streams belong to the instance that holds the
/// connection and are not shared. Calls are synchronous and must be quick: a networked
/// implementation answers from a local cache and writes behind, rather than blocking the
/// proxy on a round trip.
pub trait SessionStore: Send + Sync {
    /// Stores (or replaces) the record of `info.id`.
    fn put(&self, info: SessionInfo);

    /// The record of `id`, if stored.
    fn get(&self, id: &SessionId) -> Option<SessionInfo>;

    /// Deletes and returns the record of `id`.
    fn remove(&self, id: &SessionId) -> Option<SessionInfo>;

    /// Every stored record, in no particular order.
    fn list(&self) -> Vec<SessionInfo>;
}

/// A [`SessionStore`] in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<SessionId, SessionInfo>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, SessionInfo>> {
        // Nothing that can panic runs under the lock.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionStore for MemoryStore {
    fn put(&self, info: SessionInfo) {
        self.lock().insert(info.id.clone(), info);
    }

    fn get(&self, id: &SessionId) -> Option<SessionInfo> {
        self.lock().get(id).cloned()
    }

    fn remove(&self, id: &SessionId) -> Option<SessionInfo> {
        self.lock().remove(id)
    }

    fn list(&self) -> Vec<SessionInfo> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::TransportKind;

    #[test]
    fn memory_store_round_trips_records() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let id = SessionId::generate().unwrap();
        let mut info = SessionInfo::new(id.clone(), TransportKind::StreamableHttp, Instant::now());
        store.put(info.clone());
        assert_eq!(store.get(&id), Some(info.clone()));

        info.upstream_session_id = Some("up".into());
        store.put(info.clone());
        assert_eq!(store.list(), vec![info.clone()]);

        assert_eq!(store.remove(&id), Some(info));
        assert_eq!(store.get(&id), None);
        assert!(store.list().is_empty());
    }
}
