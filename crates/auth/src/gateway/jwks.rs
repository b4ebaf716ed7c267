//! The issuer's signing keys: a JWKS fetched over HTTPS, cached, refetched when a token
//! names a key id it does not have (at most once per interval, one fetch at a time), and
//! refreshed in the background when it gets old.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use tokio::task::JoinHandle;

use super::failure::{AuthFailure, AuthFailureKind};
use super::fetch::Fetcher;
use super::key_set::KeySet;

/// How often the JWKS may be fetched, and for how long fetched keys are fresh.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwksTiming {
    /// The shortest time between two fetches (successful or not).
    pub(crate) min_interval: Duration,
    /// How long fetched keys are used before a background refresh.
    pub(crate) ttl: Duration,
}

/// The JWKS of one issuer. Dropping it stops a background refresh in flight.
pub(crate) struct Jwks {
    shared: Arc<Shared>,
    background: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    url: String,
    fetcher: Fetcher,
    timing: JwksTiming,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held while a fetch is in flight: concurrent requests wait for that one fetch.
    in_flight: tokio::sync::Mutex<()>,
    attempts: Mutex<Attempts>,
}

#[derive(Default)]
struct Attempts {
    /// When the last fetch started.
    last: Option<Instant>,
    /// Bumped by every successful fetch.
    generation: u64,
    /// Why the last fetch failed, while it is the latest.
    last_error: Option<String>,
}

/// Why no new fetch happened.
enum NoFetch {
    /// The last one started less than the minimum interval ago; it failed if `Some`.
    TooSoon(Option<String>),
    /// It was tried now and failed.
    Failed(String),
}

impl Jwks {
    pub(crate) fn new(url: String, fetcher: Fetcher, timing: JwksTiming) -> Self {
        Self {
            shared: Arc::new(Shared {
                url,
                fetcher,
                timing,
                keys: RwLock::new(None),
                in_flight: tokio::sync::Mutex::new(()),
                attempts: Mutex::new(Attempts::default()),
            }),
            background: Mutex::new(None),
        }
    }

    /// Fetches the keys now (at start-up), unless fetched less than the minimum interval ago.
    pub(crate) async fn prefetch(&self) -> Result<(), String> {
        match self.shared.refetch(self.shared.generation()).await {
            Ok(_) => Ok(()),
            Err(NoFetch::TooSoon(None)) => Ok(()),
            Err(NoFetch::TooSoon(Some(error)) | NoFetch::Failed(error)) => Err(error),
        }
    }

    /// The keys to check a token signed with `alg` by key `kid`: the cached set when it has
    /// a key for them; otherwise a refetched one (at most once per interval, a single fetch
    /// for all waiting requests). The caller looks the key up again and reports it unknown
    /// if it still is not there.
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeySet>, AuthFailure> {
        let generation = self.shared.generation();
        let current = self.shared.current();
        if let Some(keys) = &current
            && keys.has_key_for(kid, alg)
        {
            if keys.fetched_at().elapsed() >= self.shared.timing.ttl {
                self.refresh_in_background();
            }
            return Ok(Arc::clone(keys));
        }
        match self.shared.refetch(generation).await {
            Ok(keys) => Ok(keys),
            // Not refetched because one just happened, and it worked: the key is unknown.
            Err(NoFetch::TooSoon(None)) => match current.or_else(|| self.shared.current()) {
                Some(keys) => Ok(keys),
                None => Err(self.unavailable("no keys fetched yet")),
            },
            Err(NoFetch::TooSoon(Some(error)) | NoFetch::Failed(error)) => {
                Err(self.unavailable(&error))
            }
        }
    }

    fn unavailable(&self, why: &str) -> AuthFailure {
        AuthFailure::new(
            AuthFailureKind::Unavailable,
            format!(
                "the signing keys could not be fetched from {}: {why}",
                self.shared.url
            ),
        )
    }

    /// Starts refetching stale keys without making any request wait for it.
    fn refresh_in_background(&self) {
        let mut background = self.background.lock().unwrap_or_else(|p| p.into_inner());
        if background.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        if self.shared.too_soon().is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let generation = shared.generation();
        *background = Some(tokio::spawn(async move {
            match shared.refetch(generation).await {
                Ok(_) | Err(NoFetch::TooSoon(_)) => {}
                Err(NoFetch::Failed(error)) => tracing::warn!(
                    url = %shared.url,
                    "refreshing the JWKS failed; the cached keys stay in use: {error}"
                ),
            }
        }));
    }
}

impl Drop for Jwks {
    fn drop(&mut self) {
        let background = self.background.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = background.take() {
            task.abort();
        }
    }
}

impl Shared {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn generation(&self) -> u64 {
        self.attempts().generation
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some(last error)` when the last fetch started less than the minimum interval ago.
    fn too_soon(&self) -> Option<Option<String>> {
        let attempts = self.attempts();
        attempts
            .last
            .filter(|last| last.elapsed() < self.timing.min_interval)
            .map(|_| attempts.last_error.clone())
    }

    /// Fetches the JWKS unless a fetch succeeded since `seen_generation` (then its keys are
    /// the answer) or the last one started less than the minimum interval ago.
    async fn refetch(&self, seen_generation: u64) -> Result<Arc<KeySet>, NoFetch> {
        // Waits for a fetch in flight (if any) before deciding, so that concurrent requests
        // share its outcome.
        let _flight = self.in_flight.lock().await;
        if let Some(answer) = self.settled_since(seen_generation) {
            return answer;
        }
        self.attempts().last = Some(Instant::now());
        let fetched = self
            .fetcher
            .get_json(&self.url)
            .await
            .map_err(|e| e.to_string())
            .and_then(|document| KeySet::from_document(&document));
        let mut attempts = self.attempts();
        match fetched {
            Ok(keys) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "fetched the JWKS");
                let keys = Arc::new(keys);
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&keys));
                attempts.generation += 1;
                attempts.last_error = None;
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(url = %self.url, "fetching the JWKS failed: {error}");
                attempts.last_error = Some(error.clone());
                Err(NoFetch::Failed(error))
            }
        }
    }

    /// The answer without fetching, if there is one: the keys of a fetch that succeeded
    /// since `seen_generation`, or "too soon".
    fn settled_since(&self, seen_generation: u64) -> Option<Result<Arc<KeySet>, NoFetch>> {
        if self.generation() != seen_generation
            && let Some(keys) = self.current()
        {
            return Some(Ok(keys));
        }
        self.too_soon().map(|error| Err(NoFetch::TooSoon(error)))
    }
}
