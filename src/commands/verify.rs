//! `atsprov verify MANIFEST`: each storage account's key against its own
//! Table endpoint (Shared Key Lite), checked by `atsprov_runner`, shown as
//! text, JSON (`atsprov.verify/v1`) or Markdown like a plan.

use anyhow::anyhow;
use atsprov_model::keycheck::{verify_json, verify_markdown, verify_text};
use atsprov_model::manifest::Overrides;
use atsprov_model::target;
use atsprov_runner::{KeyCheck, check_keys};

use crate::cli::{GlobalArgs, PlanFormat, VerifyArgs};
use crate::commands::{load_scope, runtime};
use crate::exit::{Exit, Failure, Outcome};

/// The checks as a person reads them (also shown by `plan --verify` and
/// `apply --verify`).
pub(crate) fn render(checks: &[KeyCheck]) -> String {
    verify_text(checks)
}

pub(crate) fn run(global: &GlobalArgs, args: VerifyArgs) -> Outcome {
    crate::commands::guard::check_out_path(args.out.as_ref())?;
    let scope = load_scope(
        global,
        &args.manifest,
        &[],
        &args.targets,
        &Overrides::default(),
    )?;
    let manifest = &scope.manifest;
    let indices: Vec<usize> = (0..manifest.accounts.len())
        .filter(|&i| target::in_scope(&args.targets, &manifest.accounts[i].name))
        .collect();
    let checks = runtime()?.block_on(check_keys(manifest, &indices));
    let text = match args.format {
        PlanFormat::Text => verify_text(&checks),
        PlanFormat::Json => verify_json(&checks),
        PlanFormat::Markdown => verify_markdown(&checks),
    };
    match &args.out {
        Some(path) => {
            atsprov_runner::write_atomically(path, &text)
                .map_err(|err| Failure::Fatal(anyhow!(err)))?;
            if !global.quiet {
                let failed = checks.iter().filter(|c| c.error.is_some()).count();
                crate::output::stderr(&format!(
                    "Key check: {} ok, {failed} failed\nresult written to {}\n",
                    checks.len() - failed,
                    path.display()
                ));
            }
        }
        None => crate::output::stdout(&text)
            .map_err(|e| Failure::Fatal(anyhow!("could not write the result: {e}")))?,
    }
    Ok(if checks.iter().any(|c| c.error.is_some()) {
        Exit::ItemsFailed
    } else {
        Exit::Success
    })
}
