//! The session registry: open sessions, their limits, idle eviction and counters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;

use crate::{Error, Result, SessionId, SessionInfo, TransportKind};

/// The limits a [`Registry`] enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The most sessions open at once; [`Registry::create`] refuses more.
    pub max_sessions: usize,
    /// How long a session may go unused (no request and none pending) before
    /// [`Registry::expire`] evicts it; `None` keeps sessions until they are removed.
    pub idle_timeout: Option<Duration>,
    /// The most client requests one session may have awaiting an answer.
    pub max_pending: usize,
    /// How many ended session ids to remember, so a late request for one can be told apart
    /// from a request for an id that never existed ([`Registry::was_removed`]).
    pub remember_removed: usize,
}

impl Default for Limits {
    /// 1024 sessions, 30 minutes idle timeout, 4096 pending requests per session, 4096 ended
    /// ids remembered.
    fn default() -> Self {
        Self {
            max_sessions: 1024,
            idle_timeout: Some(Duration::from_secs(30 * 60)),
            max_pending: 4096,
            remember_removed: 4096,
        }
    }
}

impl Limits {
    /// Sets the most sessions open at once.
    #[must_use]
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// Sets the idle timeout (`None`: never evict).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the most pending requests per session.
    #[must_use]
    pub fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = max;
        self
    }

    /// Sets how many ended session ids are remembered.
    #[must_use]
    pub fn with_remember_removed(mut self, count: usize) -> Self {
        self.remember_removed = count;
        self
    }
}

/// A snapshot of a registry's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RegistryStats {
    /// Sessions open now.
    pub active: usize,
    /// Sessions created since the registry was made.
    pub opened: u64,
    /// Sessions removed by [`Registry::remove`].
    pub closed: u64,
    /// Sessions evicted for being idle past the timeout.
    pub evicted_idle: u64,
    /// Sessions refused because the registry was full.
    pub rejected_full: u64,
}

struct Entry<T> {
    value: T,
    info: SessionInfo,
}

struct Inner<T> {
    sessions: HashMap<SessionId, Entry<T>>,
    removed: VecDeque<SessionId>,
    removed_set: HashSet<SessionId>,
    stats: RegistryStats,
}

/// The open sessions of one proxy: each id maps to a value of the caller's (typically an
/// `Arc` of the session's upstream binding) and a [`SessionInfo`].
///
/// Thread-safe; every method takes the internal lock briefly and never calls out while
/// holding it, except for the closure given to [`Registry::update`]. Time is passed in, so
/// the registry is deterministic under test.
pub struct Registry<T: Clone> {
    limits: Limits,
    rng: SystemRandom,
    inner: Mutex<Inner<T>>,
}

impl<T: Clone> std::fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T: Clone> Registry<T> {
    /// An empty registry enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            rng: SystemRandom::new(),
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                removed: VecDeque::new(),
                removed_set: HashSet::new(),
                stats: RegistryStats::default(),
            }),
        }
    }

    /// The limits this registry enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Opens a session holding `value`, with a fresh unguessable id. `info_init` fills the new
    /// session's [`SessionInfo`] (its transport starts as
    /// [`TransportKind::StreamableHttp`]; its id cannot be changed) before the session
    /// becomes visible.
    ///
    /// When the registry is full, sessions idle past the timeout are evicted first (their
    /// values dropped); if none is, the session is refused.
    ///
    /// # Errors
    ///
    /// [`Error::TooManySessions`] when full; [`Error::Random`] when no id could be made.
    pub fn create(
        &self,
        value: T,
        info_init: impl FnOnce(&mut SessionInfo),
        now: Instant,
    ) -> Result<SessionId> {
        let id = SessionId::generate_with(&self.rng)?;
        let mut info = SessionInfo::new(id.clone(), TransportKind::StreamableHttp, now);
        info_init(&mut info);
        info.id = id.clone();

        let mut evicted = Vec::new();
        let result = {
            let mut inner = self.lock();
            if inner.sessions.len() >= self.limits.max_sessions {
                evicted = self.expire_locked(&mut inner, now);
            }
            if inner.sessions.len() >= self.limits.max_sessions {
                inner.stats.rejected_full += 1;
                Err(Error::TooManySessions {
                    max: self.limits.max_sessions,
                })
            } else if inner.sessions.contains_key(&id) {
                // 128 random bits do not collide; refuse rather than overwrite if they do.
                Err(Error::Random)
            } else {
                inner.sessions.insert(id.clone(), Entry { value, info });
                inner.stats.opened += 1;
                Ok(id)
            }
        };
        log_evictions(&evicted);
        result
    }

    /// The session's value, marking the session used at `now`.
    pub fn get(&self, id: &SessionId, now: Instant) -> Option<T> {
        let mut inner = self.lock();
        let entry = inner.sessions.get_mut(id)?;
        touch(&mut entry.info, now);
        Some(entry.value.clone())
    }

    /// The session's value, without marking the session used.
    pub fn peek(&self, id: &SessionId) -> Option<T> {
        self.lock().sessions.get(id).map(|e| e.value.clone())
    }

    /// Runs `f` on the session's info under the registry's lock (so `f` must be quick and
    /// must not call the registry). `None` when the session is not open. The id cannot be
    /// changed.
    pub fn update<R>(&self, id: &SessionId, f: impl FnOnce(&mut SessionInfo) -> R) -> Option<R> {
        let mut inner = self.lock();
        let entry = inner.sessions.get_mut(id)?;
        let out = f(&mut entry.info);
        entry.info.id = id.clone();
        Some(out)
    }

    /// Counts a client request as pending in the session and marks the session used.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSession`] when the session is not open; [`Error::TooManyPending`]
    /// when it already has the maximum in flight.
    pub fn begin_request(&self, id: &SessionId, now: Instant) -> Result<()> {
        let mut inner = self.lock();
        let entry = inner.sessions.get_mut(id).ok_or(Error::UnknownSession)?;
        if entry.info.pending >= self.limits.max_pending {
            return Err(Error::TooManyPending {
                max: self.limits.max_pending,
            });
        }
        entry.info.pending += 1;
        touch(&mut entry.info, now);
        Ok(())
    }

    /// Counts a pending request of the session as answered and marks the session used.
    /// Does nothing when the session is not open.
    pub fn end_request(&self, id: &SessionId, now: Instant) {
        let mut inner = self.lock();
        if let Some(entry) = inner.sessions.get_mut(id) {
            entry.info.pending = entry.info.pending.saturating_sub(1);
            touch(&mut entry.info, now);
        }
    }

    /// A copy of the session's info.
    pub fn info(&self, id: &SessionId) -> Option<SessionInfo> {
        self.lock().sessions.get(id).map(|e| e.info.clone())
    }

    /// Copies of every open session's info, oldest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self
            .lock()
            .sessions
            .values()
            .map(|e| e.info.clone())
            .collect();
        all.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        all
    }

    /// Ends the session (a client `DELETE`, or the transport closing), returning its value.
    pub fn remove(&self, id: &SessionId) -> Option<T> {
        let mut inner = self.lock();
        let entry = inner.sessions.remove(id)?;
        inner.stats.closed += 1;
        self.remember(&mut inner, id.clone());
        Some(entry.value)
    }

    /// Whether `id` named a session that was removed or evicted recently (the most recent
    /// [`Limits::remember_removed`] of them). Both that and an id that never existed are
    /// answered with 404; this tells the logs which it was.
    pub fn was_removed(&self, id: &SessionId) -> bool {
        self.lock().removed_set.contains(id)
    }

    /// Evicts every session idle longer than the idle timeout at `now` (a session with
    /// requests pending is not idle), logging and counting each, and returns them so their
    /// upstream resources can be released.
    pub fn expire(&self, now: Instant) -> Vec<(SessionId, T)> {
        let evicted = {
            let mut inner = self.lock();
            self.expire_locked(&mut inner, now)
        };
        log_evictions(&evicted);
        evicted
            .into_iter()
            .map(|(id, value, _)| (id, value))
            .collect()
    }

    /// When the next session would become evictable if left unused (`None` when there is no
    /// timeout or no idle session). The instant may already be past.
    pub fn next_expiry(&self) -> Option<Instant> {
        let timeout = self.limits.idle_timeout?;
        let inner = self.lock();
        inner
            .sessions
            .values()
            .filter(|e| e.info.pending == 0)
            .map(|e| e.info.last_activity)
            .min()
            .map(|t| t.checked_add(timeout).unwrap_or(t))
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.lock().sessions.is_empty()
    }

    /// The registry's counters.
    pub fn stats(&self) -> RegistryStats {
        let inner = self.lock();
        RegistryStats {
            active: inner.sessions.len(),
            ..inner.stats
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // No code that can panic runs under the lock except `update`'s closure, and the data
        // stays consistent even then.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expire_locked(&self, inner: &mut Inner<T>, now: Instant) -> Vec<(SessionId, T, Duration)> {
        let Some(timeout) = self.limits.idle_timeout else {
            return Vec::new();
        };
        let idle: Vec<(SessionId, Duration)> = inner
            .sessions
            .iter()
            .filter(|(_, e)| e.info.pending == 0)
            .map(|(id, e)| (id, now.saturating_duration_since(e.info.last_activity)))
            .filter(|(_, idle)| *idle > timeout)
            .map(|(id, idle)| (id.clone(), idle))
            .collect();
        let mut evicted = Vec::with_capacity(idle.len());
        for (id, idle_for) in idle {
            if let Some(entry) = inner.sessions.remove(&id) {
                inner.stats.evicted_idle += 1;
                self.remember(inner, id.clone());
                evicted.push((id, entry.value, idle_for));
            }
        }
        evicted
    }

    fn remember(&self, inner: &mut Inner<T>, id: SessionId) {
        if self.limits.remember_removed == 0 {
            return;
        }
        while inner.removed.len() >= self.limits.remember_removed {
            if let Some(old) = inner.removed.pop_front() {
                inner.removed_set.remove(&old);
            }
        }
        if inner.removed_set.insert(id.clone()) {
            inner.removed.push_back(id);
        }
    }
}

fn touch(info: &mut SessionInfo, now: Instant) {
    info.last_activity = info.last_activity.max(now);
}

fn log_evictions<T>(evicted: &[(SessionId, T, Duration)]) {
    for (id, _, idle) in evicted {
        tracing::info!(
            session = %id,
            idle_secs = idle.as_secs_f64(),
            "session evicted after its idle timeout"
        );
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
