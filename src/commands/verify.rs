//! `atsprov verify MANIFEST`, and the key check `plan --verify` and
//! `apply --verify` run first: each storage account's key against its own
//! Table endpoint (Shared Key Lite), before anything is provisioned.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::anyhow;
use atsprov_model::manifest::{self, Manifest, Overrides};
use atsprov_model::sharedkey::table_target;
use atsprov_transport::TableChecker;
use futures::StreamExt as _;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::commands::{runtime, validate};
use crate::exit::{Exit, Failure, Outcome};

/// Checks at once; an account check is one small GET.
const PARALLEL: usize = 16;

/// The key check of one account.
pub(crate) struct KeyCheck {
    /// Index in the manifest's `[[accounts]]`.
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) account: String,
    pub(crate) endpoint: String,
    /// `None` when the key works; else why not, one line.
    pub(crate) error: Option<String>,
}

/// Checks the keys of the accounts at `indices`, concurrently.
pub(crate) async fn check_keys(
    manifest: &Manifest,
    indices: &[usize],
) -> Result<Vec<KeyCheck>, Failure> {
    let checker = TableChecker::new(Duration::from_secs(10), Duration::from_secs(30))
        .map_err(|e| Failure::Fatal(anyhow!("{e}")))?;
    let checks = futures::stream::iter(indices.iter().copied())
        .map(|index| {
            let checker = checker.clone();
            async move {
                let account = &manifest.accounts[index];
                match table_target(account) {
                    Ok(target) => {
                        let result = checker.check(&target).await;
                        KeyCheck {
                            index,
                            name: account.name.clone(),
                            account: target.account.clone(),
                            endpoint: target.endpoint.to_string(),
                            error: result.err().map(|e| match e.hint() {
                                Some(hint) => format!("{e}; {hint}"),
                                None => e.to_string(),
                            }),
                        }
                    }
                    Err(error) => KeyCheck {
                        index,
                        name: account.name.clone(),
                        account: account.account_name.clone(),
                        endpoint: String::new(),
                        error: Some(error),
                    },
                }
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    let mut checks = checks;
    checks.sort_by_key(|c| c.index);
    Ok(checks)
}

/// The checks as a person reads them.
pub(crate) fn render(checks: &[KeyCheck]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let (word, detail) = match &c.error {
            None => ("ok    ", format!("{} at {}", c.account, c.endpoint)),
            Some(e) => ("FAILED", e.clone()),
        };
        let _ = writeln!(out, "  {word}  {:<width$}  {detail}", c.name);
    }
    let failed = checks.iter().filter(|c| c.error.is_some()).count();
    let _ = writeln!(
        out,
        "Key check: {} ok, {failed} failed",
        checks.len() - failed
    );
    out
}

/// The failed checks by account index, for `apply --verify`.
pub(crate) fn failures(checks: &[KeyCheck]) -> BTreeMap<usize, String> {
    checks
        .iter()
        .filter_map(|c| c.error.clone().map(|e| (c.index, e)))
        .collect()
}

pub(crate) fn run(global: &GlobalArgs, args: VerifyArgs) -> Outcome {
    let path = args.manifest.display().to_string();
    let manifest = manifest::load(&args.manifest, &Overrides::default())
        .map_err(|d| validate::invalid(global, &path, d))?;
    if !global.quiet {
        for warning in &manifest.warnings {
            crate::output::stderr(&format!("{warning}\n\n"));
        }
    }
    let indices: Vec<usize> = (0..manifest.accounts.len()).collect();
    let checks = runtime()?.block_on(check_keys(&manifest, &indices))?;
    crate::output::stdout(&render(&checks))
        .map_err(|e| Failure::Fatal(anyhow!("could not write the result: {e}")))?;
    Ok(if checks.iter().any(|c| c.error.is_some()) {
        Exit::ItemsFailed
    } else {
        Exit::Success
    })
}
