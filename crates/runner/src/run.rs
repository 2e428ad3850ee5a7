//! `apply` from start to report: the key check and its hold-back, the plan,
//! the writes, and the report, with every declared connection and every
//! orphan in it exactly once, whatever failed or was interrupted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use atsprov_model::DesiredConnection;
use atsprov_model::manifest::Manifest;
use atsprov_model::plan::{Action, Options};
use atsprov_model::render;
use atsprov_model::report::{ErrorKind, ItemError, Report, ReportItem, Status};
use atsprov_transport::Client;

use crate::execute::{ApplyOptions, Observer, Planned, apply, dry_run_items};
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
    /// `--verify`: check the keys first and hold back the writes of accounts that fail.
    pub verify: bool,
    /// `--dry-run`: plan, write nothing.
    pub dry_run: bool,
    /// Concurrency and progress.
    pub options: ApplyOptions,
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
        };
        let prepared = tokio::select! {
            biased;
            () = interrupt.pressed() => Err(Stop::Interrupted),
            prepared = self.prepare(observer, &mut result) => prepared,
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
            Ok((planned, held)) => {
                let (mut items, interrupted) = self
                    .carry_out(&planned, observer, interrupt, &mut result)
                    .await;
                items.extend(held);
                (items, interrupted)
            }
        };
        result.report = Report::new(started, SystemTime::now(), self.dry_run, interrupted, items)
            .in_order(self.sandboxes);
        result
    }

    /// The key check, the plan and the hold-back.
    async fn prepare(
        &self,
        observer: &dyn Observer,
        result: &mut ApplyResult,
    ) -> Result<(Planned, Vec<ReportItem>), Stop> {
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
        };
        match make_plan(self.client, self.desired, options).await {
            Ok(planned) => {
                let (planned, held) = hold_back(planned, self.desired, &keys_failed);
                observer.planned(&planned.plan);
                Ok((planned, held))
            }
            Err(error) => {
                observer.stopped(&error);
                Err(Stop::NoPlan(error))
            }
        }
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
        tracing::info!("{}", render::summary_line(&planned.plan.summary()));
        let outcome = apply(
            self.client,
            planned,
            self.desired,
            self.options,
            observer,
            interrupt,
        )
        .await;
        if let Some(lowest) = outcome.lowest_concurrency {
            tracing::info!(
                "the API pushed back (429/503): concurrency went down to {lowest} at the lowest"
            );
        }
        result.lowest_concurrency = outcome.lowest_concurrency;
        (outcome.items, outcome.interrupted)
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
    /// An interrupt came before the plan was made.
    Interrupted,
    /// No plan could be made (the API could not be used).
    NoPlan(ItemError),
}

fn interrupted_early() -> ItemError {
    ItemError::new(
        ErrorKind::Interrupted,
        "not started: interrupted before the plan was made; run `apply` again",
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
