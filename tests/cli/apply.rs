//! `atsprov apply` end to end against the emulator: convergence, idempotence,
//! faults, drift, prune, conflicts, Ctrl-C, and what a person reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{atsprov, run};
use crate::emu::{self, Acct, CLIENT_SECRET, Emulator};

pub(crate) fn cmd(dir: &Path, args: &[&str], keys: &[(&str, String)]) -> Command {
    let mut cmd = atsprov();
    // Every run of one test shares a lock directory of its own, never the
    // user's runtime directory.
    cmd.current_dir(dir)
        .env("ATSPROV_LOCK_DIR", dir.join(".locks"))
        .args(args)
        .env("E2E_CLIENT_SECRET", CLIENT_SECRET)
        .env("E2E_KEY", emu::key("default"));
    for (k, v) in keys {
        cmd.env(k, v);
    }
    cmd
}

pub(crate) fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// name -> count, per sandbox, of what the emulator holds.
pub(crate) fn live_names(
    emu: &Emulator,
    sandboxes: &[&str],
) -> BTreeMap<String, BTreeMap<String, usize>> {
    sandboxes
        .iter()
        .map(|s| {
            let mut names = BTreeMap::new();
            for c in emu.list(s) {
                *names
                    .entry(c["name"].as_str().unwrap().to_owned())
                    .or_insert(0) += 1;
            }
            ((*s).to_owned(), names)
        })
        .collect()
}

pub(crate) fn writes(emu: &Emulator) -> u64 {
    emu.stats()["writes"]
        .as_u64()
        .expect("stats has a `writes` count")
}

/// Every (sandbox, name) of the report, asserting each appears once.
fn report_keys(report: &Value) -> BTreeSet<(String, String)> {
    let items = report["items"].as_array().unwrap();
    let keys: BTreeSet<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["sandbox"].as_str().unwrap().to_owned(),
                i["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys.len(),
        items.len(),
        "an item appears twice in the report"
    );
    keys
}

fn expected_keys(sandboxes: &[&str], accounts: &[Acct]) -> BTreeSet<(String, String)> {
    sandboxes
        .iter()
        .flat_map(|s| {
            accounts
                .iter()
                .map(move |a| ((*s).to_owned(), a.name.clone()))
        })
        .collect()
}

fn assert_exact(emu: &Emulator, sandboxes: &[&str], accounts: &[Acct]) {
    let live = live_names(emu, sandboxes);
    for s in sandboxes {
        let want: BTreeMap<String, usize> = accounts.iter().map(|a| (a.name.clone(), 1)).collect();
        assert_eq!(
            live[*s], want,
            "sandbox {s} differs from the manifest (or holds duplicates)"
        );
    }
}

fn accounts(n: usize) -> Vec<Acct> {
    (0..n).map(|i| Acct::new(&format!("acct-{i:03}"))).collect()
}

#[test]
fn apply_converges_and_a_second_apply_writes_nothing() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sandboxes = ["dev", "stage", "prod"];
    let accts = accounts(100);
    let manifest = emu::write_manifest(dir.path(), &emu, &sandboxes, &accts, 16);
    let m = manifest.to_str().unwrap();

    let first = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r1.json"],
        &[],
    ));
    assert_eq!(first.code, 0, "{}", first.transcript());
    assert_exact(&emu, &sandboxes, &accts);
    let report = read_json(&dir.path().join("r1.json"));
    assert_eq!(report["schema"], "atsprov.report/v1");
    assert_eq!(report_keys(&report), expected_keys(&sandboxes, &accts));
    assert_eq!(report["summary"]["created"], 300);
    assert_eq!(report["summary"]["failed"], 0);
    assert!(first.stdout.contains("300 created"), "{}", first.stdout);

    let before = writes(&emu);
    let second = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r2.json"],
        &[],
    ));
    assert_eq!(second.code, 0, "{}", second.transcript());
    assert_eq!(
        writes(&emu),
        before,
        "a second apply of an unchanged manifest must not write"
    );
    let report = read_json(&dir.path().join("r2.json"));
    assert_eq!(report["summary"]["unchanged"], 300);
    assert_eq!(report_keys(&report), expected_keys(&sandboxes, &accts));

    let plan = run(&mut cmd(
        dir.path(),
        &["plan", m, "--detailed-exitcode"],
        &[],
    ));
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
}

#[test]
fn apply_under_faults_converges_without_duplicates_or_lost_items() {
    let emu = Emulator::start(&[
        "--fail-rate",
        "0.2",
        "--ambiguous-rate",
        "0.05",
        "--rate-limit",
        "100",
        "--token-ttl",
        "2",
        "--seed",
        "7",
        "--page-size",
        "25",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let sandboxes = ["dev", "stage", "prod"];
    let accts = accounts(60);
    let manifest = emu::write_manifest(dir.path(), &emu, &sandboxes, &accts, 8);
    let m = manifest.to_str().unwrap();

    // One run converges: retries, token renewal and ambiguous-create lookups
    // absorb every injected fault.
    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report_keys(&report), expected_keys(&sandboxes, &accts));
    assert_eq!(report["summary"]["created"], 180);
    assert_exact(&emu, &sandboxes, &accts);
    let stats = emu.stats();
    for fault in ["injected_failures", "dropped", "rate_limited"] {
        assert!(
            stats[fault].as_u64().unwrap() > 0,
            "the {fault} fault was really injected: {stats}"
        );
    }
}

#[test]
fn drift_prune_and_conflicts_change_exactly_what_the_plan_said() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sandboxes = ["dev", "prod"];
    let mut accts = accounts(5);
    accts[0].key_env = "ROTATED_KEY".to_owned();
    let manifest = emu::write_manifest(dir.path(), &emu, &sandboxes, &accts, 4);
    let m = manifest.to_str().unwrap();
    let old_key = [("ROTATED_KEY", emu::key("old"))];
    let first = run(&mut cmd(dir.path(), &["apply", m], &old_key));
    assert_eq!(first.code, 0, "{}", first.transcript());

    // Rotate acct-000's key, change acct-001's description, drop acct-004,
    // and let someone else create `hand-made` by hand, which we then declare.
    accts[1].description = Some("New words".to_owned());
    accts.remove(4);
    accts.push(Acct::new("hand-made"));
    let foreign = emu.create_foreign("prod", "hand-made", "made in the UI");
    let manifest = emu::write_manifest(dir.path(), &emu, &sandboxes, &accts, 4);
    let m = manifest.to_str().unwrap();
    let new_key = [("ROTATED_KEY", emu::key("new"))];

    let plan = run(&mut cmd(
        dir.path(),
        &["plan", m, "--format", "json", "--prune"],
        &new_key,
    ));
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let rows: BTreeSet<String> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| {
            format!(
                "{}/{} {} {}",
                c["sandbox"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
                c["fields"]
            )
        })
        .collect();
    let want: BTreeSet<String> = [
        "dev/acct-000 update [\"credentials\"]",
        "prod/acct-000 update [\"credentials\"]",
        "dev/acct-001 update [\"description\"]",
        "prod/acct-001 update [\"description\"]",
        "dev/acct-004 delete []",
        "prod/acct-004 delete []",
        "dev/hand-made create []",
        "prod/hand-made conflict []",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(rows, want);

    let before = emu.stats()["writes"].as_u64().unwrap();
    let applied = run(&mut cmd(
        dir.path(),
        &["apply", m, "--prune", "--report", "r.json"],
        &new_key,
    ));
    // The conflict is left: not green.
    assert_eq!(applied.code, 1, "{}", applied.transcript());
    assert!(
        applied.stdout.contains("1 conflict(s) left") && applied.stdout.contains("adopt = true"),
        "{}",
        applied.transcript()
    );
    assert_eq!(
        emu.stats()["writes"].as_u64().unwrap() - before,
        7,
        "exactly the planned writes"
    );
    let report = read_json(&dir.path().join("r.json"));
    let s = &report["summary"];
    assert_eq!(
        (
            s["updated"].as_u64(),
            s["deleted"].as_u64(),
            s["created"].as_u64(),
            s["skipped"].as_u64()
        ),
        (Some(4), Some(2), Some(1), Some(1))
    );
    // The foreign connection is untouched.
    let prod = emu.list("prod");
    let hand = prod
        .iter()
        .find(|c| c["id"] == foreign.as_str())
        .expect("foreign connection kept");
    assert_eq!(hand["description"], "made in the UI");

    // A fresh process with the new key sees nothing to write; the conflict
    // still needs a person, so the plan is not green.
    let again = run(&mut cmd(
        dir.path(),
        &["plan", m, "--prune", "--detailed-exitcode"],
        &new_key,
    ));
    assert_eq!(again.code, 2, "{}", again.transcript());
    assert!(
        again
            .stdout
            .contains("Plan: 0 to create, 0 to update, 0 to delete, 1 conflict, 0 orphans"),
        "{}",
        again.transcript()
    );
}

/// Starts `apply` on `accts` in `dev` and `prod`, waits until the emulator has
/// seen `creates` create calls, sends `signal` (`-INT`, `-TERM`, `-HUP`)
/// `presses` times, and returns the exit code and the report; then checks
/// that a rerun converges.
fn interrupted_apply(
    emu_flags: &[&str],
    accts: &[Acct],
    creates: u64,
    signal: &str,
    presses: usize,
) -> (Option<i32>, Value, String) {
    let emu = Emulator::start(emu_flags);
    let dir = tempfile::tempdir().unwrap();
    let sandboxes = ["dev", "prod"];
    let manifest = emu::write_manifest(dir.path(), &emu, &sandboxes, accts, 8);
    let m = manifest.to_str().unwrap();
    let child = cmd(dir.path(), &["apply", m, "--report", "r.json"], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while emu.stats()["by_route"]["create"].as_u64().unwrap_or(0) < creates {
        std::thread::sleep(std::time::Duration::from_millis(20));
        waited += 1;
        assert!(waited < 1500, "apply made no progress");
    }
    let pid = child.id().to_string();
    for _ in 0..presses {
        // The `kill` command keeps the tests free of unsafe code.
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    let out = child.wait_with_output().unwrap();
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(
        report["interrupted"],
        true,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report_keys(&report),
        expected_keys(&sandboxes, accts),
        "every item is reported once"
    );

    let rerun = run(&mut cmd(dir.path(), &["apply", m], &[]));
    assert_eq!(
        rerun.code,
        0,
        "a later run picks up where this one stopped: {}",
        rerun.transcript()
    );
    assert_exact(&emu, &sandboxes, accts);
    (
        out.status.code(),
        report,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn sigint_stops_cleanly_writes_the_report_and_a_rerun_converges() {
    let (code, report, stdout) =
        interrupted_apply(&["--latency-ms", "100"], &accounts(60), 5, "-INT", 1);
    assert_eq!(code, Some(130));
    let skipped = report["summary"]["skipped"].as_u64().unwrap();
    assert!(
        stdout.contains(&format!("{skipped} items never started: run `apply` again")),
        "one line sums up the work never started: {stdout}"
    );
    assert!(
        !stdout.contains("not started: the run was interrupted"),
        "no line per unstarted item: {stdout}"
    );
    assert!(
        report["summary"]["skipped"].as_u64().unwrap() > 0,
        "work not started is skipped: {report}"
    );
    assert_eq!(
        report["summary"]["failed"], 0,
        "in-flight calls were allowed to finish: {report}"
    );
}

#[test]
fn a_second_sigint_aborts_calls_in_flight_and_still_reports_every_item() {
    let (code, report, _) =
        interrupted_apply(&["--latency-ms", "1000"], &accounts(12), 1, "-INT", 2);
    assert_eq!(code, Some(130));
    assert!(
        report["summary"]["skipped"].as_u64().unwrap() > 0,
        "{report}"
    );
    let aborted = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["status"] == "failed"
                && i["error"]["kind"] == "interrupted"
                && i["error"]["message"]
                    .as_str()
                    .is_some_and(|e| e.contains("second interrupt"))
        })
        .count();
    assert!(aborted > 0, "the calls in flight were aborted: {report}");
}

#[test]
fn sighup_and_sigterm_are_handled_like_ctrl_c() {
    for signal in ["-HUP", "-TERM"] {
        let (code, report, _) =
            interrupted_apply(&["--latency-ms", "100"], &accounts(40), 3, signal, 1);
        assert_eq!(code, Some(130), "{signal}: {report}");
        assert!(
            report["summary"]["skipped"].as_u64().unwrap() > 0,
            "{signal}: work not started is skipped: {report}"
        );
        assert_eq!(report["summary"]["failed"], 0, "{signal}: {report}");
    }
}

#[test]
fn sigterm_while_apply_waits_for_listings_ends_the_wait_and_says_what_it_left() {
    // Listings lag an hour, so after its create the run waits for the new
    // connection until its patience runs out; every answer takes 20 ms.
    let emu = Emulator::start(&["--list-lag-ms", "3600000", "--latency-ms", "20"]);
    let dir = tempfile::tempdir().unwrap();
    let accts = accounts(1);
    let manifest = emu::write_manifest(dir.path(), &emu, &["prod"], &accts, 4);
    let m = manifest.to_str().unwrap();
    let child = cmd(dir.path(), &["apply", m, "--report", "r.json"], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once a count by id was answered, the create is done and the run waits.
    let mut waited = 0;
    while emu.stats()["lists_by_id"].as_u64().unwrap_or(0) < 1 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        waited += 1;
        assert!(waited < 1500, "apply never began to wait");
    }
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report["interrupted"], true, "{report:#}");
    // The create happened: its item says so.
    let item = &report["items"][0];
    assert_eq!(item["action"], "create", "{report:#}");
    assert_eq!(item["status"], "created", "{report:#}");
    assert!(item["connection_id"].is_string(), "{report:#}");
    let settle_ms = report["timings"]["settle_ms"].as_u64().unwrap();
    assert!(
        settle_ms >= 20,
        "the wait is timed until the interrupt: {report:#}"
    );
    // Whoever runs `plan` or `apply` next is told the new connection may
    // not be listed yet, and so planned again.
    assert!(
        stdout.contains("1 connection(s) made by this run may not show in listings yet"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(emu.stats()["by_route"]["create"], 1);
}
