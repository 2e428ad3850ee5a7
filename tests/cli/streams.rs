//! Hostile paths and broken streams, end to end: what sits at a report's or
//! plan's path, and what happens when stdout or stderr cannot be written.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::FileTypeExt as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::apply::{cmd, live_names, read_json};
use crate::common::run;
use crate::emu::{self, Acct, Emulator};

fn accounts(n: usize) -> Vec<Acct> {
    (0..n).map(|i| Acct::new(&format!("acct-{i:02}"))).collect()
}

#[test]
fn plan_out_onto_a_fifo_writes_through_it_and_leaves_it_a_fifo() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["prod"], &accounts(2), 2);
    let fifo = dir.path().join("plan.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            File::open(&fifo)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        })
    };
    let out = run(&mut cmd(
        dir.path(),
        &[
            "plan",
            manifest.to_str().unwrap(),
            "--format",
            "json",
            "--out",
            fifo.to_str().unwrap(),
        ],
        &[],
    ));
    // Checked before joining: a replaced FIFO would leave the reader waiting.
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
    assert_eq!(out.code, 0, "{}", out.transcript());
    let plan: Value = serde_json::from_str(&reader.join().unwrap()).unwrap();
    assert_eq!(plan["summary"]["create"], 2);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temp file is left beside it"
    );
}

#[test]
fn a_report_onto_dev_stdout_is_written_to_stdout_and_dev_stdout_stays() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["prod"], &accounts(2), 2);
    let out = run(&mut cmd(
        dir.path(),
        &[
            "apply",
            manifest.to_str().unwrap(),
            "--report",
            "/dev/stdout",
            "--report-format",
            "json",
        ],
        &[],
    ));
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains("\"schema\": \"atsprov.report/v1\""),
        "{}",
        out.transcript()
    );
    assert!(
        std::fs::symlink_metadata("/dev/stdout")
            .unwrap()
            .file_type()
            .is_symlink(),
        "/dev/stdout is still the system's link"
    );
}

#[test]
fn a_link_planted_at_the_old_temporary_name_is_not_followed() {
    // Latency keeps the run going long enough to plant the link first.
    let emu = Emulator::start(&["--latency-ms", "300"]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["prod"], &accounts(2), 2);
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let child = cmd(
        dir.path(),
        &["apply", manifest.to_str().unwrap(), "--report", "r.json"],
        &[],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let planted = dir.path().join(format!(".r.json.{}.tmp", child.id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let report = dir.path().join("r.json");
    assert!(std::fs::symlink_metadata(&report).unwrap().is_file());
    assert_eq!(read_json(&report)["summary"]["created"], 2);
}

/// Runs `apply` with stderr going to `stderr`; its exit code and report.
fn apply_with_stderr(stderr: Stdio, drop_read_end: bool) -> (Option<i32>, Value, Emulator) {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev", "prod"], &accounts(5), 2);
    let mut child = cmd(
        dir.path(),
        // -vv: many log lines, so a broken stderr is written to again and again.
        &[
            "apply",
            manifest.to_str().unwrap(),
            "-vv",
            "--report",
            "r.json",
        ],
        &[],
    )
    .stdout(Stdio::null())
    .stderr(stderr)
    .spawn()
    .unwrap();
    if drop_read_end {
        drop(child.stderr.take());
    }
    let status = child.wait().unwrap();
    let report = read_json(&dir.path().join("r.json"));
    (status.code(), report, emu)
}

#[test]
fn a_full_stderr_neither_panics_nor_loses_the_report() {
    let full = File::options().write(true).open("/dev/full").unwrap();
    let (code, report, emu) = apply_with_stderr(Stdio::from(full), false);
    assert_eq!(code, Some(0));
    assert_eq!(report["summary"]["created"], 10);
    assert_eq!(live_names(&emu, &["dev", "prod"])["prod"].len(), 5);
}

#[test]
fn a_closed_stderr_pipe_neither_panics_nor_loses_the_report() {
    let (code, report, _emu) = apply_with_stderr(Stdio::piped(), true);
    assert_eq!(code, Some(0));
    assert_eq!(report["summary"]["created"], 10);
}

#[test]
fn a_full_stdout_still_writes_the_report_and_exits_with_a_contract_code() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["prod"], &accounts(2), 2);
    let full = File::options().write(true).open("/dev/full").unwrap();
    let out = cmd(
        dir.path(),
        &["apply", manifest.to_str().unwrap(), "--report", "r.json"],
        &[],
    )
    .stdout(Stdio::from(full))
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not write the summary"), "{stderr}");
    assert_eq!(
        read_json(&dir.path().join("r.json"))["summary"]["created"],
        2
    );
}
