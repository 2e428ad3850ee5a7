//! Reads the live ATS connections of every sandbox, sandboxes in parallel,
//! and makes the plan from them (a few sandboxes at a time, each planned
//! as soon as it is read, so a plan holds only a few sandboxes' listings).

use std::collections::BTreeMap;

use atsprov_model::DesiredConnection;
use atsprov_model::plan::{Options, Planner, SandboxError};
use atsprov_model::report::ItemError;
use atsprov_model::wire::Connection;
use atsprov_transport::Client;
use futures::StreamExt as _;
use futures::future::join_all;

/// How many sandboxes `make_plan` lists at once: enough to overlap one
/// sandbox's pages with another's, few enough that only that many
/// listings are held (10,000 connections are about 5 MB).
const SANDBOXES_AT_ONCE: usize = 3;

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
    // Ascending order of name: the order the planner takes them in.
    let mut sandboxes: Vec<&String> = options.sandboxes.iter().collect();
    sandboxes.sort_unstable();
    sandboxes.dedup();
    let mut listings = futures::stream::iter(sandboxes)
        .map(|sandbox| async move { (sandbox, client.list_connections(sandbox).await) })
        .buffered(SANDBOXES_AT_ONCE);
    let mut planner = Planner::new(desired, options);
    let mut unreadable = BTreeMap::new();
    while let Some((sandbox, listed)) = listings.next().await {
        match listed {
            Ok(connections) => {
                tracing::debug!(sandbox = %sandbox, count = connections.len(), "listed live connections");
                planner.sandbox(sandbox, &connections);
            }
            Err(err) => {
                let error = from_transport(&err).context("could not list connections");
                unreadable.insert(sandbox.clone(), error);
            }
        }
    }
    let errors = unreadable
        .iter()
        .map(|(sandbox, error)| SandboxError {
            sandbox: sandbox.clone(),
            error: error.to_string(),
        })
        .collect();
    Ok(Planned {
        plan: planner.finish(errors),
        unreadable,
    })
}
