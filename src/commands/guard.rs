//! What `apply` checks before its first write: the report paths, a saved
//! plan, and a person's `yes` at a terminal.

use std::io::{BufRead as _, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use atsprov_model::render::{SavedPlan, read_saved_plan};

use crate::cli::TargetArgs;
use crate::exit::Failure;

/// The most of a saved plan that is read: a plan of many thousands of
/// connections is a few megabytes.
const SAVED_PLAN_CAP: u64 = 64 * 1024 * 1024;

/// Checks every `--report` path before anything is sent: not a directory,
/// and its folder exists and takes a new file.
pub(crate) fn check_report_paths(paths: &[PathBuf]) -> Result<(), Failure> {
    check_writable(paths, "the report", "--report")
}

/// Checks an `--out` path as [`check_report_paths`] checks a report's, so a
/// path that cannot be written stops the command before any call is made,
/// not after them all.
pub(crate) fn check_out_path(path: Option<&PathBuf>) -> Result<(), Failure> {
    check_writable(
        path.map(std::slice::from_ref).unwrap_or(&[]),
        "the output",
        "--out",
    )
}

fn check_writable(paths: &[PathBuf], what: &str, flag: &str) -> Result<(), Failure> {
    for path in paths {
        let refuse = |why: String| {
            Failure::Fatal(anyhow!(
                "cannot write {what} `{}`: {why}; nothing was sent. Choose another `{flag}` path",
                path.display()
            ))
        };
        if path.is_dir() {
            return Err(refuse("it is a directory".to_owned()));
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(refuse(format!(
                "the folder `{}` does not exist or is not a folder",
                folder.display()
            )));
        }
        let probe = folder.join(format!(".atsprov-report-check.{}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                // The probe is ours and empty; failing to remove it is harmless.
                let _ = std::fs::remove_file(&probe);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(refuse(format!(
                    "the folder `{}` cannot be written ({err})",
                    folder.display()
                )));
            }
        }
    }
    Ok(())
}

/// Reads `--plan FILE` (bounded) and makes `target` plan with its options:
/// `--prune` and `--sandbox`, when also given, must be the plan's.
pub(crate) fn load_saved_plan(path: &Path, target: &mut TargetArgs) -> Result<SavedPlan, Failure> {
    let unreadable = |why: String| {
        Failure::Fatal(anyhow!(
            "cannot use the saved plan `{}`: {why}; nothing was sent",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|err| unreadable(err.to_string()))?;
    let mut text = String::new();
    file.take(SAVED_PLAN_CAP + 1)
        .read_to_string(&mut text)
        .map_err(|err| unreadable(err.to_string()))?;
    if text.len() as u64 > SAVED_PLAN_CAP {
        return Err(unreadable(format!(
            "it is larger than {} MiB",
            SAVED_PLAN_CAP / 1024 / 1024
        )));
    }
    let saved = read_saved_plan(&text).map_err(unreadable)?;
    if target.prune && !saved.prune {
        return Err(Failure::Usage(anyhow!(
            "`--prune`: the saved plan `{}` was made without it; plan again with `--prune`, or drop it here",
            path.display()
        )));
    }
    if !target.sandboxes.is_empty() {
        let mut given = target.sandboxes.clone();
        let mut planned = saved.sandboxes.clone();
        given.sort();
        given.dedup();
        planned.sort();
        if given != planned {
            return Err(Failure::Usage(anyhow!(
                "`--sandbox`: the saved plan `{}` covers {}; give the same sandboxes, or none",
                path.display(),
                saved.sandboxes.join(", ")
            )));
        }
    }
    if !target.targets.is_empty() && target.targets != saved.targets {
        return Err(Failure::Usage(anyhow!(
            "`--target`: the saved plan `{}` was made with {}; give the same targets, or none",
            path.display(),
            if saved.targets.is_empty() {
                "no target (every account)".to_owned()
            } else {
                saved.targets.join(", ")
            }
        )));
    }
    target.prune = saved.prune;
    target.sandboxes = saved.sandboxes.clone();
    target.targets = saved.targets.clone();
    Ok(saved)
}

/// True when a person can be asked: stdin and stderr are terminals.
pub(crate) fn can_ask() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Shows the plan on stderr and asks for `yes`; true only for `yes`.
pub(crate) fn ask(plan_text: &str) -> bool {
    crate::output::stderr(plan_text);
    crate::output::stderr("\nApply these changes? Type yes to continue: ");
    let mut answer = String::new();
    match std::io::stdin().lock().take(1024).read_line(&mut answer) {
        Ok(_) => answer.trim() == "yes",
        Err(_) => false,
    }
}
