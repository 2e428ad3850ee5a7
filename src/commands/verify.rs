//! `atsprov verify MANIFEST`: each storage account's key against its own
//! Table endpoint (Shared Key Lite), checked by `atsprov_runner`; and how a
//! person reads key checks (also shown by `plan --verify` and `apply --verify`).

use std::fmt::Write as _;

use anyhow::anyhow;
use atsprov_model::manifest::{self, Overrides};
use atsprov_runner::{KeyCheck, check_keys};

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::commands::{runtime, validate};
use crate::exit::{Exit, Failure, Outcome};

/// The checks as a person reads them.
pub(crate) fn render(checks: &[KeyCheck]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let (word, detail) = match &c.error {
            None => ("ok    ", format!("{} at {}", c.account, c.endpoint)),
            Some(e) if c.endpoint.is_empty() => ("FAILED", e.to_string()),
            Some(e) => ("FAILED", format!("{} at {}: {e}", c.account, c.endpoint)),
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
    let checks = runtime()?.block_on(check_keys(&manifest, &indices));
    crate::output::stdout(&render(&checks))
        .map_err(|e| Failure::Fatal(anyhow!("could not write the result: {e}")))?;
    Ok(if checks.iter().any(|c| c.error.is_some()) {
        Exit::ItemsFailed
    } else {
        Exit::Success
    })
}
