//! After the writes: waiting (bounded) until the connections this run created
//! show in listings, so an `apply` or `plan` started right after this one
//! sees them and does not create them a second time.
//!
//! Flow Service listings may lag writes by seconds while reads by id are
//! current. A plan is made from listings only, so without this wait two
//! applies run back to back could leave two connections of one name.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use atsprov_model::report::{ReportItem, Status};
use atsprov_transport::Client;

/// The first pause between two listings; it doubles with jitter up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(3);

/// Waits until every connection created in `items` shows in its sandbox's
/// listing, or `patience` runs out; then logs how many still do not show.
/// Returns that number. A listing that fails ends the wait for its sandbox
/// (the run's outcome does not depend on it).
pub(crate) async fn settle(client: &Client, items: &[ReportItem], patience: Duration) -> usize {
    let mut created: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for item in items.iter().filter(|i| i.status == Status::Created) {
        if let Some(id) = item.connection_id.as_deref() {
            created.entry(&item.sandbox).or_default().insert(id);
        }
    }
    let deadline = Instant::now() + patience;
    // One sandbox at a time: a listing holds every connection of its
    // sandbox, and all of them at once would double the run's peak memory
    // (100,000 connections: about 100 MB). The deadline is shared, so
    // the waits overlap all the same: a sandbox listed later has had as
    // long to catch up.
    let mut unseen = 0;
    for (sandbox, ids) in created {
        unseen += settle_one(client, sandbox, ids, deadline).await;
    }
    if unseen > 0 {
        tracing::warn!(
            "{unseen} connection(s) made by this run do not show in listings yet (the API's listings lag its writes); wait a little before the next `plan` or `apply`, or it may create them again (the one after removes such duplicates as `dedupe` rows)"
        );
    }
    unseen
}

async fn settle_one(
    client: &Client,
    sandbox: &str,
    mut ids: BTreeSet<&str>,
    deadline: Instant,
) -> usize {
    let mut pause = FIRST_PAUSE;
    loop {
        match client.list_connections(sandbox).await {
            Ok(live) => {
                for c in &live {
                    ids.remove(c.id.as_str());
                }
            }
            Err(err) => {
                tracing::debug!(sandbox, "could not list to see the new connections: {err}");
                return ids.len();
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if ids.is_empty() || left.is_zero() {
            return ids.len();
        }
        tracing::debug!(
            sandbox,
            unseen = ids.len(),
            "waiting for new connections to show in listings"
        );
        let jittered = pause.mul_f64(0.5 + fastrand::f64() / 2.0);
        tokio::time::sleep(jittered.min(left)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
