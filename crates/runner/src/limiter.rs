//! An adaptive concurrency bound (AIMD): it halves when the API pushes back
//! (congestion answers seen by the transport: 429, 500, 502, 503, 504) and grows by one after a
//! bound's worth of calls without push-back, up to the configured maximum.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Shrinks at most once per this window, so one burst of 429s halves once.
const SHRINK_WINDOW: Duration = Duration::from_millis(500);

pub(crate) struct Limiter {
    max: usize,
    /// The current bound, and whether the run is closing (no more work to admit).
    limit: watch::Sender<(usize, bool)>,
    state: Mutex<State>,
}

struct State {
    throttled_seen: u64,
    successes: usize,
    last_shrink: Option<Instant>,
    lowest: usize,
}

impl Limiter {
    pub(crate) fn new(max: usize, throttled_now: u64) -> Self {
        let max = max.max(1);
        Self {
            max,
            limit: watch::Sender::new((max, false)),
            state: Mutex::new(State {
                throttled_seen: throttled_now,
                successes: 0,
                last_shrink: None,
                lowest: max,
            }),
        }
    }

    /// Waits until worker `slot` (0-based) is within the current bound;
    /// false when the run is closing and the worker should stop.
    pub(crate) async fn admit(&self, slot: usize) -> bool {
        let mut rx = self.limit.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        match rx
            .wait_for(|(limit, closed)| *closed || slot < *limit)
            .await
        {
            Ok(state) => !state.1,
            Err(_) => false,
        }
    }

    /// Wakes every waiting worker and tells it to stop.
    pub(crate) fn close(&self) {
        self.limit.send_modify(|(_, closed)| *closed = true);
    }

    /// Records the transport's throttle counter after a call.
    pub(crate) fn observe(&self, throttled_now: u64, ok: bool) {
        let mut state = self.state.lock().expect("limiter lock");
        let current = self.limit.borrow().0;
        if throttled_now > state.throttled_seen {
            state.throttled_seen = throttled_now;
            state.successes = 0;
            let now = Instant::now();
            if state
                .last_shrink
                .is_none_or(|t| now.duration_since(t) >= SHRINK_WINDOW)
            {
                state.last_shrink = Some(now);
                let next = (current / 2).max(1);
                if next < current {
                    state.lowest = state.lowest.min(next);
                    tracing::debug!(
                        from = current,
                        to = next,
                        "API pushed back; lowering concurrency"
                    );
                    self.limit.send_modify(|(limit, _)| *limit = next);
                }
            }
        } else if ok {
            state.successes += 1;
            if state.successes >= current && current < self.max {
                state.successes = 0;
                self.limit.send_modify(|(limit, _)| *limit = current + 1);
            }
        }
    }

    /// The current bound.
    pub(crate) fn current(&self) -> usize {
        self.limit.borrow().0
    }

    /// The lowest bound reached, when the API ever pushed it down.
    pub(crate) fn lowest(&self) -> Option<usize> {
        let lowest = self.state.lock().expect("limiter lock").lowest;
        (lowest < self.max).then_some(lowest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_on_push_back_and_grows_back_on_success() {
        let l = Limiter::new(8, 0);
        assert_eq!(l.current(), 8);
        assert_eq!(l.lowest(), None);
        l.observe(1, false);
        assert_eq!(l.current(), 4);
        // A second throttle inside the window does not halve again.
        l.observe(2, false);
        assert_eq!(l.current(), 4);
        for _ in 0..4 {
            l.observe(2, true);
        }
        assert_eq!(l.current(), 5);
        for _ in 0..100 {
            l.observe(2, true);
        }
        assert_eq!(l.current(), 8);
        assert_eq!(l.lowest(), Some(4));
    }

    #[tokio::test]
    async fn admits_only_slots_under_the_bound() {
        let l = std::sync::Arc::new(Limiter::new(2, 0));
        l.observe(1, false);
        assert_eq!(l.current(), 1);
        assert!(l.admit(0).await);
        let blocked = tokio::time::timeout(Duration::from_millis(50), l.admit(1)).await;
        assert!(blocked.is_err(), "slot 1 must wait while the bound is 1");
        l.observe(1, true);
        assert!(l.admit(1).await);
        assert_eq!(l.current(), 2);
        l.observe(2, false);
        l.close();
        assert!(
            !l.admit(1).await,
            "a closing run wakes and stops waiting workers"
        );
    }
}
