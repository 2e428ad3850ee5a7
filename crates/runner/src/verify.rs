//! The key check of `verify`, `plan --verify` and `apply --verify`: each
//! storage account's key against its own Table endpoint (Shared Key Lite),
//! accounts concurrently, before anything is provisioned.

use std::collections::BTreeMap;
use std::time::Duration;

pub use atsprov_model::keycheck::KeyCheck;
use atsprov_model::manifest::Manifest;
use atsprov_model::report::{ErrorKind, ItemError};
use atsprov_model::sharedkey::table_target;
use atsprov_model::url_policy;
use atsprov_transport::TableChecker;
use futures::StreamExt as _;

use crate::error::from_transport;

/// Checks at once; an account check is one small GET.
const PARALLEL: usize = 16;
/// How long connecting to a Table endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one check may take as a whole.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks the keys of the accounts at `indices`, concurrently; the checks
/// come back in index order, one per index.
pub async fn check_keys(manifest: &Manifest, indices: &[usize]) -> Vec<KeyCheck> {
    let checker = match TableChecker::new(CONNECT_TIMEOUT, REQUEST_TIMEOUT) {
        Ok(checker) => Some(checker),
        Err(err) => {
            tracing::error!("the key check could not start: {err}");
            None
        }
    };
    let mut checks = futures::stream::iter(indices.iter().copied())
        .map(|index| {
            let checker = checker.clone();
            async move {
                let account = &manifest.accounts[index];
                let target = table_target(account);
                let mut check = KeyCheck {
                    index,
                    name: account.name.clone(),
                    account: account.account_name.clone(),
                    endpoint: String::new(),
                    error: None,
                };
                match (target, checker) {
                    (Ok(target), Some(checker)) => {
                        check.account.clone_from(&target.account);
                        check.endpoint = url_policy::shown(&target.endpoint);
                        check.error = checker
                            .check(&target)
                            .await
                            .err()
                            .map(|e| from_transport(&e).with_kind(ErrorKind::KeyCheck));
                    }
                    (Err(error), _) => {
                        check.error = Some(ItemError::new(ErrorKind::KeyCheck, error));
                    }
                    (Ok(_), None) => {
                        check.error = Some(ItemError::new(
                            ErrorKind::KeyCheck,
                            "the HTTP client for the key check could not be set up",
                        ));
                    }
                }
                check
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    checks.sort_by_key(|c| c.index);
    checks
}

/// The failed checks by account index.
pub fn failures(checks: &[KeyCheck]) -> BTreeMap<usize, ItemError> {
    checks
        .iter()
        .filter_map(|c| c.error.clone().map(|e| (c.index, e)))
        .collect()
}
