//! Desired connections: the manifest expanded to one item per (sandbox, account).

use std::sync::Arc;

use crate::ownership::{self, Fingerprint};
use crate::secret::Secret;

/// One connection the manifest declares in one sandbox.
///
/// The texts are shared (`Arc<str>`): an account's name and description
/// between its sandboxes, a sandbox's name and a common description
/// between accounts, so 100,000 of these hold each text once.
#[derive(Debug, Clone)]
pub struct DesiredConnection {
    /// The sandbox, lowercase.
    pub sandbox: Arc<str>,
    /// The connection's name in AEP (the account entry's `name`).
    pub name: Arc<str>,
    /// The user's description, without atsprov's marker.
    pub description: Arc<str>,
    /// The connection string sent to the API.
    pub connection_string: Secret,
    /// The fingerprint of `connection_string`, salted with org, sandbox and name.
    pub fingerprint: Fingerprint,
    /// Take over an existing unmanaged connection of the same name.
    pub adopt: bool,
    /// Index of the account entry in the manifest's `[[accounts]]`.
    pub account_index: usize,
    /// The manifest's `owner`, written into the marker.
    pub owner: Option<Arc<str>>,
}

impl DesiredConnection {
    /// Builds a desired connection and computes its fingerprint.
    pub fn new(
        org_id: &str,
        sandbox: &str,
        name: &str,
        description: &str,
        connection_string: Secret,
        adopt: bool,
        account_index: usize,
    ) -> Self {
        Self::shared(
            org_id,
            sandbox.into(),
            name.into(),
            description.into(),
            connection_string,
            adopt,
            account_index,
        )
    }

    /// [`DesiredConnection::new`] with texts shared with other items.
    pub fn shared(
        org_id: &str,
        sandbox: Arc<str>,
        name: Arc<str>,
        description: Arc<str>,
        connection_string: Secret,
        adopt: bool,
        account_index: usize,
    ) -> Self {
        let fingerprint = Fingerprint::of(org_id, &sandbox, &name, &connection_string);
        Self {
            sandbox,
            name,
            description,
            connection_string,
            fingerprint,
            adopt,
            account_index,
            owner: None,
        }
    }

    /// The same connection, marked as the set of `owner`.
    pub fn owned_by(mut self, owner: Option<Arc<str>>) -> Self {
        self.owner = owner;
        self
    }

    /// The description atsprov writes: the user's text plus the marker.
    pub fn marked_description(&self) -> String {
        ownership::mark(&self.description, &self.fingerprint, self.owner.as_deref())
    }
}
