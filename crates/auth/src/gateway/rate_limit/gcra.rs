//! The generic cell rate algorithm (GCRA) and keyed tables of its state.
//!
//! A limit of one message per `interval` with a burst of `b` keeps, per key, a theoretical
//! arrival time (TAT). A message at `now` is admitted when `now >= TAT - (b - 1) * interval`,
//! and then moves TAT to `max(TAT, now) + interval`. A key whose TAT is in the past is in the
//! same state as a key never seen, so forgetting it loses nothing: that is what sweeping does.
//! Times are nanoseconds since the limiter was made.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Keys come from clients (addresses, sessions, method names): a hasher seeded per table.
type Hasher = foldhash::quality::RandomState;
type Map<K> = HashMap<K, u64, Hasher>;

/// How many independently locked parts a keyed table has.
const SHARDS: usize = 16;

/// The parameters of one limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gcra {
    /// Nanoseconds between two admitted messages at the sustained rate.
    pub(super) interval: u64,
    /// How far ahead of `now` the TAT may run: `(burst - 1) * interval`.
    pub(super) tolerance: u64,
}

impl Gcra {
    /// Admits at `now` given the stored `tat` (0 when unseen): the new TAT, or how long to
    /// wait before a message would be admitted.
    pub(super) fn admit(self, tat: u64, now: u64) -> Result<u64, u64> {
        let tat = tat.max(now);
        let allowed_from = tat.saturating_sub(self.tolerance);
        if now < allowed_from {
            Err(allowed_from - now)
        } else {
            Ok(tat.saturating_add(self.interval))
        }
    }
}

/// One cell shared by every message (a global limit), updated without a lock.
#[derive(Debug, Default)]
pub(super) struct Cell {
    tat: AtomicU64,
}

impl Cell {
    pub(super) fn admit(&self, gcra: Gcra, now: u64) -> Result<(), u64> {
        let mut current = self.tat.load(Ordering::Acquire);
        loop {
            let next = gcra.admit(current, now)?;
            match self
                .tat
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives back one admission (a later limit refused the message).
    pub(super) fn refund(&self, gcra: Gcra) {
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_sub(gcra.interval))
            });
    }
}

/// Cells by key, in shards, holding at most about `max_keys` keys.
#[derive(Debug)]
pub(super) struct Keyed<K> {
    hasher: Hasher,
    shards: Box<[Mutex<Map<K>>]>,
    /// The most keys one shard holds.
    shard_cap: usize,
}

impl<K: Hash + Eq> Keyed<K> {
    pub(super) fn new(max_keys: usize) -> Self {
        Self {
            hasher: Hasher::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Map::with_hasher(Hasher::default())))
                .collect(),
            shard_cap: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, Map<K>> {
        // Seeded apart from the maps' own hashers, so the choice of shard says nothing
        // about where a key sits inside its map.
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // The maps hold plain numbers: a panic elsewhere cannot leave one inconsistent.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one message for `key` at `now`, or says how long to wait.
    pub(super) fn admit<Q>(&self, key: &Q, gcra: Gcra, now: u64) -> Result<(), u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.shard(key);
        if let Some(tat) = map.get_mut(key) {
            *tat = gcra.admit(*tat, now)?;
            return Ok(());
        }
        let tat = gcra.admit(0, now)?;
        if map.len() >= self.shard_cap {
            make_room(&mut map, now);
        }
        map.insert(key.to_owned(), tat);
        Ok(())
    }

    /// Gives back one admission for `key`.
    pub(super) fn refund<Q>(&self, key: &Q, gcra: Gcra)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(tat) = self.shard(key).get_mut(key) {
            *tat = tat.saturating_sub(gcra.interval);
        }
    }

    /// Forgets every key whose state is that of a key never seen; returns how many remain.
    pub(super) fn sweep(&self, now: u64) -> usize {
        let mut left = 0;
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|_, tat| *tat > now);
            let len = map.len();
            if map.capacity() > 2 * len + 64 {
                map.shrink_to(len * 2);
            }
            left += map.len();
        }
        left
    }

    /// How many keys are held.
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// A full shard: forget idle keys; when every key is busy, forget the one that will be idle
/// soonest (the one whose state is closest to a fresh key's).
fn make_room<K: Hash + Eq>(map: &mut Map<K>, now: u64) {
    let before = map.len();
    map.retain(|_, tat| *tat > now);
    if map.len() < before {
        return;
    }
    let Some(min) = map.values().copied().min() else {
        return;
    };
    let mut removed = false;
    map.retain(|_, tat| {
        if !removed && *tat == min {
            removed = true;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn ten_per_second_burst_3() -> Gcra {
        Gcra {
            interval: 100 * MS,
            tolerance: 2 * 100 * MS,
        }
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let g = ten_per_second_burst_3();
        let cell = Cell::default();
        let t0 = 1_000 * MS;
        for _ in 0..3 {
            cell.admit(g, t0).unwrap();
        }
        assert_eq!(cell.admit(g, t0), Err(100 * MS));
        assert_eq!(cell.admit(g, t0 + 60 * MS), Err(40 * MS));
        cell.admit(g, t0 + 100 * MS).unwrap();
        assert_eq!(cell.admit(g, t0 + 100 * MS), Err(100 * MS));
        // Idle for a long time: the full burst again.
        let later = t0 + 10_000 * MS;
        for _ in 0..3 {
            cell.admit(g, later).unwrap();
        }
        assert!(cell.admit(g, later).is_err());
        cell.refund(g);
        cell.admit(g, later).unwrap();
    }

    #[test]
    fn keys_are_independent_and_sweeping_forgets_only_idle_ones() {
        let g = ten_per_second_burst_3();
        let table: Keyed<String> = Keyed::new(1000);
        let t0 = 5_000 * MS;
        for _ in 0..3 {
            table.admit("a", g, t0).unwrap();
        }
        assert!(table.admit("a", g, t0).is_err());
        table.admit("b", g, t0).unwrap();
        assert_eq!(table.len(), 2);
        // "b" is idle after 100 ms, "a" after 300 ms.
        assert_eq!(table.sweep(t0 + 150 * MS), 1);
        assert!(table.admit("a", g, t0 + 150 * MS).is_ok());
        assert_eq!(table.sweep(t0 + 10_000 * MS), 0);
    }

    #[test]
    fn a_full_table_stays_within_its_bound() {
        let g = ten_per_second_burst_3();
        let table: Keyed<String> = Keyed::new(64);
        let t0 = 5_000 * MS;
        for i in 0..10_000 {
            table.admit(&format!("k{i}"), g, t0).unwrap();
        }
        assert!(table.len() <= 64 + SHARDS, "{}", table.len());
    }
}
