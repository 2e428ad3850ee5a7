//! The Flow Service and IMS HTTP client of atsprov: typed calls, shared tokens,
//! retries with backoff and a shared rate-limit gate, and typed errors.
//!
//! Everything atsprov says over HTTP goes through [`Client`]. A call either
//! succeeds, or fails with an [`Error`] whose [`ErrorKind`] tells the caller
//! what it may do next: [`ErrorKind::Ambiguous`] means a create may have been
//! carried out and must be looked up before it is tried again.
//!
//! **Invariant:** no secret (client secret, access token, connection string)
//! reaches a log line, an error message or a `Debug` output.

mod client;
mod config;
mod error;
mod retry;
mod table;
mod token;

pub use client::{Client, ClientStats};
pub use config::{AuthConfig, ClientConfig, RetryPolicy};
pub use error::{Error, ErrorKind};
pub use table::TableChecker;
