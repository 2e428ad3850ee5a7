//! `atsprov apply MANIFEST`: compute the plan, carry it out, print a summary, write reports.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::anyhow;
use atsprov_model::manifest::Overrides;
use atsprov_model::plan::{Action, Plan};
use atsprov_model::report::{Report, ReportItem, Status};
use atsprov_model::{DesiredConnection, render};
use atsprov_runner::{ApplyOptions, Interrupt, ReportFormat};

use crate::cli::{ApplyArgs, GlobalArgs, ReportFormatArg};
use crate::commands::{client, key_check, load_target, make_plan, progress_mode, runtime};
use crate::exit::{Exit, Failure, Outcome};

/// Pairs `--report` files with formats: by position when formats are given,
/// else from each file's extension.
fn report_targets(args: &ApplyArgs) -> Result<Vec<(PathBuf, ReportFormat)>, Failure> {
    let formats = &args.report_formats;
    if !formats.is_empty() && formats.len() != args.reports.len() {
        return Err(Failure::Usage(anyhow!(
            "{} `--report` file(s) but {} `--report-format`: give one format per report, in the same order, or none to use the file extensions",
            args.reports.len(),
            formats.len()
        )));
    }
    args.reports
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let format = match formats.get(i) {
                Some(ReportFormatArg::Json) => ReportFormat::Json,
                Some(ReportFormatArg::Markdown) => ReportFormat::Markdown,
                Some(ReportFormatArg::Junit) => ReportFormat::Junit,
                None => ReportFormat::from_extension(path).ok_or_else(|| {
                    Failure::Usage(anyhow!(
                        "cannot tell the format of report `{}` from its extension; name it .json, .md or .xml, or add `--report-format json|markdown|junit`",
                        path.display()
                    ))
                })?,
            };
            Ok((path.clone(), format))
        })
        .collect()
}

/// Takes the writes of accounts whose key check failed out of the plan; they
/// become skipped items. Rows that write nothing stay, so nothing is lost.
fn hold_back(
    mut plan: Plan,
    desired: &[DesiredConnection],
    keys_failed: &BTreeMap<usize, String>,
) -> (Plan, Vec<ReportItem>) {
    if keys_failed.is_empty() {
        return (plan, Vec::new());
    }
    let mut held = Vec::new();
    plan.changes.retain(|change| {
        let failure = change
            .desired
            .filter(|_| matches!(change.action, Action::Create | Action::Update))
            .and_then(|i| keys_failed.get(&desired[i].account_index));
        match failure {
            Some(error) => {
                held.push(ReportItem {
                    sandbox: change.sandbox.clone(),
                    name: change.name.clone(),
                    action: Some(change.action),
                    status: Status::Skipped,
                    connection_id: change.connection_id.clone(),
                    attempts: 0,
                    duration_ms: 0,
                    error: Some(format!("not applied: the key check failed: {error}")),
                });
                false
            }
            None => true,
        }
    });
    (plan, held)
}

/// Every declared connection with one status and reason, for when no plan
/// could be made (the API could not be used, or Ctrl-C came first).
fn all_items(desired: &[DesiredConnection], status: Status, error: &str) -> Vec<ReportItem> {
    desired
        .iter()
        .map(|d| ReportItem {
            sandbox: d.sandbox.clone(),
            name: d.name.clone(),
            action: None,
            status,
            connection_id: None,
            attempts: 0,
            duration_ms: 0,
            error: Some(error.to_owned()),
        })
        .collect()
}

pub(crate) fn run(global: &GlobalArgs, args: ApplyArgs, color: bool) -> Outcome {
    let reports = report_targets(&args)?;
    let overrides = Overrides {
        concurrency: args.concurrency,
        ..Overrides::default()
    };
    let target = load_target(global, &args.target, &overrides)?;
    let client = client(&target.manifest)?;
    let runtime = runtime()?;
    let started = SystemTime::now();
    let clock = Instant::now();

    let (items, interrupted, keys_failed) = runtime.block_on(async {
        // Signals are caught from the start, so that even a Ctrl-C while
        // the live state is read ends with a report.
        let (presses, interrupt) = Interrupt::channel();
        let listener = tokio::spawn(async move {
            loop {
                if wait_for_signal().await.is_err() {
                    return;
                }
                presses.send_modify(|n| *n += 1);
            }
        });
        let keys_failed = if args.target.verify {
            match key_check(global, &target).await {
                Ok(failed) => failed,
                Err(failure) => {
                    let error = match failure {
                        Failure::Invalid(e) | Failure::Fatal(e) | Failure::Usage(e) => format!("{e:#}"),
                    };
                    crate::output::stderr(&format!("error: {error}\n"));
                    return (all_items(&target.desired, Status::Failed, &error), false, true);
                }
            }
        } else {
            BTreeMap::new()
        };
        let planned = tokio::select! {
            planned = make_plan(&client, &target, args.target.prune) => planned,
            () = interrupt.pressed() => {
                let note = "not started: interrupted before the plan was made; run `apply` again";
                return (all_items(&target.desired, Status::Skipped, note), true, !keys_failed.is_empty());
            }
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(err) => {
                let error = format!("{err:#}");
                crate::output::stderr(&format!("error: {error}\n"));
                return (all_items(&target.desired, Status::Failed, &error), false, !keys_failed.is_empty());
            }
        };
        for error in &plan.errors {
            crate::output::stderr(&format!(
                "error: sandbox `{}`: {}\n",
                error.sandbox, error.error
            ));
        }
        let (plan, held) = hold_back(plan, &target.desired, &keys_failed);
        if args.dry_run {
            let text = render::plan_text(&plan, color);
            let _ = crate::output::stdout(&text);
            let mut items = atsprov_runner::dry_run_items(&plan, &target.desired);
            items.extend(held);
            return (items, false, !keys_failed.is_empty());
        }
        tracing::info!("{}", render::summary_line(&plan.summary()));
        let options = ApplyOptions {
            concurrency: target.manifest.concurrency as usize,
            progress: progress_mode(global),
        };
        let outcome =
            atsprov_runner::apply(&client, &plan, &target.desired, options, interrupt).await;
        if let Some(lowest) = outcome.lowest_concurrency {
            tracing::info!(
                "the API pushed back (429/503): concurrency went down to {lowest} at the lowest"
            );
        }
        listener.abort();
        let mut items = outcome.items;
        items.extend(held);
        (items, outcome.interrupted, !keys_failed.is_empty())
    });

    let report = Report::new(started, SystemTime::now(), args.dry_run, interrupted, items);
    let mut write_failed = false;
    let mut written = Vec::new();
    for (path, format) in &reports {
        match atsprov_runner::write_report(path, *format, &report) {
            Ok(()) => written.push(path.display().to_string()),
            Err(err) => {
                write_failed = true;
                crate::output::error(&anyhow!(err));
            }
        }
    }
    let mut summary = report.to_text(clock.elapsed());
    for path in written {
        summary.push_str(&format!("Report written to {path}\n"));
    }
    crate::output::stdout(&summary)
        .map_err(|err| Failure::Fatal(anyhow!("could not write the summary: {err}")))?;

    Ok(if interrupted {
        Exit::Interrupted
    } else if report.summary.failed > 0 || write_failed || keys_failed {
        Exit::ItemsFailed
    } else {
        Exit::Success
    })
}

/// Waits for Ctrl-C, or SIGTERM (systemd stop, CI cancel), which is handled the same.
async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
