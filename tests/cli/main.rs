//! End-to-end tests: the real `atsprov` binary, against the real emulator on
//! an ephemeral loopback port where the API is needed.

mod apply;
mod common;
mod emu;
mod plan;
mod safety;
mod usage;
mod validate;
mod verify;
