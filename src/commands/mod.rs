//! One module per command, and what `plan` and `apply` share.

pub(crate) mod apply;
pub(crate) mod emulator;
pub(crate) mod plan;
pub(crate) mod validate;
pub(crate) mod verify;

use anyhow::anyhow;
use atsprov_model::DesiredConnection;
use atsprov_model::manifest::{self, Auth, Manifest, Overrides};
use atsprov_model::plan::Plan;
use atsprov_runner::ProgressMode;
use atsprov_transport::{AuthConfig, Client, ClientConfig};

use crate::cli::{GlobalArgs, LogFormat, TargetArgs};
use crate::exit::Failure;

/// A loaded manifest, narrowed to the sandboxes asked for.
pub(crate) struct Target {
    pub(crate) manifest: Manifest,
    pub(crate) desired: Vec<DesiredConnection>,
    pub(crate) sandboxes: Vec<String>,
}

/// Loads and checks the manifest (exit 3 on any problem) and applies `--sandbox`.
pub(crate) fn load_target(
    global: &GlobalArgs,
    target: &TargetArgs,
    overrides: &Overrides,
) -> Result<Target, Failure> {
    let manifest = manifest::load(&target.manifest, overrides).map_err(|diagnostics| {
        validate::invalid(global, &target.manifest.display().to_string(), diagnostics)
    })?;
    if !global.quiet {
        for warning in &manifest.warnings {
            crate::output::stderr(&format!("{warning}\n\n"));
        }
    }
    let declared = manifest.sandboxes();
    let sandboxes = if target.sandboxes.is_empty() {
        declared
    } else {
        let mut chosen = Vec::new();
        for name in &target.sandboxes {
            if !declared.contains(name) {
                return Err(Failure::Invalid(anyhow!(
                    "`--sandbox {name}`: the manifest `{}` declares no connection in sandbox `{name}` (it declares: {})",
                    target.manifest.display(),
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
    let desired = manifest
        .desired()
        .into_iter()
        .filter(|d| sandboxes.contains(&d.sandbox))
        .collect();
    Ok(Target {
        manifest,
        desired,
        sandboxes,
    })
}

/// The API client for a manifest.
pub(crate) fn client(manifest: &Manifest) -> Result<Client, Failure> {
    let auth = match &manifest.auth {
        Auth::AccessToken(token) => AuthConfig::AccessToken(token.clone()),
        Auth::ClientCredentials {
            token_url,
            client_secret,
            scopes,
        } => AuthConfig::ClientCredentials {
            token_url: token_url.clone(),
            client_secret: client_secret.clone(),
            scopes: scopes.clone(),
        },
    };
    let config = ClientConfig::new(
        manifest.platform.endpoint.clone(),
        manifest.platform.org_id.clone(),
        manifest.platform.api_key.clone(),
        auth,
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

/// Reads live state and computes the plan; a token failure ends the command (exit 1).
pub(crate) async fn make_plan(
    client: &Client,
    target: &Target,
    prune: bool,
) -> Result<Plan, anyhow::Error> {
    client
        .authenticate()
        .await
        .map_err(|err| anyhow!("could not authenticate: {err}"))?;
    let (live, errors) = atsprov_runner::read_live(client, &target.sandboxes).await;
    let options = atsprov_model::plan::Options {
        prune,
        owner: target.manifest.owner.as_deref(),
        sandboxes: &target.sandboxes,
    };
    Ok(atsprov_model::plan::plan(
        &target.desired,
        &live,
        errors,
        options,
    ))
}

/// `--verify`: checks the keys of the accounts the target touches and shows
/// the result on stderr; returns the failures by account index.
pub(crate) async fn key_check(
    global: &GlobalArgs,
    target: &Target,
) -> Result<std::collections::BTreeMap<usize, String>, Failure> {
    let mut indices: Vec<usize> = target.desired.iter().map(|d| d.account_index).collect();
    indices.sort_unstable();
    indices.dedup();
    let checks = verify::check_keys(&target.manifest, &indices).await?;
    let failures = verify::failures(&checks);
    if !global.quiet || !failures.is_empty() {
        crate::output::stderr(&verify::render(&checks));
    }
    Ok(failures)
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
