//! One item of a report and why it failed or was skipped: the one place
//! where report items are built.

use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

use crate::DesiredConnection;
use crate::plan::{Action, Change};
use crate::report::Status;

/// Why an item failed or was skipped, as a small stable set (snake_case in
/// JSON). New kinds may be added within `atsprov.report/v1`; none is renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The API answered with an error (a 4xx other than auth, a 5xx or a
    /// 429 after every retry, an answer that could not be read).
    Api,
    /// The API could not be reached, or no answer came in time.
    Network,
    /// The credentials were refused (401, 403, IMS).
    Auth,
    /// A write was sent but its outcome stayed unknown; the next run looks.
    Ambiguous,
    /// Someone else holds or changed the connection (a plan conflict, a stale
    /// etag every time, a connection deleted while applying).
    Conflict,
    /// Managed by atsprov but no longer declared; left alone without `--prune`.
    Orphan,
    /// Held back by `apply --verify`: the account's key check failed.
    KeyCheck,
    /// Ctrl-C, SIGTERM or SIGHUP came before the item was done.
    Interrupted,
    /// `apply --dry-run`: the write was not made.
    DryRun,
    /// The configuration could not be used; nothing was sent for the item.
    Config,
    /// A safety guard stopped the run before its first write: another run
    /// holds the sandbox, too many deletes, a stale saved plan, no
    /// confirmation, or an earlier sandbox failed under `--fail-fast`.
    Guard,
    /// A bug in atsprov; please report it.
    Internal,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Api,
        ErrorKind::Network,
        ErrorKind::Auth,
        ErrorKind::Ambiguous,
        ErrorKind::Conflict,
        ErrorKind::Orphan,
        ErrorKind::KeyCheck,
        ErrorKind::Interrupted,
        ErrorKind::DryRun,
        ErrorKind::Config,
        ErrorKind::Guard,
        ErrorKind::Internal,
    ];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Api => "api",
            ErrorKind::Network => "network",
            ErrorKind::Auth => "auth",
            ErrorKind::Ambiguous => "ambiguous",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Orphan => "orphan",
            ErrorKind::KeyCheck => "key_check",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::DryRun => "dry_run",
            ErrorKind::Config => "config",
            ErrorKind::Guard => "guard",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The `error` of a report item: what kind, a one-line message, and what
/// the API said when it answered. Fields are absent when unknown; never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ItemError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// One line a person can act on.
    pub message: String,
    /// The HTTP status of the answer, when one came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Adobe's error code, e.g. `1445-400`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The request id the server gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What to do about it, when there is more to say than the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ItemError {
    /// An error with a kind and a message and nothing from the API.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            http_status: None,
            code: None,
            request_id: None,
            hint: None,
        }
    }

    /// The same error with a hint (what to do about it).
    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// The same error with `context: ` before its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The same error with another kind.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
}

/// The message, then `HTTP status code` and the request id when known:
/// `Version not matching (HTTP 412, FLOW-1404-412, request id abc)`.
impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let mut extra = Vec::new();
        if let Some(status) = self.http_status {
            extra.push(format!("HTTP {status}"));
        }
        if let Some(code) = &self.code {
            extra.push(code.clone());
        }
        if let Some(id) = &self.request_id {
            extra.push(format!("request id {id}"));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

/// One item of the report: one desired connection, or one orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReportItem {
    // Shared with the plan row and the desired connection (a report may
    // hold 100,000 items).
    /// The sandbox.
    pub sandbox: Arc<str>,
    /// The connection's name.
    pub name: Arc<str>,
    /// What the plan said; `None` when no plan could be made for the item
    /// (its sandbox could not be read, or the API could not be used at all).
    pub action: Option<Action>,
    /// What happened.
    pub status: Status,
    /// The connection's id, when known.
    pub connection_id: Option<String>,
    /// Attempts made (0 when nothing was sent).
    pub attempts: u32,
    /// Time spent on this item, milliseconds.
    pub duration_ms: u64,
    // Boxed: most items have none, and an error is larger than the rest of the item.
    /// Why it failed or was skipped.
    pub error: Option<Box<ItemError>>,
}

impl ReportItem {
    /// The item of a plan row, with the row's connection id, before any call.
    pub fn planned(change: &Change, status: Status) -> Self {
        Self {
            sandbox: change.sandbox.clone(),
            name: change.name.clone(),
            action: Some(change.action),
            status,
            connection_id: change.connection_id.clone(),
            attempts: 0,
            duration_ms: 0,
            error: None,
        }
    }

    /// The item of a declared connection for which no plan row exists (its
    /// sandbox could not be read, or no plan could be made at all).
    pub fn unplanned(desired: &DesiredConnection, status: Status, error: ItemError) -> Self {
        Self {
            sandbox: desired.sandbox.clone(),
            name: desired.name.clone(),
            action: None,
            status,
            connection_id: None,
            attempts: 0,
            duration_ms: 0,
            error: Some(Box::new(error)),
        }
    }

    /// The item of a plan row that was not carried out, and why.
    pub fn skipped(change: &Change, error: ItemError) -> Self {
        Self::planned(change, Status::Skipped).with_error(error)
    }

    /// The same item with an error.
    pub fn with_error(mut self, error: ItemError) -> Self {
        self.error = Some(Box::new(error));
        self
    }

    /// The same item with the connection id a call returned.
    pub fn with_id(mut self, id: Option<String>) -> Self {
        if id.is_some() {
            self.connection_id = id;
        }
        self
    }

    /// The same item with the attempts and time a call took.
    pub fn timed(mut self, attempts: u32, duration_ms: u64) -> Self {
        self.attempts = attempts;
        self.duration_ms = duration_ms;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_without_unknown_fields_and_display_what_is_known() {
        let bare = ItemError::new(ErrorKind::KeyCheck, "key refused");
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"kind":"key_check","message":"key refused"}"#
        );
        assert_eq!(bare.to_string(), "key refused");
        let full = ItemError {
            http_status: Some(400),
            code: Some("1445-400".into()),
            request_id: Some("r-1".into()),
            ..ItemError::new(ErrorKind::Api, "bad name")
        }
        .context("create");
        assert_eq!(
            serde_json::to_string(&full).unwrap(),
            r#"{"kind":"api","message":"create: bad name","http_status":400,"code":"1445-400","request_id":"r-1"}"#
        );
        assert_eq!(
            full.to_string(),
            "create: bad name (HTTP 400, 1445-400, request id r-1)"
        );
        for kind in ErrorKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }
}
