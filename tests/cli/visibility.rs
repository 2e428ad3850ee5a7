//! What an operator sees: `apply`'s plan and change lines (and `-q`),
//! `--target` on plan and apply with its exit codes, and report `attempts`
//! counting every HTTP attempt.

use serde_json::Value;

use crate::apply::{cmd, live_names, read_json};
use crate::common::{cli_snapshot, run};
use crate::emu::{self, Acct, Emulator};

fn names(list: &[&str]) -> Vec<Acct> {
    list.iter().map(|n| Acct::new(n)).collect()
}

#[test]
fn apply_shows_the_plan_then_a_line_per_write_and_quiet_keeps_failures() {
    // PATCH is refused with a code that has a hint: updates fail, the rest works.
    let emu = Emulator::start(&["--no-patch"]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(
        dir.path(),
        &emu,
        &["prod"],
        &names(&["alpha", "beta", "gamma"]),
        1,
    );
    let m = manifest.to_str().unwrap();
    let first = run(&mut cmd(dir.path(), &["apply", m], &[]));
    assert_eq!(first.code, 0, "{}", first.transcript());

    let mut accts = names(&["alpha", "beta", "delta"]);
    accts[0].description = Some("Alpha tables".into());
    emu::write_manifest(dir.path(), &emu, &["prod"], &accts, 1);
    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--prune", "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    cli_snapshot!("apply-change-lines", out, dir.path());
    assert!(
        out.stdout
            .find("description: \"E2E tables\" → \"Alpha tables\"")
            < out.stdout.find("Apply finished"),
        "the plan, with its diff, comes before the summary: {}",
        out.stdout
    );
    let report = read_json(&dir.path().join("r.json"));
    let alpha = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "alpha")
        .unwrap();
    assert_eq!(alpha["error"]["code"], "FLOW-1445-400", "{alpha}");
    assert!(
        alpha["error"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("ask Adobe support")),
        "the hint is in the report: {alpha}"
    );

    let quiet = run(&mut cmd(dir.path(), &["-q", "apply", m], &[]));
    assert_eq!(quiet.code, 1, "{}", quiet.transcript());
    cli_snapshot!("apply-change-lines-quiet", quiet, dir.path());
}

#[test]
fn target_limits_plan_and_apply_orphans_included() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let all = names(&["sales-eu", "sales-us", "sales-old", "crm", "crm-old"]);
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev", "prod"], &all, 2);
    let m = manifest.to_str().unwrap();
    let first = run(&mut cmd(dir.path(), &["apply", m], &[]));
    assert_eq!(first.code, 0, "{}", first.transcript());

    // sales-old and crm-old are no longer declared; every description changes.
    let mut now = names(&["sales-eu", "sales-us", "crm"]);
    for a in &mut now {
        a.description = Some("New text".into());
    }
    emu::write_manifest(dir.path(), &emu, &["dev", "prod"], &now, 2);

    let plan = run(&mut cmd(
        dir.path(),
        &[
            "plan",
            m,
            "--prune",
            "--target",
            "sales-*",
            "--sandbox",
            "prod",
            "--format",
            "json",
        ],
        &[],
    ));
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let rows: Vec<(&str, &str, &str)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["sandbox"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("prod", "sales-eu", "update"),
            ("prod", "sales-old", "delete"),
            ("prod", "sales-us", "update"),
        ],
        "only the targeted names, their orphan included, in the chosen sandbox"
    );

    let text = run(&mut cmd(
        dir.path(),
        &["plan", m, "--target", "crm", "--target", "sales-eu"],
        &[],
    ));
    assert_eq!(text.code, 0, "{}", text.transcript());
    cli_snapshot!("plan-target", text, dir.path());

    let writes = emu.stats()["writes"].as_u64().unwrap();
    let typo = run(&mut cmd(
        dir.path(),
        &["apply", m, "--target", "sales-ue"],
        &[],
    ));
    assert_eq!(typo.code, 64, "{}", typo.transcript());
    cli_snapshot!("apply-target-typo", typo, dir.path());
    let gone = run(&mut cmd(
        dir.path(),
        &["plan", m, "--target", "sales-old"],
        &[],
    ));
    assert_eq!(
        gone.code,
        64,
        "a name the manifest no longer declares is no target: {}",
        gone.transcript()
    );
    assert_eq!(
        emu.stats()["writes"].as_u64().unwrap(),
        writes,
        "nothing written"
    );

    let applied = run(&mut cmd(
        dir.path(),
        &[
            "apply", m, "--prune", "--target", "sales-*", "--report", "r.json",
        ],
        &[],
    ));
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report["summary"]["updated"], 4, "{report}");
    assert_eq!(report["summary"]["deleted"], 2, "{report}");
    assert_eq!(report["summary"]["total"], 6, "{report}");
    let live = live_names(&emu, &["dev", "prod"]);
    for sandbox in ["dev", "prod"] {
        let names: Vec<&str> = live[sandbox].keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["crm", "crm-old", "sales-eu", "sales-us"],
            "the orphan outside the targets stays"
        );
    }
    let crm = run(&mut cmd(
        dir.path(),
        &["plan", m, "--target", "crm", "--format", "json"],
        &[],
    ));
    let crm: Value = serde_json::from_str(&crm.stdout).unwrap();
    assert_eq!(crm["summary"]["update"], 2, "crm was left alone: {crm}");
    assert_eq!(
        crm["summary"]["orphan"], 0,
        "crm-old is not a `crm` target: {crm}"
    );
}

#[test]
fn report_attempts_count_every_http_attempt() {
    let emu = Emulator::start(&["--fail-rate", "0.3", "--seed", "7"]);
    let dir = tempfile::tempdir().unwrap();
    let accts: Vec<Acct> = (0..12)
        .map(|i| Acct::new(&format!("acct-{i:02}")))
        .collect();
    let manifest = emu::write_manifest(dir.path(), &emu, &["prod"], &accts, 1);
    let m = manifest.to_str().unwrap();
    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let report = read_json(&dir.path().join("r.json"));
    let attempts: Vec<u64> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["attempts"].as_u64().unwrap())
        .collect();
    assert!(
        attempts.iter().any(|&a| a > 1),
        "some create was retried after a 503: {attempts:?}"
    );
    let stats = emu.stats();
    assert!(stats["injected_failures"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(
        attempts.iter().sum::<u64>(),
        stats["by_route"]["create"].as_u64().unwrap(),
        "every create request the emulator saw is counted on an item: {stats}"
    );
}

#[test]
fn change_lines_are_json_log_lines_with_log_format_json() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["prod"], &names(&["alpha", "beta"]), 2);
    let m = manifest.to_str().unwrap();
    let out = run(&mut cmd(
        dir.path(),
        &["--log-format", "json", "apply", m],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let mut created = Vec::new();
    for line in out.stderr.lines() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if let Some(message) = value["message"].as_str()
            && message.starts_with("created")
        {
            assert_eq!(value["level"], "INFO", "{line}");
            created.push(message.split_whitespace().nth(1).unwrap().to_owned());
        }
    }
    created.sort();
    assert_eq!(created, ["prod/alpha", "prod/beta"], "{}", out.stderr);
    assert!(
        out.stdout.contains("+ alpha"),
        "the plan is on stdout: {}",
        out.stdout
    );
}
