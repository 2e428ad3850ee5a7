//! Carrying out a plan: a queue of writes, workers under an adaptive bound,
//! one collector that owns progress and the report items.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use atsprov_model::DesiredConnection;
use atsprov_model::ownership;
use atsprov_model::plan::{Action, Change, Field, Plan, diff_one};
use atsprov_model::report::{ErrorKind, ItemError, ReportItem, Status, Timings, millis};
use atsprov_model::wire::{NewConnection, PatchOp};
use atsprov_transport::{Client, ErrorKind as Transport, counting_attempts};
use futures::future::join_all;
use tokio::sync::mpsc;

use crate::error::from_transport;
use crate::limiter::Limiter;
use crate::progress::{Progress, ProgressMode};
use crate::signals::Interrupt;

/// How many times one item is tried when the answer is ambiguous or the etag stale.
const MAX_ROUNDS: u32 = 4;

/// How many times one create is sent when the server answers 5xx each time
/// and no look finds it; the pause before each grows from [`CREATE_PAUSE`].
const CREATE_ROUNDS: u32 = 6;
const CREATE_PAUSE: Duration = Duration::from_millis(500);

/// How long an ambiguous create is looked for by default before it is
/// reported (see [`ApplyOptions::lookup_patience`]).
pub const LOOKUP_PATIENCE: Duration = Duration::from_secs(10);

/// The first pause between two looks for an ambiguous create; it doubles
/// (with jitter) up to [`LOOKUP_MAX_PAUSE`].
const LOOKUP_FIRST_PAUSE: Duration = Duration::from_millis(250);
const LOOKUP_MAX_PAUSE: Duration = Duration::from_secs(3);

/// How `apply` runs.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// The most calls in flight at once (the adaptive bound's ceiling).
    pub concurrency: usize,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// How long to keep looking (listing the sandbox, backed off with
    /// jitter) for a create whose outcome is unknown before giving up on it.
    /// Listings may lag writes by seconds, so one look is not enough; see
    /// [`LOOKUP_PATIENCE`].
    pub lookup_patience: Duration,
}

impl ApplyOptions {
    /// Options with the default lookup patience.
    pub fn new(concurrency: usize, progress: ProgressMode) -> Self {
        Self {
            concurrency,
            progress,
            lookup_patience: LOOKUP_PATIENCE,
        }
    }
}

/// What `apply` did.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// One item per planned row (and per declared connection of an unreadable sandbox).
    pub items: Vec<ReportItem>,
    /// True when Ctrl-C stopped the run before all work was done: writes
    /// not started, or the wait for new connections to show in listings.
    pub interrupted: bool,
    /// How many connections this run created that were not seen in
    /// listings when it returned (the wait ran out of patience or was
    /// interrupted): a `plan` or `apply` right after may create them again.
    pub unlisted: usize,
    /// The lowest concurrency the adaptive bound fell to, when the API pushed back.
    pub lowest_concurrency: Option<usize>,
    /// How long the writes and the wait for listings after them took
    /// (`plan_ms` is 0: the plan was made before).
    pub timings: Timings,
}

/// A plan, and the typed errors of the sandboxes that could not be read
/// (their declared connections are items too, failed).
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// Why each unreadable sandbox (named in `plan.errors`) could not be read.
    pub unreadable: BTreeMap<String, ItemError>,
}

/// What a caller sees of a run while it happens: the binary prints, tests
/// press Ctrl-C at the moment they choose. Every method does nothing by default.
pub trait Observer: Sync {
    /// The key checks of `apply --verify`, before the plan.
    fn key_checks(&self, _checks: &[crate::KeyCheck]) {}
    /// The plan, once made (after the key-check hold-back).
    fn planned(&self, _plan: &Plan) {}
    /// No plan could be made: every declared connection fails with this.
    fn stopped(&self, _error: &ItemError) {}
    /// An item whose write is done (succeeded or failed).
    fn item_done(&self, _item: &ReportItem) {}
    /// Just before the first write of a plan that writes: the answer,
    /// true to go on. The binary asks a person at a terminal (on a thread
    /// of its own, so an interrupt while the question waits still ends the
    /// run); by default, go on.
    fn confirm(&self, _plan: &Plan) -> tokio::sync::oneshot::Receiver<bool> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The receiver is right here: the send cannot fail.
        let _ = tx.send(true);
        rx
    }
}

/// An observer that looks away.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

struct Ctx<'a> {
    client: &'a Client,
    plan: &'a Plan,
    desired: &'a [DesiredConnection],
    observer: &'a dyn Observer,
    queue: Mutex<VecDeque<usize>>,
    /// When the first write started.
    first_write: OnceLock<Instant>,
    limiter: Limiter,
    lookup_patience: Duration,
    /// True once a second Ctrl-C aborted a call in flight.
    aborted: AtomicBool,
    interrupt: Interrupt,
}

/// Report items for the rows that need no call: no-ops, conflicts, orphans,
/// and declared connections of sandboxes that could not be read.
fn settled_items(planned: &Planned, desired: &[DesiredConnection]) -> Vec<ReportItem> {
    let plan = &planned.plan;
    let mut items = Vec::new();
    for change in &plan.changes {
        let item = match change.action {
            Action::NoOp => ReportItem::planned(change, Status::Unchanged),
            Action::Conflict => {
                ReportItem::skipped(change, ItemError::new(ErrorKind::Conflict, &*change.reason))
            }
            Action::Orphan => {
                ReportItem::skipped(change, ItemError::new(ErrorKind::Orphan, &*change.reason))
            }
            Action::Create | Action::Update | Action::Delete => continue,
        };
        items.push(item);
    }
    for failed in &plan.errors {
        let error = planned
            .unreadable
            .get(&failed.sandbox)
            .cloned()
            .unwrap_or_else(|| ItemError::new(ErrorKind::Api, &failed.error));
        for want in desired.iter().filter(|d| *d.sandbox == *failed.sandbox) {
            items.push(ReportItem::unplanned(want, Status::Failed, error.clone()));
        }
    }
    items
}

/// The items of `apply --dry-run`: what `apply` would do, with every write skipped.
pub fn dry_run_items(planned: &Planned, desired: &[DesiredConnection]) -> Vec<ReportItem> {
    let mut items = settled_items(planned, desired);
    for change in planned.plan.changes.iter().filter(|c| c.action.is_change()) {
        let note = format!("dry run: would {}", change.action.as_str());
        items.push(ReportItem::skipped(
            change,
            ItemError::new(ErrorKind::DryRun, note),
        ));
    }
    items
}

/// Carries out the plan's creates, updates and deletes.
///
/// Never loses an item: every row of the plan, and every declared connection
/// of a sandbox that could not be read, comes back exactly once.
pub async fn apply(
    client: &Client,
    planned: &Planned,
    desired: &[DesiredConnection],
    options: ApplyOptions,
    observer: &dyn Observer,
    interrupt: Interrupt,
) -> ApplyOutcome {
    let plan = &planned.plan;
    let mut items = settled_items(planned, desired);
    let work: VecDeque<usize> = plan
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.action.is_change())
        .map(|(i, _)| i)
        .collect();
    let mut per_sandbox: Vec<(String, u64)> = Vec::new();
    for &index in &work {
        let sandbox = &plan.changes[index].sandbox;
        match per_sandbox.iter_mut().find(|(s, _)| **s == **sandbox) {
            Some((_, n)) => *n += 1,
            None => per_sandbox.push((sandbox.to_string(), 1)),
        }
    }
    // The items of the writes go straight into `items`, sized once: at
    // 100,000 creates a growing vector of its own, then copied, was the peak.
    items.reserve_exact(work.len());
    let mut progress = Progress::new(options.progress, &per_sandbox);
    let workers = options.concurrency.clamp(1, work.len().max(1));
    let ctx = Ctx {
        client,
        plan,
        desired,
        observer,
        queue: Mutex::new(work),
        first_write: OnceLock::new(),
        limiter: Limiter::new(workers, client.stats().throttled),
        lookup_patience: options.lookup_patience,
        aborted: AtomicBool::new(false),
        interrupt,
    };

    let (tx, mut rx) = mpsc::unbounded_channel::<ReportItem>();
    let run = async {
        let all = join_all((0..workers).map(|slot| worker(&ctx, slot, tx.clone())));
        drop(tx);
        let stop = async {
            ctx.interrupt.wait_for(1).await;
            tracing::warn!(
                "interrupted: finishing calls in flight, starting no new work (Ctrl-C again to abort them)"
            );
            ctx.limiter.close();
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = all => {}
            () = stop => {}
        }
    };
    let mut last_answer = None;
    let collect = async {
        while let Some(result) = rx.recv().await {
            last_answer = Some(Instant::now());
            progress.record(&result.sandbox, result.status);
            ctx.observer.item_done(&result);
            items.push(result);
        }
    };
    tokio::join!(run, collect);
    progress.finish();

    let left: Vec<usize> = ctx.queue.lock().expect("queue lock").drain(..).collect();
    // A Ctrl-C that came when every item had already started interrupted
    // no write; it still ends (or skips) the wait for listings below.
    let writes_interrupted = !left.is_empty() || ctx.aborted.load(Ordering::SeqCst);
    let mut timings = Timings::default();
    if let (Some(first), Some(last)) = (ctx.first_write.get(), last_answer) {
        timings.write_ms = millis(last.saturating_duration_since(*first));
    }
    // Bounded, and a Ctrl-C ends the wait (the writes are all done); after
    // an interrupt of the writes it lists nothing and only counts the
    // connections made, none of them seen.
    let settling = Instant::now();
    let settled = crate::settle::settle(
        client,
        &items,
        options.lookup_patience,
        ctx.limiter.current(),
        &ctx.interrupt,
    )
    .await;
    if !writes_interrupted {
        timings.settle_ms = millis(settling.elapsed());
    }
    let interrupted = writes_interrupted || settled.interrupted;
    for index in left {
        items.push(ReportItem::skipped(
            &plan.changes[index],
            ItemError::new(
                ErrorKind::Interrupted,
                "not started: the run was interrupted; run `apply` again to finish",
            ),
        ));
    }
    ApplyOutcome {
        items,
        interrupted,
        unlisted: settled.unlisted,
        lowest_concurrency: ctx.limiter.lowest(),
        timings,
    }
}

async fn worker(ctx: &Ctx<'_>, slot: usize, tx: mpsc::UnboundedSender<ReportItem>) {
    loop {
        // The presses are read directly, so no item starts after a Ctrl-C,
        // even before the stop future has closed the limiter.
        if !ctx.limiter.admit(slot).await || ctx.interrupt.presses() > 0 {
            return;
        }
        let next = ctx.queue.lock().expect("queue lock").pop_front();
        let Some(index) = next else {
            ctx.limiter.close();
            return;
        };
        let change = &ctx.plan.changes[index];
        let started = Instant::now();
        ctx.first_write.get_or_init(|| started);
        let mut rounds = 0;
        // Every HTTP attempt of the item counts: retries, re-reads and
        // the look after an ambiguous create included.
        // Boxed: the call's future is several kilobytes, and built in place
        // once it is not moved from frame to frame on every item.
        let (outcome, attempts) = counting_attempts(async {
            tokio::select! {
                outcome = Box::pin(run_one(ctx, change, &mut rounds)) => outcome,
                () = ctx.interrupt.wait_for(2) => {
                    ctx.aborted.store(true, Ordering::SeqCst);
                    Err(ItemError::new(
                        ErrorKind::Interrupted,
                        "aborted by a second interrupt while the call was in flight; the next run will find out what happened",
                    ))
                }
            }
        })
        .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The failure is said once, by the observer's line (the binary's
        // change lines), not also here.
        let result = match outcome {
            Ok((status, id)) => ReportItem::planned(change, status).with_id(id),
            Err(error) => ReportItem::planned(change, Status::Failed).with_error(error),
        }
        .timed(attempts, duration_ms);
        ctx.limiter.observe(
            ctx.client.stats().throttled,
            result.status != Status::Failed,
        );
        if tx.send(result).is_err() {
            return;
        }
    }
}

type ItemResult = Result<(Status, Option<String>), ItemError>;

async fn run_one(ctx: &Ctx<'_>, change: &Change, attempts: &mut u32) -> ItemResult {
    match change.action {
        Action::Create => create(ctx, change, attempts).await,
        Action::Update => update(ctx, change, attempts).await,
        Action::Delete => delete(ctx, change, attempts).await,
        Action::NoOp | Action::Conflict | Action::Orphan => Ok((Status::Skipped, None)),
    }
}

fn desired_of<'a>(
    ctx: &'a Ctx<'_>,
    change: &Change,
) -> Result<(usize, &'a DesiredConnection), ItemError> {
    change
        .desired
        .and_then(|i| ctx.desired.get(i).map(|d| (i, d)))
        .ok_or_else(|| internal(format!("`{}` has no declared connection", change.name)))
}

async fn create(ctx: &Ctx<'_>, change: &Change, attempts: &mut u32) -> ItemResult {
    let (_, want) = desired_of(ctx, change)?;
    let body = NewConnection::ats(
        &want.name,
        &want.marked_description(),
        want.connection_string.clone(),
    );
    while *attempts < CREATE_ROUNDS {
        *attempts += 1;
        let err = match ctx.client.create_connection(&want.sandbox, &body).await {
            Ok(written) => return Ok((Status::Created, Some(written.id))),
            Err(err) if err.kind() == Transport::Ambiguous => err,
            Err(err) => return Err(from_transport(&err)),
        };
        tracing::info!(
            sandbox = %want.sandbox,
            name = %want.name,
            "the create may or may not have gone through ({}); looking for it before anything else",
            err.message()
        );
        match find_patiently(ctx, want).await {
            Ok(Some(id)) => return Ok((Status::Created, Some(id))),
            // The server answered 5xx: it says the create failed, and a
            // patient look agrees, so one more create is no blind guess.
            // The pause grows with each round, so an overloaded API (500s
            // are congestion) gets room before the next try.
            Ok(None) if err.status().is_some_and(|s| (500..600).contains(&s)) => {
                tracing::info!(sandbox = %want.sandbox, name = %want.name, "not found after a patient look; creating again");
                let pause = CREATE_PAUSE * 2u32.pow(*attempts - 1);
                tokio::time::sleep(pause.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
            }
            // No answer at all: the write most likely happened and the
            // listing has not caught up. Creating again would likely leave
            // two; the next apply finds it instead.
            Ok(None) => return Err(unseen(ctx, &err)),
            Err(look) => {
                return Err(look.context(
                    "the create may have gone through, and looking for it failed; run `apply` again (it finds the connection if it was made)",
                ));
            }
        }
    }
    Err(ItemError::new(
        ErrorKind::Ambiguous,
        format!(
            "the create stayed ambiguous after {CREATE_ROUNDS} attempts; run `apply` again (it finds the connection if it was made, and removes a duplicate as a `dedupe` row)"
        ),
    ))
}

/// The error of a create whose answer was lost and which no look found.
fn unseen(ctx: &Ctx<'_>, err: &atsprov_transport::Error) -> ItemError {
    let mut error = from_transport(err).with_kind(ErrorKind::Ambiguous);
    error.message = format!(
        "the create may have gone through ({}), and the connection did not show in listings within {}s; not created again, to leave no duplicate: the next `apply` finds it if it was made (and removes a duplicate as a `dedupe` row), or creates it",
        err.message(),
        ctx.lookup_patience.as_secs_f64()
    );
    error
}

/// Looks for an ambiguous create until it shows or the patience runs out:
/// listings may lag writes, so an early miss proves nothing. Pauses double
/// from [`LOOKUP_FIRST_PAUSE`] with jitter (so many workers do not list in
/// step); the last look is made at the deadline.
async fn find_patiently(
    ctx: &Ctx<'_>,
    want: &DesiredConnection,
) -> Result<Option<String>, ItemError> {
    let deadline = Instant::now() + ctx.lookup_patience;
    let mut pause = LOOKUP_FIRST_PAUSE;
    loop {
        if let Some(id) = find_ours(ctx, want).await? {
            return Ok(Some(id));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        // Between half and all of the pause.
        let jittered = pause.mul_f64(0.5 + fastrand::f64() / 2.0);
        tokio::time::sleep(jittered.min(left)).await;
        pause = (pause * 2).min(LOOKUP_MAX_PAUSE);
    }
}

/// The id of a live connection with this name, atsprov's marker and the
/// expected fingerprint (names matched here, over the spec-filtered listing).
async fn find_ours(ctx: &Ctx<'_>, want: &DesiredConnection) -> Result<Option<String>, ItemError> {
    let found = ctx
        .client
        .list_connections_named(&want.sandbox, &want.name)
        .await
        .map_err(|e| from_transport(&e))?;
    Ok(found
        .into_iter()
        .filter(|c| {
            c.name == *want.name
                && !c.is_deleting()
                && c.description
                    .as_deref()
                    .and_then(|d| ownership::parse(d).fingerprint)
                    .is_some_and(|fp| fp == want.fingerprint)
        })
        .min_by(|a, b| a.created_at.cmp(&b.created_at))
        .map(|c| c.id))
}

async fn update(ctx: &Ctx<'_>, change: &Change, attempts: &mut u32) -> ItemResult {
    let (index, want) = desired_of(ctx, change)?;
    let id = change
        .connection_id
        .clone()
        .ok_or_else(|| internal(format!("update of `{}` without an id", change.name)))?;
    let mut etag = change.etag.clone().unwrap_or_default();
    let mut fields = change.fields.clone();
    while *attempts < MAX_ROUNDS {
        *attempts += 1;
        // The fingerprint lives in the description, so every update rewrites it.
        let mut ops = vec![PatchOp::Description(want.marked_description())];
        if fields.contains(&Field::Credentials) {
            ops.push(PatchOp::Credentials(want.connection_string.clone()));
        }
        match ctx
            .client
            .patch_connection(&want.sandbox, &id, &etag, &ops)
            .await
        {
            Ok(_) => return Ok((Status::Updated, Some(id))),
            Err(err)
                if matches!(
                    err.kind(),
                    Transport::PreconditionFailed | Transport::Ambiguous
                ) =>
            {
                tracing::info!(sandbox = %want.sandbox, name = %want.name, "{err}; reading it again");
                let live = match ctx.client.get_connection(&want.sandbox, &id).await {
                    Ok(live) => live,
                    Err(e) if e.kind() == Transport::NotFound => return Err(deleted(&id)),
                    Err(e) => {
                        return Err(from_transport(&e).context(format_args!(
                            "{}; then reading it again failed",
                            err.message()
                        )));
                    }
                };
                let again = diff_one(index, want, &[&live]);
                match again.action {
                    Action::NoOp => return Ok((Status::Updated, Some(id))),
                    Action::Update => {
                        etag = live.etag;
                        fields = again.fields;
                    }
                    _ => {
                        return Err(ItemError::new(
                            ErrorKind::Conflict,
                            format!("changed by someone else while applying: {}", again.reason),
                        ));
                    }
                }
            }
            Err(err) if err.kind() == Transport::NotFound => return Err(deleted(&id)),
            Err(err) => return Err(from_transport(&err)),
        }
    }
    Err(ItemError::new(
        ErrorKind::Conflict,
        format!(
            "`{}` kept changing under us (stale etag {MAX_ROUNDS} times); run `apply` again",
            want.name
        ),
    ))
}

async fn delete(ctx: &Ctx<'_>, change: &Change, attempts: &mut u32) -> ItemResult {
    let id = change
        .connection_id
        .clone()
        .ok_or_else(|| internal(format!("delete of `{}` without an id", change.name)))?;
    *attempts += 1;
    // The transport retries a DELETE whose answer was lost; a replay then
    // finds the connection gone, which is what we wanted.
    match ctx.client.delete_connection(&change.sandbox, &id).await {
        Ok(()) => Ok((Status::Deleted, Some(id))),
        Err(err) if err.kind() == Transport::NotFound => Ok((Status::Deleted, Some(id))),
        Err(err) => Err(from_transport(&err)),
    }
}

fn deleted(id: &str) -> ItemError {
    ItemError::new(
        ErrorKind::Conflict,
        format!("`{id}` was deleted while applying; the next run creates it again"),
    )
}

fn internal(message: String) -> ItemError {
    ItemError::new(ErrorKind::Internal, format!("internal error: {message}"))
}
