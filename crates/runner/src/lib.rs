//! Carries out a plan against the Flow Service: reads live state, runs
//! creates, updates and deletes concurrently under an adaptive bound, owns
//! the progress display, and writes reports.
//!
//! Workers send each item's outcome over a channel to one collector, which
//! alone owns the progress display and the list of report items.

mod execute;
mod limiter;
mod live;
pub mod lock;
mod progress;
mod write;

pub use execute::{ApplyOptions, ApplyOutcome, Interrupt, apply, dry_run_items};
pub use live::read_live;
pub use progress::{LogWriter, ProgressMode};
pub use write::{ReportFormat, WriteError, write_atomically, write_report};
