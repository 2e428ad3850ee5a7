//! How long the phases of one `apply` took: the report's `timings`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

/// How long each phase of an `apply` took, in whole milliseconds; 0 for a
/// phase that did not run. The phases do not overlap; the rest of the run
/// (start-up, the lock, `--verify`'s key checks, the confirmation) is in
/// none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Timings {
    /// Getting a token, listing the sandboxes and making the plan (also
    /// when no plan could be made); 0 when an interrupt came first.
    pub plan_ms: u64,
    /// From the first write started to the last write answered; 0 when
    /// nothing was written (a dry run, nothing to change, a guard stopped
    /// the run, an interrupt before the first write). With `--fail-fast`,
    /// the sum over the sandboxes.
    pub write_ms: u64,
    /// The wait after the writes until the connections they made show in
    /// listings; when an interrupt ended it, the time waited until then; 0
    /// when it did not run (no write, or an interrupt before it began),
    /// about 0 when the writes made no connection.
    pub settle_ms: u64,
}

/// Whole milliseconds of `duration`, saturating.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Timings {
    /// The write and settle phases of `other` added to these (the plan's
    /// are kept): `--fail-fast` runs them sandbox by sandbox.
    pub fn add_writes(&mut self, other: Timings) {
        self.write_ms = self.write_ms.saturating_add(other.write_ms);
        self.settle_ms = self.settle_ms.saturating_add(other.settle_ms);
    }
}
