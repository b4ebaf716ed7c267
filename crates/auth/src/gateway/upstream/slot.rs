//! One cached upstream token: used until shortly before it expires, refreshed by one caller
//! at a time while the others keep using the still-valid token.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::HeaderValue;

use super::token::Issued;
use crate::Result;

/// After a failed refresh, how long a still-valid token is used before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The most a token is refreshed ahead of its expiry.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Cached {
    header: HeaderValue,
    /// When a caller should fetch a new token.
    refresh_at: Instant,
    /// When the token may no longer be used.
    expires_at: Instant,
}

/// A cached token and the lock that makes fetching it single-flight.
#[derive(Default)]
pub(super) struct Slot {
    cached: Mutex<Option<Cached>>,
    failed_at: Mutex<Option<Instant>>,
    fetch: tokio::sync::Mutex<()>,
}

impl Slot {
    fn current(&self) -> Option<Cached> {
        self.cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the cached token expires (`None`: no token).
    pub(super) fn expires_at(&self) -> Option<Instant> {
        self.current().map(|c| c.expires_at)
    }

    /// Whether a fetch is under way.
    pub(super) fn is_fetching(&self) -> bool {
        self.fetch.try_lock().is_err()
    }

    /// The `Bearer` header value: the cached token while it is fresh; otherwise one caller
    /// runs `fetch` while the others use the cached token if it is still valid (or wait).
    /// `not_after` caps how long a fetched token is used.
    pub(super) async fn header<F, Fut>(
        &self,
        not_after: Option<Instant>,
        fetch: F,
    ) -> Result<HeaderValue>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Issued>>,
    {
        let valid = |c: &Cached| Instant::now() < c.expires_at;
        let current = self.current();
        if let Some(c) = &current {
            if Instant::now() < c.refresh_at {
                return Ok(c.header.clone());
            }
            let recently_failed = self
                .failed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE);
            if valid(c) && recently_failed {
                return Ok(c.header.clone());
            }
        }
        let _guard = match self.fetch.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                if let Some(c) = current.filter(valid) {
                    return Ok(c.header);
                }
                self.fetch.lock().await
            }
        };
        // Another caller may have fetched while this one waited.
        let current = self.current();
        if let Some(c) = &current
            && Instant::now() < c.refresh_at
        {
            return Ok(c.header.clone());
        }
        match fetch().await {
            Ok(issued) => {
                let cached = cache(&issued, not_after)?;
                let header = cached.header.clone();
                *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(cached);
                *self
                    .failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                Ok(header)
            }
            Err(e) => {
                *self
                    .failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                match current.filter(valid) {
                    Some(c) => {
                        tracing::warn!(
                            "refreshing an upstream token failed; using the current one until it expires: {e}"
                        );
                        Ok(c.header)
                    }
                    None => Err(e),
                }
            }
        }
    }
}

/// When to refresh an issued token: a quarter of its lifetime (at most a minute) before it
/// expires; it expires at `not_after` at the latest.
fn cache(issued: &Issued, not_after: Option<Instant>) -> Result<Cached> {
    let far = issued.issued_at + Duration::from_secs(10 * 365 * 86_400);
    let mut expires_at = issued.issued_at.checked_add(issued.lifetime).unwrap_or(far);
    if let Some(cap) = not_after {
        expires_at = expires_at.min(cap);
    }
    let lifetime = expires_at.saturating_duration_since(issued.issued_at);
    let margin = (lifetime / 4).min(MAX_REFRESH_MARGIN);
    let refresh_at = expires_at.checked_sub(margin).unwrap_or(issued.issued_at);
    let mut header =
        HeaderValue::try_from(format!("Bearer {}", issued.access_token)).map_err(|_| {
            crate::Error::Authorization("the issued token is not valid in a header".into())
        })?;
    header.set_sensitive(true);
    Ok(Cached {
        header,
        refresh_at,
        expires_at,
    })
}
