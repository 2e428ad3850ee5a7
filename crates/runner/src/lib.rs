//! Carries out `apply` and `verify` for the binary: the one signal handler,
//! the key check and its hold-back, reading live state, the plan's writes
//! run concurrently under an adaptive bound, progress, report items (built in
//! one place, with typed errors), and report writing.
//!
//! Workers send each item's outcome over a channel to one collector, which
//! alone owns the progress display and the list of report items.

mod error;
mod execute;
mod limiter;
mod live;
pub mod lock;
mod progress;
mod run;
mod settle;
mod signals;
mod verify;
mod write;

pub use execute::{
    ApplyOptions, ApplyOutcome, LOOKUP_PATIENCE, Observer, Planned, Unobserved, apply,
    dry_run_items,
};
pub use live::{Live, make_plan, read_live};
pub use progress::{LogWriter, ProgressMode};
pub use run::{ApplyResult, ApplyRun, write_reports};
pub use signals::{Interrupt, Signals};
pub use verify::{KeyCheck, check_keys, failures};
pub use write::{ReportFormat, WriteError, write_atomically, write_report};
