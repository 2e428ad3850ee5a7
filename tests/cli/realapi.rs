//! `apply` against the emulator in the real service's stricter modes:
//! listings that lag writes with lost answers (never two left standing),
//! connections made elsewhere (adoption, `delete-finalizing`, in use),
//! PATCH not enabled, and scopes the credential may not ask for.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::apply::{cmd, live_names, read_json};
use crate::common::run;
use crate::emu::{self, Acct, Emulator};

/// The default scopes of a manifest (the AEP Server-to-Server set).
const S2S: &str =
    "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session";

fn accounts(n: usize) -> Vec<Acct> {
    (0..n).map(|i| Acct::new(&format!("acct-{i:03}"))).collect()
}

/// (duplicates, missing) of the declared names, over every sandbox.
fn duplicates_and_missing(emu: &Emulator, sandboxes: &[&str], accts: &[Acct]) -> (usize, usize) {
    let live = live_names(emu, sandboxes);
    let (mut duplicates, mut missing) = (0, 0);
    for s in sandboxes {
        for a in accts {
            match live[*s].get(&a.name).copied().unwrap_or(0) {
                0 => missing += 1,
                n => duplicates += n - 1,
            }
        }
    }
    (duplicates, missing)
}

fn items(report: &Value) -> &Vec<Value> {
    report["items"].as_array().unwrap()
}

fn item<'a>(report: &'a Value, sandbox: &str, name: &str) -> &'a Value {
    items(report)
        .iter()
        .find(|i| i["sandbox"] == sandbox && i["name"] == name)
        .unwrap_or_else(|| panic!("no item {sandbox}/{name} in {report:#}"))
}

fn route(emu: &Emulator, route: &str) -> u64 {
    emu.stats()["by_route"][route].as_u64().unwrap()
}

#[test]
fn two_applies_under_listing_lag_and_lost_answers_leave_one_connection_per_name() {
    let lag = 3000;
    let emu = Emulator::start(&[
        "--list-lag-ms",
        &lag.to_string(),
        "--ambiguous-rate",
        "0.2",
        "--seed",
        "9",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let sandboxes = ["dev", "prod"];
    let accts = accounts(25);
    let manifest = emu::write_manifest(dir.path(), &emu, &sandboxes, &accts, 8);
    let m = manifest.to_str().unwrap();
    // The observer's listing lags too: it looks once the lag has passed.
    let settled = || std::thread::sleep(Duration::from_millis(lag + 500));

    let first = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r1.json"],
        &[],
    ));
    // The emulator's own count does not lag.
    let after_first = emu.stats()["connections"].as_u64().unwrap();
    assert!(
        emu.stats()["dropped"].as_u64().unwrap() > 0,
        "some answers were lost"
    );
    // What the first apply could not settle it says, item by item.
    let r1 = read_json(&dir.path().join("r1.json"));
    let unsettled = items(&r1)
        .iter()
        .filter(|i| i["status"] == "failed")
        .count();
    assert_eq!(
        first.code,
        i32::from(unsettled > 0),
        "{}",
        first.transcript()
    );

    // Right away, as a scheduled job or an impatient person would.
    let second = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r2.json"],
        &[],
    ));
    assert_eq!(second.code, 0, "{}", second.transcript());
    settled();
    let after_second = duplicates_and_missing(&emu, &sandboxes, &accts);
    assert_eq!(
        after_second,
        (0, 0),
        "exactly one connection per (sandbox, name) after two applies ({after_first} after the first)"
    );
    // Every duplicate the first apply left is a `dedupe` delete of the second.
    let r2 = read_json(&dir.path().join("r2.json"));
    let deleted = items(&r2)
        .iter()
        .filter(|i| i["action"] == "delete" && i["status"] == "deleted")
        .count();
    assert_eq!(
        u64::try_from(deleted).unwrap(),
        after_first.saturating_sub(50),
        "{r2:#}"
    );
}

#[test]
fn an_apply_right_after_another_under_listing_lag_creates_nothing_again() {
    let emu = Emulator::start(&["--list-lag-ms", "2000"]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accounts(10), 4);
    let m = manifest.to_str().unwrap();
    let first = run(&mut cmd(dir.path(), &["apply", m], &[]));
    assert_eq!(first.code, 0, "{}", first.transcript());
    // The first apply returned once its connections showed in listings, so
    // the second one's plan sees them all.
    let second = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r.json"],
        &[],
    ));
    assert_eq!(second.code, 0, "{}", second.transcript());
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report["summary"]["unchanged"], 10, "{report:#}");
    assert_eq!(route(&emu, "create"), 10, "nothing created twice");
}

#[test]
fn a_duplicate_atsprov_made_is_removed_as_a_dedupe_row_keeping_the_oldest() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accounts(1), 4);
    let m = manifest.to_str().unwrap();
    let out = run(&mut cmd(dir.path(), &["apply", m], &[]));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let first = emu.list("dev").remove(0);
    // The same connection made a second time (a lost answer, a create
    // retried by hand): same name, same marker and fingerprint, newer.
    emu.seed(&json!({"sandbox": "dev", "name": "acct-000", "description": first["description"]}));
    assert_eq!(emu.list("dev").len(), 2);

    let plan = run(&mut cmd(dir.path(), &["plan", m], &[]));
    assert!(plan.stdout.contains("dedupe:"), "{}", plan.transcript());
    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let left = emu.list("dev");
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["id"], first["id"], "the oldest is kept");
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report["summary"]["deleted"], 1, "{report:#}");
    assert_eq!(report["summary"]["unchanged"], 1, "{report:#}");
}

#[test]
fn a_delete_finalizing_connection_is_left_alone_and_its_name_created_anew() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let accts = accounts(1);
    let going =
        emu.seed(&json!({"sandbox": "dev", "name": "acct-000", "state": "delete-finalizing"}));
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accts, 4);
    let m = manifest.to_str().unwrap();
    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(item(&report, "dev", "acct-000")["status"], "created");
    assert_eq!(route(&emu, "patch"), 0, "never patched");
    assert_eq!(route(&emu, "delete"), 0, "never deleted");
    let live = emu.list("dev");
    assert_eq!(live.len(), 2, "{live:#?}");
    let old = live.iter().find(|c| c["id"] == going.as_str()).unwrap();
    assert_eq!(old["state"], "delete-finalizing");
}

#[test]
fn a_delete_refused_because_in_use_is_reported_with_its_hint_and_not_retried() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accounts(2), 4);
    let m = manifest.to_str().unwrap();
    let out = run(&mut cmd(dir.path(), &["apply", m], &[]));
    assert_eq!(out.code, 0, "{}", out.transcript());
    // A connection atsprov made (its marker) that dataflows now use.
    let ours = emu.list("dev");
    let marked = ours[0]["description"].as_str().unwrap();
    emu.seed(&json!({"sandbox": "dev", "name": "retired", "description": marked, "in_use": true}));
    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--prune", "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    let report = read_json(&dir.path().join("r.json"));
    let refused = item(&report, "dev", "retired");
    assert_eq!(refused["status"], "failed", "{refused:#}");
    let error = &refused["error"];
    assert!(
        error["code"].as_str().unwrap().contains("1418"),
        "{error:#}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("delete those dataflows first"),
        "what to do is the error's hint: {error:#}"
    );
    assert!(error["request_id"].is_string(), "{error:#}");
    assert_eq!(route(&emu, "delete"), 1, "a refused delete is not retried");
    assert!(out.stderr.contains("1418"), "{}", out.stderr);
}

#[test]
fn with_patch_not_enabled_an_update_fails_clearly_and_the_run_goes_on() {
    let emu = Emulator::start(&["--no-patch"]);
    let dir = tempfile::tempdir().unwrap();
    let mut accts = accounts(1);
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accts, 4);
    let out = run(&mut cmd(
        dir.path(),
        &["apply", manifest.to_str().unwrap()],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());

    accts[0].description = Some("A new description".into());
    accts.push(Acct::new("acct-001"));
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accts, 4);
    let out = run(&mut cmd(
        dir.path(),
        &["apply", manifest.to_str().unwrap(), "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(item(&report, "dev", "acct-001")["status"], "created");
    let failed = item(&report, "dev", "acct-000");
    assert_eq!(failed["action"], "update");
    assert_eq!(failed["status"], "failed");
    let error = &failed["error"];
    assert!(
        error["code"].as_str().unwrap().contains("1445"),
        "{error:#}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("PATCH"), "{message}");
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("ask Adobe support to enable it"),
        "what to do is the error's hint: {error:#}"
    );
}

#[test]
fn adopt_takes_over_a_connection_made_in_the_ui_without_a_description() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let id = emu.seed(&json!({"sandbox": "dev", "name": "acct-000"}));
    assert!(emu.list("dev")[0].get("description").is_none());
    let mut accts = accounts(1);
    accts[0].adopt = true;
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accts, 4);
    let m = manifest.to_str().unwrap();
    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r1.json"],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let report = read_json(&dir.path().join("r1.json"));
    let adopted = item(&report, "dev", "acct-000");
    assert_eq!(adopted["status"], "updated", "{adopted:#}");
    assert_eq!(adopted["connection_id"], id.as_str());
    assert_eq!(emu.list("dev").len(), 1);

    let writes = emu.stats()["writes"].as_u64().unwrap();
    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--report", "r2.json"],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let report = read_json(&dir.path().join("r2.json"));
    assert_eq!(report["summary"]["unchanged"], 1, "{report:#}");
    assert_eq!(emu.stats()["writes"].as_u64().unwrap(), writes);
}

/// A manifest asking for `scopes`.
fn with_scopes(dir: &Path, emu: &Emulator, scopes: &[&str]) -> String {
    let manifest = emu::write_manifest(dir, emu, &["dev"], &accounts(2), 4);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let list: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
    let text = text.replacen(
        "[auth]\n",
        &format!("[auth]\nscopes = [{}]\n", list.join(", ")),
        1,
    );
    std::fs::write(&manifest, text).unwrap();
    manifest.to_str().unwrap().to_owned()
}

#[test]
fn the_default_scopes_pass_and_fewer_get_a_message_about_the_credential() {
    let emu = Emulator::start(&["--required-scopes", S2S]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accounts(2), 4);
    let out = run(&mut cmd(
        dir.path(),
        &["apply", manifest.to_str().unwrap()],
        &[],
    ));
    assert_eq!(out.code, 0, "the default scopes: {}", out.transcript());

    let m = with_scopes(dir.path(), &emu, &["openid", "AdobeID"]);
    let out = run(&mut cmd(
        dir.path(),
        &["apply", &m, "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("invalid_scope"), "{}", out.stderr);
    assert!(out.stderr.contains("Developer Console"), "{}", out.stderr);
    let report = read_json(&dir.path().join("r.json"));
    for i in items(&report) {
        assert_eq!(i["status"], "failed", "{i:#}");
        assert_eq!(i["error"]["code"], "invalid_scope", "{i:#}");
        assert!(
            i["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("Developer Console"),
            "what to do is the error's hint: {i:#}"
        );
    }
}

#[test]
fn a_token_without_the_product_context_gets_the_403025_hint() {
    let emu = Emulator::start(&["--required-scopes", "openid"]);
    let dir = tempfile::tempdir().unwrap();
    let m = with_scopes(dir.path(), &emu, &["openid"]);
    let out = run(&mut cmd(
        dir.path(),
        &["apply", &m, "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    // Each sandbox that could not be read is named once: in the plan
    // `apply` prints before it writes.
    assert_eq!(
        out.stdout.matches("403025").count() + out.stderr.matches("403025").count(),
        1,
        "{}",
        out.transcript()
    );
    let report = read_json(&dir.path().join("r.json"));
    let list: BTreeMap<String, String> = items(&report)
        .iter()
        .map(|i| {
            assert_eq!(i["status"], "failed", "{i:#}");
            (
                i["name"].as_str().unwrap().to_owned(),
                i["error"]["hint"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(list.len(), 2);
    for hint in list.values() {
        assert!(hint.contains("product profile"), "{hint}");
    }
}
