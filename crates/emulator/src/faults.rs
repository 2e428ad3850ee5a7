//! Fault injection: the seeded dice and the per-organization rate limiter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seeded dice; the lock is held only for one roll, never across an await.
pub(crate) struct Dice(Mutex<fastrand::Rng>);

impl Dice {
    pub(crate) fn new(seed: Option<u64>) -> Self {
        Self(Mutex::new(
            seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
        ))
    }

    /// True with probability `rate`; rolls nothing for 0 or 1, so an unset fault
    /// does not shift the sequence of another.
    pub(crate) fn roll(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        let mut rng = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rng.f64() < rate
    }
}

/// A token bucket per organization: `rate` requests of burst, refilled at `rate` per second.
pub(crate) struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when the request may pass; otherwise the wait before a token is available.
    pub(crate) fn check(&self, org: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = match buckets.get_mut(org) {
            Some(bucket) => bucket,
            None => buckets.entry(org.to_owned()).or_insert(Bucket {
                tokens: self.rate,
                at: now,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_rolls() {
        let a = Dice::new(Some(7));
        let b = Dice::new(Some(7));
        let rolls_a: Vec<bool> = (0..100).map(|_| a.roll(0.3)).collect();
        let rolls_b: Vec<bool> = (0..100).map(|_| b.roll(0.3)).collect();
        assert_eq!(rolls_a, rolls_b);
        assert!(rolls_a.iter().any(|r| *r) && rolls_a.iter().any(|r| !*r));
    }

    #[test]
    fn bucket_allows_a_burst_then_refuses() {
        let limiter = RateLimiter::new(3);
        // The bucket starts full: a burst of 3 always passes.
        for _ in 0..3 {
            assert!(limiter.check("org").is_ok());
        }
        // Then a check is refused as soon as checks come faster than 3 a second;
        // counted, not timed (100 000 checks do not take 9 hours).
        let wait = (0..100_000)
            .find_map(|_| limiter.check("org").err())
            .expect("a refusal");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(334),
            "{wait:?}"
        );
        assert!(limiter.check("other").is_ok());
    }
}
