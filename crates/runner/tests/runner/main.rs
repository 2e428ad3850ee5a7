//! The runner against the in-process emulator: the retry paths a nightly
//! run depends on, the exactly-once invariant, and the real service's
//! stricter modes (lag, lost answers, overload, refusals).

mod apply;
mod common;
mod realapi;
