//! Operator safety end to end: owners sharing a sandbox, never-green
//! conflicts, the deletion guard, one run at a time, saved plans, report
//! paths checked first, the manifest's sandbox order.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::apply::{cmd, live_names, writes};
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

fn names(prefix: &str, n: usize) -> Vec<Acct> {
    (0..n)
        .map(|i| Acct::new(&format!("{prefix}-{i:03}")))
        .collect()
}

/// Every name in `sandbox` exists exactly once.
fn assert_no_duplicates(emu: &Emulator, sandbox: &str, want: usize) {
    let live = live_names(emu, &[sandbox]);
    let counts = &live[sandbox];
    assert_eq!(counts.len(), want, "{live:?}");
    assert!(counts.values().all(|n| *n == 1), "duplicates: {live:?}");
}

#[test]
fn a_conflict_left_makes_apply_exit_1_and_plain_plan_exit_0() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(
        d,
        &emu,
        "m.toml",
        None,
        &["prod"],
        &accts(&["mine", "taken"]),
    );
    let m = m.to_str().unwrap();
    emu.create_foreign("prod", "taken", "made in the UI");

    let out = run(&mut cmd(d, &["apply", m, "--report", "r.json"], &[]));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stdout.contains("1 conflict(s) left") && out.stdout.contains("adopt = true"),
        "{}",
        out.transcript()
    );
    let report = crate::apply::read_json(&d.join("r.json"));
    let taken = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "taken")
        .unwrap();
    assert_eq!(taken["status"], "skipped");
    assert_eq!(taken["error"]["kind"], "conflict");
    assert!(
        taken["error"]["message"]
            .as_str()
            .unwrap()
            .contains("adopt = true"),
        "{taken}"
    );

    let plain = run(&mut cmd(d, &["plan", m], &[]));
    assert_eq!(plain.code, 0, "{}", plain.transcript());
    let detailed = run(&mut cmd(d, &["plan", m, "--detailed-exitcode"], &[]));
    assert_eq!(detailed.code, 2, "{}", detailed.transcript());
}

#[test]
fn two_applies_started_together_make_no_duplicates() {
    let emu = Emulator::start(&["--latency-ms", "20"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(d, &emu, "m.toml", None, &["prod"], &names("acct", 60));
    let m = m.to_str().unwrap();
    let spawn = |extra: &[&str]| {
        let mut args = vec!["apply", m];
        args.extend_from_slice(extra);
        cmd(d, &args, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Once waiting for the other, once giving up at once.
    for extra in [&[][..], &["--lock-timeout", "0"][..]] {
        let (a, b) = (spawn(extra), spawn(extra));
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            let code = out.status.code();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(matches!(code, Some(0 | 1)), "{code:?} {stderr}");
            if code == Some(1) {
                assert!(
                    stderr.contains("another atsprov run is working on sandbox `prod`")
                        && stderr.contains("pid "),
                    "{stderr}"
                );
            }
        }
        assert_no_duplicates(&emu, "prod", 60);
    }
}

#[test]
fn a_busy_sandbox_names_its_holder_and_a_killed_holder_lets_go() {
    let emu = Emulator::start(&["--latency-ms", "200"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(d, &emu, "m.toml", None, &["prod"], &names("acct", 40));
    let m = m.to_str().unwrap();
    let start = || {
        cmd(d, &["apply", m], &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_for_writes = || {
        while writes(&emu) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };

    let mut first = start();
    wait_for_writes();
    let busy = run(&mut cmd(d, &["apply", m, "--lock-timeout", "0"], &[]));
    let holder = format!("pid {}", first.id());
    assert_eq!(busy.code, 1, "{}", busy.transcript());
    assert!(busy.stderr.contains(&holder), "{}", busy.transcript());
    assert!(busy.stderr.contains("m.toml"), "{}", busy.transcript());
    // The holder is killed outright: the OS releases its lock.
    first.kill().unwrap();
    first.wait().unwrap();
    let next = run(&mut cmd(d, &["apply", m, "--lock-timeout", "5"], &[]));
    assert_eq!(next.code, 0, "{}", next.transcript());
    assert_no_duplicates(&emu, "prod", 40);
}

#[test]
fn too_many_deletes_write_nothing_at_all() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let all = manifest_as(
        d,
        &emu,
        "m.toml",
        None,
        &["prod"],
        &accts(&["aaa", "bbb", "ccc", "ddd"]),
    );
    let out = run(&mut cmd(d, &["apply", all.to_str().unwrap()], &[]));
    assert_eq!(out.code, 0, "{}", out.transcript());

    // A truncated manifest, plus one new account: three deletes and a create.
    let cut = manifest_as(d, &emu, "m.toml", None, &["prod"], &accts(&["aaa", "eee"]));
    let cut = cut.to_str().unwrap();
    let before = writes(&emu);
    let out = run(&mut cmd(
        d,
        &[
            "apply",
            cut,
            "--prune",
            "--max-deletes",
            "2",
            "--report",
            "r.json",
        ],
        &[],
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("deletes 3 connections, more than the limit of 2")
            && out.stderr.contains("--max-deletes")
            && out.stderr.contains("max_deletes"),
        "{}",
        out.transcript()
    );
    assert_eq!(writes(&emu), before, "nothing at all was written");
    let report = crate::apply::read_json(&d.join("r.json"));
    let skipped: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 4, "{report}");
    for item in skipped {
        assert_eq!(item["error"]["kind"], "guard", "{item}");
        assert!(
            item["error"]["message"]
                .as_str()
                .unwrap()
                .contains("the limit of 2")
        );
    }

    // The manifest's default (10) lets three through.
    let out = run(&mut cmd(d, &["apply", cut, "--prune"], &[]));
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(
        live_names(&emu, &["prod"])["prod"]
            .keys()
            .collect::<Vec<_>>(),
        ["aaa", "eee"]
    );
}

#[test]
fn a_report_path_that_cannot_be_written_stops_the_run_before_any_write() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(d, &emu, "m.toml", None, &["prod"], &accts(&["aaa", "bbb"]));
    let m = m.to_str().unwrap();
    // Tests run as root, which writes anywhere: a regular file is a folder no one can write in.
    std::fs::write(d.join("a-file"), "not a folder").unwrap();
    std::fs::create_dir(d.join("a-dir")).unwrap();
    for (report, why) in [
        ("missing/r.json", "does not exist"),
        ("a-file/r.json", "is not a folder"),
        ("a-dir", "is a directory"),
    ] {
        let out = run(&mut cmd(
            d,
            &[
                "apply",
                m,
                "--report",
                "ok.json",
                "--report",
                report,
                "--report-format",
                "json",
                "--report-format",
                "json",
            ],
            &[],
        ));
        assert_eq!(out.code, 1, "{}", out.transcript());
        assert!(
            out.stderr.contains(report) && out.stderr.contains(why),
            "{}",
            out.transcript()
        );
        assert!(
            out.stderr.contains("nothing was sent"),
            "{}",
            out.transcript()
        );
        assert_eq!(writes(&emu), 0, "{report}");
        assert!(!d.join("ok.json").exists());
    }
    assert!(emu.list("prod").is_empty());
}

#[test]
fn an_out_path_that_cannot_be_written_stops_plan_list_and_verify_before_any_call() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(d, &emu, "m.toml", None, &["prod"], &accts(&["aaa"]));
    let m = m.to_str().unwrap();
    for command in ["plan", "list", "verify"] {
        let out = run(&mut cmd(d, &[command, m, "--out", "missing/out.txt"], &[]));
        assert_eq!(out.code, 1, "{}", out.transcript());
        for needed in [
            "missing/out.txt",
            "does not exist",
            "nothing was sent",
            "Choose another `--out` path",
        ] {
            assert!(out.stderr.contains(needed), "{}", out.transcript());
        }
    }
    assert_eq!(emu.stats()["requests"].as_u64(), Some(0), "{}", emu.stats());
}

#[test]
fn fail_fast_stops_the_sandboxes_after_a_failed_one() {
    // The emulator knows `prod` only: `ghost`, declared first, cannot be read.
    let emu = Emulator::start(&["--sandboxes", "prod"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(
        d,
        &emu,
        "m.toml",
        None,
        &["ghost", "prod"],
        &accts(&["aaa", "bbb"]),
    );
    let m = m.to_str().unwrap();

    let out = run(&mut cmd(
        d,
        &["apply", m, "--fail-fast", "--report", "r.json"],
        &[],
    ));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(writes(&emu), 0, "{}", out.transcript());
    let report = crate::apply::read_json(&d.join("r.json"));
    let items = report["items"].as_array().unwrap();
    let by_sandbox = |s: &'static str| items.iter().filter(move |i| i["sandbox"] == s);
    assert!(
        by_sandbox("ghost").all(|i| i["status"] == "failed"),
        "{report}"
    );
    assert_eq!(by_sandbox("prod").count(), 2, "{report}");
    for item in by_sandbox("prod") {
        assert_eq!(item["status"], "skipped", "{item}");
        assert!(
            item["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`--fail-fast` and sandbox `ghost` had a failure"),
            "{item}"
        );
    }

    // Without it, `prod` still runs.
    let out = run(&mut cmd(d, &["apply", m], &[]));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(live_names(&emu, &["prod"])["prod"].len(), 2);
}

/// Changes a connection's description the way a person in the AEP UI would.
fn edit_by_hand(emu: &Emulator, sandbox: &str, connection: &Value) {
    let token = emu.token("someone-else");
    let auth = format!("Bearer {token}");
    let id = connection["id"].as_str().unwrap();
    let etag = connection["etag"].as_str().unwrap();
    let (status, body) = emu.http(
        "PATCH",
        &format!("/data/foundation/flowservice/connections/{id}"),
        &[
            ("Authorization", &auth),
            ("x-api-key", "someone-else"),
            ("x-gw-ims-org-id", emu::ORG),
            ("x-sandbox-name", sandbox),
            ("If-Match", etag),
        ],
        Some(r#"[{"op": "replace", "path": "/description", "value": "edited by hand"}]"#),
    );
    assert_eq!(status, 200, "PATCH: {body}");
}

#[test]
fn a_saved_plan_is_carried_out_only_while_nothing_changed() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(d, &emu, "m.toml", None, &["prod"], &accts(&["aaa", "bbb"]));
    let m = m.to_str().unwrap();
    let save = || {
        let out = run(&mut cmd(
            d,
            &["plan", m, "--prune", "--format", "json", "--out", "p.json"],
            &[],
        ));
        assert_eq!(out.code, 0, "{}", out.transcript());
    };

    // Unchanged: exactly the saved plan (two creates), with its `--prune`.
    save();
    let saved = crate::apply::read_json(&d.join("p.json"));
    assert_eq!(rows(&saved), ["aaa create", "bbb create"]);
    assert_eq!(saved["options"]["prune"], true);
    let out = run(&mut cmd(d, &["apply", m, "--plan", "p.json"], &[]));
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(writes(&emu), 2);
    assert_no_duplicates(&emu, "prod", 2);

    // The key is rotated between the review and the apply: stale (manifest).
    save();
    let rotated = [("E2E_KEY", emu::key("rotated"))];
    let out = run(&mut cmd(d, &["apply", m, "--plan", "p.json"], &rotated));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("the plan is stale; plan again (the manifest")
            && !out.stderr.contains("the live connections changed"),
        "{}",
        out.transcript()
    );
    assert_eq!(writes(&emu), 2, "nothing written");

    // Someone edits a connection between the review and the apply: stale (live).
    let bbb = emu
        .list("prod")
        .into_iter()
        .find(|c| c["name"] == "bbb")
        .unwrap();
    edit_by_hand(&emu, "prod", &bbb);
    let writes_before = writes(&emu);
    let out = run(&mut cmd(d, &["apply", m, "--plan", "p.json"], &[]));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("the plan is stale; plan again (the live connections changed"),
        "{}",
        out.transcript()
    );
    assert_eq!(writes(&emu), writes_before, "nothing written");

    // Not a plan at all, or a different `--sandbox`: refused before anything is sent.
    std::fs::write(d.join("r.json"), r#"{"schema": "atsprov.report/v1"}"#).unwrap();
    let out = run(&mut cmd(d, &["apply", m, "--plan", "r.json"], &[]));
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("not an `atsprov.plan/v1` plan"),
        "{}",
        out.transcript()
    );
}

#[test]
fn a_saved_plan_keeps_its_targets() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(
        d,
        &emu,
        "m.toml",
        None,
        &["prod"],
        &accts(&["aaa", "bbb", "abc"]),
    );
    let m = m.to_str().unwrap();
    let out = run(&mut cmd(
        d,
        &[
            "plan", m, "--target", "a*", "--format", "json", "--out", "p.json",
        ],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let saved = crate::apply::read_json(&d.join("p.json"));
    assert_eq!(saved["options"]["targets"], serde_json::json!(["a*"]));

    // Another target set than the reviewed one is a usage error; nothing is sent.
    let out = run(&mut cmd(
        d,
        &["apply", m, "--plan", "p.json", "--target", "b*"],
        &[],
    ));
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("`--target`"), "{}", out.transcript());
    assert_eq!(writes(&emu), 0);

    // Without `--target`, the saved one applies: exactly `aaa` and `abc`.
    let out = run(&mut cmd(d, &["apply", m, "--plan", "p.json"], &[]));
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(writes(&emu), 2);
    let live = live_names(&emu, &["prod"]);
    assert_eq!(live["prod"].keys().collect::<Vec<_>>(), ["aaa", "abc"]);
}

/// The question `apply` asks at a terminal.
const QUESTION: &str = "Apply these changes? Type yes to continue:";

/// Runs `atsprov ARGS` under a pseudo-terminal (util-linux `script`),
/// typing `answer` once the question shows. `None` when `script` is not
/// installed.
fn at_a_terminal(dir: &Path, args: &[&str], answer: &str) -> Option<crate::common::Run> {
    use std::io::{Read as _, Write as _};
    let probe = std::process::Command::new("script")
        .arg("--version")
        .output();
    if probe.is_err() {
        return None;
    }
    let inner = cmd(dir, args, &[]);
    let line = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut outer = std::process::Command::new("script");
    outer.args(["-qefc", &line, "/dev/null"]).current_dir(dir);
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => outer.env(key, v),
            None => outer.env_remove(key),
        };
    }
    let mut child = outer
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut answered = false;
    let mut chunk = [0u8; 4096];
    loop {
        let n = stdout.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&chunk[..n]);
        if !answered && String::from_utf8_lossy(&seen).contains(QUESTION) {
            stdin.write_all(answer.as_bytes()).unwrap();
            answered = true;
        }
    }
    let status = child.wait().unwrap();
    drop(stdin);
    Some(crate::common::Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&seen).into_owned(),
        stderr: String::new(),
    })
}

#[test]
fn at_a_terminal_apply_asks_first_and_only_yes_writes() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = manifest_as(d, &emu, "m.toml", None, &["prod"], &accts(&["aaa"]));
    let m = m.to_str().unwrap();

    let Some(no) = at_a_terminal(d, &["apply", m], "no\n") else {
        // A skipped test must say so where cargo test shows it.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: util-linux `script` is not installed, so no pseudo-terminal");
        }
        return;
    };
    assert_eq!(no.code, 1, "{}", no.transcript());
    assert!(no.stdout.contains(QUESTION), "{}", no.transcript());
    assert!(
        no.stdout.contains("+ aaa"),
        "the plan is shown: {}",
        no.transcript()
    );
    assert!(
        no.stdout.contains("not confirmed; nothing was written"),
        "{}",
        no.transcript()
    );
    assert_eq!(writes(&emu), 0);

    // Ctrl-C while the question waits: interrupted, nothing written, a report.
    let stop = at_a_terminal(d, &["apply", m, "--report", "r.json"], "\u{3}").unwrap();
    assert_eq!(stop.code, 130, "{}", stop.transcript());
    assert_eq!(writes(&emu), 0);
    let report = crate::apply::read_json(&d.join("r.json"));
    assert_eq!(report["interrupted"], true, "{report}");

    // A dry run never asks.
    let dry = at_a_terminal(d, &["apply", m, "--dry-run"], "").unwrap();
    assert_eq!(dry.code, 0, "{}", dry.transcript());
    assert!(!dry.stdout.contains(QUESTION), "{}", dry.transcript());

    let yes = at_a_terminal(d, &["apply", m], "yes\n").unwrap();
    assert_eq!(yes.code, 0, "{}", yes.transcript());
    assert!(yes.stdout.contains(QUESTION), "{}", yes.transcript());
    assert_eq!(writes(&emu), 1);

    // Nothing to do: no question.
    let empty = at_a_terminal(d, &["apply", m], "").unwrap();
    assert_eq!(empty.code, 0, "{}", empty.transcript());
    assert!(!empty.stdout.contains(QUESTION), "{}", empty.transcript());

    // `--auto-approve` never asks; without a terminal there is no question either.
    let extra = manifest_as(d, &emu, "m.toml", None, &["prod"], &accts(&["aaa", "bbb"]));
    let extra = extra.to_str().unwrap();
    let auto = at_a_terminal(d, &["apply", extra, "--auto-approve"], "").unwrap();
    assert_eq!(auto.code, 0, "{}", auto.transcript());
    assert!(!auto.stdout.contains(QUESTION), "{}", auto.transcript());
    let extra = manifest_as(
        d,
        &emu,
        "m.toml",
        None,
        &["prod"],
        &accts(&["aaa", "bbb", "ccc"]),
    );
    let piped = run(&mut cmd(d, &["apply", extra.to_str().unwrap()], &[]));
    assert_eq!(piped.code, 0, "{}", piped.transcript());
    assert!(!piped.stderr.contains(QUESTION), "{}", piped.transcript());
    assert_eq!(writes(&emu), 3);
}

#[test]
fn at_a_terminal_ctrl_c_at_the_question_keeps_the_plan_in_the_report() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = ["aaa", "bbb", "ccc", "ddd"];
    let m = manifest_as(d, &emu, "m.toml", None, &["prod"], &accts(&names));
    // Without a terminal there is no question.
    let first = run(&mut cmd(d, &["apply", m.to_str().unwrap()], &[]));
    assert_eq!(first.code, 0, "{}", first.transcript());
    // Two descriptions change: two updates, two no-ops.
    let mut changed = accts(&names);
    changed[0].description = Some("Changed tables".into());
    changed[2].description = Some("Changed tables".into());
    let m = manifest_as(d, &emu, "m.toml", None, &["prod"], &changed);
    let m = m.to_str().unwrap();

    let Some(stop) = at_a_terminal(d, &["apply", m, "--report", "r.json"], "\u{3}") else {
        // A skipped test must say so where cargo test shows it.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: util-linux `script` is not installed, so no pseudo-terminal");
        }
        return;
    };
    assert_eq!(stop.code, 130, "{}", stop.transcript());
    assert!(stop.stdout.contains(QUESTION), "{}", stop.transcript());
    assert_eq!(writes(&emu), 4, "only the first run wrote");
    assert!(
        stop.stdout
            .contains("2 items never started: run `apply` again"),
        "{}",
        stop.transcript()
    );
    let report = crate::apply::read_json(&d.join("r.json"));
    assert_eq!(report["interrupted"], true, "{report:#}");
    // The plan was made and shown: every item carries its action.
    let seen: Vec<(&str, &str, &str, &str)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap(),
                i["action"].as_str().unwrap_or("null"),
                i["status"].as_str().unwrap(),
                i["error"]["kind"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("aaa", "update", "skipped", "interrupted"),
            ("bbb", "no-op", "unchanged", "-"),
            ("ccc", "update", "skipped", "interrupted"),
            ("ddd", "no-op", "unchanged", "-"),
        ],
        "{report:#}"
    );
}
