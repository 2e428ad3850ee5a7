//! Retry timing: exponential backoff with full jitter, `Retry-After` parsing,
//! and the gate every request of one client waits at while the server asked for a pause.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::config::RetryPolicy;

/// The delay before the retry that follows failed attempt number `attempt`
/// (1-based): a uniformly random duration up to `base * 2^(attempt-1)`,
/// capped at `max_delay` ("full jitter", so many clients do not retry in step).
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
    let ceiling = policy
        .base_delay
        .saturating_mul(factor)
        .min(policy.max_delay);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// The pause a `Retry-After` value asks for: delay-seconds or an HTTP date.
/// A date in the past means no pause; anything unreadable means no value.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The shared gate: when one call is told to wait, every call of the client
/// waits until the same instant before sending. The lock is never held across
/// an await.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed_until: Mutex<Option<Instant>>,
}

impl Gate {
    /// Keeps the gate closed until at least `until`.
    pub(crate) fn close_until(&self, until: Instant) {
        let mut closed = self
            .closed_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if closed.is_none_or(|current| until > current) {
            *closed = Some(until);
        }
    }

    /// How long a request must still wait at `now`, if at all.
    pub(crate) fn remaining(&self, now: Instant) -> Option<Duration> {
        let closed = self
            .closed_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        closed
            .map(|until| until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Waits until the gate is open; it may be closed again while waiting.
    pub(crate) async fn pass(&self) {
        while let Some(wait) = self.remaining(Instant::now()) {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "waiting at the rate-limit gate"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_exponential_ceiling() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            ..RetryPolicy::default()
        };
        let ceilings = [100, 200, 400, 700, 700, 700];
        for (i, ceiling) in ceilings.into_iter().enumerate() {
            for _ in 0..200 {
                let d = backoff(&policy, i as u32 + 1);
                assert!(
                    d <= Duration::from_millis(ceiling),
                    "attempt {}: {d:?}",
                    i + 1
                );
            }
        }
        // Huge attempt numbers neither overflow nor exceed the cap.
        assert!(backoff(&policy, u32::MAX) <= policy.max_delay);
    }

    #[test]
    fn backoff_is_jittered() {
        let policy = RetryPolicy::default();
        let delays: std::collections::HashSet<_> = (0..50).map(|_| backoff(&policy, 3)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn gate_keeps_the_latest_instant() {
        let gate = Gate::default();
        let now = Instant::now();
        assert_eq!(gate.remaining(now), None);
        gate.close_until(now + Duration::from_secs(5));
        gate.close_until(now + Duration::from_secs(2));
        assert_eq!(gate.remaining(now), Some(Duration::from_secs(5)));
        assert_eq!(gate.remaining(now + Duration::from_secs(6)), None);
    }
}
