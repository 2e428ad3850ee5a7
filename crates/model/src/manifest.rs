//! The manifest: its types, loading with figment layering, and validation.
//!
//! Layers, last wins: built-in defaults, the TOML file, `ATSPROV_<SECTION>__<KEY>`
//! environment variables, then command-line flags ([`Overrides`]). [`load`]
//! checks every rule, resolves every secret reference and reports all problems
//! at once, each with the file position (or the environment variable or flag)
//! its value came from.

mod bounded;
mod check;
mod layers;
mod pieces;
mod source;

pub use bounded::{MAX_MANIFEST_BYTES, MAX_NESTING, MAX_SECRET_BYTES};

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::desired::DesiredConnection;
pub use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::secret::Secret;

/// The description a connection gets when neither the account nor `[defaults]` gives one.
pub const DEFAULT_DESCRIPTION: &str = "Azure Table Storage connection";
/// The sandboxes an account is in when neither the account nor `[defaults]` names them.
pub const DEFAULT_SANDBOXES: [&str; 1] = ["prod"];
/// The concurrency when neither the manifest nor a flag sets one.
pub const DEFAULT_CONCURRENCY: u32 = 8;
/// How many connections a pruning apply may delete when neither the manifest
/// (`defaults.max_deletes`) nor `--max-deletes` says.
pub const DEFAULT_MAX_DELETES: u32 = 10;
/// The highest `max_deletes` accepted.
pub const MAX_MAX_DELETES: u32 = 1_000_000;
/// The highest concurrency accepted.
pub const MAX_CONCURRENCY: u32 = 256;
/// The OAuth scopes requested when `[auth]` does not list any: the set the
/// Adobe Developer Console gives an OAuth Server-to-Server credential for
/// Experience Platform APIs.
pub const DEFAULT_SCOPES: [&str; 5] = [
    "openid",
    "AdobeID",
    "read_organizations",
    "additional_info.projectedProductContext",
    "session",
];

/// Values from the command line, layered last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--concurrency`.
    pub concurrency: Option<u32>,
    /// `--max-deletes`.
    pub max_deletes: Option<u32>,
}

/// A loaded, valid manifest with every secret resolved.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// `owner`: the set of connections this manifest manages (in each marker).
    pub owner: Option<Arc<str>>,
    /// `[platform]`.
    pub platform: Platform,
    /// `[auth]`.
    pub auth: Auth,
    /// `defaults.concurrency` or `--concurrency`, else 8; within 1..=256.
    pub concurrency: u32,
    /// `defaults.max_deletes` or `--max-deletes`, else 10: the most
    /// connections one apply may delete.
    pub max_deletes: u32,
    /// `[[accounts]]`, in file order.
    pub accounts: Vec<Account>,
    /// Warnings: literal secrets, secret files readable by group or others.
    pub warnings: Vec<Diagnostic>,
}

/// `[platform]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The Flow Service base URL.
    pub endpoint: url::Url,
    /// The IMS organization, `…@AdobeOrg`.
    pub org_id: String,
    /// `x-api-key`, also the OAuth client id.
    pub api_key: String,
}

/// `[auth]`: how atsprov gets a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// OAuth Server-to-Server; the client id is `platform.api_key`.
    ClientCredentials {
        /// The IMS token URL.
        token_url: url::Url,
        /// The client secret.
        client_secret: Secret,
        /// The scopes requested.
        scopes: Vec<String>,
    },
    /// A ready bearer token.
    AccessToken(Secret),
}

/// One `[[accounts]]` entry, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The connection's name in AEP.
    pub name: String,
    /// The storage account (from `account_name` or the connection string's `AccountName`).
    pub account_name: String,
    /// The sandboxes it goes to, as written (the account's own or `defaults.sandboxes`).
    pub sandboxes: Vec<String>,
    /// The description (the account's own or `defaults.description`).
    pub description: String,
    /// The canonical connection string sent to the API (see [`crate::connstr`]).
    pub connection_string: Secret,
    /// An explicit Table endpoint (`table_endpoint`, or the connection string's `TableEndpoint`).
    pub table_endpoint: Option<url::Url>,
    /// Take over an existing unmanaged connection of the same name.
    pub adopt: bool,
}

impl Manifest {
    /// One desired connection per (sandbox, account), sorted by sandbox (in
    /// the manifest's order, [`Manifest::sandboxes`]), then name.
    pub fn desired(&self) -> Vec<DesiredConnection> {
        let count = self.accounts.iter().map(|a| a.sandboxes.len()).sum();
        let mut desired: Vec<DesiredConnection> = Vec::with_capacity(count);
        // Each text once: sandboxes and descriptions repeat across accounts.
        let mut texts: HashSet<Arc<str>> = HashSet::new();
        let mut shared = |text: &str| -> Arc<str> {
            if let Some(known) = texts.get(text) {
                return Arc::clone(known);
            }
            let new: Arc<str> = text.into();
            texts.insert(Arc::clone(&new));
            new
        };
        for (index, account) in self.accounts.iter().enumerate() {
            let name: Arc<str> = account.name.as_str().into();
            let description = shared(&account.description);
            for sandbox in &account.sandboxes {
                desired.push(
                    DesiredConnection::shared(
                        &self.platform.org_id,
                        shared(sandbox),
                        Arc::clone(&name),
                        Arc::clone(&description),
                        account.connection_string.clone(),
                        account.adopt,
                        index,
                    )
                    .owned_by(self.owner.clone()),
                );
            }
        }
        let order = self.sandboxes();
        // (sandbox, name) is unique (the loader refuses duplicates), so an
        // unstable sort gives the same order without a buffer of half the rows.
        desired.sort_unstable_by(|a, b| {
            (crate::plan::rank(&order, &a.sandbox), &a.name)
                .cmp(&(crate::plan::rank(&order, &b.sandbox), &b.name))
        });
        desired
    }

    /// Every sandbox the manifest names, each once, in the order they first
    /// appear (walking `[[accounts]]` in file order): the order in which
    /// plans are shown and sandboxes are applied (e.g. stage before prod).
    pub fn sandboxes(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.accounts
            .iter()
            .flat_map(|a| &a.sandboxes)
            .filter(|s| seen.insert(s.as_str()))
            .cloned()
            .collect()
    }
}

/// Loads and validates a manifest, resolving every secret reference.
///
/// Reads `ATSPROV_<SECTION>__<KEY>` variables and the variables that
/// `{ env = "…" }` references name from the process environment. On failure
/// the [`Diagnostics`] hold every error and warning found, in file order.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Manifest, Diagnostics> {
    load_in(path, overrides, &Environment::from_process())
}

/// [`load`] with an explicit environment, so tests need not touch the process's.
pub(crate) fn load_in(
    path: &Path,
    overrides: &Overrides,
    env: &Environment,
) -> Result<Manifest, Diagnostics> {
    let fail = |diagnostic: Box<Diagnostic>| Diagnostics {
        items: vec![*diagnostic],
    };
    let text = source::read(path).map_err(fail)?;
    let mut file = source::parse(path, text).map_err(fail)?;
    match check::check(&mut file, overrides, env) {
        Ok(checked) => checked,
        Err(check::NotInPieces) => {
            let mut whole =
                source::parse_whole(path, std::mem::take(&mut file.text)).map_err(fail)?;
            match check::check(&mut whole, overrides, env) {
                Ok(checked) => checked,
                // A file parsed whole has no pieces.
                Err(check::NotInPieces) => Err(fail(Box::new(Diagnostic::error(
                    Location::File {
                        path: path.to_owned(),
                        line: None,
                        column: None,
                    },
                    None,
                    "internal error: the manifest could not be read in one piece".to_owned(),
                )))),
            }
        }
    }
}

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct Environment {
    vars: Vec<(String, OsString)>,
}

impl Environment {
    /// The process environment; variables whose names are not UTF-8 are skipped.
    pub(crate) fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
                .collect(),
        }
    }

    /// An environment made of these pairs.
    #[cfg(test)]
    pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), OsString::from(v)))
                .collect(),
        }
    }

    /// The value of a variable.
    pub(crate) fn get(&self, name: &str) -> Option<&OsString> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every variable, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &OsString)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
