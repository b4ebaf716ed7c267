//! A bounded cache of tokens already checked, so a signature is verified (or a token
//! introspected) once, not on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use foldhash::fast::RandomState;

/// Tokens (the exact bytes) to what checking them gave, each until its deadline.
///
/// Reads take a shared lock and clone the value; inserting into a full cache first drops the
/// expired entries, then (if still full) an eighth of the entries, picked by the randomly
/// seeded hash order.
pub(crate) struct TokenCache<V> {
    capacity: usize,
    entries: RwLock<HashMap<Arc<str>, Entry<V>, RandomState>>,
}

struct Entry<V> {
    value: V,
    /// Unix seconds; the entry is used while `now <= valid_until`.
    valid_until: u64,
}

impl<V: Clone> TokenCache<V> {
    /// A cache of at most `capacity` tokens (0: nothing is kept).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(HashMap::with_hasher(RandomState::default())),
        }
    }

    /// What `token` gave, if it is cached and `now` (Unix seconds) is not past its deadline.
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<V> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(token)
            .filter(|entry| now <= entry.valid_until)
            .map(|entry| entry.value.clone())
    }

    /// Remembers `value` for `token` until `valid_until` (Unix seconds).
    pub(crate) fn insert(&self, token: Arc<str>, value: V, valid_until: u64, now: u64) {
        if self.capacity == 0 || valid_until < now {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&*token) {
            entries.retain(|_, entry| now <= entry.valid_until);
            if entries.len() >= self.capacity {
                let excess = entries.len() + 1 - self.capacity;
                let evict = excess.max(self.capacity / 8);
                let victims: Vec<Arc<str>> = entries.keys().take(evict).cloned().collect();
                for victim in victims {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(token, Entry { value, valid_until });
    }

    /// How many tokens are cached (expired ones included until they are swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_until_the_deadline_then_misses() {
        let cache = TokenCache::new(10);
        cache.insert(Arc::from("t"), 7, 100, 50);
        assert_eq!(cache.get("t", 50), Some(7));
        assert_eq!(cache.get("t", 100), Some(7));
        assert_eq!(cache.get("t", 101), None, "past the deadline");
        assert_eq!(cache.get("u", 50), None);
    }

    #[test]
    fn stays_bounded_dropping_expired_entries_first() {
        let cache = TokenCache::new(16);
        for i in 0..8 {
            cache.insert(Arc::from(format!("old{i}")), i, 10, 0);
        }
        for i in 0..8 {
            cache.insert(Arc::from(format!("live{i}")), i, 1000, 0);
        }
        assert_eq!(cache.len(), 16);
        // Full: the expired entries go, the live ones stay.
        cache.insert(Arc::from("new"), 99, 1000, 20);
        assert_eq!(cache.len(), 9);
        for i in 0..8 {
            assert_eq!(cache.get(&format!("live{i}"), 20), Some(i));
        }
        // Full of live entries: a batch is evicted, never more than the capacity kept.
        for i in 0..100 {
            cache.insert(Arc::from(format!("more{i}")), i, 1000, 20);
            assert!(cache.len() <= 16);
        }
        assert_eq!(
            cache.get("more99", 20),
            Some(99),
            "the newest entry is kept"
        );
    }

    #[test]
    fn capacity_zero_keeps_nothing_and_expired_values_are_not_inserted() {
        let off = TokenCache::new(0);
        off.insert(Arc::from("t"), 1, 100, 0);
        assert_eq!(off.get("t", 0), None);
        let cache = TokenCache::new(4);
        cache.insert(Arc::from("t"), 1, 5, 10);
        assert_eq!(cache.len(), 0);
    }
}
