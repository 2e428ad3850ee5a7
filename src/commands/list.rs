//! `atsprov list MANIFEST`: every live ATS connection in the manifest's
//! sandboxes, who manages it, whether its credentials match, its state,
//! and duplicate names flagged (`model::inventory`), as text or
//! `atsprov.list/v1` JSON.

use anyhow::anyhow;
use atsprov_model::inventory::{list, list_json, list_text};
use atsprov_model::manifest::Overrides;
use atsprov_model::target;

use crate::cli::{GlobalArgs, ListArgs, ListFormat};
use crate::commands::{client, load_scope, runtime, show_error};
use crate::exit::{Exit, Failure, Outcome};

pub(crate) fn run(global: &GlobalArgs, args: ListArgs) -> Outcome {
    crate::commands::guard::check_out_path(args.out.as_ref())?;
    let scope = load_scope(
        global,
        &args.manifest,
        &args.sandboxes,
        &args.targets,
        &Overrides::default(),
    )?;
    let client = client(&scope.manifest)?;
    let live = runtime()?.block_on(async {
        // One token for every sandbox's pages.
        client.authenticate().await?;
        Ok::<_, atsprov_transport::Error>(
            atsprov_runner::read_live(&client, &scope.sandboxes).await,
        )
    });
    let live = match live {
        Ok(live) => live,
        Err(err) => {
            let error = atsprov_runner::item_error(&err).context("could not authenticate");
            show_error("", &error);
            return Ok(Exit::ItemsFailed);
        }
    };
    let mut listed = list(
        &scope.desired,
        &live.connections,
        scope.manifest.owner.as_deref(),
        &scope.sandboxes,
    );
    listed.retain(|l| target::in_scope(&scope.targets, &l.name));
    let text = match args.format {
        ListFormat::Text => list_text(&listed),
        ListFormat::Json => list_json(&listed),
    };
    match &args.out {
        Some(path) => {
            atsprov_runner::write_atomically(path, &text)
                .map_err(|err| Failure::Fatal(anyhow!(err)))?;
            if !global.quiet {
                crate::output::stderr(&format!(
                    "{} connections listed; written to {}\n",
                    listed.len(),
                    path.display()
                ));
            }
        }
        None => crate::output::stdout(&text)
            .map_err(|e| Failure::Fatal(anyhow!("could not write the listing: {e}")))?,
    }
    // Each unreadable sandbox is said once.
    for (sandbox, error) in &live.unreadable {
        show_error(&format!("sandbox `{sandbox}`: "), error);
    }
    Ok(if live.unreadable.is_empty() {
        Exit::Success
    } else {
        Exit::ItemsFailed
    })
}
