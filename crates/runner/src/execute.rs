//! Carrying out a plan: a queue of writes, workers under an adaptive bound,
//! one collector that owns progress and the report items.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use atsprov_model::DesiredConnection;
use atsprov_model::ownership;
use atsprov_model::plan::{Action, Change, Field, Plan, diff_one};
use atsprov_model::report::{ReportItem, Status};
use atsprov_model::wire::{NewConnection, PatchOp};
use atsprov_transport::{Client, ErrorKind};
use futures::future::join_all;
use tokio::sync::{mpsc, watch};

use crate::limiter::Limiter;
use crate::progress::{Progress, ProgressMode};

/// How many times one item is tried when the answer is ambiguous or the etag stale.
const MAX_ROUNDS: u32 = 4;

/// How `apply` runs.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// The most calls in flight at once (the adaptive bound's ceiling).
    pub concurrency: usize,
    /// How progress is shown.
    pub progress: ProgressMode,
}

/// What `apply` did.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// One item per planned row (and per declared connection of an unreadable sandbox).
    pub items: Vec<ReportItem>,
    /// True when Ctrl-C stopped the run before all work was done.
    pub interrupted: bool,
    /// The lowest concurrency the adaptive bound fell to, when the API pushed back.
    pub lowest_concurrency: Option<usize>,
}

/// Ctrl-C presses seen so far: 1 stops starting new work, 2 aborts calls in flight.
#[derive(Debug, Clone)]
pub struct Interrupt(watch::Receiver<u32>);

impl Interrupt {
    /// An interrupt that is pressed through the returned sender (`send_modify(|n| *n += 1)`).
    pub fn channel() -> (watch::Sender<u32>, Interrupt) {
        let (tx, rx) = watch::channel(0);
        (tx, Interrupt(rx))
    }

    /// Resolves at the first press.
    pub async fn pressed(&self) {
        self.wait_for(1).await;
    }

    fn presses(&self) -> u32 {
        *self.0.borrow()
    }

    async fn wait_for(&self, presses: u32) {
        let mut rx = self.0.clone();
        if rx.wait_for(|n| *n >= presses).await.is_err() {
            // The sender is gone: nobody can press any more.
            std::future::pending::<()>().await;
        }
    }
}

struct Ctx<'a> {
    client: &'a Client,
    plan: &'a Plan,
    desired: &'a [DesiredConnection],
    queue: Mutex<VecDeque<usize>>,
    limiter: Limiter,
    /// True once a second Ctrl-C aborted a call in flight.
    aborted: AtomicBool,
    interrupt: Interrupt,
}

/// Report items for the rows that need no call: no-ops, conflicts, orphans,
/// and declared connections of sandboxes that could not be read.
fn settled_items(plan: &Plan, desired: &[DesiredConnection]) -> Vec<ReportItem> {
    let mut items = Vec::new();
    for change in &plan.changes {
        let status = match change.action {
            Action::NoOp => Status::Unchanged,
            Action::Conflict | Action::Orphan => Status::Skipped,
            Action::Create | Action::Update | Action::Delete => continue,
        };
        let error = (status == Status::Skipped).then(|| change.reason.clone());
        items.push(item(
            change,
            status,
            change.connection_id.clone(),
            0,
            0,
            error,
        ));
    }
    for failed in &plan.errors {
        for want in desired.iter().filter(|d| d.sandbox == failed.sandbox) {
            items.push(ReportItem {
                sandbox: want.sandbox.clone(),
                name: want.name.clone(),
                action: None,
                status: Status::Failed,
                connection_id: None,
                attempts: 0,
                duration_ms: 0,
                error: Some(failed.error.clone()),
            });
        }
    }
    items
}

fn item(
    change: &Change,
    status: Status,
    connection_id: Option<String>,
    attempts: u32,
    duration_ms: u64,
    error: Option<String>,
) -> ReportItem {
    ReportItem {
        sandbox: change.sandbox.clone(),
        name: change.name.clone(),
        action: Some(change.action),
        status,
        connection_id,
        attempts,
        duration_ms,
        error,
    }
}

/// The items of `apply --dry-run`: what `apply` would do, with every write skipped.
pub fn dry_run_items(plan: &Plan, desired: &[DesiredConnection]) -> Vec<ReportItem> {
    let mut items = settled_items(plan, desired);
    for change in plan.changes.iter().filter(|c| c.action.is_change()) {
        let note = format!("dry run: would {}", change.action.as_str());
        items.push(item(
            change,
            Status::Skipped,
            change.connection_id.clone(),
            0,
            0,
            Some(note),
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
    plan: &Plan,
    desired: &[DesiredConnection],
    options: ApplyOptions,
    interrupt: Interrupt,
) -> ApplyOutcome {
    let mut items = settled_items(plan, desired);
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
        match per_sandbox.iter_mut().find(|(s, _)| s == sandbox) {
            Some((_, n)) => *n += 1,
            None => per_sandbox.push((sandbox.clone(), 1)),
        }
    }
    let mut progress = Progress::new(options.progress, &per_sandbox);
    let workers = options.concurrency.clamp(1, work.len().max(1));
    let ctx = Ctx {
        client,
        plan,
        desired,
        queue: Mutex::new(work),
        limiter: Limiter::new(workers, client.stats().throttled),
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
    let collect = async {
        let mut done = Vec::new();
        while let Some(result) = rx.recv().await {
            progress.record(&result.sandbox, result.status);
            done.push(result);
        }
        done
    };
    let ((), done) = tokio::join!(run, collect);
    progress.finish();
    items.extend(done);

    let left: Vec<usize> = ctx.queue.lock().expect("queue lock").drain(..).collect();
    // A Ctrl-C that came when every item had already started is no interruption.
    let interrupted = !left.is_empty() || ctx.aborted.load(Ordering::SeqCst);
    for index in left {
        let change = &plan.changes[index];
        let note = "not started: the run was interrupted; run `apply` again to finish".to_owned();
        items.push(item(
            change,
            Status::Skipped,
            change.connection_id.clone(),
            0,
            0,
            Some(note),
        ));
    }
    ApplyOutcome {
        items,
        interrupted,
        lowest_concurrency: ctx.limiter.lowest(),
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
        let mut attempts = 0;
        let outcome = tokio::select! {
            outcome = run_one(ctx, change, &mut attempts) => outcome,
            () = ctx.interrupt.wait_for(2) => {
                ctx.aborted.store(true, Ordering::SeqCst);
                Err("aborted by a second Ctrl-C while the call was in flight; the next run will find out what happened".to_owned())
            }
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let result = match outcome {
            Ok((status, id)) => item(change, status, id, attempts, duration_ms, None),
            Err(error) => {
                tracing::error!(sandbox = %change.sandbox, name = %change.name, "{} failed: {error}", change.action.as_str());
                item(
                    change,
                    Status::Failed,
                    change.connection_id.clone(),
                    attempts,
                    duration_ms,
                    Some(error),
                )
            }
        };
        ctx.limiter.observe(
            ctx.client.stats().throttled,
            result.status != Status::Failed,
        );
        if tx.send(result).is_err() {
            return;
        }
    }
}

type ItemResult = Result<(Status, Option<String>), String>;

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
) -> Result<(usize, &'a DesiredConnection), String> {
    change
        .desired
        .and_then(|i| ctx.desired.get(i).map(|d| (i, d)))
        .ok_or_else(|| {
            format!(
                "internal error: `{}` has no declared connection",
                change.name
            )
        })
}

async fn create(ctx: &Ctx<'_>, change: &Change, attempts: &mut u32) -> ItemResult {
    let (_, want) = desired_of(ctx, change)?;
    let body = NewConnection::ats(
        &want.name,
        &want.marked_description(),
        want.connection_string.clone(),
    );
    while *attempts < MAX_ROUNDS {
        *attempts += 1;
        match ctx.client.create_connection(&want.sandbox, &body).await {
            Ok(written) => return Ok((Status::Created, Some(written.id))),
            Err(err) if err.kind() == ErrorKind::Ambiguous => {
                tracing::info!(
                    sandbox = %want.sandbox,
                    name = %want.name,
                    "the create may or may not have gone through (no answer after the request was sent); looking for it before creating again"
                );
                match find_ours(ctx, want).await {
                    Ok(Some(id)) => return Ok((Status::Created, Some(id))),
                    Ok(None) => continue,
                    Err(look) => return Err(format!("{err}; then looking for it failed: {look}")),
                }
            }
            Err(err) => return Err(err.to_string()),
        }
    }
    Err(format!(
        "create of `{}` stayed ambiguous after {MAX_ROUNDS} attempts; run `apply` again (it finds the connection if it was made)",
        want.name
    ))
}

/// The id of a live connection with this name, atsprov's marker and the expected fingerprint.
async fn find_ours(ctx: &Ctx<'_>, want: &DesiredConnection) -> Result<Option<String>, String> {
    let found = ctx
        .client
        .list_connections_named(&want.sandbox, &want.name)
        .await
        .map_err(|e| e.to_string())?;
    Ok(found
        .into_iter()
        .find(|c| {
            c.name == want.name
                && c.description
                    .as_deref()
                    .and_then(|d| ownership::parse(d).fingerprint)
                    .is_some_and(|fp| fp == want.fingerprint)
        })
        .map(|c| c.id))
}

async fn update(ctx: &Ctx<'_>, change: &Change, attempts: &mut u32) -> ItemResult {
    let (index, want) = desired_of(ctx, change)?;
    let id = change
        .connection_id
        .clone()
        .ok_or_else(|| format!("internal error: update of `{}` without an id", change.name))?;
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
                    ErrorKind::PreconditionFailed | ErrorKind::Ambiguous
                ) =>
            {
                tracing::info!(sandbox = %want.sandbox, name = %want.name, "{err}; reading it again");
                let live = match ctx.client.get_connection(&want.sandbox, &id).await {
                    Ok(live) => live,
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Err(format!(
                            "`{id}` was deleted while applying; the next run creates it again"
                        ));
                    }
                    Err(e) => return Err(format!("{err}; then reading it again failed: {e}")),
                };
                let again = diff_one(index, want, &[&live]);
                match again.action {
                    Action::NoOp => return Ok((Status::Updated, Some(id))),
                    Action::Update => {
                        etag = live.etag;
                        fields = again.fields;
                    }
                    _ => {
                        return Err(format!(
                            "changed by someone else while applying: {}",
                            again.reason
                        ));
                    }
                }
            }
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(format!(
                    "`{id}` was deleted while applying; the next run creates it again"
                ));
            }
            Err(err) => return Err(err.to_string()),
        }
    }
    Err(format!(
        "`{}` kept changing under us (stale etag {MAX_ROUNDS} times); run `apply` again",
        want.name
    ))
}

async fn delete(ctx: &Ctx<'_>, change: &Change, attempts: &mut u32) -> ItemResult {
    let id = change
        .connection_id
        .clone()
        .ok_or_else(|| format!("internal error: delete of `{}` without an id", change.name))?;
    *attempts += 1;
    // The transport retries a DELETE whose answer was lost; a replay then
    // finds the connection gone, which is what we wanted.
    match ctx.client.delete_connection(&change.sandbox, &id).await {
        Ok(()) => Ok((Status::Deleted, Some(id))),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok((Status::Deleted, Some(id))),
        Err(err) => Err(err.to_string()),
    }
}
