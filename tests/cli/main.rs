//! End-to-end tests: the real `atsprov` binary, against the real emulator on
//! an ephemeral loopback port where the API is needed.

mod apply;
mod common;
mod connstr;
mod docs;
mod emu;
mod list;
mod plan;
mod realapi;
mod safety;
mod schedule;
mod schema;
mod streams;
mod usage;
mod validate;
mod verify;
mod visibility;
