//! `atsprov validate MANIFEST`: check a manifest offline and summarize it.

use std::fmt::Write as _;

use anyhow::anyhow;
use atsprov_model::manifest::{self, Diagnostics, Manifest, Overrides};

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::exit::{Exit, Failure, Outcome};

pub(crate) fn run(global: &GlobalArgs, args: ValidateArgs) -> Outcome {
    let path = args.manifest.display().to_string();
    match manifest::load(&args.manifest, &Overrides::default()) {
        Ok(manifest) => {
            if !global.quiet {
                print_diagnostics(&Diagnostics {
                    items: manifest.warnings.clone(),
                });
            }
            crate::output::stdout(&summary(&path, &manifest))
                .map_err(|err| Failure::Fatal(anyhow!("cannot write to stdout: {err}")))?;
            Ok(Exit::Success)
        }
        Err(diagnostics) => Err(invalid(global, &path, diagnostics)),
    }
}

/// Prints a failed load's diagnostics on stderr (warnings too, unless quiet)
/// and returns the exit-3 failure whose one line closes the list. For every
/// command that loads a manifest.
pub(crate) fn invalid(global: &GlobalArgs, path: &str, mut diagnostics: Diagnostics) -> Failure {
    if global.quiet {
        diagnostics.items.retain(|d| !d.is_warning);
    }
    print_diagnostics(&diagnostics);
    let errors = diagnostics.error_count();
    let plural = if errors == 1 { "" } else { "s" };
    Failure::Invalid(anyhow!(
        "manifest `{path}` is invalid: {errors} error{plural}"
    ))
}

/// Every diagnostic on stderr, one block each, a blank line after each.
fn print_diagnostics(diagnostics: &Diagnostics) {
    for item in &diagnostics.items {
        crate::output::stderr(&format!("{item}\n\n"));
    }
}

/// Accounts, sandboxes and connections per sandbox.
fn summary(path: &str, manifest: &Manifest) -> String {
    let desired = manifest.desired();
    // In the manifest's order, as plans show them and applies run them.
    let per_sandbox: Vec<(String, usize)> = manifest
        .sandboxes()
        .into_iter()
        .map(|s| {
            let n = desired.iter().filter(|d| d.sandbox == s).count();
            (s, n)
        })
        .collect();
    let width = per_sandbox
        .iter()
        .map(|(s, _)| s.chars().count())
        .max()
        .unwrap_or(0)
        .max(9);
    let mut out = String::new();
    let _ = writeln!(out, "manifest `{path}` is valid");
    let _ = writeln!(out, "  accounts     {}", manifest.accounts.len());
    let _ = writeln!(out, "  sandboxes    {}", per_sandbox.len());
    let _ = writeln!(out, "  connections  {}", desired.len());
    for (sandbox, count) in &per_sandbox {
        let _ = writeln!(out, "    {sandbox:<width$}  {count}");
    }
    out
}
