//! The Flow Service and IMS HTTP client of atsprov: typed calls, shared tokens,
//! one request path (retries with backoff, a shared rate-limit gate, answers
//! bounded in size and time), and typed errors.
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
mod paging;
mod request;
mod retry;
mod scrub;
mod table;
mod token;

pub use client::{Client, ClientStats};
pub use config::{ClientConfig, Limits, RetryPolicy};
pub use error::{Error, ErrorKind};
pub use request::counting_attempts;
pub use table::TableChecker;
