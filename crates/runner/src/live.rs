//! Reads the live ATS connections of every sandbox, sandboxes in parallel.

use std::collections::BTreeMap;

use atsprov_model::plan::SandboxError;
use atsprov_model::wire::Connection;
use atsprov_transport::Client;
use futures::future::join_all;

/// Lists every sandbox's ATS connections, all pages, sandboxes concurrently.
///
/// A sandbox whose listing fails is named in the errors with the one-line
/// error; the others are still returned.
pub async fn read_live(
    client: &Client,
    sandboxes: &[String],
) -> (BTreeMap<String, Vec<Connection>>, Vec<SandboxError>) {
    let results = join_all(sandboxes.iter().map(|sandbox| async move {
        let listed = client.list_connections(sandbox).await;
        (sandbox.clone(), listed)
    }))
    .await;
    let mut live = BTreeMap::new();
    let mut errors = Vec::new();
    for (sandbox, listed) in results {
        match listed {
            Ok(connections) => {
                tracing::debug!(sandbox = %sandbox, count = connections.len(), "listed live connections");
                live.insert(sandbox, connections);
            }
            Err(err) => {
                tracing::error!(sandbox = %sandbox, "could not list connections: {err}");
                errors.push(SandboxError {
                    sandbox,
                    error: format!("could not list connections: {err}"),
                });
            }
        }
    }
    (live, errors)
}
