//! Reads the live ATS connections of every sandbox, sandboxes in parallel,
//! and makes the plan from them.

use std::collections::BTreeMap;

use atsprov_model::DesiredConnection;
use atsprov_model::plan::{Options, SandboxError, plan};
use atsprov_model::report::ItemError;
use atsprov_model::wire::Connection;
use atsprov_transport::Client;
use futures::future::join_all;

use crate::Planned;
use crate::error::from_transport;

/// The live connections of the sandboxes that could be read, and why the
/// others could not.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Every ATS connection, by sandbox.
    pub connections: BTreeMap<String, Vec<Connection>>,
    /// Why a sandbox could not be listed, by sandbox.
    pub unreadable: BTreeMap<String, ItemError>,
}

/// Lists every sandbox's ATS connections, all pages, sandboxes concurrently.
///
/// A sandbox whose listing fails is in `unreadable`; the others are still read.
pub async fn read_live(client: &Client, sandboxes: &[String]) -> Live {
    let results = join_all(sandboxes.iter().map(|sandbox| async move {
        let listed = client.list_connections(sandbox).await;
        (sandbox.clone(), listed)
    }))
    .await;
    let mut live = Live::default();
    for (sandbox, listed) in results {
        match listed {
            Ok(connections) => {
                tracing::debug!(sandbox = %sandbox, count = connections.len(), "listed live connections");
                live.connections.insert(sandbox, connections);
            }
            Err(err) => {
                let error = from_transport(&err).context("could not list connections");
                live.unreadable.insert(sandbox, error);
            }
        }
    }
    live
}

/// Authenticates, reads live state of `options.sandboxes` and computes the plan.
///
/// Fails only when the API cannot be used at all (the token was refused or
/// could not be fetched); a sandbox that cannot be read is named in the plan.
pub async fn make_plan(
    client: &Client,
    desired: &[DesiredConnection],
    options: Options<'_>,
) -> Result<Planned, ItemError> {
    client
        .authenticate()
        .await
        .map_err(|err| from_transport(&err).context("could not authenticate"))?;
    let live = read_live(client, options.sandboxes).await;
    let errors = live
        .unreadable
        .iter()
        .map(|(sandbox, error)| SandboxError {
            sandbox: sandbox.clone(),
            error: error.to_string(),
        })
        .collect();
    Ok(Planned {
        plan: plan(desired, &live.connections, errors, options),
        unreadable: live.unreadable,
    })
}
