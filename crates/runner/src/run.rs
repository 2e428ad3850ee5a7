//! `apply` from start to report: the key check and its hold-back, the plan,
//! the writes, and the report, with every declared connection and every
//! orphan in it exactly once, whatever failed or was interrupted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use atsprov_model::DesiredConnection;
use atsprov_model::manifest::Manifest;
use atsprov_model::plan::{Action, Basis, Options};
use atsprov_model::report::{ErrorKind, ItemError, Report, ReportItem, Status, Timings, millis};
use atsprov_transport::Client;

use crate::execute::{ApplyOptions, ApplyOutcome, Observer, Planned, apply, dry_run_items};
use crate::lock::{self, RunLock};
use crate::make_plan;
use crate::signals::Interrupt;
use crate::verify::{check_keys, failures};
use crate::write::{ReportFormat, WriteError, write_report};

/// What one `apply` is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRun<'a> {
    /// The API client.
    pub client: &'a Client,
    /// The manifest (its accounts, for the key check).
    pub manifest: &'a Manifest,
    /// The declared connections of the sandboxes in scope.
    pub desired: &'a [DesiredConnection],
    /// The sandboxes in scope, in the manifest's order.
    pub sandboxes: &'a [String],
    /// `--prune`.
    pub prune: bool,
    /// The manifest's owner, when it names one: only connections whose
    /// marker names it are managed.
    pub owner: Option<&'a str>,
    /// `--target` patterns: live connections of other names (orphans
    /// included) are left out of the plan; empty for all.
    pub targets: &'a [String],
    /// `--verify`: check the keys first and hold back the writes of accounts that fail.
    pub verify: bool,
    /// `--dry-run`: plan, write nothing.
    pub dry_run: bool,
    /// Concurrency and progress.
    pub options: ApplyOptions,
    /// The most connections one apply may delete (`--max-deletes`, `defaults.max_deletes`).
    pub max_deletes: u32,
    /// `--plan FILE`: the basis of the saved plan; the run writes only when
    /// a fresh plan has the same one.
    pub saved: Option<&'a Basis>,
    /// How long to wait for another run's lock on the sandboxes; `None`
    /// takes no lock (a dry run writes nothing).
    pub lock_wait: Option<Duration>,
    /// Who this run is, written into its lock files for a waiting run to show.
    pub lock_note: &'a str,
    /// `--fail-fast`: a sandbox with a failure stops the sandboxes after it.
    pub fail_fast: bool,
}

/// What one `apply` did.
#[derive(Debug, Clone)]
pub struct ApplyResult {
    /// Every declared connection and every orphan, once.
    pub report: Report,
    /// True when a key check failed (`--verify`).
    pub keys_failed: bool,
    /// Why no plan could be made, when none could.
    pub stopped: Option<ItemError>,
    /// The lowest concurrency the adaptive bound fell to, when the API pushed back.
    pub lowest_concurrency: Option<usize>,
    /// How many connections this run created that were not seen in
    /// listings when it ended (the wait for them ran out of patience, or an
    /// interrupt cut it short): a `plan` or `apply` right after may not see
    /// them and create them again.
    pub unlisted: usize,
    /// Why a guard stopped the run before its first write, when one did
    /// (another run holds a sandbox, too many deletes, a stale saved plan,
    /// no confirmation). Nothing was written.
    pub guard: Option<ItemError>,
    /// How long the plan, the writes and the wait for listings took (also
    /// in `report.timings`).
    pub timings: Timings,
}

impl ApplyRun<'_> {
    /// [`run`](Self::run) with the process's signals (Ctrl-C, SIGTERM,
    /// SIGHUP) as the interrupt, listened to from the start.
    pub async fn run_with_signals(self, observer: &dyn Observer) -> ApplyResult {
        let signals = crate::Signals::listen();
        self.run(observer, signals.interrupt()).await
    }

    /// Runs the whole `apply` and assembles the report. Signals are watched
    /// through `interrupt` from the start (see [`Signals`](crate::Signals)), so an
    /// interrupt during the key check or the planning still ends in a report.
    pub async fn run(self, observer: &dyn Observer, interrupt: Interrupt) -> ApplyResult {
        let started = SystemTime::now();
        let mut result = ApplyResult {
            report: Report::new(started, started, self.dry_run, false, Vec::new()),
            keys_failed: false,
            stopped: None,
            lowest_concurrency: None,
            unlisted: 0,
            guard: None,
            timings: Timings::default(),
        };
        let prepared = tokio::select! {
            biased;
            () = interrupt.pressed() => Err(Stop::Interrupted),
            prepared = self.prepare(observer, &mut result) => prepared,
        };
        // Once the plan is made (and shown), whatever stops the run, an
        // interrupt at the question included, reports every row with its
        // planned action.
        let prepared = match prepared {
            Ok((planned, held, lock)) => match self.guard(&planned, observer, &interrupt).await {
                Some(error) => Err(Stop::Guard(Box::new((planned, held, error)))),
                None => Ok((planned, held, lock)),
            },
            Err(stop) => Err(stop),
        };
        let (items, interrupted) = match prepared {
            Err(Stop::Interrupted) => {
                (self.everything(Status::Skipped, &interrupted_early()), true)
            }
            Err(Stop::NoPlan(error)) => {
                let items = self.everything(Status::Failed, &error);
                result.stopped = Some(error);
                (items, false)
            }
            Err(Stop::Locked(error)) => {
                let items = self.everything(Status::Skipped, &error);
                result.guard = Some(error);
                (items, false)
            }
            Err(Stop::Guard(stopped)) => {
                let (planned, held, error) = *stopped;
                let mut items = guarded_items(&planned, self.desired, &error);
                items.extend(held);
                // An interrupt at the question is no guard: exit 130.
                let interrupted = error.kind == ErrorKind::Interrupted;
                if !interrupted {
                    result.guard = Some(error);
                }
                (items, interrupted)
            }
            Ok((planned, held, lock)) => {
                let (mut items, interrupted) = self
                    .carry_out(&planned, observer, interrupt, &mut result)
                    .await;
                drop(lock);
                items.extend(held);
                (items, interrupted)
            }
        };
        result.report = Report::new(started, SystemTime::now(), self.dry_run, interrupted, items)
            .in_order(self.sandboxes)
            .with_timings(result.timings);
        result
    }

    /// The lock, the key check, the plan and the hold-back.
    async fn prepare(
        &self,
        observer: &dyn Observer,
        result: &mut ApplyResult,
    ) -> Result<(Planned, Vec<ReportItem>, Option<RunLock>), Stop> {
        // The lock comes before live state is read, so a run that waited
        // plans afresh from what the first one left.
        let lock = match self.lock_wait {
            Some(wait) => Some(self.take_lock(wait).await?),
            None => None,
        };
        let keys_failed = if self.verify {
            let mut indices: Vec<usize> = self.desired.iter().map(|d| d.account_index).collect();
            indices.sort_unstable();
            indices.dedup();
            let checks = check_keys(self.manifest, &indices).await;
            observer.key_checks(&checks);
            failures(&checks)
        } else {
            BTreeMap::new()
        };
        result.keys_failed = !keys_failed.is_empty();
        let options = Options {
            prune: self.prune,
            owner: self.owner,
            sandboxes: self.sandboxes,
            targets: self.targets,
        };
        let planning = Instant::now();
        let planned = make_plan(self.client, self.desired, options).await;
        result.timings.plan_ms = millis(planning.elapsed());
        let planned = match planned {
            Ok(planned) => planned,
            Err(error) => {
                observer.stopped(&error);
                return Err(Stop::NoPlan(error));
            }
        };
        let (planned, held) = hold_back(planned, self.desired, &keys_failed);
        observer.planned(&planned.plan);
        Ok((planned, held, lock))
    }

    /// The locks of the sandboxes in scope, waiting up to `wait` for another run.
    async fn take_lock(&self, wait: Duration) -> Result<RunLock, Stop> {
        let org = self.manifest.platform.org_id.clone();
        let sandboxes = self.sandboxes.to_vec();
        let note = self.lock_note.to_owned();
        let taken = tokio::task::spawn_blocking(move || {
            lock::acquire(&lock::lock_dir(), &org, &sandboxes, wait, &note)
        })
        .await;
        match taken {
            Ok(Ok(lock)) => Ok(lock),
            Ok(Err(error)) => Err(Stop::Locked(ItemError::new(
                ErrorKind::Guard,
                format!("not started: {error}"),
            ))),
            Err(error) => Err(Stop::Locked(ItemError::new(
                ErrorKind::Internal,
                format!("not started: the lock could not be taken: {error}"),
            ))),
        }
    }

    /// Why the plan must not be carried out, when it must not: a saved plan
    /// gone stale, more deletes than allowed, no confirmation, or an
    /// interrupt while the question waited (kind `interrupted`).
    async fn guard(
        &self,
        planned: &Planned,
        observer: &dyn Observer,
        interrupt: &Interrupt,
    ) -> Option<ItemError> {
        if self.dry_run {
            return None;
        }
        let plan = &planned.plan;
        if let Some(saved) = self.saved {
            let changed: Vec<&str> = [
                (
                    saved.manifest != plan.basis.manifest,
                    "the manifest (its desired connections or the plan's options)",
                ),
                (saved.live != plan.basis.live, "the live connections"),
            ]
            .into_iter()
            .filter_map(|(changed, what)| changed.then_some(what))
            .collect();
            if !changed.is_empty() {
                return Some(ItemError::new(
                    ErrorKind::Guard,
                    format!(
                        "not applied: the plan is stale; plan again ({} changed since it was saved)",
                        changed.join(" and ")
                    ),
                ));
            }
        }
        let deletes = plan.summary().delete;
        if deletes > self.max_deletes as usize {
            return Some(ItemError::new(
                ErrorKind::Guard,
                format!(
                    "not applied: the plan deletes {deletes} connections, more than the limit of {}; check the manifest is complete, then raise `--max-deletes` or `[defaults] max_deletes`",
                    self.max_deletes
                ),
            ));
        }
        if !plan.summary().has_changes() {
            return None;
        }
        let answer = tokio::select! {
            biased;
            () = interrupt.pressed() => return Some(interrupted_early()),
            answer = observer.confirm(plan) => answer,
        };
        // A question never answered (its thread gone) is a no.
        if !answer.unwrap_or(false) {
            return Some(ItemError::new(
                ErrorKind::Guard,
                "not applied: not confirmed; nothing was written",
            ));
        }
        None
    }

    /// The writes (none for a dry run); interrupts are handled inside.
    async fn carry_out(
        &self,
        planned: &Planned,
        observer: &dyn Observer,
        interrupt: Interrupt,
        result: &mut ApplyResult,
    ) -> (Vec<ReportItem>, bool) {
        if self.dry_run {
            return (dry_run_items(planned, self.desired), false);
        }
        let outcome = if self.fail_fast {
            self.sandbox_by_sandbox(planned, observer, interrupt).await
        } else {
            apply(
                self.client,
                planned,
                self.desired,
                self.options,
                observer,
                interrupt,
            )
            .await
        };
        if let Some(lowest) = outcome.lowest_concurrency {
            tracing::info!(
                "the API pushed back (429, 5xx): concurrency went down to {lowest} at the lowest"
            );
        }
        result.lowest_concurrency = outcome.lowest_concurrency;
        result.unlisted = outcome.unlisted;
        result.timings.add_writes(outcome.timings);
        (outcome.items, outcome.interrupted)
    }

    /// `--fail-fast`: the sandboxes one after another, in the plan's (the
    /// manifest's) order; after one with a failure or an interrupt, the
    /// rest are skipped.
    async fn sandbox_by_sandbox(
        &self,
        planned: &Planned,
        observer: &dyn Observer,
        interrupt: Interrupt,
    ) -> ApplyOutcome {
        let mut outcome = ApplyOutcome {
            items: Vec::new(),
            interrupted: false,
            unlisted: 0,
            lowest_concurrency: None,
            timings: Timings::default(),
        };
        let mut stopped_by: Option<String> = None;
        for sandbox in &planned.plan.sandboxes {
            let part = only_sandbox(planned, sandbox);
            if let Some(failed) = &stopped_by {
                let error = ItemError::new(
                    ErrorKind::Guard,
                    format!("not started: `--fail-fast` and sandbox `{failed}` had a failure"),
                );
                outcome
                    .items
                    .extend(guarded_items(&part, self.desired, &error));
                continue;
            }
            if outcome.interrupted {
                outcome
                    .items
                    .extend(guarded_items(&part, self.desired, &interrupted_early()));
                continue;
            }
            let done = apply(
                self.client,
                &part,
                self.desired,
                self.options,
                observer,
                interrupt.clone(),
            )
            .await;
            if done.items.iter().any(|i| i.status == Status::Failed) {
                stopped_by = Some(sandbox.clone());
            }
            outcome.interrupted |= done.interrupted;
            outcome.unlisted += done.unlisted;
            outcome.timings.add_writes(done.timings);
            outcome.lowest_concurrency = match (outcome.lowest_concurrency, done.lowest_concurrency)
            {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            outcome.items.extend(done.items);
        }
        outcome
    }

    /// Every declared connection with one status and error, for when no plan
    /// was made (the API could not be used, or an interrupt came first).
    fn everything(&self, status: Status, error: &ItemError) -> Vec<ReportItem> {
        self.desired
            .iter()
            .map(|d| ReportItem::unplanned(d, status, error.clone()))
            .collect()
    }
}

/// Why a run ended before its writes.
enum Stop {
    /// An interrupt came before the plan was made (the lock, the key check
    /// or the listings); one at the question is a `Guard` of kind `interrupted`.
    Interrupted,
    /// No plan could be made (the API could not be used).
    NoPlan(ItemError),
    /// Another run holds a sandbox's lock; nothing was read or written.
    Locked(ItemError),
    /// A guard (or an interrupt at the question) stopped the plan before
    /// its first write.
    Guard(Box<(Planned, Vec<ReportItem>, ItemError)>),
}

/// The part of a plan in one sandbox.
fn only_sandbox(planned: &Planned, sandbox: &str) -> Planned {
    let mut part = planned.clone();
    part.plan.changes.retain(|c| &*c.sandbox == sandbox);
    part.plan.errors.retain(|e| e.sandbox == sandbox);
    part.unreadable.retain(|s, _| s == sandbox);
    part
}

/// The items of a plan none of whose writes were made, each write skipped with `error`.
fn guarded_items(
    planned: &Planned,
    desired: &[DesiredConnection],
    error: &ItemError,
) -> Vec<ReportItem> {
    dry_run_items(planned, desired)
        .into_iter()
        .map(|item| match &item.error {
            Some(e) if e.kind == ErrorKind::DryRun => item.with_error(error.clone()),
            _ => item,
        })
        .collect()
}

fn interrupted_early() -> ItemError {
    ItemError::new(
        ErrorKind::Interrupted,
        "not started: interrupted before the first write; run `apply` again",
    )
}

/// Takes the writes of accounts whose key check failed out of the plan; they
/// become skipped items (kind `key_check`). Rows that write nothing stay, so
/// nothing is lost.
fn hold_back(
    mut planned: Planned,
    desired: &[DesiredConnection],
    keys_failed: &BTreeMap<usize, ItemError>,
) -> (Planned, Vec<ReportItem>) {
    let mut held = Vec::new();
    planned.plan.changes.retain(|change| {
        let failure = change
            .desired
            .filter(|_| matches!(change.action, Action::Create | Action::Update))
            .and_then(|i| desired.get(i))
            .and_then(|d| keys_failed.get(&d.account_index));
        match failure {
            Some(error) => {
                let error = error
                    .clone()
                    .context("not applied: the key check failed")
                    .with_kind(ErrorKind::KeyCheck);
                held.push(ReportItem::skipped(change, error));
                false
            }
            None => true,
        }
    });
    (planned, held)
}

/// Writes the report to every target; each result names its path.
pub fn write_reports(
    report: &Report,
    targets: &[(PathBuf, ReportFormat)],
) -> Vec<Result<PathBuf, WriteError>> {
    targets
        .iter()
        .map(|(path, format)| write_report(path, *format, report).map(|()| path.clone()))
        .collect()
}
