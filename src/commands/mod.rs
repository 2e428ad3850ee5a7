//! One module per command, and what `plan`, `apply` and `verify` share:
//! loading the manifest, the client, the runtime, and showing what runner returns.

pub(crate) mod apply;
pub(crate) mod docs;
pub(crate) mod emulator;
mod guard;
pub(crate) mod list;
pub(crate) mod plan;
pub(crate) mod validate;
pub(crate) mod verify;

use std::path::Path;

use anyhow::anyhow;
use atsprov_model::DesiredConnection;
use atsprov_model::manifest::{self, Manifest, Overrides};
use atsprov_model::plan::Plan;
use atsprov_model::report::ItemError;
use atsprov_model::target;
use atsprov_runner::{KeyCheck, ProgressMode};
use atsprov_transport::{Client, ClientConfig};

use crate::cli::{GlobalArgs, LogFormat, TargetArgs};
use crate::exit::Failure;

/// A loaded manifest, narrowed to the sandboxes and accounts asked for.
pub(crate) struct Target {
    pub(crate) manifest: Manifest,
    pub(crate) desired: Vec<DesiredConnection>,
    pub(crate) sandboxes: Vec<String>,
    /// `--target` patterns (empty: every account).
    pub(crate) targets: Vec<String>,
}

/// Loads and checks the manifest (exit 3 on any problem) and applies
/// `--sandbox` and `--target` (see [`load_scope`]). Without `--verify`, the
/// manifest's accounts are left out of the result (nothing reads them then).
pub(crate) fn load_target(
    global: &GlobalArgs,
    target: &TargetArgs,
    overrides: &Overrides,
) -> Result<Target, Failure> {
    let mut scope = load_scope(
        global,
        &target.manifest,
        &target.sandboxes,
        &target.targets,
        overrides,
    )?;
    if !target.verify {
        // `plan` and `apply` need the accounts only for `--verify`'s key
        // check: the desired connections carry the rest. Dropped before the
        // network phase (10,000 accounts in 10 sandboxes: about 5 MB).
        scope.manifest.accounts = Vec::new();
    }
    Ok(scope)
}

/// Loads and checks the manifest (exit 3 on any problem), then narrows it:
/// a `--sandbox` the manifest does not declare, or a `--target` that
/// matches none of its accounts, is a usage error (64).
pub(crate) fn load_scope(
    global: &GlobalArgs,
    path: &Path,
    sandboxes: &[String],
    targets: &[String],
    overrides: &Overrides,
) -> Result<Target, Failure> {
    let manifest = manifest::load(path, overrides).map_err(|diagnostics| {
        validate::invalid(global, &path.display().to_string(), diagnostics)
    })?;
    if !global.quiet {
        let warnings = manifest::Diagnostics {
            items: manifest.warnings.clone(),
        };
        validate::print_diagnostics(global, &warnings);
    }
    let declared = manifest.sandboxes();
    let sandboxes = if sandboxes.is_empty() {
        declared
    } else {
        let mut chosen = Vec::new();
        for name in sandboxes {
            if !declared.contains(name) {
                return Err(Failure::Usage(anyhow!(
                    "`--sandbox {name}`: the manifest `{}` declares no connection in sandbox `{name}` (it declares: {})",
                    path.display(),
                    declared.join(", ")
                )));
            }
            if !chosen.contains(name) {
                chosen.push(name.clone());
            }
        }
        chosen.sort_by_key(|s| atsprov_model::plan::rank(&declared, s));
        chosen
    };
    let known: Vec<&str> = manifest.accounts.iter().map(|a| a.name.as_str()).collect();
    if let Some(message) = target::unmatched(targets, &known) {
        return Err(Failure::Usage(anyhow!("{message}")));
    }
    let desired = manifest
        .desired()
        .into_iter()
        .filter(|d| {
            sandboxes.iter().any(|s| **s == *d.sandbox) && target::in_scope(targets, &d.name)
        })
        .collect();
    Ok(Target {
        manifest,
        desired,
        sandboxes,
        targets: targets.to_vec(),
    })
}

/// The API client for a manifest.
pub(crate) fn client(manifest: &Manifest) -> Result<Client, Failure> {
    let config = ClientConfig::new(
        manifest.platform.endpoint.clone(),
        manifest.platform.org_id.clone(),
        manifest.platform.api_key.clone(),
        manifest.auth.clone(),
    );
    Client::new(config).map_err(|err| Failure::Invalid(anyhow!("{err}")))
}

/// The runtime for a command that talks to the API. One thread: the work is
/// waiting on the network, and a single thread spends less CPU per call than
/// a work-stealing pool (measured with `cargo xtask bench apply`).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Fatal(anyhow!("could not start the async runtime: {err}")))
}

/// Shows key checks on stderr: all of them, or only the failures with `-q`.
pub(crate) fn show_key_checks(global: &GlobalArgs, checks: &[KeyCheck]) {
    let failed = checks.iter().any(|c| c.error.is_some());
    if !global.quiet || failed {
        crate::output::stderr(&verify::render(checks));
    }
}

/// Names each sandbox that could not be read, once, on stderr.
pub(crate) fn show_plan_errors(plan: &Plan) {
    for error in &plan.errors {
        crate::output::stderr(&format!(
            "error: sandbox `{}`: {}\n",
            error.sandbox, error.error
        ));
    }
}

/// Says an error once on stderr: `error: CONTEXTmessage`, then its
/// `hint:` line when it has one.
pub(crate) fn show_error(context: &str, error: &ItemError) {
    let mut text = format!(
        "error: {context}{}\n",
        atsprov_model::escape::terminal(&error.to_string())
    );
    if let Some(hint) = &error.hint {
        text.push_str(&format!(
            "hint: {}\n",
            atsprov_model::escape::terminal(hint)
        ));
    }
    crate::output::stderr(&text);
}

/// How progress is shown: a bar only on a terminal, with text logs, not quiet.
pub(crate) fn progress_mode(global: &GlobalArgs) -> ProgressMode {
    use std::io::IsTerminal;
    if global.quiet {
        ProgressMode::Hidden
    } else if global.log_format == LogFormat::Text && std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Log
    }
}
