//! The scheduling examples in `configs/schedule/` work as written: the cron
//! line exports what it sources and takes a lock, the systemd units are
//! valid, the CI workflow plans on pull requests and applies on schedule,
//! and every atsprov command line in them is one the binary accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{atsprov, run};

fn schedule(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/schedule")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The atsprov command lines of a text: from `atsprov ` (or `/atsprov `) to
/// the end of the command, split into words; quotes dropped, `$VARS` kept.
fn atsprov_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find("atsprov ") {
            let before = &rest[..at];
            let starts_word = before.is_empty()
                || before.ends_with([' ', '/', '\t'])
                || before.ends_with("run: ");
            let after = &rest[at + "atsprov ".len()..];
            let end = after.find(['\'', '|', ';', '>']).unwrap_or(after.len());
            let words: Vec<String> = after[..end]
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_owned())
                .take_while(|w| w != "||" && w != "\\")
                .collect();
            let is_command = words
                .iter()
                .find(|w| !w.starts_with('-') && *w != "json" && *w != "text")
                .is_some_and(|w| ["validate", "plan", "apply", "verify"].contains(&w.as_str()));
            if starts_word && is_command {
                commands.push(words);
            }
            rest = after;
        }
    }
    commands
}

/// Every atsprov command line parses: with `--help` appended, an unknown flag
/// or a missing value is exit 64, a good line prints help (exit 0).
fn assert_commands_parse(file: &str, text: &str) -> usize {
    let commands = atsprov_commands(text);
    for words in &commands {
        let out = run(atsprov().args(words).arg("--help"));
        assert_eq!(
            out.code,
            0,
            "{file}: `atsprov {}` is not a valid command line:\n{}",
            words.join(" "),
            out.transcript()
        );
    }
    commands.len()
}

#[test]
fn the_cron_line_exports_its_secrets_and_holds_a_lock() {
    let (_, text) = schedule("crontab");
    let jobs: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit() || c == '*' || c == '@'))
        .collect();
    assert_eq!(jobs.len(), 1, "one cron line: {jobs:?}");
    let job = jobs[0];
    let fields: Vec<&str> = job.split_whitespace().collect();
    assert!(fields.len() > 5, "five time fields and a command: {job}");
    let command = fields[5..].join(" ");
    let set_a = command.find("set -a").expect("the line uses `set -a`");
    let source = command
        .find(". /")
        .expect("the line sources a secrets file");
    let set_plus_a = command.find("set +a").expect("and `set +a` after it");
    assert!(set_a < source && source < set_plus_a, "{command}");
    assert!(
        command.starts_with("flock "),
        "the line takes a lock: {command}"
    );
    assert!(!command.contains('%'), "cron turns `%` into a newline");
    assert_eq!(assert_commands_parse("crontab", &command), 1);

    // Run the line's command with its paths moved into a temporary directory
    // and a stand-in for atsprov that records its environment: the secrets
    // file's plain assignments must reach it.
    if !have("flock") {
        return; // no util-linux here; the text checks above still hold
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("secrets.env"),
        "AEP_CLIENT_SECRET=from-the-secrets-file\nSALES_EU_KEY='a key'\n",
    )
    .unwrap();
    let fake = dir.path().join("fake-atsprov");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\nenv > {tmp}/seen.env\necho \"$@\" > {tmp}/args\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let moved = command
        .replace("/etc/atsprov/secrets.env", &format!("{tmp}/secrets.env"))
        .replace("/usr/local/bin/atsprov", &fake.display().to_string())
        .replace("/var/lib/atsprov/", &format!("{tmp}/"))
        .replace("/var/log/atsprov/", &format!("{tmp}/"));
    let status = Command::new("sh")
        .args(["-c", &moved])
        .env_remove("AEP_CLIENT_SECRET")
        .env_remove("SALES_EU_KEY")
        .status()
        .unwrap();
    assert!(status.success(), "{moved}");
    let seen = std::fs::read_to_string(dir.path().join("seen.env")).unwrap();
    assert!(
        seen.contains("AEP_CLIENT_SECRET=from-the-secrets-file"),
        "{seen}"
    );
    assert!(seen.contains("SALES_EU_KEY=a key"), "{seen}");
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert!(args.contains("apply"), "{args}");

    // While another process holds the lock, the line changes nothing and says so.
    std::fs::remove_file(dir.path().join("seen.env")).unwrap();
    // `-F`: flock runs `sleep` itself, without a child, so killing it frees the lock.
    let mut holder = Command::new("flock")
        .arg("-F")
        .arg(dir.path().join("apply.lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let mut waited = 0;
    let out = loop {
        let out = Command::new("sh").args(["-c", &moved]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // The holder may not have taken the lock yet: try again briefly.
        if text.contains("exit 75") || waited > 100 {
            break text;
        }
        std::fs::remove_file(dir.path().join("seen.env")).ok();
        waited += 1;
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(out.contains("exit 75"), "{out}");
    assert!(!dir.path().join("seen.env").exists(), "atsprov did not run");
}

/// `[Section]` -> key -> values, for systemd unit files; continuation lines joined.
fn unit_sections(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = String::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        let full = format!("{pending}{line}");
        pending.clear();
        if let Some(name) = full.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        let (key, value) = full
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {full}"));
        sections
            .entry(current.clone())
            .or_default()
            .entry(key.trim().to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    sections
}

#[test]
fn the_systemd_units_are_valid() {
    let (_, service_text) = schedule("atsprov.service");
    let (_, timer_text) = schedule("atsprov.timer");
    let service = unit_sections(&service_text);
    let timer = unit_sections(&timer_text);
    let one =
        |units: &BTreeMap<String, BTreeMap<String, Vec<String>>>, section: &str, key: &str| {
            units
                .get(section)
                .and_then(|s| s.get(key))
                .and_then(|v| v.last())
                .cloned()
                .unwrap_or_else(|| panic!("[{section}] {key}= is missing"))
        };
    assert_eq!(one(&service, "Service", "Type"), "oneshot");
    let exec = one(&service, "Service", "ExecStart");
    assert!(exec.contains(" apply "), "{exec}");
    assert!(one(&service, "Service", "EnvironmentFile").starts_with('/'));
    assert!(!one(&timer, "Timer", "OnCalendar").is_empty());
    assert_eq!(one(&timer, "Timer", "Persistent"), "true");
    assert_eq!(one(&timer, "Install", "WantedBy"), "timers.target");
    // The timer starts the service of its own name.
    assert!(timer.get("Timer").is_some_and(|t| !t.contains_key("Unit")));
    assert_eq!(
        assert_commands_parse("atsprov.service", &exec.replace('\\', "")),
        1
    );

    if !have("systemd-analyze") {
        return; // the key checks above still hold
    }
    // verify also checks that ExecStart's binary exists: point it at ours.
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_atsprov");
    std::fs::write(
        dir.path().join("atsprov.service"),
        service_text.replace("/usr/local/bin/atsprov", bin),
    )
    .unwrap();
    std::fs::write(dir.path().join("atsprov.timer"), &timer_text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "./atsprov.service", "./atsprov.timer"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("atsprov."),
        "systemd-analyze verify: {stderr}"
    );
}

/// The keys of the top-level `on:` block of a workflow (two-space indent).
fn triggers(text: &str) -> Vec<String> {
    let mut in_on = false;
    let mut keys = Vec::new();
    for line in text.lines() {
        if line.starts_with("on:") {
            in_on = true;
            continue;
        }
        if in_on {
            if !line.starts_with(' ') && !line.trim().is_empty() {
                break;
            }
            if let Some(key) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
                keys.push(
                    key.trim_end_matches(':')
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    }
    keys
}

#[test]
fn the_ci_workflow_plans_on_pull_requests_and_applies_on_schedule() {
    let (_, text) = schedule("github-actions.yml");
    assert!(!text.contains('\t'), "YAML has no tabs");
    let on = triggers(&text);
    for trigger in ["pull_request", "schedule", "push"] {
        assert!(
            on.contains(&trigger.to_owned()),
            "`on:` has {trigger}: {on:?}"
        );
    }
    let jobs = text.split("\n  apply:\n").collect::<Vec<_>>();
    assert_eq!(jobs.len(), 2, "a plan job, then an apply job");
    let (plan_job, apply_job) = (jobs[0], jobs[1]);
    assert!(
        !plan_job.contains("if: github.event_name"),
        "every run plans first"
    );
    assert!(plan_job.contains("plan \"$MANIFEST\" --format json --out plan.json"));
    assert!(plan_job.contains(">> \"$GITHUB_STEP_SUMMARY\""));
    assert!(apply_job.contains("if: github.event_name != 'pull_request'"));
    assert!(
        apply_job.contains("needs: plan"),
        "applies the plan job's plan"
    );
    assert!(apply_job.contains("actions/download-artifact"));
    assert!(apply_job.contains("apply \"$MANIFEST\""));
    assert!(apply_job.contains("cat report.md >> \"$GITHUB_STEP_SUMMARY\""));
    assert!(apply_job.contains("actions/upload-artifact"));
    assert!(
        apply_job.contains("--plan plan.json"),
        "says where `--plan` goes"
    );
    for job in [plan_job, apply_job] {
        assert!(job.contains("uses: actions/cache@"), "caches the binary");
        assert!(job.contains("path: ~/.cargo/bin/atsprov"));
        assert!(job.contains("cargo install --locked"));
    }
    assert!(text.contains("\nconcurrency:\n"), "one apply at a time");
    let commands = assert_commands_parse(
        "github-actions.yml",
        &text.replace("\"$MANIFEST\"", "manifests/prod.toml"),
    );
    assert_eq!(commands, 4, "validate, two plans, apply");
}
