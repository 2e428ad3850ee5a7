//! `atsprov plan MANIFEST`: read live state, print the diff, change nothing.

use anyhow::anyhow;
use atsprov_model::manifest::Overrides;
use atsprov_model::render;

use crate::cli::{GlobalArgs, PlanArgs, PlanFormat};
use crate::commands::{
    client, load_target, runtime, show_error, show_key_checks, show_plan_errors,
};
use crate::exit::{Exit, Failure, Outcome};

pub(crate) fn run(global: &GlobalArgs, args: PlanArgs, color: bool) -> Outcome {
    crate::commands::guard::check_out_path(args.out.as_ref())?;
    let target = load_target(global, &args.target, &Overrides::default())?;
    let client = client(&target.manifest)?;
    let (keys_failed, planned) = runtime()?.block_on(async {
        let keys_failed = if args.target.verify {
            let mut indices: Vec<usize> = target.desired.iter().map(|d| d.account_index).collect();
            indices.sort_unstable();
            indices.dedup();
            let checks = atsprov_runner::check_keys(&target.manifest, &indices).await;
            show_key_checks(global, &checks);
            checks.iter().any(|c| c.error.is_some())
        } else {
            false
        };
        let options = atsprov_model::plan::Options {
            prune: args.target.prune,
            owner: target.manifest.owner.as_deref(),
            sandboxes: &target.sandboxes,
            targets: &target.targets,
        };
        let planned = atsprov_runner::make_plan(&client, &target.desired, options).await;
        Ok::<_, Failure>((keys_failed, planned))
    })?;
    let planned = match planned {
        Ok(planned) => planned,
        Err(error) => {
            // Said once, with its hint: the API could not be used (exit 1).
            show_error("", &error);
            return Ok(Exit::ItemsFailed);
        }
    };
    let plan = &planned.plan;

    let text = match args.format {
        PlanFormat::Text => render::plan_text(plan, color && args.out.is_none()),
        PlanFormat::Json => render::plan_json(plan),
        PlanFormat::Markdown => render::plan_markdown(plan),
    };
    match &args.out {
        Some(path) => {
            atsprov_runner::write_atomically(path, &text)
                .map_err(|err| Failure::Fatal(anyhow!(err)))?;
            if !global.quiet {
                let summary = render::summary_line(&plan.summary());
                crate::output::stderr(&format!("{summary}\nplan written to {}\n", path.display()));
            }
        }
        None => crate::output::stdout(&text)
            .map_err(|err| Failure::Fatal(anyhow!("could not write the plan: {err}")))?,
    }
    // A text plan on stdout names each unreadable sandbox already.
    if args.out.is_some() || args.format != PlanFormat::Text {
        show_plan_errors(plan);
    }

    Ok(if !plan.errors.is_empty() || keys_failed {
        Exit::ItemsFailed
    } else if args.detailed_exitcode
        && (plan.summary().has_changes() || plan.summary().conflict > 0)
    {
        Exit::ChangesPending
    } else {
        Exit::Success
    })
}
