//! Files generated from the binary's own definitions and committed under
//! `docs/`: the JSON Schemas and the man pages. `cargo xtask schemas` and
//! `cargo xtask man` write them; `cargo xtask ci` fails when they drift.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, root, say, target_dir};

/// The schemas `atsprov schema` prints, by name.
const SCHEMAS: [&str; 3] = ["manifest", "plan", "report"];

/// Which generated files.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Set {
    /// `docs/schemas/*.schema.json`.
    Schemas,
    /// `docs/man/*.1`.
    Man,
}

impl Set {
    fn dir(self) -> PathBuf {
        match self {
            Set::Schemas => root().join("docs/schemas"),
            Set::Man => root().join("docs/man"),
        }
    }

    fn task(self) -> &'static str {
        match self {
            Set::Schemas => "cargo xtask schemas",
            Set::Man => "cargo xtask man",
        }
    }

    /// The files as the current binary generates them: name -> contents.
    fn generate(self, bin: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
        let mut files = BTreeMap::new();
        match self {
            Set::Schemas => {
                for name in SCHEMAS {
                    let out = Command::new(bin)
                        .args(["schema", name])
                        .output()
                        .context("could not run atsprov")?;
                    if !out.status.success() {
                        bail!("`atsprov schema {name}` failed ({})", out.status);
                    }
                    files.insert(format!("{name}.schema.json"), out.stdout);
                }
            }
            Set::Man => {
                let scratch = target_dir().join("xtask-man");
                if scratch.exists() {
                    std::fs::remove_dir_all(&scratch)
                        .with_context(|| format!("cannot clear {}", scratch.display()))?;
                }
                let status = Command::new(bin)
                    .arg("__man")
                    .arg(&scratch)
                    .status()
                    .context("could not run atsprov")?;
                if !status.success() {
                    bail!("`atsprov __man` failed ({status})");
                }
                files = read_dir(&scratch)?;
            }
        }
        Ok(files)
    }
}

/// Builds the binary (debug, like the tests) and returns its path.
fn build() -> Result<PathBuf> {
    cargo(&["build", "--locked", "--bin", "atsprov"])?;
    Ok(target_dir().join("debug/atsprov"))
}

/// Every file of a directory (not recursive): name -> contents; empty when it does not exist.
fn read_dir(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    if !dir.exists() {
        return Ok(files);
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(name, std::fs::read(entry.path())?);
        }
    }
    Ok(files)
}

/// Writes the generated files, removing ones the binary no longer makes.
pub(crate) fn write(set: Set) -> Result<()> {
    let bin = build()?;
    let dir = set.dir();
    std::fs::create_dir_all(&dir)?;
    let wanted = set.generate(&bin)?;
    for name in read_dir(&dir)?.keys() {
        if !wanted.contains_key(name) {
            std::fs::remove_file(dir.join(name))?;
        }
    }
    for (name, contents) in &wanted {
        std::fs::write(dir.join(name), contents)?;
        say(&format!("wrote {}", dir.join(name).display()));
    }
    Ok(())
}

/// Fails when the committed files differ from what the binary generates.
pub(crate) fn check(sets: &[Set]) -> Result<()> {
    let bin = build()?;
    let mut stale = Vec::new();
    for &set in sets {
        let dir = set.dir();
        let committed = read_dir(&dir)?;
        let wanted = set.generate(&bin)?;
        let names: std::collections::BTreeSet<&String> =
            committed.keys().chain(wanted.keys()).collect();
        for name in names {
            if committed.get(name) != wanted.get(name) {
                stale.push(format!(
                    "{} (run `{}`)",
                    dir.join(name)
                        .strip_prefix(root())
                        .unwrap_or(&dir)
                        .display(),
                    set.task()
                ));
            }
        }
    }
    if !stale.is_empty() {
        bail!("generated files are out of date:\n  {}", stale.join("\n  "));
    }
    say("generated files (schemas, man pages) are up to date");
    Ok(())
}
