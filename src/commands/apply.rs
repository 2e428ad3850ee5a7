//! `atsprov apply MANIFEST`: hands the run to `atsprov_runner`, prints what
//! it shows and returns, and maps the result to an exit code.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use atsprov_model::escape::terminal;
use atsprov_model::manifest::Overrides;
use atsprov_model::plan::Plan;
use atsprov_model::render;
use atsprov_model::report::{ErrorKind, ItemError, ReportItem, Status, change_line};
use atsprov_runner::{ApplyOptions, ApplyRun, KeyCheck, Observer, ProgressMode, ReportFormat};

use crate::cli::{ApplyArgs, GlobalArgs, ReportFormatArg};
use crate::commands::{
    client, guard, load_target, progress_mode, runtime, show_error, show_key_checks,
    show_plan_errors,
};
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

/// What a person sees while the run happens.
struct Screen<'a> {
    global: &'a GlobalArgs,
    dry_run: bool,
    auto_approve: bool,
    color: bool,
    progress: ProgressMode,
}

impl Observer for Screen<'_> {
    fn key_checks(&self, checks: &[KeyCheck]) {
        show_key_checks(self.global, checks);
    }

    /// The plan, on stdout, before the first write (as `plan` shows it);
    /// with `-q` only its errors, on stderr.
    fn planned(&self, plan: &Plan) {
        if self.global.quiet {
            show_plan_errors(plan);
        } else {
            // A closed stdout is not an error; the summary below says the same.
            let _ = crate::output::stdout(&render::plan_text(plan, self.color));
        }
    }

    fn stopped(&self, error: &ItemError) {
        show_error("", error);
    }

    /// A line per write done, above the progress bar on a terminal, else a
    /// log line; with `-q` only the failures.
    fn item_done(&self, item: &ReportItem) {
        let failed = item.status == Status::Failed;
        let hint = item.error.as_ref().and_then(|e| e.hint.as_deref());
        if self.progress == ProgressMode::Bar {
            let mut text = format!("{}\n", change_line(item));
            if let (true, Some(hint)) = (failed, hint) {
                text.push_str(&format!("         hint: {}\n", terminal(hint)));
            }
            crate::output::above_progress(&text);
        } else if failed {
            tracing::error!("{}", change_line(item));
            if let Some(hint) = hint {
                tracing::error!("hint: {}", terminal(hint));
            }
        } else {
            // Formatted only when the level is on (not with `-q`): tracing
            // evaluates the arguments after its level check.
            tracing::info!("{}", change_line(item));
        }
    }

    fn confirm(&self, plan: &Plan) -> tokio::sync::oneshot::Receiver<bool> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.auto_approve || self.dry_run || !guard::can_ask() {
            // The receiver is right here: the send cannot fail.
            let _ = tx.send(true);
            return rx;
        }
        // The plan is on stdout already, unless `-q` or stdout goes elsewhere.
        let text = if self.global.quiet || !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            render::plan_text(plan, self.color)
        } else {
            String::new()
        };
        // A thread of its own, never joined: Ctrl-C while the question
        // waits ends the run (and the process) without an answer.
        std::thread::spawn(move || {
            // Nobody waits any more after an interrupt: nothing to do.
            let _ = tx.send(guard::ask(&text));
        });
        rx
    }
}

/// What the summary says of the connections this run made that were not
/// seen in listings when it ended: the next run, planned from listings, may
/// not see them either.
fn unlisted(count: usize, interrupted: bool) -> String {
    let why = if interrupted {
        "may not show in listings yet (the run was interrupted before it saw them there)"
    } else {
        "do not show in listings yet (the API's listings lag its writes)"
    };
    format!(
        "\n{count} connection(s) made by this run {why}. Wait a little before the next `plan` or `apply`, or it may create them again (the run after that removes such duplicates as `dedupe` rows).\n"
    )
}

pub(crate) fn run(global: &GlobalArgs, mut args: ApplyArgs, color: bool) -> Outcome {
    let reports = report_targets(&args)?;
    let paths: Vec<PathBuf> = reports.iter().map(|(path, _)| path.clone()).collect();
    guard::check_report_paths(&paths)?;
    let saved = match &args.saved_plan {
        Some(path) => Some(guard::load_saved_plan(path, &mut args.target)?),
        None => None,
    };
    let overrides = Overrides {
        concurrency: args.concurrency,
        max_deletes: args.max_deletes,
    };
    let target = load_target(global, &args.target, &overrides)?;
    let lock_note = atsprov_runner::lock::note(&args.target.manifest);
    let client = client(&target.manifest)?;
    let runtime = runtime()?;
    let clock = Instant::now();
    let screen = Screen {
        global,
        dry_run: args.dry_run,
        auto_approve: args.auto_approve,
        color,
        progress: progress_mode(global),
    };
    let run = ApplyRun {
        client: &client,
        manifest: &target.manifest,
        desired: &target.desired,
        sandboxes: &target.sandboxes,
        prune: args.target.prune,
        owner: target.manifest.owner.as_deref(),
        targets: &target.targets,
        verify: args.target.verify,
        dry_run: args.dry_run,
        options: ApplyOptions::new(target.manifest.concurrency as usize, progress_mode(global)),
        max_deletes: target.manifest.max_deletes,
        saved: saved.as_ref().map(|s| &s.basis),
        lock_wait: (!args.dry_run).then(|| Duration::from_secs(args.lock_timeout)),
        lock_note: &lock_note,
        fail_fast: args.fail_fast,
    };
    // Signals are listened to from the start: even an interrupt while the
    // live state is read ends with a report.
    let result = runtime.block_on(run.run_with_signals(&screen));

    let report = &result.report;
    let mut write_failed = false;
    let mut summary = report.to_text(clock.elapsed());
    if result.unlisted > 0 {
        summary.push_str(&unlisted(result.unlisted, report.interrupted));
    }
    for written in atsprov_runner::write_reports(report, &reports) {
        match written {
            Ok(path) => summary.push_str(&format!("Report written to {}\n", path.display())),
            Err(err) => {
                write_failed = true;
                crate::output::error(&anyhow!(err));
            }
        }
    }
    let conflicts = report
        .items
        .iter()
        .filter(|i| {
            i.error
                .as_ref()
                .is_some_and(|e| e.kind == ErrorKind::Conflict)
        })
        .count();
    if conflicts > 0 {
        summary.push_str(&format!(
            "\n{conflicts} conflict(s) left: those connections are not provisioned. Set `adopt = true` on the account to take the live one over, or rename the account.\n"
        ));
    }
    crate::output::stdout(&summary)
        .map_err(|err| Failure::Fatal(anyhow!("could not write the summary: {err}")))?;
    if let Some(error) = &result.guard {
        crate::output::stderr(&format!("error: {}\n", error.message));
    }

    Ok(if report.interrupted {
        Exit::Interrupted
    } else if report.summary.failed > 0
        || write_failed
        || result.keys_failed
        || result.guard.is_some()
        || conflicts > 0
    {
        Exit::ItemsFailed
    } else {
        Exit::Success
    })
}
