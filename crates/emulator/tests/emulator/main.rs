//! Integration tests: the emulator on 127.0.0.1:0, driven over HTTP with reqwest.

mod api;
mod common;
mod faults;
mod fuzz;
mod hardening;
mod listing;
mod strict;
mod table;
