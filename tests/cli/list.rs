//! `atsprov list` end to end: every live ATS connection of the manifest's
//! sandboxes, who manages it, whether it matches, duplicates; `--target`,
//! `--sandbox`, `--out` and the exit codes.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::apply::{cmd, read_json};
use crate::common::{cli_snapshot, run, settings};
use crate::emu::{self, Acct, Emulator};

/// A manifest owned by `team-a` over `prod` then `dev`, applied once, then a
/// live state with every kind of connection `list` tells apart: managed and
/// matching, rotated (the key changed since), a duplicate name, one made by
/// hand, another owner's, one being deleted, one of another spec.
fn seeded(emu: &Emulator, dir: &Path) -> (PathBuf, Vec<(&'static str, String)>) {
    let mut accts: Vec<Acct> = ["kept", "rotated", "twice"]
        .into_iter()
        .map(Acct::new)
        .collect();
    accts[1].key_env = "ROTATED_KEY".into();
    let manifest = emu::write_manifest(dir, emu, &["prod", "dev"], &accts, 1);
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("owner = \"team-a\"\n{text}")).unwrap();
    let old = vec![("ROTATED_KEY", emu::key("old"))];
    let first = run(&mut cmd(dir, &["apply", manifest.to_str().unwrap()], &old));
    assert_eq!(first.code, 0, "{}", first.transcript());

    emu.seed(&json!({"sandbox": "prod", "name": "twice", "description": "made again in the UI"}));
    emu.seed(&json!({"sandbox": "prod", "name": "by-hand", "description": "made in the UI"}));
    emu.seed(&json!({"sandbox": "prod", "name": "theirs",
        "description": "Their tables [atsprov fp=0123456789abcdef owner=team-b]"}));
    emu.seed(
        &json!({"sandbox": "prod", "name": "leaving", "state": "delete-finalizing",
        "description": "E2E tables [atsprov fp=0123456789abcdef owner=team-a]"}),
    );
    emu.seed(&json!({"sandbox": "dev", "name": "other-spec",
        "spec": "00000000-0000-0000-0000-000000000000"}));
    (manifest, vec![("ROTATED_KEY", emu::key("new"))])
}

#[test]
fn list_shows_who_manages_what_in_text_and_json() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (manifest, keys) = seeded(&emu, dir.path());
    let m = manifest.to_str().unwrap();

    let before = emu.stats();
    let text = run(&mut cmd(dir.path(), &["list", m], &keys));
    assert_eq!(text.code, 0, "{}", text.transcript());
    let after = emu.stats();
    let delta = |path: &[&str]| {
        let get = |v: &Value| {
            path.iter()
                .fold(v.clone(), |v, k| v[k].clone())
                .as_u64()
                .unwrap()
        };
        get(&after) - get(&before)
    };
    assert_eq!(delta(&["tokens_issued"]), 1, "one token: {after}");
    assert_eq!(
        delta(&["by_route", "list"]),
        2,
        "one page per sandbox: {after}"
    );
    assert_eq!(delta(&["writes"]), 0, "list changes nothing: {after}");
    cli_snapshot!("list-text", text, dir.path());

    let out = run(&mut cmd(
        dir.path(),
        &["list", m, "--format", "json"],
        &keys,
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let mut s = settings();
    s.add_filter(r#""created_at": \d+"#, r#""created_at": "[ms]""#);
    s.bind(|| insta::assert_snapshot!("list-json", out.transcript()));

    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(value["schema"], "atsprov.list/v1");
    let rows = value["connections"].as_array().unwrap();
    let names: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["sandbox"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names.first().map(|n| n.0),
        Some("prod"),
        "the manifest's sandbox order: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.1 == "other-spec"),
        "another connection spec is not listed: {names:?}"
    );
    let twice: Vec<&Value> = rows
        .iter()
        .filter(|r| r["name"] == "twice" && r["sandbox"] == "prod")
        .collect();
    assert_eq!(twice.len(), 2);
    assert!(twice.iter().all(|r| r["duplicate"] == true));
    let rotated = rows.iter().find(|r| r["name"] == "rotated").unwrap();
    assert_eq!(rotated["credentials"], "differ");

    let written = run(&mut cmd(
        dir.path(),
        &["list", m, "--format", "json", "--out", "live.json"],
        &keys,
    ));
    assert_eq!(written.code, 0, "{}", written.transcript());
    assert_eq!(written.stdout, "");
    assert_eq!(
        read_json(&dir.path().join("live.json"))["connections"],
        value["connections"]
    );
    for (_, key) in &keys {
        assert!(!text.stdout.contains(key.as_str()) && !out.stdout.contains(key.as_str()));
    }
}

#[test]
fn list_narrows_by_target_and_sandbox_and_refuses_unknown_ones() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (manifest, keys) = seeded(&emu, dir.path());
    let m = manifest.to_str().unwrap();

    let out = run(&mut cmd(
        dir.path(),
        &[
            "list",
            m,
            "--target",
            "tw*",
            "--sandbox",
            "prod",
            "--format",
            "json",
        ],
        &keys,
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = value["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{value}");
    assert!(
        rows.iter()
            .all(|r| r["name"] == "twice" && r["sandbox"] == "prod")
    );

    let typo = run(&mut cmd(
        dir.path(),
        &["list", m, "--target", "kept2"],
        &keys,
    ));
    assert_eq!(typo.code, 64, "{}", typo.transcript());
    assert!(
        typo.stderr.contains("did you mean `kept`"),
        "{}",
        typo.stderr
    );
    let none = run(&mut cmd(
        dir.path(),
        &["list", m, "--target", "zzz*"],
        &keys,
    ));
    assert_eq!(none.code, 64, "{}", none.transcript());
    assert!(
        none.stderr.contains("kept, rotated, twice"),
        "the known names are named: {}",
        none.stderr
    );
    let sandbox = run(&mut cmd(dir.path(), &["list", m, "--sandbox", "qa"], &keys));
    assert_eq!(sandbox.code, 64, "{}", sandbox.transcript());
}

#[test]
fn list_says_an_unreadable_sandbox_once_and_exits_1() {
    let emu = Emulator::start(&["--sandboxes", "prod"]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(
        dir.path(),
        &emu,
        &["prod", "stage"],
        &[Acct::new("sales")],
        1,
    );
    let m = manifest.to_str().unwrap();
    let out = run(&mut cmd(dir.path(), &["list", m], &[]));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(
        out.stderr.lines().filter(|l| l.contains("stage")).count(),
        1,
        "said once: {}",
        out.stderr
    );
    cli_snapshot!("list-unreadable-sandbox", out, dir.path());
}
