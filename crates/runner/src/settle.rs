//! After the writes: waiting (bounded) until the connections this run created
//! show in listings, so an `apply` or `plan` started right after this one
//! sees them and does not create them a second time.
//!
//! Flow Service listings may lag writes by seconds while reads by id are
//! current. A plan is made from listings only, so without this wait two
//! applies run back to back could leave two connections of one name.
//!
//! The wait asks only for the connections it waits for: listings filtered by
//! id (`property=id==a,b,…`, [`BATCH`] ids each, so a URL stays about 4 KB),
//! sent concurrently, each round asking again only for the ids not seen yet.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use atsprov_model::report::{ReportItem, Status};
use atsprov_transport::Client;
use futures::StreamExt as _;

/// The most ids one listing asks for.
pub(crate) const BATCH: usize = 100;

/// The first pause between two rounds of listings; it doubles with jitter up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(3);

/// Waits until every connection created in `items` shows in its sandbox's
/// listings, or `patience` runs out; then logs how many still do not show.
/// Returns that number. At most `concurrency` listings are in flight. A
/// listing that fails ends the wait for its sandbox (the run's outcome does
/// not depend on it).
pub(crate) async fn settle(
    client: &Client,
    items: &[ReportItem],
    patience: Duration,
    concurrency: usize,
) -> usize {
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for item in items.iter().filter(|i| i.status == Status::Created) {
        if let Some(id) = item.connection_id.as_deref() {
            waiting.entry(&item.sandbox).or_default().insert(id);
        }
    }
    let deadline = Instant::now() + patience;
    let mut given_up = 0;
    let mut pause = FIRST_PAUSE;
    while !waiting.is_empty() {
        given_up += round(client, &mut waiting, concurrency).await;
        let left = deadline.saturating_duration_since(Instant::now());
        if waiting.is_empty() || left.is_zero() {
            break;
        }
        tracing::debug!(
            unseen = waiting.values().map(BTreeSet::len).sum::<usize>(),
            sandboxes = waiting.len(),
            "waiting for new connections to show in listings"
        );
        let jittered = pause.mul_f64(0.5 + fastrand::f64() / 2.0);
        tokio::time::sleep(jittered.min(left)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
    let unseen = given_up + waiting.values().map(BTreeSet::len).sum::<usize>();
    if unseen > 0 {
        tracing::warn!(
            "{unseen} connection(s) made by this run do not show in listings yet (the API's listings lag its writes); wait a little before the next `plan` or `apply`, or it may create them again (the one after removes such duplicates as `dedupe` rows)"
        );
    }
    unseen
}

/// One round: every id still waited for, asked for in listings of [`BATCH`]
/// ids, at most `concurrency` at once; what shows is no longer waited for.
/// A sandbox whose listing fails is waited for no more: returns how many of
/// its ids were still unseen. Only the pages in flight are held, never a
/// sandbox's whole listing.
async fn round<'a>(
    client: &Client,
    waiting: &mut BTreeMap<&'a str, BTreeSet<&'a str>>,
    concurrency: usize,
) -> usize {
    let batches: Vec<(&str, Vec<&str>)> = waiting
        .iter()
        .flat_map(|(sandbox, ids)| {
            let ids: Vec<&str> = ids.iter().copied().collect();
            ids.chunks(BATCH)
                .map(|chunk| (*sandbox, chunk.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut listings = futures::stream::iter(&batches)
        .map(|(sandbox, ids)| async move {
            (*sandbox, client.list_connections_by_ids(sandbox, ids).await)
        })
        .buffer_unordered(concurrency.max(1));
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    while let Some((sandbox, listed)) = listings.next().await {
        match listed {
            Ok(live) => {
                if let Some(ids) = waiting.get_mut(sandbox) {
                    for c in &live {
                        ids.remove(c.id.as_str());
                    }
                }
            }
            Err(err) => {
                if failed.insert(sandbox) {
                    tracing::debug!(sandbox, "could not list to see the new connections: {err}");
                }
            }
        }
    }
    let mut given_up = 0;
    for sandbox in failed {
        given_up += waiting.remove(sandbox).map_or(0, |ids| ids.len());
    }
    waiting.retain(|_, ids| !ids.is_empty());
    given_up
}
