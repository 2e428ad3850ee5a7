//! `atsprov verify`, `plan --verify` and `apply --verify` against the
//! emulator's Table service (Shared Key Lite, path-style like Azurite).

use serde_json::Value;

use crate::apply::{cmd, read_json};
use crate::common::{cli_snapshot, run};
use crate::emu::{self, Acct, Emulator};

/// Two accounts whose keys the emulator knows; `refused` is given the wrong one.
fn setup() -> (
    Emulator,
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<(&'static str, String)>,
) {
    let good_key = emu::key("good");
    let real_key = emu::key("real");
    let emu = Emulator::start(&[
        "--table-account",
        &format!("{}={good_key}", emu::account_name("working")),
        "--table-account",
        &format!("{}={real_key}", emu::account_name("refused")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut working = Acct::new("working");
    working.key_env = "WORKING_KEY".into();
    working.table = true;
    let mut refused = Acct::new("refused");
    refused.key_env = "REFUSED_KEY".into();
    refused.table = true;
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev", "prod"], &[working, refused], 2);
    let keys = vec![
        ("WORKING_KEY", good_key),
        ("REFUSED_KEY", emu::key("stale")),
    ];
    (emu, dir, manifest, keys)
}

#[test]
fn verify_names_the_account_whose_key_is_refused() {
    let (_emu, dir, manifest, keys) = setup();
    let out = run(&mut cmd(
        dir.path(),
        &["verify", manifest.to_str().unwrap()],
        &keys,
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    cli_snapshot!("verify-refused", out, dir.path());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].trim_start().starts_with("ok") && lines[0].contains("working"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].contains("FAILED") && lines[1].contains("refused"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].contains("AuthenticationFailed"),
        "Azure's code is shown: {}",
        out.stdout
    );
    assert_eq!(lines[2], "Key check: 1 ok, 1 failed");
    for (_, key) in &keys {
        assert!(!out.stdout.contains(key.as_str()) && !out.stderr.contains(key.as_str()));
    }

    let fixed = [
        ("WORKING_KEY", emu::key("good")),
        ("REFUSED_KEY", emu::key("real")),
    ];
    let out = run(&mut cmd(
        dir.path(),
        &["verify", manifest.to_str().unwrap()],
        &fixed,
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
}

#[test]
fn apply_with_verify_skips_the_refused_account_and_says_why() {
    let (emu, dir, manifest, keys) = setup();
    let m = manifest.to_str().unwrap();

    let plan = run(&mut cmd(
        dir.path(),
        &["plan", m, "--verify", "--format", "json"],
        &keys,
    ));
    assert_eq!(
        plan.code,
        1,
        "a failed key check fails the plan: {}",
        plan.transcript()
    );
    let json: Value = serde_json::from_str(&plan.stdout).expect("stdout is still the JSON plan");
    assert_eq!(json["summary"]["create"], 4);
    assert!(plan.stderr.contains("FAILED"), "{}", plan.stderr);

    let out = run(&mut cmd(
        dir.path(),
        &["apply", m, "--verify", "--report", "r.json"],
        &keys,
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report["summary"]["created"], 2);
    assert_eq!(report["summary"]["skipped"], 2);
    assert_eq!(report["summary"]["total"], 4, "every item is reported");
    for item in report["items"].as_array().unwrap() {
        if item["name"] == "refused" {
            assert_eq!(item["status"], "skipped");
            assert_eq!(item["error"]["kind"], "key_check", "{item}");
            assert_eq!(item["error"]["http_status"], 403, "{item}");
            assert!(
                item["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("key check failed"),
                "{item}"
            );
        }
    }
    assert_eq!(emu.list("dev").len(), 1);
    assert_eq!(emu.list("prod").len(), 1);
}
