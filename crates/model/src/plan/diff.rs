//! What an update changes, from what to what: the description, the plain
//! parts of the connection string, and the key (by its fingerprints only).

use schemars::JsonSchema;
use serde::Serialize;

use crate::connstr::{ConnectionString, DEFAULT_ENDPOINT_SUFFIX};
use crate::desired::DesiredConnection;
use crate::ownership::Fingerprint;
use crate::wire::Connection;

/// What an update changes, from what to what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiffField {
    /// The user's description text (without atsprov's marker).
    Description,
    /// The storage account name in the connection string.
    AccountName,
    /// The connection string's endpoint suffix.
    EndpointSuffix,
    /// The connection string's explicit Table endpoint.
    TableEndpoint,
    /// The account key: only its fingerprints are shown, never the key.
    Key,
    /// atsprov's ownership marker (an adoption adds it).
    Marker,
}

impl DiffField {
    /// The words a person reads.
    pub fn label(self) -> &'static str {
        match self {
            DiffField::Description => "description",
            DiffField::AccountName => "account name",
            DiffField::EndpointSuffix => "endpoint suffix",
            DiffField::TableEndpoint => "Table endpoint",
            DiffField::Key => "key",
            DiffField::Marker => "marker",
        }
    }
}

/// One change of one field: `old` → `new` (`None` where there is no value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Diff {
    /// Which field.
    pub field: DiffField,
    /// The live value (for `key`, the live fingerprint).
    pub old: Option<String>,
    /// The declared value (for `key`, the declared fingerprint).
    pub new: Option<String>,
}

impl Diff {
    pub(super) fn new(field: DiffField, old: Option<&str>, new: Option<&str>) -> Self {
        Self {
            field,
            old: old.map(str::to_owned),
            new: new.map(str::to_owned),
        }
    }

    /// `description: "a" → "b"`, `key changed (fp 1234… → 5678…)`.
    pub fn describe(&self) -> String {
        let show = |v: &Option<String>| match v {
            Some(v) if self.field == DiffField::Description => format!("{v:?}"),
            Some(v) => v.clone(),
            None => "(none)".to_owned(),
        };
        match self.field {
            DiffField::Key => format!(
                "key changed (fingerprint {} → {})",
                show(&self.old),
                show(&self.new)
            ),
            DiffField::Marker => "atsprov's marker added".to_owned(),
            field => format!(
                "{}: {} → {}",
                field.label(),
                show(&self.old),
                show(&self.new)
            ),
        }
    }
}

pub(super) fn describe(diff: &[Diff]) -> String {
    diff.iter()
        .map(Diff::describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What changed in the credentials: the plain parts of the live connection
/// string against the declared ones; when those agree (or cannot be read),
/// the key, shown only by its fingerprints.
pub(super) fn credential_diff(
    live: &Connection,
    want: &DesiredConnection,
    live_fp: &Fingerprint,
) -> Vec<Diff> {
    let key_changed = || {
        Diff::new(
            DiffField::Key,
            Some(live_fp.as_str()),
            Some(want.fingerprint.as_str()),
        )
    };
    let Ok(new) = ConnectionString::parse(want.connection_string.expose()) else {
        return vec![key_changed()];
    };
    let old = &live.plain;
    let mut diff = Vec::new();
    if let Some(old_name) = &old.account_name
        && *old_name != new.account_name
    {
        diff.push(Diff::new(
            DiffField::AccountName,
            Some(old_name),
            Some(&new.account_name),
        ));
    }
    if old.account_name.is_some() {
        let old_suffix = old
            .endpoint_suffix
            .as_deref()
            .unwrap_or(DEFAULT_ENDPOINT_SUFFIX);
        if old_suffix != new.endpoint_suffix() {
            diff.push(Diff::new(
                DiffField::EndpointSuffix,
                Some(old_suffix),
                Some(new.endpoint_suffix()),
            ));
        }
        let new_endpoint = new.table_endpoint.as_ref().map(url::Url::as_str);
        if old.table_endpoint.as_deref() != new_endpoint {
            diff.push(Diff::new(
                DiffField::TableEndpoint,
                old.table_endpoint.as_deref(),
                new_endpoint,
            ));
        }
    }
    if diff.is_empty() {
        diff.push(key_changed());
    }
    diff
}
