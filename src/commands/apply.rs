//! `atsprov apply MANIFEST`: hands the run to `atsprov_runner`, prints what
//! it shows and returns, and maps the result to an exit code.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::anyhow;
use atsprov_model::manifest::Overrides;
use atsprov_model::plan::Plan;
use atsprov_model::render;
use atsprov_model::report::ItemError;
use atsprov_runner::{ApplyOptions, ApplyRun, KeyCheck, Observer, ReportFormat};

use crate::cli::{ApplyArgs, GlobalArgs, ReportFormatArg};
use crate::commands::{
    client, load_target, progress_mode, runtime, show_key_checks, show_plan_errors,
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
    color: bool,
}

impl Observer for Screen<'_> {
    fn key_checks(&self, checks: &[KeyCheck]) {
        show_key_checks(self.global, checks);
    }

    fn planned(&self, plan: &Plan) {
        show_plan_errors(plan);
        if self.dry_run {
            // A closed stdout is not an error; the summary below says the same.
            let _ = crate::output::stdout(&render::plan_text(plan, self.color));
        }
    }

    fn stopped(&self, error: &ItemError) {
        crate::output::stderr(&format!("error: {error}\n"));
    }
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
    let clock = Instant::now();
    let screen = Screen {
        global,
        dry_run: args.dry_run,
        color,
    };
    let run = ApplyRun {
        client: &client,
        manifest: &target.manifest,
        desired: &target.desired,
        sandboxes: &target.sandboxes,
        prune: args.target.prune,
        owner: target.manifest.owner.as_deref(),
        verify: args.target.verify,
        dry_run: args.dry_run,
        options: ApplyOptions {
            concurrency: target.manifest.concurrency as usize,
            progress: progress_mode(global),
        },
    };
    // Signals are listened to from the start: even an interrupt while the
    // live state is read ends with a report.
    let result = runtime.block_on(run.run_with_signals(&screen));

    let report = &result.report;
    let mut write_failed = false;
    let mut summary = report.to_text(clock.elapsed());
    for written in atsprov_runner::write_reports(report, &reports) {
        match written {
            Ok(path) => summary.push_str(&format!("Report written to {}\n", path.display())),
            Err(err) => {
                write_failed = true;
                crate::output::error(&anyhow!(err));
            }
        }
    }
    crate::output::stdout(&summary)
        .map_err(|err| Failure::Fatal(anyhow!("could not write the summary: {err}")))?;

    Ok(if report.interrupted {
        Exit::Interrupted
    } else if report.summary.failed > 0 || write_failed || result.keys_failed {
        Exit::ItemsFailed
    } else {
        Exit::Success
    })
}
