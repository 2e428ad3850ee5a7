//! The vocabulary of atsprov: the manifest and its validation, connection
//! strings, secrets, the Flow Service wire types, the plan as a pure function
//! of (desired, live), and the report types.
//!
//! **Invariant:** this crate does no network IO and knows nothing of reqwest,
//! tokio, axum or the terminal.
#![deny(missing_docs)]

pub mod connstr;
pub mod desired;
pub mod diagnostic;
pub mod escape;
pub mod inventory;
pub mod manifest;
pub mod ownership;
pub mod plan;
pub mod render;
pub mod report;
pub mod schema;
pub mod secret;
pub mod sharedkey;
pub mod url_policy;
pub mod wire;

pub use desired::DesiredConnection;
pub use secret::Secret;
