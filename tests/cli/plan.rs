//! `atsprov plan` end to end: every row of the plan table, seen by a fresh
//! process, in all three formats; errors per sandbox; and the apply summary
//! and reports people read.

use std::path::Path;

use serde_json::Value;

use crate::apply::{cmd, read_json};
use crate::common::{cli_snapshot, run, settings};
use crate::emu::{self, Acct, Emulator};

fn redact(text: &str, dir: &Path) -> String {
    crate::common::redact_path(text, dir, "[dir]")
}

/// A sandbox pair holding every situation of the plan table:
/// - `same`: managed, identical (no-op)
/// - `rotated`: managed, key rotated (update credentials)
/// - `described`: managed, description changed (update description)
/// - `fresh`: declared, absent (create)
/// - `by-hand`: someone else's, same name (conflict)
/// - `adopted`: someone else's, `adopt = true` (update, taken over)
/// - `twice`: two live connections with that name (conflict)
/// - `dropped`: managed, no longer declared (orphan, or delete with --prune)
pub(crate) fn every_situation(
    emu: &Emulator,
    dir: &Path,
) -> (std::path::PathBuf, Vec<(&'static str, String)>) {
    let mut accts: Vec<Acct> = ["same", "rotated", "described", "dropped", "twice"]
        .into_iter()
        .map(Acct::new)
        .collect();
    accts[1].key_env = "ROTATED_KEY".into();
    let manifest = emu::write_manifest(dir, emu, &["prod"], &accts, 2);
    let old = vec![("ROTATED_KEY", emu::key("old"))];
    let first = run(&mut cmd(dir, &["apply", manifest.to_str().unwrap()], &old));
    assert_eq!(first.code, 0, "{}", first.transcript());
    emu.create_foreign("prod", "by-hand", "made in the UI");
    emu.create_foreign("prod", "adopted", "made in the UI");
    emu.create_foreign("prod", "twice", "a second one made in the UI");

    accts.retain(|a| a.name != "dropped");
    accts[2].description = Some("Described anew".into());
    accts.push(Acct::new("fresh"));
    accts.push(Acct::new("by-hand"));
    let mut adopted = Acct::new("adopted");
    adopted.adopt = true;
    accts.push(adopted);
    let manifest = emu::write_manifest(dir, emu, &["prod"], &accts, 2);
    (manifest, vec![("ROTATED_KEY", emu::key("new"))])
}

#[test]
fn plan_shows_every_row_in_every_format_from_a_fresh_process() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (manifest, keys) = every_situation(&emu, dir.path());
    let m = manifest.to_str().unwrap();
    let settings = settings();

    let text = run(&mut cmd(
        dir.path(),
        &["plan", m, "--detailed-exitcode"],
        &keys,
    ));
    assert_eq!(text.code, 2, "changes pending: {}", text.transcript());
    cli_snapshot!("plan-text", text, dir.path());

    let json = run(&mut cmd(
        dir.path(),
        &["plan", m, "--format", "json"],
        &keys,
    ));
    assert_eq!(json.code, 0, "{}", json.transcript());
    let value: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["schema"], "atsprov.plan/v1");
    assert_eq!(
        value["summary"],
        serde_json::json!({"create": 1, "update": 3, "no-op": 1, "delete": 0, "conflict": 2, "orphan": 1})
    );
    cli_snapshot!("plan-json", json);

    let md_path = dir.path().join("plan.md");
    let md = run(&mut cmd(
        dir.path(),
        &[
            "plan",
            m,
            "--format",
            "markdown",
            "--prune",
            "--out",
            md_path.to_str().unwrap(),
        ],
        &keys,
    ));
    assert_eq!(md.code, 0, "{}", md.transcript());
    assert!(
        md.stdout.is_empty(),
        "--out writes the plan to the file only"
    );
    let markdown = std::fs::read_to_string(&md_path).unwrap();
    assert!(
        markdown.contains("| `-` | `dropped` | delete |"),
        "{markdown}"
    );
    settings.bind(|| insta::assert_snapshot!("plan-markdown-prune", markdown));
}

#[test]
fn apply_summary_and_reports_read_well() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (manifest, keys) = every_situation(&emu, dir.path());
    let m = manifest.to_str().unwrap();
    let out = run(&mut cmd(
        dir.path(),
        &[
            "apply",
            m,
            "--prune",
            "--concurrency",
            "1",
            "--report",
            "r.json",
            "--report",
            "r.md",
            "--report",
            "junit.out",
            "--report-format",
            "json",
            "--report-format",
            "markdown",
            "--report-format",
            "junit",
        ],
        &keys,
    ));
    // Two conflicts are left: the run is not green.
    assert_eq!(out.code, 1, "{}", out.transcript());
    let settings = settings();
    settings.bind(|| {
        insta::assert_snapshot!("apply-summary", redact(&out.transcript(), dir.path()));
        insta::assert_snapshot!(
            "apply-report-markdown",
            std::fs::read_to_string(dir.path().join("r.md")).unwrap()
        );
        insta::assert_snapshot!(
            "apply-report-junit",
            std::fs::read_to_string(dir.path().join("junit.out")).unwrap()
        );
        insta::assert_json_snapshot!("apply-report-json", read_json(&dir.path().join("r.json")), {
            ".started_at" => "[time]",
            ".finished_at" => "[time]",
            ".items[].connection_id" => "[id]",
            ".items[].duration_ms" => "[ms]",
        });
    });
    // The adopted connection now carries atsprov's marker; a fresh plan has
    // nothing to write, but the conflicts still need a person: never green.
    let again = run(&mut cmd(
        dir.path(),
        &["plan", m, "--detailed-exitcode"],
        &keys,
    ));
    assert_eq!(again.code, 2, "{}", again.transcript());
    assert!(
        !again.stdout.contains("No changes"),
        "{}",
        again.transcript()
    );
    assert!(
        again.stdout.contains("2 conflicts need a person"),
        "{}",
        again.transcript()
    );
}

#[test]
fn one_unreadable_sandbox_is_named_and_the_others_still_show() {
    let emu = Emulator::start(&["--sandboxes", "dev,prod"]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(
        dir.path(),
        &emu,
        &["dev", "prod", "stage"],
        &[Acct::new("sales")],
        2,
    );
    let m = manifest.to_str().unwrap();

    let plan = run(&mut cmd(dir.path(), &["plan", m, "--format", "json"], &[]));
    assert_eq!(plan.code, 1, "{}", plan.transcript());
    let value: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        value["summary"]["create"], 2,
        "dev and prod are still planned"
    );
    assert_eq!(value["errors"][0]["sandbox"], "stage");
    assert!(plan.stderr.contains("sandbox `stage`"), "{}", plan.stderr);
    assert!(
        plan.stderr.contains("2100-404"),
        "Adobe's code is shown: {}",
        plan.stderr
    );

    let apply = run(&mut cmd(
        dir.path(),
        // One at a time, so the change lines come in the plan's order.
        &["apply", m, "--concurrency", "1", "--report", "r.json"],
        &[],
    ));
    assert_eq!(apply.code, 1, "{}", apply.transcript());
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report["summary"]["created"], 2);
    assert_eq!(report["summary"]["failed"], 1);
    let failed = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "failed")
        .unwrap();
    assert_eq!(failed["sandbox"], "stage");
    assert_eq!(failed["action"], Value::Null);
    assert_eq!(failed["error"]["kind"], "api");
    assert_eq!(failed["error"]["http_status"], 404);
    assert_eq!(failed["error"]["code"], "FLOW-2100-404");

    let text = run(&mut cmd(dir.path(), &["plan", m], &[]));
    cli_snapshot!("plan-unreadable-sandbox", text, dir.path());
    cli_snapshot!("apply-unreadable-sandbox", apply, dir.path());
}

#[test]
fn a_refused_client_secret_fails_fast_with_a_report_and_no_secret_shown() {
    let emu = Emulator::start(&[
        "--client-id",
        emu::API_KEY,
        "--client-secret",
        "the-right-one",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(
        dir.path(),
        &emu,
        &["dev"],
        &[Acct::new("alpha1"), Acct::new("alpha2")],
        2,
    );
    let m = manifest.to_str().unwrap();

    let plan = run(&mut cmd(dir.path(), &["plan", m], &[]));
    assert_eq!(plan.code, 1, "{}", plan.transcript());
    assert!(
        plan.stderr.contains("could not authenticate"),
        "{}",
        plan.stderr
    );
    let apply = run(&mut cmd(
        dir.path(),
        &["-vvv", "apply", m, "--report", "r.json"],
        &[],
    ));
    assert_eq!(apply.code, 1, "{}", apply.transcript());
    let report_text = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    let report: Value = serde_json::from_str(&report_text).unwrap();
    assert_eq!(
        report["summary"]["failed"], 2,
        "every item is recorded as failed"
    );
    assert_eq!(report["items"][0]["error"]["kind"], "auth");
    cli_snapshot!("plan-refused-client-secret", plan, dir.path());
    assert_eq!(emu.stats()["writes"], 0);
    for secret in [emu::CLIENT_SECRET.to_owned(), emu::key("default")] {
        for (what, text) in [
            ("stdout", &apply.stdout),
            ("stderr", &apply.stderr),
            ("report", &report_text),
        ] {
            assert!(!text.contains(&secret), "a secret leaked into {what}");
        }
    }
}

#[test]
fn secrets_never_show_even_at_trace_level() {
    let emu = Emulator::start(&["--fail-rate", "0.3", "--seed", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let mut accts = vec![Acct::new("secret1"), Acct::new("secret2")];
    accts[1].key_env = "OTHER_KEY".into();
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accts, 2);
    let m = manifest.to_str().unwrap();
    let keys = [("OTHER_KEY", emu::key("other"))];
    let mut traced = cmd(
        dir.path(),
        &[
            "-vvv", "apply", m, "--report", "r.json", "--report", "r.xml", "--report", "r.md",
        ],
        &keys,
    );
    traced.env("RUST_LOG", "trace");
    let apply = run(&mut traced);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let json_logs = run(&mut cmd(
        dir.path(),
        &["--log-format", "json", "-vvv", "plan", m],
        &keys,
    ));
    assert_eq!(json_logs.code, 0, "{}", json_logs.transcript());
    assert!(apply.stderr.len() > 1000, "trace logging really ran");
    let reports: Vec<String> = ["r.json", "r.xml", "r.md"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap())
        .collect();
    for secret in [
        emu::CLIENT_SECRET.to_owned(),
        emu::key("default"),
        emu::key("other"),
    ] {
        for text in [
            &apply.stdout,
            &apply.stderr,
            &json_logs.stderr,
            &json_logs.stdout,
        ]
        .into_iter()
        .chain(reports.iter())
        {
            assert!(!text.contains(&secret), "a secret leaked");
        }
    }
}
