//! The shared access token: one per client, renewed before it expires and
//! after a 401, by one task at a time (single flight).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use atsprov_model::Secret;

use crate::error::Error;

/// A token and when to stop using it.
pub(crate) struct Token {
    pub(crate) value: Secret,
    /// When to renew: the expiry minus a margin. `None` for a ready token,
    /// which cannot be renewed.
    renew_at: Option<Instant>,
    /// Tells apart the tokens one client held, so a 401 answered to an old
    /// token does not throw away a newer one.
    pub(crate) generation: u64,
}

/// The cache. Readers take the std lock briefly; renewal holds the tokio
/// `renewal` lock across the IMS call so concurrent callers wait for its result
/// instead of asking IMS themselves.
pub(crate) struct TokenCache {
    current: Mutex<Option<Arc<Token>>>,
    /// Set once IMS refused the client credentials: every later call fails
    /// the same way without asking again.
    refused: Mutex<Option<Error>>,
    pub(crate) renewal: tokio::sync::Mutex<()>,
    generations: AtomicU64,
}

impl TokenCache {
    pub(crate) fn new(ready: Option<Secret>) -> Self {
        let cache = Self {
            current: Mutex::new(None),
            refused: Mutex::new(None),
            renewal: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(0),
        };
        if let Some(value) = ready {
            cache.install(value, None);
        }
        cache
    }

    /// The current token, if there is one and it is not due for renewal.
    pub(crate) fn fresh(&self) -> Option<Arc<Token>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|t| t.renew_at.is_none_or(|at| Instant::now() < at))
            .cloned()
    }

    /// Stores a new token that lives `lifetime` (none: forever) and returns it.
    pub(crate) fn install(&self, value: Secret, lifetime: Option<Duration>) -> Arc<Token> {
        let renew_at = lifetime.map(|l| Instant::now() + l.saturating_sub(renewal_margin(l)));
        let token = Arc::new(Token {
            value,
            renew_at,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        });
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        token
    }

    /// Forgets the token of `generation` after a 401; a newer token stays.
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            *current = None;
        }
    }

    pub(crate) fn refused(&self) -> Option<Error> {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_refused(&self, error: Error) {
        *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// How long before expiry a token is renewed: a tenth of its life, at most
/// five minutes (24-hour IMS tokens are renewed 5 minutes early).
fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins() {
        assert_eq!(
            renewal_margin(Duration::from_secs(86_399)),
            Duration::from_secs(300)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(60)),
            Duration::from_secs(6)
        );
        assert_eq!(renewal_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn expired_and_invalidated_tokens_are_not_fresh() {
        let cache = TokenCache::new(None);
        assert!(cache.fresh().is_none());
        cache.install(Secret::new("a"), Some(Duration::ZERO));
        assert!(cache.fresh().is_none(), "a zero lifetime is due at once");
        let b = cache.install(Secret::new("b"), Some(Duration::from_secs(3600)));
        assert_eq!(cache.fresh().unwrap().value.expose(), "b");
        cache.invalidate(b.generation - 1);
        assert!(
            cache.fresh().is_some(),
            "an older generation leaves the newer token"
        );
        cache.invalidate(b.generation);
        assert!(cache.fresh().is_none());
    }

    #[test]
    fn ready_tokens_never_expire() {
        let cache = TokenCache::new(Some(Secret::new("ready")));
        assert_eq!(cache.fresh().unwrap().value.expose(), "ready");
    }
}
