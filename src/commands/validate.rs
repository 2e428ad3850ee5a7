//! `atsprov validate MANIFEST`: check a manifest offline and summarize it.

use std::fmt::Write as _;

use anyhow::anyhow;
use atsprov_model::manifest::{self, Diagnostic, Diagnostics, Location, Manifest, Overrides};

use crate::cli::{GlobalArgs, LogFormat, ValidateArgs};
use crate::exit::{Exit, Failure, Outcome};

pub(crate) fn run(global: &GlobalArgs, args: ValidateArgs) -> Outcome {
    let path = args.manifest.display().to_string();
    match manifest::load(&args.manifest, &Overrides::default()) {
        Ok(manifest) => {
            if !global.quiet {
                print_diagnostics(
                    global,
                    &Diagnostics {
                        items: manifest.warnings.clone(),
                    },
                );
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
    print_diagnostics(global, &diagnostics);
    let errors = diagnostics.error_count();
    let plural = if errors == 1 { "" } else { "s" };
    Failure::Invalid(anyhow!(
        "manifest `{path}` is invalid: {errors} error{plural}"
    ))
}

/// Every diagnostic on stderr: with text logs one block each, a blank line
/// after each; with `--log-format json` one JSON log line each, whose fields
/// (`file`, `line`, `column` or `env`/`flag`, `key`, `hint`) say where and what.
pub(crate) fn print_diagnostics(global: &GlobalArgs, diagnostics: &Diagnostics) {
    for item in &diagnostics.items {
        if global.log_format == LogFormat::Json {
            log_diagnostic(item);
        } else {
            crate::output::stderr(&format!("{item}\n\n"));
        }
    }
}

/// One diagnostic as a structured log event.
fn log_diagnostic(item: &Diagnostic) {
    let (mut file, mut line, mut column, mut env, mut flag) = (None, None, None, None, None);
    match &item.location {
        Location::File {
            path,
            line: l,
            column: c,
        } => {
            file = Some(path.display().to_string());
            line = *l;
            column = *c;
        }
        Location::Env(name) => env = Some(name.as_str()),
        Location::Flag(name) => flag = Some(name.as_str()),
        Location::Unknown => {}
    }
    let key = item.key.as_deref();
    let hint = item.hint.as_deref();
    let message = item.message.as_str();
    if item.is_warning {
        tracing::warn!(file, line, column, env, flag, key, hint, "{message}");
    } else {
        tracing::error!(file, line, column, env, flag, key, hint, "{message}");
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
            let n = desired.iter().filter(|d| *d.sandbox == *s).count();
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
