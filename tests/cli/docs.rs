//! The repository explains itself: no tracked file points outside it, and
//! the completion scripts know every command.

use std::process::Command;

use crate::common::{atsprov, run};

/// Names of files that live outside this repository, spelled in pieces so
/// that this file does not name them itself.
fn outside_names() -> Vec<String> {
    vec![
        format!("../{}", "shared"),
        format!("{}/api/", "shared"),
        format!("{}.md", "PRODUCT"),
        format!("{}.md", "FLOW-SERVICE"),
    ]
}

#[test]
fn no_tracked_file_points_outside_the_repository() {
    let root = env!("CARGO_MANIFEST_DIR");
    let listed = match Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
    {
        Ok(out) if out.status.success() => out.stdout,
        // Not a git checkout (e.g. a source tarball) or no git: nothing to list.
        _ => return,
    };
    let names = outside_names();
    let mut offenders = Vec::new();
    for file in listed.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let file = String::from_utf8_lossy(file).into_owned();
        // CI's own script runs beside the team's shared files; users never see it.
        if file.starts_with(".ci/") {
            continue;
        }
        let Ok(bytes) = std::fs::read(std::path::Path::new(root).join(&file)) else {
            continue; // deleted in the work tree but not yet in the index
        };
        let text = String::from_utf8_lossy(&bytes);
        for name in &names {
            if text.contains(name.as_str()) {
                offenders.push(format!("{file}: names `{name}`"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "tracked files point outside the repository; say \"Adobe's Flow Service documentation\" or point into docs/:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn bash_completions_know_every_command() {
    let out = run(atsprov().args(["completions", "bash"]));
    assert_eq!(out.code, 0, "{}", out.transcript());
    for command in [
        "validate",
        "plan",
        "apply",
        "verify",
        "emulator",
        "schema",
        "completions",
    ] {
        assert!(
            out.stdout.contains(command),
            "bash completions lack `{command}`"
        );
    }
    assert!(out.stdout.contains("--detailed-exitcode"));
    assert!(
        out.stdout.contains("complete -F"),
        "a bash completion script"
    );
    assert!(!out.stdout.contains("__man"), "hidden commands stay hidden");
    for shell in ["zsh", "fish", "powershell"] {
        let out = run(atsprov().args(["completions", shell]));
        assert_eq!(out.code, 0, "{}", out.transcript());
        assert!(out.stdout.contains("apply"), "{shell}");
    }
    let out = run(atsprov().args(["completions", "tcsh"]));
    assert_eq!(out.code, 64, "{}", out.transcript());
}

#[test]
fn readme_links_into_docs_and_the_links_resolve() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut linked = 0;
    for part in readme.split("](").skip(1) {
        let target = part.split(')').next().unwrap_or_default();
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let path = target.split('#').next().unwrap_or_default();
        assert!(
            root.join(path).exists(),
            "README links to missing `{target}`"
        );
        if path.starts_with("docs/") {
            linked += 1;
        }
    }
    assert!(linked >= 6, "README links into docs/ ({linked} links)");
}
