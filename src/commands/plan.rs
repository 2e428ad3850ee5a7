//! `atsprov plan MANIFEST`: read live state, print the diff, change nothing.

use anyhow::anyhow;
use atsprov_model::manifest::Overrides;
use atsprov_model::render;

use crate::cli::{GlobalArgs, PlanArgs, PlanFormat};
use crate::commands::{client, key_check, load_target, make_plan, runtime};
use crate::exit::{Exit, Failure, Outcome};

pub(crate) fn run(global: &GlobalArgs, args: PlanArgs, color: bool) -> Outcome {
    let target = load_target(global, &args.target, &Overrides::default())?;
    let client = client(&target.manifest)?;
    let (keys_failed, plan) = runtime()?.block_on(async {
        let keys_failed = if args.target.verify {
            !key_check(global, &target).await?.is_empty()
        } else {
            false
        };
        let plan = make_plan(&client, &target, args.target.prune)
            .await
            .map_err(Failure::Fatal)?;
        Ok::<_, Failure>((keys_failed, plan))
    })?;

    let text = match args.format {
        PlanFormat::Text => render::plan_text(&plan, color && args.out.is_none()),
        PlanFormat::Json => render::plan_json(&plan),
        PlanFormat::Markdown => render::plan_markdown(&plan),
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
    for error in &plan.errors {
        crate::output::stderr(&format!(
            "error: sandbox `{}`: {}\n",
            error.sandbox, error.error
        ));
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
