//! After the writes: waiting (bounded) until the connections this run created
//! show in listings, so an `apply` or `plan` started right after this one
//! sees them and does not create them a second time.
//!
//! Flow Service listings may lag writes by seconds while reads by id are
//! current. A plan is made from listings only, so without this wait two
//! applies run back to back could leave two connections of one name.
//!
//! The wait asks only about the connections it waits for, and only how many
//! show: listings filtered by id and counted (`property=id==a,b,…` with
//! `count=true`, [`BATCH`] ids each, so a URL stays about 4 KB), sent
//! concurrently; each round asks again about the batches not all shown yet.
//! An interrupt ends the wait at once; what is still not seen is returned,
//! for the caller to tell the user.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use atsprov_model::report::{ReportItem, Status};
use atsprov_transport::Client;
use futures::StreamExt as _;

use crate::signals::Interrupt;

/// The most ids one listing asks for.
pub(crate) const BATCH: usize = 100;

/// The first pause between two rounds of listings; it doubles with jitter up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(3);

/// How the wait for listings ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    /// The connections made by this run that were not seen in listings
    /// when the wait ended (its patience ran out, a count failed, or an
    /// interrupt stopped it).
    pub(crate) unlisted: usize,
    /// True when an interrupt ended the wait (or kept it from starting)
    /// while some of them were not seen yet.
    pub(crate) interrupted: bool,
}

/// Waits until every connection created in `items` shows in its sandbox's
/// listings, or `patience` runs out, or `interrupt` is pressed (then no
/// listing is started and the one under way is dropped). At most
/// `concurrency` listings are in flight. A listing that fails ends the wait
/// for its sandbox (the run's outcome does not depend on it). The caller
/// tells the user what is still not seen.
pub(crate) async fn settle(
    client: &Client,
    items: &[ReportItem],
    patience: Duration,
    concurrency: usize,
    interrupt: &Interrupt,
) -> Settled {
    let mut created: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for item in items.iter().filter(|i| i.status == Status::Created) {
        if let Some(id) = item.connection_id.as_deref() {
            created.entry(&item.sandbox).or_default().push(id);
        }
    }
    let mut waiting: Vec<Batch<'_>> = created
        .iter()
        .flat_map(|(sandbox, ids)| {
            ids.chunks(BATCH).map(|ids| Batch {
                sandbox,
                ids,
                shown: 0,
            })
        })
        .collect();
    let deadline = Instant::now() + patience;
    let mut given_up = 0;
    let mut pause = FIRST_PAUSE;
    let mut interrupted = false;
    while !waiting.is_empty() {
        // A round's counts are kept only when all of them came back, so
        // dropping it at an interrupt leaves `waiting` as it was.
        let counted = tokio::select! {
            biased;
            () = interrupt.pressed() => None,
            given_up = round(client, &mut waiting, concurrency) => Some(given_up),
        };
        let Some(counted) = counted else {
            interrupted = true;
            break;
        };
        given_up += counted;
        let left = deadline.saturating_duration_since(Instant::now());
        if waiting.is_empty() || left.is_zero() {
            break;
        }
        tracing::debug!(
            unseen = unseen(&waiting),
            batches = waiting.len(),
            "waiting for new connections to show in listings"
        );
        let jittered = pause.mul_f64(0.5 + fastrand::f64() / 2.0);
        tokio::select! {
            biased;
            () = interrupt.pressed() => {
                interrupted = true;
                break;
            }
            () = tokio::time::sleep(jittered.min(left)) => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
    let unlisted = given_up + unseen(&waiting);
    if unlisted > 0 {
        tracing::debug!(
            unlisted,
            interrupted,
            "new connections not seen in listings"
        );
    }
    Settled {
        unlisted,
        interrupted,
    }
}

/// Up to [`BATCH`] new connections of one sandbox, and how many of them
/// the last count found in listings.
struct Batch<'a> {
    sandbox: &'a str,
    ids: &'a [&'a str],
    shown: usize,
}

/// The connections of `batches` not shown yet.
fn unseen(batches: &[Batch<'_>]) -> usize {
    batches
        .iter()
        .map(|b| b.ids.len().saturating_sub(b.shown))
        .sum()
}

/// One round: every batch still waited for is counted, at most
/// `concurrency` at once; a batch all shown is waited for no more. A
/// sandbox whose count fails is waited for no more: returns how many of its
/// connections were still unseen.
async fn round(client: &Client, waiting: &mut Vec<Batch<'_>>, concurrency: usize) -> usize {
    let counts: Vec<(usize, Result<usize, _>)> = futures::stream::iter(waiting.iter().enumerate())
        .map(|(i, batch)| async move {
            (
                i,
                client
                    .count_connections_by_ids(batch.sandbox, batch.ids)
                    .await,
            )
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    for (i, counted) in counts {
        let batch = &mut waiting[i];
        match counted {
            Ok(shown) => batch.shown = shown,
            Err(err) => {
                if failed.insert(batch.sandbox) {
                    tracing::debug!(
                        sandbox = batch.sandbox,
                        "could not list to see the new connections: {err}"
                    );
                }
            }
        }
    }
    let given_up = waiting
        .iter()
        .filter(|b| failed.contains(b.sandbox))
        .map(|b| b.ids.len().saturating_sub(b.shown))
        .sum();
    waiting.retain(|b| !failed.contains(b.sandbox) && b.shown < b.ids.len());
    given_up
}
