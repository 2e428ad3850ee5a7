//! Operator safety end to end: owners sharing a sandbox, never-green
//! conflicts, the deletion guard, one run at a time, saved plans, report
//! paths checked first, the manifest's sandbox order.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::apply::{cmd, live_names};
use crate::common::run;
use crate::emu::{self, Acct, Emulator};

/// Writes a manifest for `accts` in `sandboxes` under `file`, with `owner` when given.
pub(crate) fn manifest_as(
    dir: &Path,
    emu: &Emulator,
    file: &str,
    owner: Option<&str>,
    sandboxes: &[&str],
    accts: &[Acct],
) -> PathBuf {
    let written = emu::write_manifest(dir, emu, sandboxes, accts, 4);
    let mut text = std::fs::read_to_string(&written).unwrap();
    if let Some(owner) = owner {
        text = format!("owner = \"{owner}\"\n\n{text}");
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn accts(names: &[&str]) -> Vec<Acct> {
    names.iter().map(|n| Acct::new(n)).collect()
}

fn plan_json(dir: &Path, manifest: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["plan", manifest.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&mut cmd(dir, &args, &[]));
    assert!(matches!(out.code, 0 | 2), "{}", out.transcript());
    serde_json::from_str(&out.stdout).unwrap()
}

fn rows(plan: &Value) -> Vec<String> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| {
            format!(
                "{} {}",
                c["name"].as_str().unwrap(),
                c["action"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn two_owners_share_a_sandbox_without_touching_each_other() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = manifest_as(
        d,
        &emu,
        "a.toml",
        Some("team-a"),
        &["prod"],
        &accts(&["xxx", "yyy"]),
    );
    let b = manifest_as(
        d,
        &emu,
        "b.toml",
        Some("team-b"),
        &["prod"],
        &accts(&["xxx", "zzz"]),
    );
    for m in [&a, &b] {
        let out = run(&mut cmd(d, &["apply", m.to_str().unwrap()], &[]));
        assert_eq!(out.code, 0, "{}", out.transcript());
    }
    // `x` exists twice, once per owner: neither is a conflict for the other.
    let live = live_names(&emu, &["prod"]);
    assert_eq!(live["prod"].get("xxx"), Some(&2), "{live:?}");

    for m in [&a, &b] {
        let out = run(&mut cmd(
            d,
            &[
                "plan",
                m.to_str().unwrap(),
                "--prune",
                "--detailed-exitcode",
            ],
            &[],
        ));
        assert_eq!(out.code, 0, "{}", out.transcript());
        assert!(out.stdout.contains("No changes"), "{}", out.transcript());
    }

    // team-b drops `z` and prunes: only its own `z` goes.
    let b = manifest_as(
        d,
        &emu,
        "b.toml",
        Some("team-b"),
        &["prod"],
        &accts(&["xxx"]),
    );
    assert_eq!(rows(&plan_json(d, &b, &["--prune"])), ["zzz delete"]);
    let out = run(&mut cmd(d, &["apply", b.to_str().unwrap(), "--prune"], &[]));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let live = live_names(&emu, &["prod"]);
    assert_eq!(live["prod"].get("zzz"), None, "{live:?}");
    assert_eq!(live["prod"].get("xxx"), Some(&2), "{live:?}");
    assert_eq!(live["prod"].get("yyy"), Some(&1), "{live:?}");

    // A manifest without an owner owns none of them.
    let legacy = manifest_as(d, &emu, "legacy.toml", None, &["prod"], &accts(&["www"]));
    assert_eq!(rows(&plan_json(d, &legacy, &["--prune"])), ["www create"]);
}
